//go:build linux

package process

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hotmod/hotmod/sdk"
)

var execCommand = exec.Command

// alive reports whether pid is a running process (a zombie is not).
func alive(pid int) bool {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// pid (comm) state ...: the state follows the last ')'.
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || (s[i+2] != 'Z' && s[i+2] != 'X')
}

// procChildren lists the live processes whose parent is this one, or whose
// process group is one of groups.
func procChildren(t testing.TB, groups ...int) []string {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	me := os.Getpid()
	var found []string
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(data)
		i := strings.LastIndexByte(s, ')')
		f := strings.Fields(s[i+1:]) // state ppid pgrp ...
		if len(f) < 3 || f[0] == "Z" || f[0] == "X" {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		pgrp, _ := strconv.Atoi(f[2])
		match := ppid == me
		for _, g := range groups {
			match = match || pgrp == g
		}
		if match && pid != me {
			found = append(found, s[:i+1])
		}
	}
	return found
}

// TestStartFailures: what cannot be started is refused with code
// incompatible and a reason, and leaves no process behind.
func TestStartFailures(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name string
		path string
		want []string
	}{
		{"exits at once", launch(t, "exit"), []string{"exited before its handshake: exit status 3", "the configuration file /etc/helper.conf is missing"}},
		{"shell exits", write("sh"+LaunchExt, `{"command": "sh", "args": ["-c", "echo boom >&2; exit 7"]}`, 0o644),
			[]string{"exit status 7", "stderr: boom"}},
		{"silent", launch(t, "silent"), []string{"no handshake within 1s", "wrote nothing on stdout"}},
		{"babbles", launch(t, "babble"), []string{`its first line on stdout is "hello world"`, "built with sdk.Main"}},
		{"newer protocol", launch(t, "version3"), []string{"picked process protocol version 3; this host speaks 1-2"}},
		{"refuses", launch(t, "refuse"), []string{"it refused to start: this module needs a GPU"}},
		{"not a program", write("text"+ExecutableExt, "just text\n", 0o755), []string{`not an executable (it starts "just tex")`}},
		{"missing", filepath.Join(dir, "gone"+ExecutableExt), []string{"no such file"}},
		{"unknown key", write("k"+LaunchExt, `{"command": "x", "arg": []}`, 0o644), []string{`unknown field "arg"`}},
		{"no command", write("c"+LaunchExt, `{"args": []}`, 0o644), []string{`has no "command"`}},
		{"bad protocol", write("p"+LaunchExt, `{"command": "sh", "protocol": "xml"}`, 0o644), []string{`"protocol" is "xml"`}},
		{"not in PATH", write("n"+LaunchExt, `{"command": "no-such-interpreter-here"}`, 0o644), []string{`"no-such-interpreter-here" is not in the PATH`}},
		{"not a script", write("r"+LaunchExt, `{"command": "./nothing.sh"}`, 0o644), []string{"cannot start", "nothing.sh"}},
		{"env sets the protocol", write("e"+LaunchExt, `{"command": "sh", "env": {"HOTMOD_PROCESS_VERSIONS": "9"}}`, 0o644), []string{"not allowed"}},
		{"two values", write("v"+LaunchExt, `{"command": "sh"} {}`, 0o644), []string{"more than one JSON value"}},
		{"no execute bit", write("x"+ExecutableExt, "#!/bin/sh\nexit 0\n", 0o644), []string{"not executable (mode -rw-r--r--)", "chmod +x"}},
		{"command not allowed", write("a"+LaunchExt, `{"command": "env", "args": ["sh"]}`, 0o644),
			[]string{`command "env"`, "outside the launch file's directory", "allowed: ", "--allow-command env"}},
		{"command outside by a relative path", write("o"+LaunchExt, `{"command": "../x.sh"}`, 0o644), []string{`command "../x.sh"`, "outside the launch file's directory"}},
	}
	// Only "silent" waits for the handshake timeout; the others get time
	// to write their first line on a loaded machine.
	cfg, _ := testConfig(t)
	cfg.StartTimeout = time.Second
	quick := NewLoader(cfg)
	cfg.StartTimeout = 30 * time.Second
	l := NewLoader(cfg)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := l
			if tt.name == "silent" {
				l = quick
			}
			inst, err := l.Load(context.Background(), tt.path)
			if err == nil {
				inst.Close()
				t.Fatal("Load succeeded")
			}
			wantCode(t, err, sdk.CodeIncompatible, append([]string{"process module " + tt.path}, tt.want...)...)
		})
	}
	if left := procChildren(t); len(left) > 0 {
		t.Errorf("processes left behind: %q", left)
	}
}

// TestLoadCancelled: a Load whose context ends during the handshake stops.
func TestLoadCancelled(t *testing.T) {
	cfg, _ := testConfig(t)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := NewLoader(cfg).Load(ctx, launch(t, "silent"))
	wantCode(t, err, sdk.CodeIncompatible, "loading was cancelled")
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Load returned after %v", d)
	}
	if left := procChildren(t); len(left) > 0 {
		t.Errorf("processes left behind: %q", left)
	}
}

// TestNoOrphans: after Close, no child (nor anything it started in its
// process group) is left, and nothing is left in Config.Dir.
func TestNoOrphans(t *testing.T) {
	cfg, _ := testConfig(t)
	cfg.PoolSize = 2
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// A shell that leaves a grandchild (sleep) running, then becomes the
	// module.
	lf, _ := json.Marshal(map[string]any{
		"command": "sh", "args": []string{"-c", `sleep 300 & exec "$0" -test.run='^$'`, exe},
		"env": map[string]string{testChildEnv: "helper"},
	})
	path := filepath.Join(t.TempDir(), "sh"+LaunchExt)
	if err := os.WriteFile(path, lf, 0o644); err != nil {
		t.Fatal(err)
	}
	inst, err := NewLoader(cfg).Load(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	pids := inst.PIDs()
	if len(procChildren(t, pids...)) < 4 {
		t.Fatalf("want 2 children and 2 grandchildren, have %q", procChildren(t, pids...))
	}
	// Crash one: its group goes with it.
	if _, err := inst.Invoke(context.Background(), "crash", nil); err == nil {
		t.Fatal("crash did not crash")
	}
	waitFor(t, 20*time.Second, "the pool was not refilled", func() bool { return len(inst.PIDs()) == 2 })
	pids = append(pids, inst.PIDs()...)
	if err := inst.Close(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "processes are left after Close", func() bool { return len(procChildren(t, pids...)) == 0 })

	// The executables' private copies: none on disk while they run (on
	// Linux), none after Close.
	bin := buildHelperExecutable(t)
	inst = load(t, cfg, bin)
	if entries, _ := os.ReadDir(cfg.Dir); len(entries) > 0 && runtime.GOOS == "linux" {
		t.Errorf("files in %s while the module runs: %v", cfg.Dir, entries)
	}
	if _, err := inst.Invoke(context.Background(), "pid", nil); err != nil {
		t.Fatal(err)
	}
	pids = inst.PIDs()
	inst.Close()
	waitFor(t, 5*time.Second, "processes are left after Close", func() bool { return len(procChildren(t, pids...)) == 0 })
	if entries, _ := os.ReadDir(cfg.Dir); len(entries) > 0 {
		t.Errorf("files left in %s: %v", cfg.Dir, entries)
	}
}

// buildHelperExecutable makes NAME.process from the test binary: a script
// that starts it in helper mode.
func buildHelperExecutable(t testing.TB) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "helper"+ExecutableExt)
	script := "#!/bin/sh\n" + testChildEnv + "=helper exec '" + exe + "' -test.run='^$'\n"
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestExecutableIsPrivate: the artifact can be replaced or removed while
// its version runs; restarts start the bytes that were loaded.
func TestExecutableIsPrivate(t *testing.T) {
	cfg, _ := testConfig(t)
	bin := buildHelperExecutable(t)
	inst := load(t, cfg, bin)
	sum := inst.Sum()
	if err := os.WriteFile(bin, []byte("#!/bin/sh\nexit 9\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	pid := onlyPID(t, inst)
	if err := os.Remove(bin); err != nil {
		t.Fatal(err)
	}
	syscall.Kill(pid, syscall.SIGKILL)
	waitFor(t, 20*time.Second, "the child was not replaced", func() bool {
		p := inst.PIDs()
		return len(p) == 1 && p[0] != pid
	})
	if _, err := inst.Invoke(context.Background(), "pid", nil); err != nil {
		t.Fatal(err)
	}
	if inst.Sum() != sum {
		t.Errorf("the sum changed")
	}
}

// CheckCopy sees the sha256 of the private copy before any child starts
// from it, and its error refuses the load: the program never runs.
func TestCheckCopy(t *testing.T) {
	dir := t.TempDir()
	mark := filepath.Join(dir, "ran")
	script := []byte("#!/bin/sh\ntouch " + mark + "\n")
	path := filepath.Join(dir, "x.process")
	if err := os.WriteFile(path, script, 0o755); err != nil {
		t.Fatal(err)
	}
	var seen string
	l := NewLoader(Config{Dir: t.TempDir(), CheckCopy: func(_ context.Context, artifact, sum string) error {
		seen = sum
		return fmt.Errorf("not the bytes verified")
	}})
	_, err := l.Load(context.Background(), path)
	if err == nil || !strings.Contains(err.Error(), "not the bytes verified") {
		t.Fatalf("Load: %v", err)
	}
	if want := sha256.Sum256(script); seen != hex.EncodeToString(want[:]) {
		t.Errorf("CheckCopy got sum %s, want the sha256 of the file", seen)
	}
	if _, err := os.Stat(mark); err == nil {
		t.Error("the program ran although CheckCopy refused it")
	}
}
