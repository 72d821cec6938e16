package guard

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hotmod/hotmod/sdk"
)

// DefaultLimit is how many calls a module may run at once when the
// BulkheadConfig says nothing.
const DefaultLimit = 64

// BulkheadConfig configures the Bulkhead guard.
type BulkheadConfig struct {
	// Limit is how many calls a module (all its versions together) may run
	// at once. 0 means DefaultLimit; a negative limit means no limit.
	Limit int
	// Modules sets the limit of a module by name, overriding Limit
	// (0 means Limit, negative no limit).
	Modules map[string]int
	// Wait is how long a call may wait for a free slot before it is
	// refused. 0 refuses at once. At most Limit calls wait at a time;
	// more are refused at once, so nothing queues without bound. Keep it
	// short: a caller that waits holds its own resources meanwhile.
	Wait time.Duration
}

// Bulkhead limits how many calls a module runs at once; a call over the
// limit fails with overloaded (errors.Is(err, sdk.ErrOverloaded)) without
// reaching the module. It counts Stats.Overloaded.
//
// The limit is per module: every version of a module that goes through the
// same Bulkhead interceptor shares one count, so a swap, during which the
// old version drains while the new one serves, does not double it. Make
// the interceptor once and use it for every version (Standard does).
//
// A call that gets a slot holds it until it returns to this guard: a call
// abandoned by the Deadline guard inside gives its slot back at its
// deadline, and from then on the Deadline guard's AbandonLimit bounds it.
func Bulkhead(c BulkheadConfig) Interceptor {
	var mu sync.Mutex
	sems := map[string]*semaphore{}
	return func(info Info, next Handler) Handler {
		limit := c.Limit
		if l, ok := c.Modules[info.Module]; ok && l != 0 {
			limit = l
		}
		if limit == 0 {
			limit = DefaultLimit
		}
		if limit < 0 {
			return next
		}
		mu.Lock()
		sem := sems[info.Module]
		if sem == nil {
			sem = newSemaphore(info.Module, int64(limit), c.Wait)
			sems[info.Module] = sem
		}
		mu.Unlock()
		info.Stats.bulkhead.Store(sem)
		st := info.Stats
		return func(ctx context.Context, method string, params map[string]any) (map[string]any, error) {
			if !sem.tryAcquire() && !sem.wait(ctx) {
				st.Overloaded.Add(1)
				return nil, sem.full
			}
			defer sem.release()
			return next(ctx, method, params)
		}
	}
}

// semaphore counts the calls one module runs.
type semaphore struct {
	n       atomic.Int64 // calls holding a slot; never above limit
	limit   int64
	waiting atomic.Int64  // calls in wait
	freed   chan struct{} // a slot was freed while calls waited; spurious signals are fine
	maxWait time.Duration
	// full is the error every refused call gets. It is shared, not made per
	// call, so that refusing costs nothing when the host is busiest.
	full *sdk.Error
}

func newSemaphore(module string, limit int64, wait time.Duration) *semaphore {
	s := &semaphore{limit: limit, maxWait: wait, freed: make(chan struct{}, limit)}
	msg := fmt.Sprintf("module %s already runs %d calls, the most the host allows at once; try again later", module, limit)
	if wait > 0 {
		msg = fmt.Sprintf("module %s already runs %d calls, the most the host allows at once, and none finished within %s; try again later", module, limit, wait)
	}
	s.full = &sdk.Error{Code: sdk.CodeOverloaded, Message: msg}
	return s
}

func (s *semaphore) tryAcquire() bool {
	for {
		n := s.n.Load()
		if n >= s.limit {
			return false
		}
		if s.n.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

func (s *semaphore) release() {
	s.n.Add(-1)
	if s.maxWait > 0 && s.waiting.Load() > 0 {
		select {
		case s.freed <- struct{}{}:
		default:
		}
	}
}

// wait waits up to the configured time for a slot. Registering as a waiter
// before retrying means a release either sees the waiter and signals, or
// happened before the retry, which then finds the slot.
func (s *semaphore) wait(ctx context.Context) bool {
	if s.maxWait <= 0 {
		return false
	}
	if s.waiting.Add(1) > s.limit {
		s.waiting.Add(-1)
		return false
	}
	defer s.waiting.Add(-1)
	t := time.NewTimer(s.maxWait)
	defer t.Stop()
	for {
		if s.tryAcquire() {
			return true
		}
		select {
		case <-s.freed:
		case <-t.C:
			return s.tryAcquire()
		case <-ctx.Done():
			return false
		}
	}
}
