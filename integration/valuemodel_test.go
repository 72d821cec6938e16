package integration

import (
	"context"
	"errors"
	"reflect"
	"testing"

	"github.com/hotmod/hotmod"
	"github.com/hotmod/hotmod/internal/plugintest"
	"github.com/hotmod/hotmod/internal/plugintest/shapes"
	"github.com/hotmod/hotmod/sdk"
)

// TestOutsideValueModelEveryTransport: a dynamic method returning an []int
// or a time.Time is the same module_error, word for word, through the
// library on every transport — builtin, native, wasm and process — and the
// same values converted with sdk.ToParams arrive alike everywhere.
func TestOutsideValueModelEveryTransport(t *testing.T) {
	if testing.Short() {
		t.Skip("builds real modules; skipped with -short")
	}
	src := plugintest.Source(t, plugintest.OutsideModelSource())
	ctx := context.Background()
	registries := map[string]*hotmod.Registry{}
	for transport, build := range map[string]func(testing.TB, string, ...string) string{
		"native": plugintest.Build, "wasm": plugintest.BuildWasm, "process": plugintest.BuildProcess,
	} {
		reg := hotmod.New(hotmod.WithLogger(quiet), hotmod.WithCacheDir(t.TempDir()))
		t.Cleanup(func() { reg.Close(context.Background()) })
		if _, err := reg.Load(ctx, build(t, src)); err != nil {
			t.Fatalf("%s: %v", transport, err)
		}
		registries[transport] = reg
	}
	// The same module compiled into the host.
	builtin := hotmod.New(hotmod.WithLogger(quiet))
	t.Cleanup(func() { builtin.Close(context.Background()) })
	if _, err := builtin.Register(ctx, shapes.Module); err != nil {
		t.Fatal(err)
	}
	registries["builtin"] = builtin

	wantConverted := map[string]any{"xs": []any{int64(1), int64(2), int64(3)}, "at": "1970-01-01T00:00:00.000000000Z"}
	for transport, reg := range registries {
		for method, want := range plugintest.OutsideModelErrors {
			out, err := reg.Invoke(ctx, "shapes", method, nil)
			if !errors.Is(err, sdk.ErrModule) || err.Error() != want {
				t.Errorf("%s: shapes.%s = %v, %v;\nwant %s", transport, method, out, err, want)
			}
		}
		out, err := reg.Invoke(ctx, "shapes", "converted", nil)
		if err != nil || !reflect.DeepEqual(out, wantConverted) {
			t.Errorf("%s: shapes.converted = %#v, %v; want %#v", transport, out, err, wantConverted)
		}
	}
}
