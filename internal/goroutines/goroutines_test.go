package goroutines

import (
	"context"
	"runtime/pprof"
	"strconv"
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

// TestCount: goroutines started between Enter and Leave carry the tag, the
// caller's own labels come back after Leave, and goroutines started after
// it are not counted.
func TestCount(t *testing.T) {
	stop := make(chan struct{})
	defer close(stop)
	mine := pprof.WithLabels(context.Background(), pprof.Labels("caller", "yes"))
	pprof.SetGoroutineLabels(mine)
	defer pprof.SetGoroutineLabels(context.Background())

	tag := NewTag(`odd "name"@1.0.0`) // quoted in the profile
	saved := tag.Enter()
	for range 3 {
		go func() { <-stop }()
	}
	tag.Leave(saved)
	started := make(chan struct{})
	go func() { // the caller's: it has the caller's labels, not the tag
		pprof.ForLabels(context.Background(), func(string, string) bool { return true })
		close(started)
		<-stop
	}()
	<-started
	counts, err := Count()
	if err != nil {
		t.Fatal(err)
	}
	if counts[`odd "name"@1.0.0`] != 3 || len(counts) != 1 {
		t.Errorf("Count = %v; want 3 for the tag", counts)
	}
}

// TestSampler: calls in flight are taken away; crossing Warn logs, crossing
// Limit reports, each once per crossing.
func TestSampler(t *testing.T) {
	stop := make(chan struct{})
	defer close(stop)
	tag := NewTag("s@1.0.0")
	leak := func(n int) {
		saved := tag.Enter()
		for range n {
			go func() { <-stop }()
		}
		tag.Leave(saved)
	}
	var limits []int
	busy := 0
	s := &Sampler{cfg: Config{Warn: 2, Limit: 4, Busy: func(string) int { return busy },
		OnLimit: func(ref string, n, limit int) { limits = append(limits, n) }}.withDefaults(),
		counts: map[string]int{}, over: map[string]uint8{}}
	leak(3)
	busy = 1
	s.Sample()
	if n := s.Count("s@1.0.0"); n != 2 {
		t.Fatalf("count %d; want 3 less 1 in flight", n)
	}
	busy = 0
	leak(2)
	s.Sample()
	s.Sample()
	if len(limits) != 1 || limits[0] != 5 {
		t.Fatalf("OnLimit calls %v; want one, with 5", limits)
	}
}

// BenchmarkCount measures one sample (Count) with n parked goroutines, half
// of them a module's: what the sampler costs every Every.
func BenchmarkCount(b *testing.B) {
	for _, n := range []int{100, 1000, 10000} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			stop := make(chan struct{})
			defer close(stop)
			tag := NewTag("bench@1.0.0")
			for i := range n {
				if i%2 == 0 {
					saved := tag.Enter()
					go func() { <-stop }()
					tag.Leave(saved)
				} else {
					go func() { <-stop }()
				}
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Count(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
