package journal

import (
	"sync/atomic"
	"testing"
)

// BenchmarkCounter is one call's worth of journal work (two atomic adds)
// on a counter in the mapped file, beside the same on ordinary memory.
func BenchmarkCounter(b *testing.B) {
	r, err := Start(b.TempDir() + "/state")
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	var heap atomic.Int64
	for _, c := range []struct {
		name string
		n    *atomic.Int64
	}{{"heap", &heap}, {"mapped", r.Counter("m", "1.0.0", "native", "s", "/p")}} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				c.n.Add(1)
				c.n.Add(-1)
			}
		})
	}
}
