package hotmod_test

import (
	"context"
	"testing"
	"time"

	"github.com/hotmod/hotmod"
	"github.com/hotmod/hotmod/sdk"
)

// BenchmarkRoutingOverhead isolates what the registry adds to a call: the
// module does nothing, so what is left is routing, admission and recovery.
func BenchmarkRoutingOverhead(b *testing.B) {
	nop := sdk.New("nop", "1.0.0").Handle("nop", func(context.Context, map[string]any) (map[string]any, error) { return nil, nil })
	r := newRegistry(b)
	mustRegister(b, r, nop)
	ctx := context.Background()
	b.Run("direct", func(b *testing.B) {
		var inv sdk.Invoker = nop
		for b.Loop() {
			_, _ = inv.Invoke(ctx, "nop", nil)
		}
	})
	b.Run("registry", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = r.Invoke(ctx, "nop", "nop", nil)
		}
	})
	for _, g := range []struct {
		name   string
		guards hotmod.Guards
	}{
		{"guarded-no-deadline", hotmod.Guards{Timeout: -1}},
		{"guarded-deadline", hotmod.Guards{Timeout: time.Second}},
	} {
		gr := newRegistry(b, hotmod.WithGuards(g.guards))
		mustRegister(b, gr, nop)
		b.Run(g.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_, _ = gr.Invoke(ctx, "nop", "nop", nil)
			}
		})
	}
	p, err := hotmod.Canary([]int{10}, time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	cr := newRegistry(b, hotmod.WithRollout(p))
	mustRegister(b, cr, nop)
	mustRegister(b, cr, sdk.New("nop", "1.1.0").Handle("nop", func(context.Context, map[string]any) (map[string]any, error) { return nil, nil }))
	b.Run("registry-canary", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = cr.Invoke(ctx, "nop", "nop", nil)
		}
	})
	b.Run("registry-exact", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = r.Invoke(ctx, "nop@1.0.0", "nop", nil)
		}
	})
}
