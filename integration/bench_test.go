package integration

import (
	"context"
	"fmt"
	"path/filepath"
	"plugin"
	"sort"
	"testing"
	"time"

	"github.com/hotmod/hotmod"
	"github.com/hotmod/hotmod/internal/plugintest"
	"github.com/hotmod/hotmod/sdk"
)

// adder is the benchmark module: {"a":1,"b":2} → {"sum":3}.
const adder = `package main

import (
	"context"

	"github.com/hotmod/hotmod/sdk"
)

var Module = sdk.New("adder", "1.0.0").Handle("add", add)

func add(_ context.Context, p map[string]any) (map[string]any, error) {
	a, _ := p["a"].(int64)
	b, _ := p["b"].(int64)
	return map[string]any{"sum": a + b}, nil
}

func main() {}
`

// openDirect returns the module of a native version the registry loaded
// with cache as its cache directory: the plugin is already open in this
// process, and opening its private copy again returns the same plugin, so
// this is the very module the registry calls.
func openDirect(b *testing.B, cache string, info hotmod.ModuleInfo) sdk.Invoker {
	b.Helper()
	p, err := plugin.Open(filepath.Join(cache, "native", info.Sum+".so"))
	if err != nil {
		b.Fatal(err)
	}
	sym, err := p.Lookup("Module")
	if err != nil {
		b.Fatal(err)
	}
	return *sym.(**sdk.Module)
}

// BenchmarkInvoke compares Registry.Invoke on a native module with a direct
// call of the same module through a Go interface, with the same map.
func BenchmarkInvoke(b *testing.B) {
	cache := b.TempDir()
	reg := hotmod.New(hotmod.WithLogger(quiet), hotmod.WithCacheDir(cache))
	defer reg.Close(context.Background())
	info, err := reg.Load(context.Background(), plugintest.Build(b, plugintest.Source(b, adder)))
	if err != nil {
		b.Fatal(err)
	}
	direct := openDirect(b, cache, info)
	params := map[string]any{"a": int64(1), "b": int64(2)}
	ctx := context.Background()

	check := func(out map[string]any, err error) {
		if err != nil || out["sum"] != int64(3) {
			b.Fatalf("add = %v, %v", out, err)
		}
	}
	b.Run("direct", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			out, err := direct.Invoke(ctx, "add", params)
			check(out, err)
		}
	})
	b.Run("registry", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			out, err := reg.Invoke(ctx, "adder", "add", params)
			check(out, err)
		}
	})
	// Both ways in alternating batches (and alternating order), so that a busy
	// machine slows both alike: reports each one's ns/call and the registry's
	// overhead in percent. (Run with both sides direct, it reports 0–2%.)
	b.Run("interleaved", func(b *testing.B) {
		var tr, td time.Duration
		const batch = 1000
		viaRegistry := func() time.Duration {
			start := time.Now()
			for range batch {
				check(reg.Invoke(ctx, "adder", "add", params))
			}
			return time.Since(start)
		}
		viaDirect := func() time.Duration {
			start := time.Now()
			for range batch {
				check(direct.Invoke(ctx, "add", params))
			}
			return time.Since(start)
		}
		i := 0
		for b.Loop() {
			if i++; i%2 == 0 {
				tr += viaRegistry()
				td += viaDirect()
			} else {
				td += viaDirect()
				tr += viaRegistry()
			}
		}
		calls := float64(b.N * batch)
		b.ReportMetric(float64(tr.Nanoseconds())/calls, "registry-ns/call")
		b.ReportMetric(float64(td.Nanoseconds())/calls, "direct-ns/call")
		b.ReportMetric(100*(float64(tr)/float64(td)-1), "overhead-%")
	})
	b.Run("registry-range", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			out, err := reg.Invoke(ctx, "adder@^1.0", "add", params)
			check(out, err)
		}
	})
	b.Run("registry-parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				out, err := reg.Invoke(ctx, "adder", "add", params)
				check(out, err)
			}
		})
	})
}

// BenchmarkSwapLatency measures how long it takes from an artifact landing in
// a watched directory (renamed into place) to its version answering calls,
// probe included. Each iteration alternates between two builds of greeter.
func BenchmarkSwapLatency(b *testing.B) {
	builds := [2]string{
		plugintest.Build(b, plugintest.Example(b, "greeter")),
		plugintest.Build(b, plugintest.Example(b, "greeter", greeterV2...)),
	}
	want := [2]string{"hello, Ada", "hi, Ada"}
	for _, settle := range []time.Duration{10 * time.Millisecond, 2 * time.Millisecond} {
		b.Run(fmt.Sprintf("settle=%s", settle), func(b *testing.B) {
			dir := b.TempDir()
			reg := watch(b, dir, hotmod.WithSettle(settle))
			var lat []time.Duration
			i := 0
			for b.Loop() {
				i++
				start := time.Now()
				place(b, builds[i%2], dir, "greeter.so")
				for {
					if msg, _ := hello(reg, "greeter"); msg == want[i%2] {
						break
					}
					time.Sleep(200 * time.Microsecond)
				}
				lat = append(lat, time.Since(start))
			}
			sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
		})
	}
}
