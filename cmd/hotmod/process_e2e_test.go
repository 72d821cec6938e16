package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/hotmod/hotmod"
	"github.com/hotmod/hotmod/internal/plugintest"
)

// TestServeWasmAndProcessModules serves modules of the sandboxed transports
// with the real binary: greeter built by Go 1.22 with `hotmod build
// --transport process`, pricing built by Go 1.24 with `--transport wasm`,
// checkout (Go 1.22, process) calling pricing through the daemon, and the
// Python example, each called with `hotmod invoke`.
func TestServeWasmAndProcessModules(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping (builds hotmod and a process module)")
	}
	if _, err := exec.LookPath("python3"); err != nil {
		t.Fatal("python3 is needed for the Python example module")
	}
	dir := t.TempDir()
	// Both built by older Go toolchains than the host's: that is what these
	// transports are for.
	r := mustRun(t, []string{"GOTOOLCHAIN=go1.22.12"}, "build", "--transport", "process", "-o", dir, plugintest.Example(t, "greeter"))
	if got := strings.TrimSpace(r.stdout); got != filepath.Join(dir, "greeter.process") {
		t.Fatalf("hotmod build --transport process printed %q", got)
	}
	if r := mustRun(t, nil, "inspect", filepath.Join(dir, "greeter.process")); !strings.Contains(r.stdout, "greeter@1.0.0") || !strings.Contains(r.stdout, "go1.22.12") {
		t.Errorf("hotmod inspect on a process module:\n%s", r.stdout)
	}
	r = mustRun(t, []string{"GOTOOLCHAIN=go1.24.13"}, "build", "--transport", "wasm", "-o", dir, plugintest.Example(t, "pricing"))
	if got := strings.TrimSpace(r.stdout); got != filepath.Join(dir, "pricing.wasm") {
		t.Fatalf("hotmod build --transport wasm printed %q", got)
	}
	if r := mustRun(t, nil, "inspect", filepath.Join(dir, "pricing.wasm")); !strings.Contains(r.stdout, "pricing@1.1.0") || !strings.Contains(r.stdout, "go1.24.13") {
		t.Errorf("hotmod inspect on a wasm module:\n%s", r.stdout)
	}
	// checkout requires pricing; as a Go 1.22 process it calls the Go 1.24
	// wasm pricing through the daemon.
	mustRun(t, []string{"GOTOOLCHAIN=go1.22.12"}, "build", "--transport", "process", "-o", dir, plugintest.Example(t, "checkout"))
	py := filepath.Join(plugintest.Repo(t), "examples", "python")
	for _, f := range []string{"textstats.py", "textstats.process.json"} {
		data, err := os.ReadFile(filepath.Join(py, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	d := startDaemon(t, dir, "--allow-command", "python3") // the launch file starts python3, as `make serve` allows
	addr := []string{"HOTMOD_ADDR=" + d.addr}
	d.waitModules(t, "greeter and textstats active", func(mods []hotmod.ModuleInfo) bool {
		return find(mods, active("greeter", "1.0.0")) != nil && find(mods, active("textstats", "1.0.0")) != nil &&
			find(mods, active("pricing", "1.1.0")) != nil && find(mods, active("checkout", "1.0.0")) != nil
	})
	if r := mustRun(t, addr, "invoke", "greeter", "hello", `{"name":"Ada"}`); !strings.Contains(r.stdout, `"hello, Ada"`) {
		t.Errorf("greeter over the process transport: %s", r)
	}
	r = mustRun(t, addr, "invoke", "textstats", "count_words", `{"text":"to be or not to be"}`)
	if !strings.Contains(r.stdout, `"words": 6`) {
		t.Errorf("the Python module: %s", r)
	}
	if r := hotmodRun(t, addr, "", "invoke", "textstats", "count_words", `{"text":7}`); r.code != 1 || !strings.HasPrefix(r.stderr, "bad_params:") {
		t.Errorf("bad params to the Python module: %s", r)
	}
	r = mustRun(t, addr, "invoke", "pricing", "quote", `{"sku":"tea","qty":3,"coupon":"TENOFF"}`)
	if !strings.Contains(r.stdout, `"total_cents": 1215`) {
		t.Errorf("pricing over the wasm transport: %s", r)
	}
	if r := hotmodRun(t, addr, "", "invoke", "pricing", "quote", `{"sku":"tea","qty":0}`); r.code != 1 || !strings.HasPrefix(r.stderr, "bad_params:") {
		t.Errorf("bad params through the wasm sandbox: %s", r)
	}
	r = mustRun(t, addr, "invoke", "checkout", "total", `{"lines":[{"sku":"tea","qty":2},{"sku":"cake","qty":1}],"coupon":"TENOFF"}`)
	if !strings.Contains(r.stdout, `"total_cents": 1278`) {
		t.Errorf("checkout (process) calling pricing (wasm) through the daemon: %s", r)
	}
	ls := mustRun(t, addr, "ls")
	if !strings.Contains(ls.stdout, "process") || !strings.Contains(ls.stdout, "wasm") {
		t.Errorf("hotmod ls does not show both transports:\n%s", ls.stdout)
	}
	d.stop(t, syscall.SIGTERM)
}
