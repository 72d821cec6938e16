package wasm_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hotmod/hotmod/internal/wasm"
)

// LoadBytes loads the bytes it is given, not the file at path: what the
// caller checked (a signature, say) is what runs.
func TestLoadBytes(t *testing.T) {
	l, _ := newLoader(t, wasm.Config{})
	ctx := context.Background()
	data, err := os.ReadFile(example(t, "greeter"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "greeter.wasm")
	if err := os.WriteFile(path, []byte("swapped after the check"), 0o644); err != nil {
		t.Fatal(err)
	}
	i, err := l.LoadBytes(ctx, path, data)
	if err != nil {
		t.Fatal(err)
	}
	defer i.Close()
	if m := i.Manifest(); m.Name != "greeter" {
		t.Errorf("LoadBytes loaded %s@%s, want greeter", m.Name, m.Version)
	}
	if _, err := l.Load(ctx, path); err == nil || !strings.Contains(err.Error(), "is not a WebAssembly module") {
		t.Errorf("Load reads the file itself: %v", err)
	}
}
