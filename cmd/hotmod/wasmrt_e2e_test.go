package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hotmod/hotmod"
	"github.com/hotmod/hotmod/internal/plugintest"
)

// TestServeWasmTier: --wasm-tier puts a module on the trusted tier, which
// the daemon says at start (a warning) and ls --json shows; bad values of
// the wasm flags are usage errors.
func TestServeWasmTier(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the hotmod binary")
	}
	for _, tc := range []struct {
		flags []string
		want  string
	}{
		{[]string{"--wasm-tier", "fast"}, `--wasm-tier: wasm: tier "fast": unknown tier "fast"`},
		{[]string{"--wasm-tier", "Faulty=trusted"}, `"Faulty" is not a module name`},
		{[]string{"--wasm-cache-limit", "lots"}, `--wasm-cache-limit "lots": use a positive number of bytes`},
	} {
		args := append([]string{"serve", "--dir", filepath.Join(t.TempDir(), "plugins"), "--listen", "127.0.0.1:0"}, tc.flags...)
		if r := hotmodRun(t, nil, "", args...); r.code != 2 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("serve %s: want exit 2 saying %q; got %s", strings.Join(tc.flags, " "), tc.want, r)
		}
	}

	dir := t.TempDir()
	data, err := os.ReadFile(plugintest.BuildWasm(t, plugintest.Example(t, "faulty")))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "faulty.wasm"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, dir, "--wasm-tier", "faulty=trusted", "--wasm-cache-limit", "512MiB")
	if !d.logged("WebAssembly modules on the trusted tier", 10*time.Second) {
		t.Error("no warning that a module is on the trusted tier")
	}
	d.waitModules(t, "faulty active", func(m []hotmod.ModuleInfo) bool { return find(m, active("faulty", "1.0.0")) != nil })
	r := mustRun(t, nil, "ls", "--json", "--addr", "http://"+d.addr)
	var list struct{ Modules []hotmod.ModuleInfo }
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil {
		t.Fatalf("hotmod ls --json: %v\n%s", err, r.stdout)
	}
	if len(list.Modules) != 1 || list.Modules[0].Runtime == nil || list.Modules[0].Runtime.Tier != "trusted" {
		t.Errorf("hotmod ls --json: %s", r.stdout)
	}
	if out := mustRun(t, nil, "invoke", "--addr", "http://"+d.addr, "faulty", "ok").stdout; !strings.Contains(out, `"ok": true`) && !strings.Contains(out, `"ok":true`) {
		t.Errorf("invoke faulty ok: %s", out)
	}
}
