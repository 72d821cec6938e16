package goroutines

import (
	"context"
	"runtime/pprof"
	"testing"
	"time"
)

// BenchmarkTag measures what labelling adds to a call: Enter and Leave
// around it, against the two ways the pprof package offers.
func BenchmarkTag(b *testing.B) {
	tag := NewTag("bench@1.0.0")
	deadline, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	b.Run("tag", func(b *testing.B) {
		for b.Loop() {
			tag.Leave(tag.Enter())
		}
	})
	b.Run("SetGoroutineLabels", func(b *testing.B) { // labels by context, restored to the call's
		ctx := pprof.WithLabels(context.Background(), pprof.Labels(LabelKey, "bench@1.0.0"))
		for b.Loop() {
			pprof.SetGoroutineLabels(ctx)
			pprof.SetGoroutineLabels(deadline)
		}
	})
	b.Run("pprof.Do", func(b *testing.B) { // labels per call
		b.ReportAllocs()
		labels := pprof.Labels(LabelKey, "bench@1.0.0")
		for b.Loop() {
			pprof.Do(deadline, labels, func(context.Context) {})
		}
	})
}
