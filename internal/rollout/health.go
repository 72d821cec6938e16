package rollout

import (
	"fmt"
	"math/bits"
	"sync/atomic"
	"time"
)

// Buckets is the number of latency buckets: bucket i holds calls that took
// less than 2^i µs (i = 0: under 1 µs; the last: everything slower than
// about 4.5 minutes).
const Buckets = 29

// Counters counts one version's calls during a rollout. Record is a few
// atomic adds: cheap enough for the call path.
type Counters struct {
	calls, failures atomic.Int64
	buckets         [Buckets]atomic.Int64
}

// Count counts one call; failed says whether it failed in a way that
// counts against the version.
func (c *Counters) Count(failed bool) {
	c.calls.Add(1)
	if failed {
		c.failures.Add(1)
	}
}

// Record counts one call that was timed: it took d.
func (c *Counters) Record(d time.Duration, failed bool) {
	c.Count(failed)
	c.buckets[bucket(d)].Add(1)
}

// TimeOneIn is how many calls share one latency measurement: reading the
// clock twice costs ≈ 280 ns on a virtual machine's kvm-clock, as much as a
// native call; one call in 16 timed keeps a canary's call within budget
// (≈ 18 ns of clock a call), and a step of a few thousand calls still gives
// the p99 hundreds of samples.
const TimeOneIn = 16

func bucket(d time.Duration) int {
	if d < 0 {
		d = 0
	}
	i := bits.Len64(uint64(d) >> 10) // ≈ µs (1024 ns), rounded to a power of two
	if i >= Buckets {
		i = Buckets - 1
	}
	return i
}

// upper is the latency under which bucket i's calls took.
func upper(i int) time.Duration { return time.Duration(uint64(1024) << i) }

// Sample reads the counters.
func (c *Counters) Sample() Sample {
	var s Sample
	if c == nil {
		return s
	}
	s.Calls, s.Failures = c.calls.Load(), c.failures.Load()
	for i := range c.buckets {
		s.Buckets[i] = c.buckets[i].Load()
	}
	return s
}

// Sample is a reading of Counters, or the difference of two readings.
type Sample struct {
	Calls, Failures int64
	Buckets         [Buckets]int64
}

// Sub is what happened between o and s.
func (s Sample) Sub(o Sample) Sample {
	s.Calls -= o.Calls
	s.Failures -= o.Failures
	for i := range s.Buckets {
		s.Buckets[i] -= o.Buckets[i]
	}
	return s
}

// FailureRate is failures per call (0 without calls).
func (s Sample) FailureRate() float64 {
	if s.Calls <= 0 {
		return 0
	}
	return float64(s.Failures) / float64(s.Calls)
}

// Timed is how many calls were timed.
func (s Sample) Timed() int64 {
	var n int64
	for _, b := range s.Buckets {
		n += b
	}
	return n
}

// P99 estimates the 99th percentile latency of the timed calls: the upper
// bound of the bucket the 99th percentile call falls in (so within a
// factor of two, never under). Zero without calls.
func (s Sample) P99() time.Duration {
	n := s.Timed()
	if n == 0 {
		return 0
	}
	want := n - n/100 // the call at rank ⌈0.99 n⌉
	var seen int64
	for i, b := range s.Buckets {
		seen += b
		if seen >= want {
			return upper(i)
		}
	}
	return upper(Buckets - 1)
}

// Thresholds say when a canary is clearly worse than stable.
type Thresholds struct {
	// MinCalls is how many calls the canary must have had in a step before
	// its failures are judged, and MinFailures how many of them must have
	// failed: fewer say too little (a fresh version's first call may time
	// out warming up).
	MinCalls, MinFailures int64
	// LatencyMinCalls is how many timed calls (one in TimeOneIn) both must
	// have had before their p99 is compared: over fewer, the 99th
	// percentile is a handful of calls, and a cold start or one pause
	// decides it.
	LatencyMinCalls int64
	// A canary fails when its failure rate exceeds both FailureFactor ×
	// stable's and stable's + FailureMargin.
	FailureFactor, FailureMargin float64
	// A canary fails when its p99 exceeds both LatencyFactor × stable's
	// and stable's + LatencyMargin.
	LatencyFactor float64
	LatencyMargin time.Duration
}

// DefaultThresholds: see RATIONALE.md ("Why these canary thresholds?").
var DefaultThresholds = Thresholds{
	MinCalls: 20, MinFailures: 5, LatencyMinCalls: 200,
	FailureFactor: 2, FailureMargin: 0.01,
	LatencyFactor: 2, LatencyMargin: 5 * time.Millisecond,
}

// Judge compares a canary's calls with stable's over the same step and
// returns why the canary is clearly worse, or "" when it is not (or there
// is not enough to tell). stableVersion names stable in the reason.
func (th Thresholds) Judge(canary, stable Sample, stableVersion string) string {
	if canary.Calls < th.MinCalls {
		return ""
	}
	cr, sr := canary.FailureRate(), stable.FailureRate()
	if canary.Failures >= th.MinFailures && cr > th.FailureFactor*sr && cr > sr+th.FailureMargin {
		return fmt.Sprintf("%s failures over %d calls vs %s on %s", pct(cr), canary.Calls, pct(sr), stableVersion)
	}
	if canary.Timed() < th.LatencyMinCalls || stable.Timed() < th.LatencyMinCalls {
		return "" // too few to compare latencies
	}
	cp, sp := canary.P99(), stable.P99()
	if float64(cp) > th.LatencyFactor*float64(sp) && cp > sp+th.LatencyMargin {
		return fmt.Sprintf("p99 latency ≤ %s over %d timed calls vs ≤ %s on %s", round(cp), canary.Timed(), round(sp), stableVersion)
	}
	return ""
}

// pct writes a rate as a percentage: "31 %", "0.2 %".
func pct(r float64) string {
	p := r * 100
	if p >= 10 || p == 0 {
		return fmt.Sprintf("%.0f %%", p)
	}
	return fmt.Sprintf("%.1f %%", p)
}

// round keeps a latency readable: whole milliseconds from 10ms, whole
// microseconds below.
func round(d time.Duration) time.Duration {
	if d >= 10*time.Millisecond {
		return d.Round(time.Millisecond)
	}
	return d.Round(time.Microsecond)
}
