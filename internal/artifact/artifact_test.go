package artifact

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hotmod/hotmod/sdk"
)

func TestKindOf(t *testing.T) {
	dir := t.TempDir()
	wasmBytes := filepath.Join(dir, "module.bin")
	if err := os.WriteFile(wasmBytes, []byte("\x00asm\x01\x00\x00\x00"), 0o644); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]Kind{
		"a/pricing.so":           Native,
		"a/pricing.wasm":         Wasm,
		"a/pricing.process":      Process,
		"a/pricing.process.json": Process,
		wasmBytes:                Wasm,   // by its bytes
		"a/missing.bin":          Native, // the native reader says what it is not
	} {
		if got := KindOf(path); got != want {
			t.Errorf("KindOf(%s) = %s, want %s", path, got, want)
		}
	}
}

// Every kind's reader refuses what is not an artifact of its kind with the
// loader's own words, as an *sdk.Error with code incompatible.
func TestReadRefusals(t *testing.T) {
	dir := t.TempDir()
	for name, want := range map[string]string{
		"notes.so":           "not a Go plugin",
		"notes.wasm":         "notes.wasm",
		"notes.process":      "not an executable",
		"notes.process.json": `the launch file is not {"command"`,
	} {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte("just some notes"), 0o755); err != nil {
			t.Fatal(err)
		}
		_, err := Read(context.Background(), path, Config{})
		if !errors.Is(err, sdk.ErrIncompatible) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v; want incompatible saying %q", name, err, want)
		}
	}
}
