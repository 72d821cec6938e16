package observe_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/hotmod/hotmod"
	"github.com/hotmod/hotmod/observe"
	"github.com/hotmod/hotmod/sdk"
	"github.com/prometheus/client_golang/prometheus"
)

// BenchmarkCallEnd is the metrics observer's own cost per call (the two
// clock reads around a call are the registry's): a success and a failure.
func BenchmarkCallEnd(b *testing.B) {
	m, err := observe.NewMetrics(prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	vo := m.ForVersion(hotmod.VersionInfo{Module: "nop", Version: "1.0.0", Transport: hotmod.Builtin,
		Manifest: sdk.New("nop", "1.0.0").Handle("nop", func(context.Context, map[string]any) (map[string]any, error) { return nil, nil }).Manifest()})
	c := hotmod.CallInfo{Method: "nop", Start: time.Now()}
	fail := sdk.Errorf(sdk.CodeModule, "no")
	for _, w := range []struct {
		name string
		err  error
	}{{"ok", nil}, {"module_error", fail}, {"plain_error", errors.New("no")}} {
		b.Run(w.name, func(b *testing.B) {
			b.ReportAllocs()
			ctx := context.Background()
			for b.Loop() {
				vo.CallEnd(vo.CallStart(ctx, c), c, 1500*time.Nanosecond, w.err)
			}
		})
	}
}

// BenchmarkHistogram compares an observation of a classic histogram with
// one that keeps a native (sparse) histogram beside it, as the call
// duration histogram does.
func BenchmarkHistogram(b *testing.B) {
	for _, c := range []struct {
		name   string
		factor float64
	}{{"classic", 0}, {"classic+native", 1.1}} {
		h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "h", Buckets: observe.Buckets, NativeHistogramBucketFactor: c.factor})
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			v := 1e-6
			for b.Loop() {
				h.Observe(v)
				if v *= 1.7; v > 10 {
					v = 1e-6
				}
			}
		})
	}
}
