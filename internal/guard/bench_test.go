package guard

import (
	"context"
	"testing"
	"time"

	"github.com/hotmod/hotmod/sdk"
)

// benchModule has the small handler of the transport table in DESIGN.md,
// {"a":1,"b":2} → {"sum":3}, and nop, which returns a result made once:
// with nothing allocated and little done by the module, nop shows what the
// guards add most clearly.
var benchModule = sdk.New("adder", "1.0.0").
	Handle("add", func(_ context.Context, p map[string]any) (map[string]any, error) {
		a, err := sdk.Int(p, "a")
		if err != nil {
			return nil, err
		}
		b, err := sdk.Int(p, "b")
		if err != nil {
			return nil, err
		}
		return map[string]any{"sum": a + b}, nil
	}).
	Handle("nop", func(context.Context, map[string]any) (map[string]any, error) { return nopResult, nil })

var (
	nopResult   = map[string]any{"sum": int64(3)}
	benchParams = map[string]any{"a": int64(1), "b": int64(2)}
)

func benchChain(transport string, is ...Interceptor) Handler {
	info := Info{Module: "adder", Version: "1.0.0", Transport: transport, Manifest: benchModule.Manifest(), Stats: new(Stats)}
	return Chain(info, benchModule.Invoke, is...)
}

func runBench(b *testing.B, ctx context.Context, h Handler, method string) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := h(ctx, method, benchParams); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkChain compares an unguarded call with the same call through the
// guards; the difference is what the guards add. "full" is the standard
// chain (breaker closed, a free bulkhead slot, the panic net) with no
// deadline, then with a deadline that is not hit, for a transport that
// enforces its context (wasm, process) and for one whose calls must be
// detached (native, builtin), and with the caller's own, sooner deadline.
func BenchmarkChain(b *testing.B) {
	noDeadline := Config{Deadline: DeadlineConfig{Default: -1}, Logger: quiet}
	withDeadline := Config{Deadline: DeadlineConfig{Default: 10 * time.Second}, Logger: quiet}
	soon, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	later := Config{Deadline: DeadlineConfig{Default: 2 * time.Hour}, Logger: quiet}
	cases := []struct {
		name string
		ctx  context.Context
		h    Handler
	}{
		{"unguarded", bg, benchModule.Invoke},
		{"recover", bg, benchChain("native", Recover(RecoverConfig{Logger: quiet}))},
		{"bulkhead", bg, benchChain("native", Bulkhead(BulkheadConfig{}))},
		{"breaker", bg, benchChain("native", Breaker(BreakerConfig{Logger: quiet}))},
		{"full/no-deadline", bg, benchChain("native", Standard(noDeadline)...)},
		{"full/deadline/attached", bg, benchChain("wasm", Standard(withDeadline)...)},
		{"full/deadline/attached/caller-sooner", soon, benchChain("wasm", Standard(later)...)},
		{"full/deadline/detached", bg, benchChain("native", Standard(withDeadline)...)},
		{"full/deadline/detached/caller-sooner", soon, benchChain("native", Standard(later)...)},
	}
	for _, method := range []string{"nop", "add"} {
		for _, c := range cases {
			b.Run(method+"/"+c.name, func(b *testing.B) { runBench(b, c.ctx, c.h, method) })
		}
	}
}

// BenchmarkChainParallel is BenchmarkChain's first cases from every
// processor at once: the guards' counters are shared by all calls of a
// version.
func BenchmarkChainParallel(b *testing.B) {
	cases := []struct {
		name string
		h    Handler
	}{
		{"unguarded", benchModule.Invoke},
		{"full/no-deadline", benchChain("native", Standard(Config{Deadline: DeadlineConfig{Default: -1}, Logger: quiet})...)},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := c.h(bg, "nop", benchParams); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkChainOverhead measures what the guards add to a call the way the shared test machines allow: batches of unguarded and guarded calls
// alternate, so that both see the same load, and the difference per call
// is reported as added-ns/call (allocations as added-allocs/call).
func BenchmarkChainOverhead(b *testing.B) {
	soon, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	noDeadline := benchChain("native", Standard(Config{Deadline: DeadlineConfig{Default: -1}, Logger: quiet})...)
	cases := []struct {
		name, method string
		ctx          context.Context
		h            Handler
	}{
		{"nop/full/no-deadline", "nop", bg, noDeadline},
		{"nop/full/deadline/attached/caller-sooner", "nop", soon, benchChain("wasm", Standard(Config{Deadline: DeadlineConfig{Default: 2 * time.Hour}, Logger: quiet})...)},
		{"nop/full/deadline/attached", "nop", bg, benchChain("wasm", Standard(Config{Logger: quiet})...)},
		{"nop/full/deadline/detached", "nop", bg, benchChain("native", Standard(Config{Logger: quiet})...)},
		{"add/full/no-deadline", "add", bg, noDeadline},
	}
	direct := Handler(benchModule.Invoke)
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			const batch = 1000
			timed := func(ctx context.Context, h Handler) time.Duration {
				start := time.Now()
				for range batch {
					if _, err := h(ctx, c.method, benchParams); err != nil {
						b.Fatal(err)
					}
				}
				return time.Since(start)
			}
			var tg, td time.Duration
			i := 0
			for b.Loop() {
				if i++; i%2 == 0 {
					tg += timed(c.ctx, c.h)
					td += timed(c.ctx, direct)
				} else {
					td += timed(c.ctx, direct)
					tg += timed(c.ctx, c.h)
				}
			}
			calls := float64(b.N * batch)
			b.ReportMetric(float64(tg.Nanoseconds())/calls, "guarded-ns/call")
			b.ReportMetric(float64(td.Nanoseconds())/calls, "unguarded-ns/call")
			b.ReportMetric(float64((tg-td).Nanoseconds())/calls, "added-ns/call")
			allocs := func(h Handler) float64 {
				return testing.AllocsPerRun(100, func() { _, _ = h(c.ctx, c.method, benchParams) })
			}
			b.ReportMetric(allocs(c.h)-allocs(direct), "added-allocs/call")
			b.ReportMetric(0, "ns/op") // a batch pair: not a useful number
		})
	}
}
