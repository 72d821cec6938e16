// Package benchtest runs ways of doing one thing against each other in a
// benchmark, fairly on a busy machine.
package benchtest

import (
	"testing"
	"time"
)

// Way is one way of making a call.
type Way struct {
	Name string
	Call func()
}

// Batch is how many calls one way makes before the next takes its turn.
const Batch = 1000

// Interleave runs the ways in batches, in turn and in a rotating order, so
// that a busy machine slows them alike, and reports each one's ns/call. It
// returns the ns/call of each way, in order.
func Interleave(b *testing.B, ways ...Way) []float64 {
	took := make([]time.Duration, len(ways))
	i := 0
	for b.Loop() {
		for k := range ways {
			w := (k + i) % len(ways)
			start := time.Now()
			for range Batch {
				ways[w].Call()
			}
			took[w] += time.Since(start)
		}
		i++
	}
	calls := float64(b.N * Batch)
	ns := make([]float64, len(ways))
	for k, w := range ways {
		ns[k] = float64(took[k].Nanoseconds()) / calls
		b.ReportMetric(ns[k], w.Name+"-ns/call")
	}
	return ns
}
