package build_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hotmod/hotmod/internal/build"
	"github.com/hotmod/hotmod/internal/plugintest"
)

func TestWasm(t *testing.T) {
	dir := plugintest.Example(t, "greeter")
	out := filepath.Join(t.TempDir(), "out")
	path, err := build.Wasm(context.Background(), build.Options{Dir: dir, Out: out, Name: "greeter-1", Env: []string{"GOWORK=off"}})
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(out, "greeter-1.wasm"); path != want {
		t.Errorf("artifact at %s, want %s", path, want)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(data, []byte("\x00asm\x01\x00\x00\x00")) {
		t.Errorf("not a wasm module: % x", data[:8])
	}
	for _, export := range []string{"_initialize", "hotmod_abi", "hotmod_call"} {
		if !bytes.Contains(data, []byte(export)) {
			t.Errorf("the module does not name %s", export)
		}
	}
	entries, _ := os.ReadDir(out)
	if len(entries) != 1 {
		t.Errorf("%s holds %d entries, want only the artifact", out, len(entries))
	}
}

// Go before 1.24 cannot build a wasm module; the error says what to do.
func TestWasmOldGo(t *testing.T) {
	if testing.Short() {
		t.Skip("fetches go1.22.12 when it is not there")
	}
	dir := plugintest.Example(t, "greeter")
	_, err := build.Wasm(context.Background(), build.Options{Dir: dir, Out: t.TempDir(), Env: []string{"GOWORK=off", "GOTOOLCHAIN=go1.22.12"}})
	if err == nil || !strings.Contains(err.Error(), "wasm modules need Go 1.24 or newer") {
		t.Fatalf("building with go1.22.12: %v", err)
	}
}
