package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/hotmod/hotmod"
	"github.com/hotmod/hotmod/internal/plugintest"
)

// containRequest makes one raw HTTP request to the daemon (with its admin
// token) and returns the status and body.
func containRequest(t *testing.T, d *daemon, method, path, body string) (int, string) {
	t.Helper()
	return d.status(t, method, path, body)
}

const leakySrc = `package main

import (
	"context"

	"github.com/hotmod/hotmod/sdk"
)

var Module = sdk.New("leaky", "1.0.0").
	Handle("leak", func(context.Context, map[string]any) (map[string]any, error) {
		go func() { select {} }()
		return map[string]any{}, nil
	})

func main() {}
`

// TestServeCountsNativeGoroutines: a native module that leaks a goroutine
// per call is counted in ls --json and the table, warned about once, and
// quarantined past --goroutine-limit.
func TestServeCountsNativeGoroutines(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping (builds hotmod and a native module)")
	}
	dir := t.TempDir()
	mustRun(t, nil, "build", "-o", dir, plugintest.Source(t, leakySrc))
	d := startDaemon(t, dir, "--goroutine-warn", "5", "--goroutine-limit", "12", "--goroutine-every", "50ms")
	addr := []string{"HOTMOD_ADDR=" + d.addr}
	d.waitModules(t, "leaky active", func(mods []hotmod.ModuleInfo) bool { return find(mods, active("leaky", "1.0.0")) != nil })
	leak := func(n int) {
		t.Helper()
		for range n {
			if code, body := containRequest(t, d, "POST", "/v1/invoke/leaky/leak", "{}"); code != 200 {
				t.Fatalf("leak: %d %s", code, body)
			}
		}
	}
	leak(8)
	d.waitModules(t, "8 goroutines counted", func(mods []hotmod.ModuleInfo) bool {
		m := find(mods, active("leaky", "1.0.0"))
		return m != nil && m.Goroutines == 8
	})
	var list struct{ Modules []map[string]any }
	if err := json.Unmarshal([]byte(mustRun(t, addr, "ls", "--json").stdout), &list); err != nil {
		t.Fatal(err)
	}
	if len(list.Modules) != 1 || list.Modules[0]["goroutines"] != 8.0 {
		t.Errorf("ls --json: %v; want goroutines 8", list.Modules)
	}
	if r := mustRun(t, addr, "ls"); !strings.Contains(r.stdout, "GOROUTINES") || !strings.Contains(r.stdout, "Active  0          8 ") {
		t.Errorf("hotmod ls:\n%s", r.stdout)
	}
	if n := strings.Count(d.log(), "a module holds many goroutines"); n != 1 {
		t.Errorf("%d warnings at 8 goroutines (warn 5); want 1:\n%s", n, d.log())
	}

	leak(5)
	mods := d.waitModules(t, "leaky quarantined", func(mods []hotmod.ModuleInfo) bool {
		return len(mods) == 1 && mods[0].State == hotmod.StateFailed
	})
	if !strings.Contains(mods[0].Reason, "quarantined: it left 13 goroutines running, more than the limit of 12") {
		t.Errorf("reason: %q", mods[0].Reason)
	}
	if code, body := containRequest(t, d, "POST", "/v1/invoke/leaky/leak", "{}"); code == 200 || !strings.Contains(body, "not_active") {
		t.Errorf("a call to the quarantined version: %d %s", code, body)
	}
	d.stop(t, syscall.SIGTERM)
}

// setsidLaunch starts two sleepers in sessions of their own, one left a
// child of the module, one orphaned at once, then becomes the module ($0).
const setsidLaunch = `setsid sh -c 'echo $$ >> "$PIDS"; exec sleep 300' &
(setsid sh -c 'echo $$ >> "$PIDS"; exec sleep 301' &)
exec "$0"`

// TestServeContainsProcessChildren: what a process module's child starts
// in sessions of its own ends when the module is unloaded (its file
// removed) and when the daemon stops on SIGTERM.
func TestServeContainsProcessChildren(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping (builds hotmod and a process module)")
	}
	bin, dir := t.TempDir(), t.TempDir()
	mustRun(t, nil, "build", "--transport", "process", "-o", bin, plugintest.Example(t, "greeter"))
	pids := filepath.Join(bin, "pids")
	launch, err := json.Marshal(map[string]any{"command": "sh", "args": []string{"-c", setsidLaunch, filepath.Join(bin, "greeter.process")},
		"env": map[string]string{"PIDS": pids}})
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "greeter.process.json")
	publish := func() {
		tmp := filepath.Join(dir, ".greeter.tmp")
		if err := os.WriteFile(tmp, launch, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, file); err != nil {
			t.Fatal(err)
		}
	}
	publish()
	d := startDaemon(t, dir, "--allow-command", "sh")
	d.waitModules(t, "greeter active", func(mods []hotmod.ModuleInfo) bool { return find(mods, active("greeter", "1.0.0")) != nil })
	first := plugintest.PIDsIn(t, pids, 2)
	for _, p := range first {
		if !plugintest.Running(p) {
			t.Fatalf("sleeper %d is not running", p)
		}
	}

	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	d.waitModules(t, "greeter unloaded", func(mods []hotmod.ModuleInfo) bool { return len(mods) == 0 })
	plugintest.WaitEnded(t, "after the module was unloaded", first)

	publish()
	d.waitModules(t, "greeter active again", func(mods []hotmod.ModuleInfo) bool { return find(mods, active("greeter", "1.0.0")) != nil })
	second := plugintest.PIDsIn(t, pids, 4)[2:]
	d.stop(t, syscall.SIGTERM)
	plugintest.WaitEnded(t, "after the daemon stopped", second)
}
