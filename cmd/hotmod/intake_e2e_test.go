package main

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hotmod/hotmod/internal/plugintest"
)

// TestServeOneDaemonPerDirectory: a second `hotmod serve` on a directory
// that one already serves exits with status 1 before listening, naming the
// process that holds it; once the first has stopped, another may start.
func TestServeOneDaemonPerDirectory(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the hotmod binary")
	}
	dir := filepath.Join(t.TempDir(), "plugins")
	first := startDaemon(t, dir)
	second := hotmodRun(t, nil, "", "serve", "--dir", dir, "--listen", "127.0.0.1:0", "--cache-dir", filepath.Join(t.TempDir(), "cache"))
	pid := fmt.Sprintf("pid %d", first.cmd.Process.Pid)
	if second.code != 1 || !strings.Contains(second.stderr, "another hotmod serve is serving "+dir) || !strings.Contains(second.stderr, pid) {
		t.Errorf("a second daemon on %s: want exit 1 naming %s; got %s", dir, pid, second)
	}
	if strings.Contains(second.stderr, "listening") {
		t.Errorf("the second daemon listened before giving up:\n%s", second.stderr)
	}

	// The lock is in the state directory: a daemon whose --state-dir
	// another daemon holds is refused too.
	stateDir := filepath.Join(t.TempDir(), "state")
	other := startDaemon(t, filepath.Join(t.TempDir(), "other"), "--state-dir", stateDir, "--allow-command", "sh")
	if !other.logged("launch files in the module directory may start these programs", 10*time.Second) {
		t.Errorf("an allow-list was given without a warning:\n%s", other.log())
	}
	if r := hotmodRun(t, nil, "", "serve", "--dir", dir, "--listen", "127.0.0.1:0", "--state-dir", stateDir); r.code != 1 ||
		!strings.Contains(r.stderr, fmt.Sprintf("pid %d", other.cmd.Process.Pid)) {
		t.Errorf("a daemon whose --state-dir is locked: %s", r)
	}

	first.stop(t, syscall.SIGTERM)
	startDaemon(t, dir)
}

// TestServeIntakeFlags: bad values for the intake flags are usage errors.
func TestServeIntakeFlags(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the hotmod binary")
	}
	for _, tc := range []struct {
		flags []string
		want  string
	}{
		{[]string{"--allow-command", "no-such-program-here"}, `--allow-command: "no-such-program-here" is not in the PATH`},
		{[]string{"--allow-command", "bin/sh"}, "is a relative path"},
		{[]string{"--max-artifact-size", "lots"}, `--max-artifact-size "lots": use a positive number of bytes`},
	} {
		args := append([]string{"serve", "--dir", filepath.Join(t.TempDir(), "plugins"), "--listen", "127.0.0.1:0"}, tc.flags...)
		if r := hotmodRun(t, nil, "", args...); r.code != 2 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("serve %s: want exit 2 saying %q; got %s", strings.Join(tc.flags, " "), tc.want, r)
		}
	}
}

// TestInspectAllowCommand: inspect judges a launch file as serve would,
// allow-list included.
func TestInspectAllowCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the hotmod binary")
	}
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 is not installed")
	}
	launch := filepath.Join(plugintest.Repo(t), "examples", "python", "textstats.process.json")
	if r := hotmodRun(t, nil, "", "inspect", launch); r.code != 1 || !strings.Contains(r.stderr, "--allow-command python3") {
		t.Errorf("inspect without an allow-list: %s", r)
	}
	if r := hotmodRun(t, nil, "", "inspect", "--allow-command", "python3", launch); r.code != 0 || !strings.Contains(r.stdout, "textstats@1.0.0") {
		t.Errorf("inspect --allow-command python3: %s", r)
	}
}
