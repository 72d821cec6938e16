package integration

import (
	"context"
	"testing"

	"github.com/hotmod/hotmod"
	"github.com/hotmod/hotmod/internal/benchtest"
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
		if direct == nil {
			direct = openDirect(b, cache, info)
		}
		return func() { check(reg.Invoke(ctx, "adder", "add", params)) }
	}
	ways := []benchtest.Way{
		{Name: "off", Call: registry()},
		{Name: "metrics", Call: registry(hotmod.WithObserver(metrics))},
		{Name: "traces", Call: registry(hotmod.WithObserver(observe.NewTracing(tp)))},
		{Name: "direct", Call: func() { check(direct.Invoke(ctx, "add", params)) }},
	}
	for _, w := range ways {
		b.Run(w.Name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				w.Call()
			}
		})
	}
	b.Run("interleaved", func(b *testing.B) {
		ns := benchtest.Interleave(b, ways...)
		b.ReportMetric(ns[0]/ns[3], "off/direct")
		b.ReportMetric(ns[1]/ns[3], "metrics/direct")
		b.ReportMetric(ns[2]/ns[3], "traces/direct")
	})
}
