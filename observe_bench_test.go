package hotmod_test

import (
	"context"
	"testing"
	"time"

	"github.com/hotmod/hotmod"
	"github.com/hotmod/hotmod/observe"
	"github.com/hotmod/hotmod/sdk"
	"github.com/prometheus/client_golang/prometheus"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// BenchmarkObserved is what observation adds to a call of a builtin module
// that does nothing: no observer (today's cost), Prometheus metrics, and
// traces (every call sampled, spans handed to an exporter that drops them).
// The native transport's numbers are in integration's BenchmarkObserved.
func BenchmarkObserved(b *testing.B) {
	nop := sdk.New("nop", "1.0.0").Handle("nop", func(context.Context, map[string]any) (map[string]any, error) { return nil, nil })
	metrics, err := observe.NewMetrics(prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(tracetest.NewNoopExporter()))
	defer tp.Shutdown(context.Background())
	ctx := context.Background()
	for _, c := range []struct {
		name string
		opts []hotmod.Option
	}{
		{"off", nil},
		{"metrics", []hotmod.Option{hotmod.WithObserver(metrics)}},
		{"traces", []hotmod.Option{hotmod.WithObserver(observe.NewTracing(tp))}},
		{"guards", []hotmod.Option{hotmod.WithGuards(hotmod.Guards{})}},
		{"guards+metrics", []hotmod.Option{hotmod.WithGuards(hotmod.Guards{}), hotmod.WithObserver(metrics)}},
	} {
		r := newRegistry(b, c.opts...)
		mustRegister(b, r, nop)
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_, _ = r.Invoke(ctx, "nop", "nop", nil)
			}
		})
	}
}

// BenchmarkObservedInterleaved runs the ways of BenchmarkObserved in
// alternating batches, so that a busy machine slows them alike, and reports
// each one's ns/call: direct (the module's Invoke), off, metrics, traces.
func BenchmarkObservedInterleaved(b *testing.B) {
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
	ways := []way{
		{name: "direct", call: func() { _, _ = nop.Invoke(ctx, "nop", nil) }},
		{name: "off", call: call()},
		{name: "metrics", call: call(hotmod.WithObserver(metrics))},
		{name: "traces", call: call(hotmod.WithObserver(observe.NewTracing(tp)))},
	}
	interleave(b, ways)
}

// way is one way of making a call, for interleave.
type way struct {
	name string
	call func()
	took time.Duration
}

// interleave runs each way in batches of 1000 calls, in turn and in a
// rotating order, and reports each one's ns/call.
func interleave(b *testing.B, ways []way) {
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
}
