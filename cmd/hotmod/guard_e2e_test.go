package main

import (
	"io"
	"strings"
	"syscall"
	"testing"

	"github.com/hotmod/hotmod"
	"github.com/hotmod/hotmod/internal/plugintest"
)

// TestServeGuards shows every guard of `hotmod serve` on examples/faulty:
// three failures of a method open its circuit while its other methods keep
// answering, a call past the deadline times out, and
// the daemon stays healthy.
func TestServeGuards(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping (builds hotmod and a native module)")
	}
	dir := t.TempDir()
	mustRun(t, nil, "build", "-o", dir, plugintest.Example(t, "faulty"))
	d := startDaemon(t, dir, "--timeout", "300ms")
	addr := []string{"HOTMOD_ADDR=" + d.addr}
	d.waitModules(t, "faulty active", func(mods []hotmod.ModuleInfo) bool {
		return find(mods, func(m hotmod.ModuleInfo) bool { return m.Name == "faulty" && m.State == hotmod.StateActive }) != nil
	})

	if r := hotmodRun(t, addr, "", "invoke", "faulty", "sleep", `{"ms":2000}`); r.code != 1 || !strings.HasPrefix(r.stderr, "timeout:") {
		t.Errorf("sleep past the deadline: %s", r)
	}
	// A success resets the breaker's count of consecutive failures (the
	// timeout above was one).
	mustRun(t, addr, "invoke", "faulty", "ok")
	for i := 1; i <= 3; i++ {
		if r := hotmodRun(t, addr, "", "invoke", "faulty", "fail"); r.code != 1 || strings.HasPrefix(r.stderr, "circuit_open") {
			t.Fatalf("failure %d: %s", i, r)
		}
	}
	if r := hotmodRun(t, addr, "", "invoke", "faulty", "fail"); r.code != 1 || !strings.HasPrefix(r.stderr, "circuit_open:") {
		t.Errorf("the fourth call must answer circuit_open: %s", r)
	}
	// The circuit is per method: the version's healthy methods keep answering.
	if r := hotmodRun(t, addr, "", "invoke", "faulty", "sleep", `{"ms":1}`); r.code != 0 || !strings.Contains(r.stdout, `"slept_ms"`) {
		t.Errorf("sleep after the circuit of fail opened: %s", r)
	}
	mustRun(t, addr, "invoke", "faulty", "ok")
	resp, err := d.request(t, "GET", "/healthz", "")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "ok") {
		t.Errorf("healthz after the faults: %d %s", resp.StatusCode, body)
	}
	if r := mustRun(t, addr, "ls", "--json"); !strings.Contains(r.stdout, `"breaker": "open"`) ||
		!strings.Contains(r.stdout, `"fail": {`) || strings.Contains(r.stdout, `"sleep": {`) {
		t.Errorf("hotmod ls --json does not show the open circuit:\n%s", r.stdout)
	}
	d.stop(t, syscall.SIGTERM)
}
