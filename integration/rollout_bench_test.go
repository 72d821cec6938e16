package integration

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hotmod/hotmod"
	"github.com/hotmod/hotmod/internal/plugintest"
)

// BenchmarkCanaryInvoke compares a plain call to a native module during a
// canary (10 % of calls to 1.1.0, split per call, counted for the health
// check) with the same call without a rollout and with a direct call,
// interleaved in batches so a busy machine slows all three alike.
func BenchmarkCanaryInvoke(b *testing.B) {
	cache := b.TempDir() // shared: both registries open the same plugins
	v1 := plugintest.Build(b, plugintest.Source(b, adder))
	v2 := plugintest.Build(b, plugintest.Source(b, strings.Replace(adder, `"1.0.0"`, `"1.1.0"`, 1)))
	ctx := context.Background()
	load := func(reg *hotmod.Registry, path string) hotmod.ModuleInfo {
		info, err := reg.Load(ctx, path)
		if err != nil {
			b.Fatal(err)
		}
		return info
	}
	plain := hotmod.New(hotmod.WithLogger(quiet), hotmod.WithCacheDir(cache))
	defer plain.Close(ctx)
	info := load(plain, v1)
	p, err := hotmod.Canary([]int{10}, time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	canary := hotmod.New(hotmod.WithLogger(quiet), hotmod.WithCacheDir(cache), hotmod.WithRollout(p))
	defer canary.Close(ctx)
	load(canary, v1)
	load(canary, v2)
	if s, err := canary.RolloutOf("adder"); err != nil || s.Percent != 10 {
		b.Fatalf("no canary: %+v %v", s, err)
	}
	direct := openDirect(b, cache, info)
	params := map[string]any{"a": int64(1), "b": int64(2)}
	check := func(out map[string]any, err error) {
		if err != nil || out["sum"] != int64(3) {
			b.Fatalf("add = %v, %v", out, err)
		}
	}
	for _, c := range []struct {
		name string
		reg  *hotmod.Registry
	}{{"no-rollout", plain}, {"canary", canary}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				check(c.reg.Invoke(ctx, "adder", "add", params))
			}
		})
	}
	b.Run("interleaved", func(b *testing.B) {
		const batch = 1000
		ways := []func(){
			func() { check(direct.Invoke(ctx, "add", params)) },
			func() { check(plain.Invoke(ctx, "adder", "add", params)) },
			func() { check(canary.Invoke(ctx, "adder", "add", params)) },
		}
		var took [3]time.Duration
		i := 0
		for b.Loop() {
			i++
			for k := range ways {
				w := (k + i) % len(ways) // rotate the order
				start := time.Now()
				for range batch {
					ways[w]()
				}
				took[w] += time.Since(start)
			}
		}
		calls := float64(b.N * batch)
		b.ReportMetric(float64(took[0].Nanoseconds())/calls, "direct-ns/call")
		b.ReportMetric(float64(took[1].Nanoseconds())/calls, "no-rollout-ns/call")
		b.ReportMetric(float64(took[2].Nanoseconds())/calls, "canary-ns/call")
		b.ReportMetric(float64(took[2])/float64(took[0]), "canary/direct")
		b.ReportMetric(float64(took[2])/float64(took[1]), "canary/no-rollout")
	})
}
