package main

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// counter is one caller's count, padded to a cache line of its own so that
// the callers do not slow each other down by counting.
type counter struct {
	calls, errs int64
	_           [48]byte
}

// throughput runs callers goroutines that call f back to back for about d
// and returns completed calls per second (calls that returned an error are
// not counted as completed) and the number of errors. The time runs from
// releasing the callers until the last of them has returned.
func throughput(f func() error, callers int, d time.Duration) (perSec float64, errs int64) {
	counts := make([]counter, callers)
	var stop atomic.Bool
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range counts {
		wg.Add(1)
		go func(c *counter) {
			defer wg.Done()
			<-start
			for !stop.Load() {
				if f() != nil {
					c.errs++
				} else {
					c.calls++
				}
			}
		}(&counts[i])
	}
	t0 := time.Now()
	close(start)
	time.Sleep(d)
	stop.Store(true)
	wg.Wait()
	el := time.Since(t0)
	var calls int64
	for _, c := range counts {
		calls += c.calls
		errs += c.errs
	}
	return float64(calls) / el.Seconds(), errs
}

func fmtRate(perSec float64) string {
	switch {
	case perSec >= 1e6:
		return fmt.Sprintf("%.2f M/s", perSec/1e6)
	case perSec >= 1e4:
		return fmt.Sprintf("%.0f k/s", perSec/1e3)
	case perSec >= 1e3:
		return fmt.Sprintf("%.1f k/s", perSec/1e3)
	}
	return fmt.Sprintf("%.0f /s", perSec)
}
