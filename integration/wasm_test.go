package integration

import (
	"context"
	"errors"
	"testing"

	"github.com/hotmod/hotmod"
	"github.com/hotmod/hotmod/internal/plugintest"
)

// TestWasm runs greeter as a WebAssembly module in a watched directory: a
// swap under load loses no call, and a guest built by an older Go (1.24)
// answers like one built by the host's.
func TestWasm(t *testing.T) {
	if testing.Short() {
		t.Skip("builds real modules; skipped with -short")
	}
	v1 := plugintest.BuildWasm(t, plugintest.Example(t, "greeter"))
	v2 := plugintest.BuildWasm(t, plugintest.Example(t, "greeter", greeterV2...), "GOTOOLCHAIN=go1.24.13")

	t.Run("SwapUnderLoad", func(t *testing.T) { swapUnderLoad(t, "greeter.wasm", v1, v2) })

	t.Run("NoAmbientAuthority", func(t *testing.T) {
		dir := t.TempDir()
		place(t, plugintest.BuildWasm(t, plugintest.Source(t, reader)), dir, "reader.wasm")
		reg := watch(t, dir)
		var reason string
		waitFor(t, "reader.wasm Failed", func() bool {
			var ok bool
			reason, ok = failure(reg, "reader.wasm")
			return ok
		})
		t.Logf("refused: %s", reason)
		if _, err := reg.Invoke(context.Background(), "reader", "read", nil); !errors.Is(err, hotmod.ErrUnknownModule) {
			t.Fatalf("a refused module answered: %v", err)
		}
	})
}

// reader asks for the filesystem, which the test's host does not grant.
const reader = `package main

import (
	"context"
	"os"

	"github.com/hotmod/hotmod/sdk"
)

var Module = sdk.New("reader", "1.0.0").Needs(sdk.NeedFS).
	Handle("read", func(context.Context, map[string]any) (map[string]any, error) {
		b, err := os.ReadFile("/etc/hostname")
		return map[string]any{"data": string(b)}, err
	})

func main() { sdk.Main(Module) }
`
