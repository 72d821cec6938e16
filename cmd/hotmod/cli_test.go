package main

import (
	"bytes"
	"context"
	"errors"
	"go/format"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hotmod/hotmod"
	"github.com/hotmod/hotmod/internal/auth"
	"github.com/hotmod/hotmod/internal/server"
	"github.com/hotmod/hotmod/internal/statedir"
	"github.com/hotmod/hotmod/sdk"
)

// The tests in this file run the commands in-process (no hotmod binary, no
// plugins), so they also run under -short and -race.

// runCLI runs a hotmod command line in-process.
func runCLI(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(args, strings.NewReader(stdin), &stdout, &stderr)
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// apiServer serves the HTTP API over a registry holding a builtin greeter,
// and sets HOTMOD_TOKEN to an admin token of it.
func apiServer(t *testing.T) string {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	reg := hotmod.New(hotmod.WithLogger(logger))
	greeter := sdk.New("greeter", "1.2.0").
		Handle("hello", func(_ context.Context, p map[string]any) (map[string]any, error) {
			name, err := sdk.String(p, "name")
			if err != nil {
				return nil, err
			}
			return map[string]any{"message": "hello, " + name}, nil
		}).
		Handle("echo", func(_ context.Context, p map[string]any) (map[string]any, error) { return p, nil })
	if _, err := reg.Register(context.Background(), greeter); err != nil {
		t.Fatal(err)
	}
	dir, err := statedir.Open(filepath.Join(t.TempDir(), "state"))
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := auth.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	admin, _, err := tokens.LocalAdmin()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("HOTMOD_TOKEN", admin)
	srv := httptest.NewServer(server.New(reg, logger, server.WithAuth(tokens)))
	t.Cleanup(func() {
		srv.Close()
		_ = reg.Close(context.Background())
	})
	return srv.URL
}

func TestClientCommands(t *testing.T) {
	url := apiServer(t)
	t.Setenv("HOTMOD_ADDR", "")
	cases := []struct {
		name           string
		args           []string
		stdin          string
		code           int
		stdout, stderr string
	}{
		{"invoke", []string{"invoke", "--addr", url, "greeter", "hello", `{"name":"Ada"}`}, "", 0,
			"{\n  \"message\": \"hello, Ada\"\n}\n", ""},
		{"invoke with a range", []string{"invoke", "--addr", url, "greeter@^1.2", "hello", "-"}, `{"name":"Bob"}`, 0,
			"{\n  \"message\": \"hello, Bob\"\n}\n", ""},
		{"numbers keep their form", []string{"invoke", "--addr", url, "greeter", "echo", `{"i":1,"f":2.0,"big":1e300}`}, "", 0,
			"{\n  \"big\": 1e+300,\n  \"f\": 2.0,\n  \"i\": 1\n}\n", ""},
		{"address without scheme", []string{"invoke", "--addr", strings.TrimPrefix(url, "http://"), "greeter", "echo"}, "", 0,
			"{}\n", ""},
		{"module error", []string{"invoke", "--addr", url, "greeter", "hello"}, "", 1,
			"", "bad_params: \"name\" is required (a string)\n"},
		{"unknown module", []string{"invoke", "--addr", url, "nope", "hello"}, "", 1,
			"", "unknown_module: no module \"nope\" is loaded (loaded: greeter)\n"},
		{"not an object", []string{"invoke", "--addr", url, "greeter", "echo", `[1]`}, "", 1,
			"", "bad_params: params must be a JSON object, not an array"},
		{"ls", []string{"ls", "--addr", url}, "", 0,
			"MODULE   VERSION  TRANSPORT  STATE   IN-FLIGHT  GOROUTINES  ARTIFACT\ngreeter  1.2.0    builtin    Active  0          0           -\n", ""},
		{"ls --json", []string{"ls", "--json", "--addr", url}, "", 0, "\"name\": \"greeter\",\n", ""},
		{"an address with a path", []string{"ls", "--addr", url + "/elsewhere"}, "", 1,
			"", "not_found: no endpoint GET /elsewhere/v1/modules"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := runCLI(t, c.stdin, c.args...)
			if r.code != c.code || !strings.Contains(r.stdout, c.stdout) || !strings.Contains(r.stderr, c.stderr) ||
				(c.stdout == "" && r.stdout != "") || (c.stderr == "" && r.stderr != "") {
				t.Errorf("got %s\nwant exit %d, stdout with %q, stderr with %q", r, c.code, c.stdout, c.stderr)
			}
		})
	}
}

func TestNoDaemon(t *testing.T) {
	// A port nobody listens on: take a free one and let it go.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	t.Setenv("HOTMOD_ADDR", addr)
	want := "no hotmod daemon at http://" + addr + ": start one with `hotmod serve`, or set --addr/HOTMOD_ADDR\n"
	for _, args := range [][]string{{"ls"}, {"invoke", "greeter", "hello"}} {
		if r := runCLI(t, "", args...); r.code != 1 || r.stderr != want {
			t.Errorf("hotmod %s: %s\nwant exit 1 and %q", args, r, want)
		}
	}
	t.Setenv("HOTMOD_ADDR", "")
	if r := runCLI(t, "", "ls", "--addr", addr); r.code != 1 || !strings.Contains(r.stderr, "no hotmod daemon at http://"+addr) {
		t.Errorf("--addr: %s", r)
	}
}

func TestUsageErrors(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"nope"}, `hotmod: unknown command "nope" for "hotmod"`},
		{[]string{"invoke", "greeter"}, "hotmod invoke: wrong number of arguments (1): usage: hotmod invoke MODULE"},
		{[]string{"invoke", "a", "b", "c", "d"}, "wrong number of arguments (4)"},
		{[]string{"ls", "extra"}, "hotmod ls: wrong number of arguments (1)"},
		{[]string{"ls", "--nope"}, "hotmod ls: unknown flag: --nope"},
		{[]string{"ls", "--addr", "ftp://host"}, `--addr "ftp://host" is not a daemon address`},
		{[]string{"build", "--transport", "carrier-pigeon"}, `unknown transport "carrier-pigeon": use native, wasm or process`},
		{[]string{"build", "--transport", "wasm", "-o", "out/pricing.so"}, `-o out/pricing.so: a wasm artifact is a .wasm file, not .so: name it NAME.wasm`},
		{[]string{"build", "--wait", "--wait-timeout", "0s"}, `--wait-timeout 0s: give a positive duration`},
		{[]string{"serve", "--log-format", "xml"}, `--log-format "xml": use text or json`},
		{[]string{"serve", "--log-level", "loud"}, `--log-level "loud": use debug, info, warn or error`},
		{[]string{"serve", "--goroutine-warn", "20", "--goroutine-limit", "10"}, `--goroutine-warn 20 is above --goroutine-limit 10`},
		{[]string{"serve", "--goroutine-every", "0s"}, `--goroutine-every 0s: give a positive duration`},
		{[]string{"serve", "--rollout", "blue-green"}, `rollout policy "blue-green": use immediate, canary or manual`},
		{[]string{"serve", "--rollout", "canary", "--canary-steps", "50,10"}, `canary steps [50 10]: each step is a percentage of calls, above the one before it`},
		{[]string{"serve", "--rollout-for", "pricing"}, `--rollout-for "pricing": use NAME=immediate, NAME=canary or NAME=manual`},
		{[]string{"pin", "greeter", "extra"}, "hotmod pin: wrong number of arguments (2)"},
		{[]string{"new", "Bad Name"}, `module name "Bad Name": use lower-case letters`},
		{[]string{"inspect"}, "hotmod inspect: wrong number of arguments (0)"},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			r := runCLI(t, "", c.args...)
			if r.code != 2 || !strings.Contains(r.stderr, c.want) || !strings.Contains(r.stderr, "--help' for usage") {
				t.Errorf("got %s\nwant exit 2 and %q with a pointer to --help", r, c.want)
			}
		})
	}
}

func TestInspectNotAPlugin(t *testing.T) {
	file := filepath.Join(t.TempDir(), "notes.so")
	if err := os.WriteFile(file, []byte("not a plugin"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := runCLI(t, "", "inspect", file)
	if r.code != 1 || !strings.Contains(r.stderr, "not a Go plugin") || !strings.Contains(r.stdout, "loadable  no") {
		t.Errorf("got %s", r)
	}
	r = runCLI(t, "", "inspect", filepath.Join(t.TempDir(), "missing.so"))
	if r.code != 1 || !strings.Contains(r.stderr, "no such file") {
		t.Errorf("missing file: %s", r)
	}
}

func TestWriteTable(t *testing.T) {
	since := time.Unix(0, 0)
	mods := []hotmod.ModuleInfo{
		{Transport: hotmod.Native, State: hotmod.StateFailed, Artifact: "/p/old.so", Since: since,
			Reason: "incompatible: built with go1.25.5"},
		{Name: "geo", Version: "1.0.0", Transport: hotmod.Native, State: hotmod.StateFailed, Artifact: "/p/geo.so", Since: since,
			Reason: "incompatible: geo@1.0.0: Init failed: panicked: boom\ngoroutine 1 [running]:"},
		{Name: "greeter", Version: "2.0.0", Transport: hotmod.Native, State: hotmod.StateActive, Artifact: "/p/greeter.so", InFlight: 3, Goroutines: 12, Route: "100 %"},
		{Name: "greeter", Version: "1.0.0", Transport: hotmod.Native, State: hotmod.StateDraining, Artifact: "/p/greeter-v1.so", InFlight: 1},
		{Name: "lab", Version: "0.1.0", Transport: hotmod.Builtin, State: hotmod.StateActive, Route: "100 %"},
		{Name: "textstats", Version: "1.0.0", Transport: hotmod.Process, State: hotmod.StateActive, Artifact: "/p/textstats.process.json", Route: "100 %"},
	}
	var buf bytes.Buffer
	if err := writeTable(&buf, mods); err != nil {
		t.Fatal(err)
	}
	// Two versions of greeter: the ROUTE column says which one plain calls reach.
	want := `MODULE     VERSION  TRANSPORT  STATE     ROUTE  IN-FLIGHT  GOROUTINES  ARTIFACT                REASON
-          -        native     Failed    -      -          -           old.so                  incompatible: built with go1.25.5
geo        1.0.0    native     Failed    -      -          0           geo.so                  incompatible: geo@1.0.0: Init failed: panicked: boom …
greeter    2.0.0    native     Active    100 %  3          12          greeter.so
greeter    1.0.0    native     Draining  -      1          0           greeter-v1.so
lab        0.1.0    builtin    Active    100 %  0          0           -
textstats  1.0.0    process    Active    100 %  0          -           textstats.process.json
`
	if buf.String() != want {
		t.Errorf("got\n%s\nwant\n%s", buf.String(), want)
	}

	buf.Reset()
	if err := writeTable(&buf, mods[2:]); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), "REASON") {
		t.Errorf("REASON column without a failure:\n%s", buf.String())
	}
	buf.Reset()
	if err := writeTable(&buf, mods[4:]); err != nil || strings.Contains(buf.String(), "ROUTE") {
		t.Errorf("ROUTE column with one version of each module:\n%s", buf.String())
	}
	buf.Reset()
	if err := writeTable(&buf, nil); err != nil || !strings.HasPrefix(buf.String(), "no modules loaded") {
		t.Errorf("empty list: %q, %v", buf.String(), err)
	}
}

func TestNew(t *testing.T) {
	t.Setenv("HOTMOD_SDK", "")
	root := t.TempDir()
	dir := filepath.Join(root, "pricing")
	r := runCLI(t, "", "new", "pricing", "--dir", dir)
	if r.code != 0 || !strings.Contains(r.stdout, "created "+dir+": module pricing@0.1.0") {
		t.Fatalf("hotmod new: %s", r)
	}
	sdkDir, err := findSDK("")
	if err != nil {
		t.Fatalf("findSDK: %v", err)
	}
	if mod, err := modulePath(filepath.Join(sdkDir, "go.mod")); err != nil || mod != sdkModule {
		t.Errorf("findSDK gave %s, which holds module %q (%v)", sdkDir, mod, err)
	}
	goMod, _ := os.ReadFile(filepath.Join(dir, "go.mod"))
	for _, want := range []string{"module example.com/pricing\n", "\ngo 1.22\n", "\nrequire github.com/hotmod/hotmod/sdk v0.0.0\n",
		"\nreplace github.com/hotmod/hotmod/sdk => " + sdkDir + "\n"} {
		if !strings.Contains(string(goMod), want) {
			t.Errorf("go.mod lacks %q:\n%s", want, goMod)
		}
	}
	mainGo, _ := os.ReadFile(filepath.Join(dir, "main.go"))
	if !strings.Contains(string(mainGo), `var Module = sdk.New("pricing", version)`) || !strings.Contains(string(mainGo), `const version = "0.1.0"`) {
		t.Errorf("main.go does not declare pricing@0.1.0:\n%s", mainGo)
	}
	if formatted, err := format.Source(mainGo); err != nil || !bytes.Equal(formatted, mainGo) {
		t.Errorf("main.go is not gofmt-clean (%v)", err)
	}

	if r := runCLI(t, "", "new", "pricing", "--dir", dir); r.code != 1 || !strings.Contains(r.stderr, dir+" already exists and is not empty") {
		t.Errorf("over a non-empty directory: %s", r)
	}
	empty := filepath.Join(root, "empty")
	if err := os.Mkdir(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	if r := runCLI(t, "", "new", "geo", "--dir", empty, "--sdk", sdkDir); r.code != 0 {
		t.Errorf("into an empty directory with --sdk: %s", r)
	}
	t.Setenv("HOTMOD_SDK", root)
	if r := runCLI(t, "", "new", "geo", "--dir", filepath.Join(root, "geo")); r.code != 1 ||
		!strings.Contains(r.stderr, root+" (HOTMOD_SDK) does not hold the hotmod SDK") {
		t.Errorf("HOTMOD_SDK without the SDK: %s", r)
	}
	if r := runCLI(t, "", "new", "geo", "--dir", filepath.Join(root, "geo"), "--sdk", "/nonexistent"); r.code != 1 ||
		!strings.Contains(r.stderr, "/nonexistent (--sdk) does not hold the hotmod SDK") {
		t.Errorf("--sdk without the SDK: %s", r)
	}
	if _, err := os.Stat(filepath.Join(root, "geo")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a failed hotmod new left %s behind (%v)", filepath.Join(root, "geo"), err)
	}
}

func TestVersion(t *testing.T) {
	r := runCLI(t, "", "version")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "hotmod ") || !strings.Contains(r.stdout, "sdk     "+sdk.Version) {
		t.Errorf("got %s", r)
	}
}

func TestCompletion(t *testing.T) {
	for _, shell := range []string{"bash", "zsh", "fish", "powershell"} {
		r := runCLI(t, "", "completion", shell)
		if r.code != 0 || !strings.Contains(r.stdout, "hotmod") || len(r.stdout) < 500 {
			t.Errorf("completion %s: %s", shell, r)
		}
	}
}

func TestServeAddressInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	dir := filepath.Join(t.TempDir(), "plugins")
	r := runCLI(t, "", "serve", "--dir", dir, "--listen", ln.Addr().String())
	if r.code != 1 || !strings.Contains(r.stderr, "cannot listen on "+ln.Addr().String()+": the address is in use") {
		t.Errorf("got %s", r)
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		t.Errorf("serve did not create %s (%v)", dir, err)
	}
}
