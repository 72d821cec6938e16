package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hotmod/hotmod"
	"github.com/hotmod/hotmod/internal/auth"
	"github.com/hotmod/hotmod/internal/plugintest"
)

// hotmodBin is the real hotmod binary the end-to-end test runs, built once
// by TestMain ("" under -short).
var hotmodBin string

func TestMain(m *testing.M) {
	flag.Parse()
	dir, err := os.MkdirTemp("", "hotmod-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// Daemons publish their admin token under the user's configuration
	// directory, where the CLI finds it: a private one for the tests, which
	// the test process reads too (see daemon.request).
	// The go command keeps its settings there too: it keeps the user's.
	if cfg, err := os.UserConfigDir(); err == nil && os.Getenv("GOENV") == "" {
		os.Setenv("GOENV", filepath.Join(cfg, "go", "env"))
	}
	os.Setenv("XDG_CONFIG_HOME", filepath.Join(dir, "config"))
	if testing.Short() {
		code := m.Run()
		os.RemoveAll(dir)
		os.Exit(code)
	}
	hotmodBin = filepath.Join(dir, "hotmod")
	// A plain build, whatever flags the test binary has (-race, -cover):
	// artifacts that `hotmod build` makes must match this binary, not the test.
	build := exec.Command("go", "build", "-o", hotmodBin, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "building hotmod for the end-to-end test: %v\n", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// result is what a run of the hotmod binary did.
type result struct {
	code           int
	stdout, stderr string
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// hotmodRun runs the hotmod binary with env added to the environment (which
// loses HOTMOD_ADDR and GOWORK) and stdin.
func hotmodRun(t *testing.T, env []string, stdin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, hotmodBin, args...)
	cmd.Env = append(baseEnv(), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{code: cmd.ProcessState.ExitCode(), stdout: stdout.String(), stderr: stderr.String()}
	if _, isExit := err.(*exec.ExitError); err != nil && !isExit {
		t.Fatalf("hotmod %s: %v\n%s", strings.Join(args, " "), err, r)
	}
	return r
}

// mustRun runs hotmod and fails the test unless it exits 0.
func mustRun(t *testing.T, env []string, args ...string) result {
	t.Helper()
	r := hotmodRun(t, env, "", args...)
	if r.code != 0 {
		t.Fatalf("hotmod %s: %s", strings.Join(args, " "), r)
	}
	return r
}

func baseEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "HOTMOD_") && !strings.HasPrefix(kv, "GOWORK=") {
			env = append(env, kv)
		}
	}
	return append(env, "GOWORK=off") // temporary modules must not join a workspace
}

// daemon is a running `hotmod serve`.
type daemon struct {
	cmd    *exec.Cmd
	addr   string // host:port
	exited chan struct{}
	err    error // from Wait, once exited is closed

	mu   sync.Mutex
	logs []string
}

// startDaemon starts `hotmod serve --dir dir --listen 127.0.0.1:0` and
// returns once it has loaded the directory (GET /readyz answers 200). The
// test's cleanup kills a daemon still running and, when the test failed,
// shows its log.
func startDaemon(t *testing.T, dir string, flags ...string) *daemon {
	t.Helper()
	d := launchDaemon(t, dir, flags...)
	d.waitReady(t)
	return d
}

// launchDaemon is startDaemon without the wait for readiness: it returns
// once the daemon logs the address it listens on.
func launchDaemon(t *testing.T, dir string, flags ...string) *daemon {
	t.Helper()
	return launchDaemonWith(t, dir, nil, nil, flags...)
}

// launchDaemonWith is launchDaemon with env added to the daemon's
// environment and its standard output written to stdout (nil: discarded).
func launchDaemonWith(t *testing.T, dir string, env []string, stdout io.Writer, flags ...string) *daemon {
	t.Helper()
	cmd := exec.Command(hotmodBin, append([]string{"serve", "--dir", dir, "--listen", "127.0.0.1:0",
		"--log-format", "json", "--cache-dir", filepath.Join(t.TempDir(), "cache")}, flags...)...)
	cmd.Env = append(baseEnv(), env...)
	cmd.Stdout = stdout
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d := &daemon{cmd: cmd, exited: make(chan struct{})}
	listening := make(chan string, 1)
	go func() {
		s := bufio.NewScanner(stderr)
		s.Buffer(nil, 1<<20)
		for s.Scan() {
			line := s.Text()
			d.mu.Lock()
			d.logs = append(d.logs, line)
			d.mu.Unlock()
			var rec struct{ Msg, Addr string }
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "listening" {
				listening <- rec.Addr
			}
		}
		d.err = cmd.Wait()
		close(d.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-d.exited:
		default:
			_ = cmd.Process.Kill()
			<-d.exited
		}
		if t.Failed() {
			t.Logf("daemon log:\n%s", d.log())
		}
	})
	select {
	case d.addr = <-listening:
	case <-d.exited:
		t.Fatalf("hotmod serve exited before listening (%v):\n%s", d.err, d.log())
	case <-time.After(2 * time.Minute):
		t.Fatalf("hotmod serve did not log \"listening\" within 2 minutes:\n%s", d.log())
	}
	return d
}

// waitReady polls GET /readyz until it answers 200.
func (d *daemon) waitReady(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		resp, err := http.Get("http://" + d.addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("hotmod serve was not ready within 2 minutes (%v):\n%s", err, d.log())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (d *daemon) log() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return strings.Join(d.logs, "\n")
}

// logged reports whether the daemon's log contains s within the given
// time. A worker's lines reach the log through the supervisor's copy of
// its stderr, so they may arrive after the supervisor's own "worker ready"
// or after an HTTP answer: a test that expects a line waits for it.
func (d *daemon) logged(s string, within time.Duration) bool {
	deadline := time.Now().Add(within)
	for !strings.Contains(d.log(), s) {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

// stop sends sig and waits for the daemon to exit; it fails the test unless
// the exit status is 0.
func (d *daemon) stop(t *testing.T, sig os.Signal) {
	t.Helper()
	if err := d.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signalling the daemon: %v", err)
	}
	select {
	case <-d.exited:
	case <-time.After(time.Minute):
		t.Fatalf("the daemon did not exit within a minute of %v", sig)
	}
	if d.err != nil {
		t.Fatalf("the daemon exited with %v after %v, want status 0", d.err, sig)
	}
}

// request sends a raw HTTP request to the daemon with the admin token it
// published (and a JSON Content-Type on a POST); header adds or, with an
// empty value, removes headers. It is the one place tests talk HTTP to a
// daemon.
func (d *daemon) request(t *testing.T, method, path, body string, header ...string) (*http.Response, error) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+d.addr+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	token, err := auth.ReadCredential(d.addr)
	if err != nil || token == "" {
		t.Fatalf("the daemon at %s published no admin token (%v)", d.addr, err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		if header[i] == "Host" {
			req.Host = header[i+1]
		} else if header[i+1] == "" {
			req.Header.Del(header[i])
		} else {
			req.Header.Set(header[i], header[i+1])
		}
	}
	return http.DefaultClient.Do(req)
}

// modules asks the daemon what it holds.
func (d *daemon) modules(t *testing.T) []hotmod.ModuleInfo {
	t.Helper()
	resp, err := d.request(t, "GET", "/v1/modules", "")
	if err != nil {
		t.Fatalf("GET /v1/modules: %v", err)
	}
	defer resp.Body.Close()
	var list struct{ Modules []hotmod.ModuleInfo }
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		t.Fatalf("GET /v1/modules: %v", err)
	}
	return list.Modules
}

// waitModules polls the daemon until cond holds for its module list.
func (d *daemon) waitModules(t *testing.T, what string, cond func([]hotmod.ModuleInfo) bool) []hotmod.ModuleInfo {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		mods := d.modules(t)
		if cond(mods) {
			return mods
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited 90s for %s; the daemon holds %+v", what, mods)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func find(mods []hotmod.ModuleInfo, match func(hotmod.ModuleInfo) bool) *hotmod.ModuleInfo {
	for i := range mods {
		if match(mods[i]) {
			return &mods[i]
		}
	}
	return nil
}

func active(name, version string) func(hotmod.ModuleInfo) bool {
	return func(m hotmod.ModuleInfo) bool {
		return m.Name == name && m.Version == version && m.State == hotmod.StateActive
	}
}

// TestEndToEnd drives the real binary the way a user does: scaffold and
// build a module, serve a directory, list, invoke, hot-swap a new version in,
// drop in one the host must refuse, and stop the daemon.
func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping the end-to-end test (it builds hotmod and several native plugins, ~30s)")
	}
	repo := plugintest.Repo(t)
	work := t.TempDir()

	t.Run("new+build+inspect", func(t *testing.T) {
		modDir := filepath.Join(work, "hello")
		r := mustRun(t, nil, "new", "hello", "--dir", modDir)
		if !strings.Contains(r.stdout, "created "+modDir) {
			t.Errorf("hotmod new said:\n%s", r.stdout)
		}
		r = mustRun(t, nil, "build", "-o", filepath.Join(work, "out"), modDir)
		artifact := strings.TrimSpace(r.stdout)
		if artifact != filepath.Join(work, "out", "hello.so") {
			t.Fatalf("hotmod build printed %q, want the artifact's path", r.stdout)
		}
		r = mustRun(t, nil, "inspect", artifact)
		for _, want := range []string{"hello@0.1.0", "hello  ", "go1.", "loadable  yes"} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("hotmod inspect: no %q in\n%s", want, r.stdout)
			}
		}
		r = mustRun(t, nil, "inspect", "--json", artifact)
		var in inspection
		if err := json.Unmarshal([]byte(r.stdout), &in); err != nil {
			t.Fatalf("hotmod inspect --json: %v\n%s", err, r.stdout)
		}
		if !in.Loadable || in.Manifest == nil || in.Manifest.Name != "hello" || in.Build == nil || in.Build.Settings["-buildmode"] != "plugin" {
			t.Errorf("hotmod inspect --json: %+v", in)
		}
		if r := hotmodRun(t, nil, "", "new", "hello", "--dir", modDir); r.code != 1 || !strings.Contains(r.stderr, "already exists and is not empty") {
			t.Errorf("hotmod new over an existing module: %s", r)
		}
	})

	plugins := filepath.Join(work, "plugins")
	artifact := filepath.Join(plugins, "greeter.so")
	if r := mustRun(t, nil, "build", "-o", plugins, filepath.Join(repo, "examples", "greeter")); strings.TrimSpace(r.stdout) != artifact {
		t.Fatalf("hotmod build printed %q, want %s", r.stdout, artifact)
	}
	d := startDaemon(t, plugins)
	addr := []string{"HOTMOD_ADDR=" + d.addr}

	if !t.Run("ls", func(t *testing.T) {
		r := mustRun(t, addr, "ls")
		if !regexp.MustCompile(`(?m)^MODULE +VERSION +TRANSPORT +STATE +IN-FLIGHT +GOROUTINES +ARTIFACT\n` +
			`greeter +1\.0\.0 +native +Active +0 +0 +greeter\.so\n\z`).MatchString(r.stdout) {
			t.Errorf("hotmod ls:\n%s", r.stdout)
		}
		r = mustRun(t, nil, "ls", "--json", "--addr", "http://"+d.addr)
		var list struct{ Modules []hotmod.ModuleInfo }
		if err := json.Unmarshal([]byte(r.stdout), &list); err != nil {
			t.Fatalf("hotmod ls --json: %v\n%s", err, r.stdout)
		}
		if len(list.Modules) != 1 || find(list.Modules, active("greeter", "1.0.0")) == nil || list.Modules[0].Artifact != artifact {
			t.Errorf("hotmod ls --json: %+v", list.Modules)
		}
	}) {
		return
	}

	if !t.Run("invoke", func(t *testing.T) {
		cases := []struct {
			name          string
			args          []string
			stdin         string
			code          int
			stdout, error string
		}{
			{"params", []string{"greeter", "hello", `{"name":"Ada"}`}, "", 0, "{\n  \"message\": \"hello, Ada\"\n}\n", ""},
			{"params from stdin", []string{"greeter@^1.0", "hello", "-"}, `{"name":"Bob"}`, 0, "{\n  \"message\": \"hello, Bob\"\n}\n", ""},
			{"unknown module", []string{"nope", "hello"}, "", 1, "", `unknown_module: no module "nope" is loaded (loaded: greeter)`},
			{"unknown method", []string{"greeter", "bye"}, "", 1, "", `unknown_method: module greeter has no method "bye"`},
			{"bad params", []string{"greeter", "hello", `{"name":5}`}, "", 1, "", `bad_params: "name" must be a string, got integer`},
			{"malformed params", []string{"greeter", "hello", `{"name":`}, "", 1, "", "bad_params: malformed JSON"},
			{"no version in range", []string{"greeter@^2", "hello"}, "", 1, "", "unknown_module: no active version of greeter matches"},
			{"usage", []string{"greeter"}, "", 2, "", "usage: hotmod invoke MODULE"},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				r := hotmodRun(t, addr, c.stdin, append([]string{"invoke"}, c.args...)...)
				if r.code != c.code || r.stdout != c.stdout || !strings.Contains(r.stderr, c.error) {
					t.Errorf("got %s\nwant exit %d, stdout %q, stderr containing %q", r, c.code, c.stdout, c.error)
				}
			})
		}
	}) {
		return
	}

	if !t.Run("http", func(t *testing.T) {
		cases := []struct {
			method, path, body string
			status             int
			want               string
		}{
			{"GET", "/healthz", "", 200, `{"status":"ok"}`},
			{"POST", "/v1/invoke/greeter@%5E1.0/hello", `{"name":"Ada"}`, 200, `{"message":"hello, Ada"}`},
			{"POST", "/v1/invoke/greeter@1.0.0/hello", `{"name":"Ada"}`, 200, `{"message":"hello, Ada"}`},
			{"POST", "/v1/invoke/greeter/hello", ``, 400, `"code":"bad_params"`},
			{"POST", "/v1/invoke/greeter/hello", `{"name":"Ada"`, 400, `"code":"bad_params"`},
			{"POST", "/v1/invoke/greeter/hello", `["Ada"]`, 400, `params must be a JSON object`},
			{"POST", "/v1/invoke/greeter/bye", `{}`, 404, `"code":"unknown_method"`},
			{"POST", "/v1/invoke/nope/hello", `{}`, 404, `"code":"unknown_module"`},
			{"GET", "/v1/invoke/greeter/hello", ``, 405, `"code":"method_not_allowed"`},
			{"GET", "/v1/modules/greeter", ``, 200, `"manifest":{"name":"greeter","version":"1.0.0"`},
			{"GET", "/v1/modules/nope", ``, 404, `"code":"unknown_module"`},
			{"GET", "/nothing", ``, 404, `"code":"not_found"`},
		}
		for _, c := range cases {
			resp, err := d.request(t, c.method, c.path, c.body)
			if err != nil {
				t.Fatalf("%s %s: %v", c.method, c.path, err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != c.status || !strings.Contains(string(body), c.want) {
				t.Errorf("%s %s %s: %d %s, want %d and %s", c.method, c.path, c.body, resp.StatusCode, body, c.status, c.want)
			}
		}
	}) {
		return
	}

	// Rebuilding into the same file is how a developer iterates: the new
	// version replaces the old, which drains and is unloaded.
	if !t.Run("hot swap to v2", func(t *testing.T) {
		v2 := plugintest.Example(t, "greeter", `const version = "1.0.0"`, `const version = "2.0.0"`)
		mustRun(t, nil, "build", "-o", plugins, v2)
		d.waitModules(t, "greeter 2.0.0 to replace 1.0.0", func(mods []hotmod.ModuleInfo) bool {
			return len(mods) == 1 && find(mods, active("greeter", "2.0.0")) != nil
		})
		r := mustRun(t, addr, "invoke", "greeter@2", "hello", `{"name":"Ada"}`)
		if r.stdout != "{\n  \"message\": \"hello, Ada\"\n}\n" {
			t.Errorf("greeter@2: %s", r)
		}
		if r := hotmodRun(t, addr, "", "invoke", "greeter@1", "hello", `{"name":"Ada"}`); r.code != 1 || !strings.Contains(r.stderr, "unknown_module") {
			t.Errorf("greeter@1 after the swap: %s", r)
		}
	}) {
		return
	}

	// An artifact the host must refuse leaves the version it would replace
	// serving.
	if !t.Run("refuse an old toolchain", func(t *testing.T) {
		v3 := plugintest.Example(t, "greeter", `const version = "1.0.0"`, `const version = "3.0.0"`)
		r := mustRun(t, []string{"GOTOOLCHAIN=go1.25.5"}, "build", "-o", plugins, v3)
		if !strings.Contains(r.stderr, "warning: this hotmod") || !strings.Contains(r.stderr, "built with go1.25.5") {
			t.Errorf("hotmod build with GOTOOLCHAIN=go1.25.5 did not warn that the artifact will be refused: %s", r)
		}
		d.waitModules(t, "the go1.25.5 artifact to fail", func(mods []hotmod.ModuleInfo) bool {
			return find(mods, func(m hotmod.ModuleInfo) bool { return m.State == hotmod.StateFailed }) != nil
		})

		r = mustRun(t, addr, "ls")
		failed := regexp.MustCompile(`(?m)^- +- +native +Failed +- +- +greeter\.so +.*built with go1\.25\.5.*$`)
		serving := regexp.MustCompile(`(?m)^greeter +2\.0\.0 +native +Active +0 +0 +greeter\.so *$`)
		if !failed.MatchString(r.stdout) || !serving.MatchString(r.stdout) {
			t.Errorf("hotmod ls should show the go1.25.5 artifact Failed and greeter 2.0.0 Active:\n%s", r.stdout)
		}
		r = mustRun(t, addr, "invoke", "greeter@2.0.0", "hello", `{"name":"Ada"}`)
		if r.stdout != "{\n  \"message\": \"hello, Ada\"\n}\n" {
			t.Errorf("greeter 2.0.0 after the refused build: %s", r)
		}
		r = hotmodRun(t, nil, "", "inspect", artifact)
		if r.code != 1 || !strings.Contains(r.stderr, "built with go1.25.5") || !strings.Contains(r.stdout, "loadable  no") {
			t.Errorf("hotmod inspect of the go1.25.5 artifact: %s", r)
		}
	}) {
		return
	}

	t.Run("SIGTERM", func(t *testing.T) {
		d.stop(t, syscall.SIGTERM)
		if !strings.Contains(d.log(), `"msg":"stopped"`) {
			t.Errorf("no \"stopped\" in the daemon's log")
		}
		if left := processesOf(hotmodBin); len(left) > 0 {
			t.Errorf("hotmod processes left after the daemon stopped: %v", left)
		}
		if r := hotmodRun(t, addr, "", "ls"); r.code != 1 || !strings.Contains(r.stderr, "no hotmod daemon at http://"+d.addr+": start one with `hotmod serve`") {
			t.Errorf("hotmod ls with the daemon gone: %s", r)
		}
	})
}

// TestServeCreatesDirAndStopsOnSIGINT starts a daemon on a directory that does
// not exist yet and stops it with SIGINT.
func TestServeCreatesDirAndStopsOnSIGINT(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping a test that runs the hotmod binary")
	}
	dir := filepath.Join(t.TempDir(), "new", "plugins")
	d := startDaemon(t, dir)
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		t.Errorf("hotmod serve did not create %s: %v", dir, err)
	}
	r := mustRun(t, nil, "ls", "--addr", d.addr)
	if !strings.Contains(r.stdout, "no modules loaded") {
		t.Errorf("hotmod ls of an empty daemon:\n%s", r.stdout)
	}
	d.stop(t, syscall.SIGINT)
}

// processesOf returns the pids of running processes of the executable at
// path (the daemon and its probe children re-execute it).
func processesOf(path string) []string {
	var pids []string
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		if exe, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe")); err == nil && exe == path {
			pids = append(pids, e.Name())
		}
	}
	return pids
}
