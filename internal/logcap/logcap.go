// Package logcap bounds how much a module's output may put into the host's
// log: a module that prints in a loop must not fill the disk or drown the
// host's own records. Each module gets a Limiter, a token bucket of bytes;
// output beyond it is dropped and counted, and the next record let through
// is preceded by one that says how much was dropped.
package logcap

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Defaults: a module may log Burst bytes at once, and Rate bytes a second
// on average.
const (
	Rate  = 64 << 10 // bytes a second
	Burst = 1 << 20  // bytes
)

// Limiter is one module's output budget; it is safe for concurrent use.
type Limiter struct {
	rate, burst float64

	mu      sync.Mutex
	tokens  float64
	last    time.Time
	dropped int64 // bytes dropped since the last report
	records int64 // records dropped since the last report
}

// New returns a limiter of rate bytes a second with bursts of burst bytes;
// it starts full.
func New(rate, burst int) *Limiter {
	return &Limiter{rate: float64(rate), burst: float64(burst), tokens: float64(burst)}
}

// Allow takes n bytes from the budget and reports whether a record of that
// size may be logged. When it may and output was dropped before, dropped
// and records say how much (and are reset).
func (l *Limiter) Allow(n int) (ok bool, dropped, records int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	if !l.last.IsZero() {
		l.tokens = min(l.burst, l.tokens+now.Sub(l.last).Seconds()*l.rate)
	}
	l.last = now
	if float64(n) > l.tokens {
		l.dropped += int64(n)
		l.records++
		return false, 0, 0
	}
	l.tokens -= float64(n)
	dropped, records = l.dropped, l.records
	l.dropped, l.records = 0, 0
	return true, dropped, records
}

// Log logs a record of module output of size n through logger, unless the
// budget is spent; record does the logging. Before the first record after
// a drop it logs a warning that says how much was dropped, with attrs.
func (l *Limiter) Log(logger *slog.Logger, n int, attrs []slog.Attr, record func()) {
	ok, dropped, records := l.Allow(n)
	if !ok {
		return
	}
	if dropped > 0 {
		l.report(logger, dropped, records, attrs)
	}
	record()
}

// Flush logs what was dropped since the last record, if anything: for a
// module that stops (or stops printing) while over its budget.
func (l *Limiter) Flush(logger *slog.Logger, attrs []slog.Attr) {
	l.mu.Lock()
	dropped, records := l.dropped, l.records
	l.dropped, l.records = 0, 0
	l.mu.Unlock()
	if dropped > 0 {
		l.report(logger, dropped, records, attrs)
	}
}

func (l *Limiter) report(logger *slog.Logger, dropped, records int64, attrs []slog.Attr) {
	all := append([]slog.Attr{slog.Int64("dropped_bytes", dropped), slog.Int64("dropped_records", records),
		slog.Int64("limit_bytes_per_second", int64(l.rate))}, attrs...)
	logger.LogAttrs(context.Background(), slog.LevelWarn, "module output dropped: it logs more than its limit", all...)
}
