package wasm_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hotmod/hotmod/internal/chain"
	"github.com/hotmod/hotmod/internal/stages"
	"github.com/hotmod/hotmod/internal/wasm"
	"github.com/hotmod/hotmod/sdk"
	"github.com/hotmod/hotmod/sdk/cbor"
)

type benchAB struct {
	A int64 `hotmod:"a,id=1,required"`
	B int64 `hotmod:"b,id=2,required"`
}

type benchSum struct {
	Sum int64 `hotmod:"sum,id=1"`
}

// direct is testGuest's add and add_dynamic as an in-process module: what
// a native or builtin call of the same code costs.
var direct = sdk.New("direct", "1.0.0").
	Method(sdk.Func("add", func(_ context.Context, in benchAB) (benchSum, error) { return benchSum{Sum: in.A + in.B}, nil })).
	Handle("add_dynamic", func(_ context.Context, p map[string]any) (map[string]any, error) {
		a, err := sdk.Int(p, "a")
		if err != nil {
			return nil, err
		}
		b, err := sdk.Int(p, "b")
		if err != nil {
			return nil, err
		}
		return map[string]any{"sum": a + b}, nil
	})

// BenchmarkCall is one call {"a":1,"b":2} → {"sum":3}: through the wasm
// transport (the host encodes the map as CBOR, the guest decodes it straight
// into a struct for the typed method or into a map for the dynamic one, and
// back), and directly in process for comparison. "empty" calls an export
// that does nothing: the floor. "tier=trusted" is the same on the trusted
// tier (wazero's WithCloseOnContextDone off).
func BenchmarkCall(b *testing.B) {
	params := map[string]any{"a": int64(1), "b": int64(2)}
	raw, _ := cbor.Marshal(params)
	ctx := context.Background()
	check := func(b *testing.B, out map[string]any, err error) {
		if err != nil || out["sum"] != int64(3) {
			b.Fatal(out, err)
		}
	}
	b.Run("direct/typed", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			out, err := direct.Invoke(ctx, "add", params)
			check(b, out, err)
		}
	})
	b.Run("direct/dynamic", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			out, err := direct.Invoke(ctx, "add_dynamic", params)
			check(b, out, err)
		}
	})
	path := source(b, "testguest", testGuest)
	for _, on := range []bool{true, false} {
		l, _ := newLoader(b, wasm.Config{PoolSize: 1, Tiers: tierFor(on)})
		g := load(b, l, path)
		suffix := ""
		if !on {
			suffix = "/tier=trusted"
		}
		b.Run("wasm/empty"+suffix, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := g.CallEmpty(ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("wasm/typed"+suffix, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				out, err := g.Invoke(ctx, "add", params)
				check(b, out, err)
			}
		})
		b.Run("wasm/typed-cbor"+suffix, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				out, err := g.InvokeCBOR(ctx, "add", raw)
				if err != nil || len(out) != 6 {
					b.Fatal(out, err)
				}
			}
		})
		b.Run("wasm/dynamic"+suffix, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				out, err := g.Invoke(ctx, "add_dynamic", params)
				check(b, out, err)
			}
		})
		if on {
			b.Run("wasm/typed/with-deadline", func(b *testing.B) {
				dctx, cancel := context.WithTimeout(ctx, time.Hour)
				defer cancel()
				b.ReportAllocs()
				for b.Loop() {
					out, err := g.Invoke(dctx, "add", params)
					check(b, out, err)
				}
			})
		}
	}
}

// BenchmarkNestedCall is a call that makes one call to another module: the
// host calls caller.sum, whose guest calls sdk.Call(ctx, "callee", "add",
// {"a": 1, "b": 2}) through the host module (call_module, then take_reply)
// and returns the result. The host's handle pushes a chain frame, as the
// registry's does, and routes the call: "go" to a Go func (guest → host →
// Go), "wasm" to testguest's typed add in a guest of another version
// (guest → host → guest). "outer" is caller.noop, the outer call alone:
// what a nested call adds is the difference.
func BenchmarkNestedCall(b *testing.B) {
	ctx := context.Background()
	callerPath, calleePath := source(b, "caller", callerGuest), source(b, "testguest", testGuest)
	for _, on := range []bool{true, false} {
		l, _ := newLoader(b, wasm.Config{PoolSize: 1, Tiers: tierFor(on)})
		caller, callee := load(b, l, callerPath), load(b, l, calleePath)
		suffix := ""
		if !on {
			suffix = "/tier=trusted"
		}
		b.Run("outer"+suffix, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := caller.Invoke(ctx, "noop", nil); err != nil {
					b.Fatal(err)
				}
			}
		})
		for _, tc := range []struct {
			name string
			r    route
		}{{"go", goAdd}, {"wasm", to(callee)}} {
			initWith(b, caller, benchHost{"callee": tc.r}, nil)
			b.Run(tc.name+suffix, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if out, err := caller.Invoke(ctx, "sum", nil); err != nil || out["sum"] != int64(3) {
						b.Fatal(out, err)
					}
				}
			})
		}
	}
}

// benchHost routes calls by target after pushing a chain frame.
type benchHost map[string]route

func (h benchHost) Invoke(ctx context.Context, target, method string, params map[string]any) (map[string]any, error) {
	ctx, _ = chain.Push(ctx, "caller@1.0.0")
	return h[target](ctx, method, params)
}

// BenchmarkCallParallel is BenchmarkCall's typed call from GOMAXPROCS
// goroutines on a pool of GOMAXPROCS guests.
func BenchmarkCallParallel(b *testing.B) {
	l, _ := newLoader(b, wasm.Config{})
	g := load(b, l, source(b, "testguest", testGuest))
	params := map[string]any{"a": int64(1), "b": int64(2)}
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if out, err := g.Invoke(ctx, "add", params); err != nil || out["sum"] != int64(3) {
				b.Fatal(out, err)
			}
		}
	})
}

// BenchmarkWork measures what interruptibility costs guest code that
// computes: a loop of n rounds of arithmetic in the guest (wazero then
// checks for an interruption at every loop header and function entry).
func BenchmarkWork(b *testing.B) {
	path := source(b, "testguest", testGuest)
	ctx := context.Background()
	for _, n := range []int64{1_000, 1_000_000} {
		for _, on := range []bool{true, false} {
			l, _ := newLoader(b, wasm.Config{PoolSize: 1, Tiers: tierFor(on)})
			g := load(b, l, path)
			b.Run(fmt.Sprintf("n=%d/trusted=%t", n, !on), func(b *testing.B) {
				params := map[string]any{"n": n}
				for b.Loop() {
					if _, err := g.Invoke(ctx, "work", params); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkLoad is Load (compile or take from the cache, start the first
// guest, read the manifest) of examples/pricing, on each tier: "warm" with
// its compiled code in the on-disk cache (a new Loader each time, as after
// a restart), "swap" a warm load into a loader that serves the version
// being replaced (as a hot swap to a version compiled before does: the two
// alternate), "cold" with an empty cache, compiled by 1 goroutine or by
// GOMAXPROCS of them (wazero's compilation workers). Each reports its
// median as p50-ms, and the median of each stage of the load (read,
// compile, instantiate: see internal/stages). "start" is starting one more
// guest of a loaded version (instantiate and run the Go runtime's and the
// packages' initialisation).
func BenchmarkLoad(b *testing.B) {
	path, other := example(b, "pricing"), example(b, "greeter")
	ctx := context.Background()
	quiet := slog.New(slog.DiscardHandler)
	type sample struct {
		total  time.Duration
		stages map[string]time.Duration
	}
	loadIn := func(b *testing.B, l *wasm.Loader, path string) (*wasm.Instance, sample) {
		rec := &stages.Recorder{}
		start := time.Now()
		i, err := l.Load(stages.With(ctx, rec), path)
		if err != nil {
			b.Fatal(err)
		}
		s := sample{total: time.Since(start), stages: map[string]time.Duration{}}
		for _, st := range rec.Stages() {
			s.stages[st.Name] += st.Duration
		}
		return i, s
	}
	fresh := func(b *testing.B, dir string, tier wasm.Tier, workers int) *wasm.Loader {
		l, err := wasm.NewLoader(ctx, wasm.Config{CacheDir: dir, Logger: quiet, Tiers: []string{string(tier)}, CompileWorkers: workers})
		if err != nil {
			b.Fatal(err)
		}
		return l
	}
	loadOnce := func(b *testing.B, dir string, tier wasm.Tier, workers int) sample {
		l := fresh(b, dir, tier, workers)
		_, s := loadIn(b, l, path)
		b.StopTimer()
		l.Close(ctx)
		b.StartTimer()
		return s
	}
	report := func(b *testing.B, samples []sample) {
		var totals []time.Duration
		per := map[string][]time.Duration{}
		for _, s := range samples {
			totals = append(totals, s.total)
			for name, d := range s.stages {
				per[name] = append(per[name], d)
			}
		}
		b.ReportMetric(median(totals), "p50-ms")
		for _, name := range []string{stages.Read, stages.Compile, stages.Instantiate} {
			b.ReportMetric(median(per[name]), name+"-ms")
		}
	}
	for _, tier := range []wasm.Tier{wasm.TierInterruptible, wasm.TierTrusted} {
		b.Run("warm/tier="+string(tier), func(b *testing.B) {
			dir := b.TempDir()
			loadOnce(b, dir, tier, 0) // fill the cache
			var samples []sample
			for b.Loop() {
				samples = append(samples, loadOnce(b, dir, tier, 0))
			}
			report(b, samples)
		})
		b.Run("swap/tier="+string(tier), func(b *testing.B) {
			l := fresh(b, b.TempDir(), tier, 0)
			defer l.Close(ctx)
			serving, _ := loadIn(b, l, other) // fill the cache with both
			next, _ := loadIn(b, l, path)
			next.Close()
			paths := [2]string{path, other}
			var samples []sample
			for k := 0; b.Loop(); k++ {
				i, s := loadIn(b, l, paths[k%2])
				b.StopTimer()
				serving.Close()
				serving = i
				b.StartTimer()
				samples = append(samples, s)
			}
			serving.Close()
			report(b, samples)
		})
	}
	for _, workers := range []int{1, runtime.GOMAXPROCS(0)} {
		b.Run(fmt.Sprintf("cold/workers=%d", workers), func(b *testing.B) {
			var samples []sample
			for b.Loop() {
				b.StopTimer()
				dir, err := os.MkdirTemp("", "hotmod-wasm-bench-")
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				samples = append(samples, loadOnce(b, dir, wasm.TierInterruptible, workers))
				b.StopTimer()
				os.RemoveAll(dir)
				b.StartTimer()
			}
			report(b, samples)
		})
	}
	b.Run("start", func(b *testing.B) {
		l, _ := newLoader(b, wasm.Config{})
		i := load(b, l, path)
		var mem uint32
		for b.Loop() {
			var err error
			if mem, err = i.StartOne(ctx); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(mem)/(1<<20), "MiB-linear-memory")
	})
}

func median(ds []time.Duration) float64 {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return float64(s[len(s)/2]) / float64(time.Millisecond)
}

// BenchmarkMemory reports what guests and versions cost in memory: the
// linear memory of a fresh guest, the Go heap and resident memory (RSS)
// that 8 more guests of one version add, and what loading 3 distinct
// versions (compiled code from a warm cache, one guest each) adds.
func BenchmarkMemory(b *testing.B) {
	ctx := context.Background()
	paths := []string{example(b, "pricing"), example(b, "greeter"), source(b, "testguest", testGuest)}
	l, _ := newLoader(b, wasm.Config{PoolSize: 16})
	for _, p := range paths { // fill the cache
		load(b, l, p).Close()
	}
	b.Run("per-guest", func(b *testing.B) {
		i := load(b, l, paths[0])
		const n = 8
		for b.Loop() {
			heap0, rss0 := usage()
			linear, free, err := i.Guests(ctx, n)
			if err != nil {
				b.Fatal(err)
			}
			heap1, rss1 := usage()
			free()
			b.ReportMetric(float64(linear)/n/(1<<20), "MiB-linear/guest")
			b.ReportMetric(float64(heap1-heap0)/n/(1<<20), "MiB-heap/guest")
			b.ReportMetric(float64(rss1-rss0)/n/(1<<20), "MiB-rss/guest")
		}
	})
	b.Run("per-version", func(b *testing.B) {
		for b.Loop() {
			l2, _ := newLoader(b, wasm.Config{CacheDir: cacheDir})
			heap0, rss0 := usage()
			var list []*wasm.Instance
			for _, p := range paths {
				i, err := l2.Load(ctx, p)
				if err != nil {
					b.Fatal(err)
				}
				list = append(list, i)
			}
			heap1, rss1 := usage()
			for _, i := range list {
				i.Close()
			}
			n := float64(len(paths))
			b.ReportMetric(float64(heap1-heap0)/n/(1<<20), "MiB-heap/version")
			b.ReportMetric(float64(rss1-rss0)/n/(1<<20), "MiB-rss/version")
		}
	})
}

// usage returns the Go heap in use and the resident set size, in bytes.
func usage() (heap, rss int64) {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	if b, err := os.ReadFile("/proc/self/statm"); err == nil {
		if f := strings.Fields(string(b)); len(f) > 1 {
			pages, _ := strconv.ParseInt(f[1], 10, 64)
			rss = pages * int64(os.Getpagesize())
		}
	}
	return int64(ms.HeapInuse), rss
}

// tierFor is the Config.Tiers of a loader whose calls are interruptible
// (on) or trusted.
func tierFor(interruptible bool) []string {
	if interruptible {
		return nil
	}
	return []string{string(wasm.TierTrusted)}
}
