package integration

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hotmod/hotmod"
	"github.com/hotmod/hotmod/internal/plugintest"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// Edits that turn examples/greeter 1.0.0 into a 2.0.0 that answers "hi".
var greeterV2 = []string{`const version = "1.0.0"`, `const version = "2.0.0"`, `"hello, "`, `"hi, "`}

const panicky = `package main

import (
	"context"

	"github.com/hotmod/hotmod/sdk"
)

var Module = sdk.New("panicky", "1.0.0").
	Handle("boom", func(context.Context, map[string]any) (map[string]any, error) { panic("boom") }).
	Handle("ok", func(context.Context, map[string]any) (map[string]any, error) { return map[string]any{"ok": true}, nil })

func main() {}
`

const closer = `package main

import (
	"context"
	"sync/atomic"

	"github.com/hotmod/hotmod/sdk"
)

var closes atomic.Int64

var Module = sdk.New("closer", "1.0.0").
	Handle("closes", func(context.Context, map[string]any) (map[string]any, error) {
		return map[string]any{"closes": closes.Load()}, nil
	}).
	OnClose(func() error { closes.Add(1); return nil })

func main() {}
`

const noSymbol = `package main

func Hello() string { return "no Module here" }

func main() {}
`

// place publishes src in dir under name the safe way: write a hidden
// temporary file, then rename it into place.
func place(t testing.TB, src, dir, name string) {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(src)
	if err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(dir, "."+name+".tmp")
	if err := os.WriteFile(tmp, data, fi.Mode().Perm()); err != nil { // an executable stays one
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		t.Fatal(err)
	}
}

func watch(t testing.TB, dir string, opts ...hotmod.Option) *hotmod.Registry {
	t.Helper()
	opts = append([]hotmod.Option{hotmod.WithLogger(quiet), hotmod.WithCacheDir(t.TempDir()), hotmod.WithSettle(5 * time.Millisecond)}, opts...)
	reg := hotmod.New(opts...)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() {
		cancel()
		_ = reg.Close(context.Background())
	})
	if err := reg.Watch(ctx, dir); err != nil {
		t.Fatal(err)
	}
	return reg
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func hello(reg *hotmod.Registry, ref string) (string, error) {
	out, err := reg.Invoke(context.Background(), ref, "hello", map[string]any{"name": "Ada"})
	if err != nil {
		return "", err
	}
	msg, _ := out["message"].(string)
	return msg, nil
}

// state returns the state and reason of what the registry holds for artifact
// file name in its Failed entries, or of module ref otherwise.
func failure(reg *hotmod.Registry, file string) (string, bool) {
	for _, m := range reg.Modules() {
		if m.State == hotmod.StateFailed && filepath.Base(m.Artifact) == file {
			return m.Reason, true
		}
	}
	return "", false
}

func active(reg *hotmod.Registry) []string {
	var out []string
	for _, m := range reg.Modules() {
		if m.State == hotmod.StateActive {
			out = append(out, m.Ref())
		}
	}
	return out
}

// TestNative builds the plugins once and runs every native scenario on them.
func TestNative(t *testing.T) {
	if testing.Short() {
		t.Skip("builds real plugins; skipped with -short")
	}
	v1 := plugintest.Build(t, plugintest.Example(t, "greeter"))
	v2 := plugintest.Build(t, plugintest.Example(t, "greeter", greeterV2...))

	t.Run("SwapUnderLoad", func(t *testing.T) { testSwapUnderLoad(t, v1, v2) })
	t.Run("Refusals", func(t *testing.T) { testRefusals(t, v1, v2) })
	t.Run("RefusedCopyDoesNotCloseTheLiveModule", func(t *testing.T) {
		// A second file with the same bytes is refused (same name and
		// version); in this process it is the very module that serves, so
		// refusing it must not run that module's OnClose.
		dir := t.TempDir()
		so := plugintest.Build(t, plugintest.Source(t, closer))
		place(t, so, dir, "closer.so")
		reg := watch(t, dir)
		place(t, so, dir, "copy.so")
		waitFor(t, "copy.so Failed", func() bool { _, ok := failure(reg, "copy.so"); return ok })
		out, err := reg.Invoke(context.Background(), "closer", "closes", nil)
		if err != nil || out["closes"] != int64(0) {
			t.Fatalf("closes = %v, %v; the live module was closed by the refusal of its copy", out, err)
		}
	})
	t.Run("Panic", func(t *testing.T) {
		dir := t.TempDir()
		place(t, plugintest.Build(t, plugintest.Source(t, panicky)), dir, "panicky.so")
		reg := watch(t, dir)
		_, err := reg.Invoke(context.Background(), "panicky", "boom", nil)
		if !errors.Is(err, hotmod.ErrPanic) || !strings.Contains(err.Error(), "boom") {
			t.Fatalf("boom: %v; want a panic error", err)
		}
		out, err := reg.Invoke(context.Background(), "panicky", "ok", nil)
		if err != nil || out["ok"] != true {
			t.Fatalf("the call after a panic: %v, %v", out, err)
		}
	})
}

// testSwapUnderLoad swaps greeter v1 → v2 → v1 (a rollback to bytes loaded
// before) → v2 in a watched directory under load, then deletes the file.
func testSwapUnderLoad(t *testing.T, v1, v2 string) {
	reg, dir := swapUnderLoad(t, "greeter.so", v1, v2)

	// Deleting the artifact unloads the module.
	if err := os.Remove(filepath.Join(dir, "greeter.so")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "greeter unloaded", func() bool { return len(reg.Modules()) == 0 })
	if _, err := hello(reg, "greeter"); !errors.Is(err, hotmod.ErrUnknownModule) {
		t.Fatalf("after delete: %v", err)
	}
}

// testRefusals replaces a serving greeter v1 with artifacts the host must
// refuse: each is Failed with a reason, and v1 keeps answering.
func testRefusals(t *testing.T, v1, v2 string) {
	data, err := os.ReadFile(v2)
	if err != nil {
		t.Fatal(err)
	}
	scratch := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(scratch, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	random := make([]byte, 64<<10)
	for i := range random {
		random[i] = byte(i*7919 + i>>3)
	}
	cases := []struct {
		name   string
		build  func() string
		reason string
	}{
		{"go1.25.5", func() string {
			return plugintest.Build(t, plugintest.Example(t, "greeter", greeterV2...), "GOTOOLCHAIN=go1.25.5")
		}, "go1.25.5"},
		{"race", func() string {
			return plugintest.Build(t, plugintest.Example(t, "greeter", greeterV2...), "GOFLAGS=-race")
		}, "-race"},
		{"truncated", func() string { return write("truncated.so", data[:len(data)/2]) }, ""},
		{"random bytes", func() string { return write("random.so", random) }, ""},
		{"no Module symbol", func() string { return plugintest.Build(t, plugintest.Source(t, noSymbol)) }, "Module"},
	}

	dir := t.TempDir()
	place(t, v1, dir, "greeter.so")
	reg := watch(t, dir)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			place(t, tc.build(), dir, "greeter.so")
			var reason string
			waitFor(t, "greeter.so Failed", func() bool {
				var ok bool
				reason, ok = failure(reg, "greeter.so")
				return ok
			})
			t.Logf("refused: %s", reason)
			if !strings.Contains(reason, tc.reason) {
				t.Errorf("reason %q does not mention %q", reason, tc.reason)
			}
			if msg, err := hello(reg, "greeter"); err != nil || msg != "hello, Ada" {
				t.Fatalf("v1 must keep serving: %q, %v", msg, err)
			}
			// Put v1 back: the failure clears, v1 still serves.
			place(t, v1, dir, "greeter.so")
			waitFor(t, "failure cleared", func() bool { _, failed := failure(reg, "greeter.so"); return !failed })
		})
	}

	t.Run("same name and version from another file", func(t *testing.T) {
		place(t, v1, dir, "copy.so")
		var reason string
		waitFor(t, "copy.so Failed", func() bool {
			var ok bool
			reason, ok = failure(reg, "copy.so")
			return ok
		})
		if !strings.Contains(reason, "greeter@1.0.0 is already loaded from") {
			t.Errorf("reason: %q", reason)
		}
		if msg, err := hello(reg, "greeter"); err != nil || msg != "hello, Ada" {
			t.Fatalf("v1 must keep serving: %q, %v", msg, err)
		}
	})
}
