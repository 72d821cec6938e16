package integration

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hotmod/hotmod"
	"github.com/hotmod/hotmod/internal/plugintest"
	"github.com/hotmod/hotmod/sdk"
)

// basket is what examples/checkout totals: 2 tea at 450 and 1 cake at 520,
// 10% off each line: 810 + 468.
var basket = map[string]any{
	"lines":  []any{map[string]any{"sku": "tea", "qty": int64(2)}, map[string]any{"sku": "cake", "qty": int64(1)}},
	"coupon": "TENOFF",
}

const basketCents = int64(1278)

func listed(reg *hotmod.Registry, ref string) (hotmod.ModuleInfo, bool) {
	for _, m := range reg.Modules() {
		if m.Ref() == ref {
			return m, true
		}
	}
	return hotmod.ModuleInfo{}, false
}

// TestDependencies runs examples/checkout, which requires pricing ^1.1 and
// calls it through the host, in a watched directory: loaded before pricing
// it waits, and activates when pricing arrives; a pricing 2.0.0 that would
// replace the 1.1.0 checkout needs is refused while 1.1.0 keeps serving;
// removing pricing's file sends checkout back to waiting.
func TestDependencies(t *testing.T) {
	if testing.Short() {
		t.Skip("builds real modules; skipped with -short")
	}
	checkout := plugintest.Build(t, plugintest.Example(t, "checkout"))
	pricing := plugintest.Build(t, plugintest.Example(t, "pricing"))
	pricing2 := plugintest.Build(t, plugintest.Example(t, "pricing", `const version = "1.1.0"`, `const version = "2.0.0"`))
	ctx := context.Background()

	dir := t.TempDir()
	reg := watch(t, dir)
	place(t, checkout, dir, "checkout.so")
	waitFor(t, "checkout waiting for pricing", func() bool {
		m, ok := listed(reg, "checkout@1.0.0")
		return ok && m.State == hotmod.StateValidated && m.Reason == "waiting for pricing ^1.1"
	})

	place(t, pricing, dir, "pricing.so")
	waitFor(t, "checkout active", func() bool {
		m, _ := listed(reg, "checkout@1.0.0")
		return m.State == hotmod.StateActive
	})
	out, err := reg.Invoke(ctx, "checkout", "total", basket)
	if err != nil || out["total_cents"] != basketCents {
		t.Fatalf("checkout.total = %v, %v; want %d cents", out, err, basketCents)
	}

	place(t, pricing2, dir, "pricing.so")
	waitFor(t, "pricing 2.0.0 refused", func() bool {
		reason, ok := failure(reg, "pricing.so")
		return ok && strings.Contains(reason, "pricing@2.0.0 would replace pricing@1.1.0, which checkout@1.0.0 needs (it requires pricing ^1.1)")
	})
	if got := strings.Join(active(reg), " "); got != "checkout@1.0.0 pricing@1.1.0" {
		t.Fatalf("active after the refused swap: %s", got)
	}
	if out, err := reg.Invoke(ctx, "checkout", "total", basket); err != nil || out["total_cents"] != basketCents {
		t.Fatalf("checkout after the refused swap = %v, %v", out, err)
	}

	if err := reg.Unload(ctx, "pricing"); err == nil || !strings.Contains(err.Error(), "pricing@1.1.0 is needed by checkout@1.0.0") {
		t.Fatalf("Unload(pricing) = %v, want it refused", err)
	}
	if err := os.Remove(filepath.Join(dir, "pricing.so")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "checkout back to waiting", func() bool {
		m, _ := listed(reg, "checkout@1.0.0")
		return m.State == hotmod.StateValidated && m.Reason == "waiting for pricing ^1.1"
	})
}

// TestCallsAcrossTransports has examples/checkout call pricing through the
// host with each transport on each side at least once: a wasm guest calls a
// native plugin, a process module a wasm guest, a native plugin a process
// module. The call carries the caller's deadline into the callee, so a
// deadline too short for the chain ends it with timeout, and the registry
// keeps serving.
func TestCallsAcrossTransports(t *testing.T) {
	if testing.Short() {
		t.Skip("builds real modules; skipped with -short")
	}
	checkout, pricing := plugintest.Example(t, "checkout"), plugintest.Example(t, "pricing")
	cases := []struct {
		name             string
		caller, callee   string // artifact names
		build, buildDeps func(testing.TB, string, ...string) string
	}{
		{"wasm→native", "checkout.wasm", "pricing.so", plugintest.BuildWasm, plugintest.Build},
		{"process→wasm", "checkout.process", "pricing.wasm", plugintest.BuildProcess, plugintest.BuildWasm},
		{"native→process", "checkout.so", "pricing.process", plugintest.Build, plugintest.BuildProcess},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			reg := watch(t, dir)
			place(t, c.build(t, checkout), dir, c.caller)
			place(t, c.buildDeps(t, pricing), dir, c.callee)
			waitFor(t, "checkout active", func() bool {
				m, _ := listed(reg, "checkout@1.0.0")
				return m.State == hotmod.StateActive
			})
			ctx := context.Background()
			out, err := reg.Invoke(ctx, "checkout", "total", basket)
			if err != nil || out["total_cents"] != basketCents || out["lines"] != int64(2) {
				t.Fatalf("checkout.total = %v, %v; want %d cents over 2 lines", out, err, basketCents)
			}
			_, err = reg.Invoke(ctx, "checkout", "total", map[string]any{"lines": []any{map[string]any{"sku": "caviar", "qty": int64(1)}}})
			if !errors.Is(err, sdk.ErrBadParams) || !strings.Contains(err.Error(), `unknown sku "caviar"`) {
				t.Fatalf("pricing's error through checkout: %v; want bad_params from pricing", err)
			}
			expired, cancel := context.WithDeadline(ctx, time.Now().Add(-time.Millisecond))
			defer cancel()
			if _, err := reg.Invoke(expired, "checkout", "total", basket); !errors.Is(err, sdk.ErrTimeout) {
				t.Fatalf("an expired deadline: %v", err)
			}
			if out, err := reg.Invoke(ctx, "checkout", "total", basket); err != nil || out["total_cents"] != basketCents {
				t.Fatalf("after the timeout: %v, %v", out, err)
			}
		})
	}
}
