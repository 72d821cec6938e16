package hotmod_test

import (
	"context"
	"testing"

	"github.com/hotmod/hotmod"
	"github.com/hotmod/hotmod/internal/benchtest"
	"github.com/hotmod/hotmod/observe"
	"github.com/hotmod/hotmod/sdk"
	"github.com/prometheus/client_golang/prometheus"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// BenchmarkObserved is what observation adds to a call of a builtin module
// that does nothing: no observer (today's cost), Prometheus metrics, and
// traces (every call sampled, spans handed to an exporter that drops them),
// each alone with its allocations, then all interleaved with the module's
// own Invoke (direct). The native transport's numbers are in integration's
// BenchmarkObserved.
func BenchmarkObserved(b *testing.B) {
	nop := sdk.New("nop", "1.0.0").Handle("nop", func(context.Context, map[string]any) (map[string]any, error) { return nil, nil })
	metrics, err := observe.NewMetrics(prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(tracetest.NewNoopExporter()))
	defer tp.Shutdown(context.Background())
	ctx := context.Background()
	call := func(opts ...hotmod.Option) func() {
		r := newRegistry(b, opts...)
		mustRegister(b, r, nop)
		return func() { _, _ = r.Invoke(ctx, "nop", "nop", nil) }
	}
	ways := []benchtest.Way{
		{Name: "direct", Call: func() { _, _ = nop.Invoke(ctx, "nop", nil) }},
		{Name: "off", Call: call()},
		{Name: "metrics", Call: call(hotmod.WithObserver(metrics))},
		{Name: "traces", Call: call(hotmod.WithObserver(observe.NewTracing(tp)))},
		{Name: "guards", Call: call(hotmod.WithGuards(hotmod.Guards{}))},
		{Name: "guards+metrics", Call: call(hotmod.WithGuards(hotmod.Guards{}), hotmod.WithObserver(metrics))},
	}
	for _, w := range ways {
		b.Run(w.Name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				w.Call()
			}
		})
	}
	b.Run("interleaved", func(b *testing.B) { benchtest.Interleave(b, ways[:4]...) })
}
