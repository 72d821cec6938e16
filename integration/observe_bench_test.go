package integration

import (
	"context"
	"path/filepath"
	"plugin"
	"testing"
	"time"

	"github.com/hotmod/hotmod"
	"github.com/hotmod/hotmod/internal/plugintest"
	"github.com/hotmod/hotmod/observe"
	"github.com/hotmod/hotmod/sdk"
	"github.com/prometheus/client_golang/prometheus"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// BenchmarkObserved measures what observation adds to a call of a native
// module ({"a":1,"b":2} → {"sum":3}): the same plugin called directly,
// through a registry with no observer, with Prometheus metrics, and with
// traces (every call sampled, spans dropped by the exporter). The ways run
// in alternating batches (interleaved) so that a busy machine slows them
// alike; each reports its ns/call, and metrics and traces their ratio to
// the direct call. The sub-benchmarks report allocations.
func BenchmarkObserved(b *testing.B) {
	cache := b.TempDir()
	artifact := plugintest.Build(b, plugintest.Source(b, adder))
	metrics, err := observe.NewMetrics(prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(tracetest.NewNoopExporter()))
	defer tp.Shutdown(context.Background())
	ctx := context.Background()
	params := map[string]any{"a": int64(1), "b": int64(2)}
	check := func(out map[string]any, err error) {
		if err != nil || out["sum"] != int64(3) {
			b.Fatalf("add = %v, %v", out, err)
		}
	}
	var direct sdk.Invoker
	registry := func(opts ...hotmod.Option) func() {
		reg := hotmod.New(append([]hotmod.Option{hotmod.WithLogger(quiet), hotmod.WithCacheDir(cache)}, opts...)...)
		b.Cleanup(func() { _ = reg.Close(context.Background()) })
		info, err := reg.Load(ctx, artifact)
		if err != nil {
			b.Fatal(err)
		}
		if direct == nil { // the very module the registries call (see BenchmarkInvoke)
			p, err := plugin.Open(filepath.Join(cache, "native", info.Sum+".so"))
			if err != nil {
				b.Fatal(err)
			}
			sym, err := p.Lookup("Module")
			if err != nil {
				b.Fatal(err)
			}
			direct = *sym.(**sdk.Module)
		}
		return func() { check(reg.Invoke(ctx, "adder", "add", params)) }
	}
	ways := []struct {
		name string
		call func()
		took time.Duration
	}{
		{name: "off", call: registry()},
		{name: "metrics", call: registry(hotmod.WithObserver(metrics))},
		{name: "traces", call: registry(hotmod.WithObserver(observe.NewTracing(tp)))},
		{name: "direct", call: func() { check(direct.Invoke(ctx, "add", params)) }},
	}
	for _, w := range ways {
		b.Run(w.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				w.call()
			}
		})
	}
	b.Run("interleaved", func(b *testing.B) {
		const batch = 1000
		i := 0
		for b.Loop() {
			for k := range ways {
				w := &ways[(k+i)%len(ways)]
				start := time.Now()
				for range batch {
					w.call()
				}
				w.took += time.Since(start)
			}
			i++
		}
		calls := float64(b.N * batch)
		for _, w := range ways {
			b.ReportMetric(float64(w.took.Nanoseconds())/calls, w.name+"-ns/call")
		}
		d := float64(ways[3].took)
		b.ReportMetric(float64(ways[0].took)/d, "off/direct")
		b.ReportMetric(float64(ways[1].took)/d, "metrics/direct")
		b.ReportMetric(float64(ways[2].took)/d, "traces/direct")
	})
}
