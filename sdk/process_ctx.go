package sdk

import (
	"context"
	"sync"
	"time"
)

// callCtx is the context of one request a child runs (a call, init or
// check): its deadline (the host's "timeout_us"), its trace context, the
// Host its calls to other modules go through, and cancellation by the
// host's "cancel" or the end of serving.
//
// It is one allocation, and it sets no timer until someone asks for Done:
// context.WithTimeout would set one on every call, and setting a timer
// wakes another thread of the runtime to watch it, which costs more than a
// small call. Most methods never look at Done; the host enforces the
// deadline anyway (it returns timeout to its caller and sends "cancel"). Err
// reports the deadline once it has passed whether or not Done was asked
// for.
type callCtx struct {
	parent   context.Context // the server's base: Background, or carrying an unreachableHost
	deadline time.Time       // zero for none
	trace    string
	host     *requestHost // nil: the parent's Host answers
	rh       requestHost  // host points here, when set

	mu    sync.Mutex
	done  chan struct{} // made by the first Done; closed once err is set
	err   error
	timer *time.Timer    // set by Done or AfterFunc when there is a deadline
	after map[int]func() // AfterFunc's functions, run when the context ends
	next  int
}

func (s *processServer) newCallCtx(req *request, r *reader) *callCtx {
	c := &callCtx{parent: s.base, trace: req.TraceParent}
	if req.Timeout > 0 {
		c.deadline = time.Now().Add(req.Timeout)
	}
	if s.calls != nil {
		// Call, in the method or hook, reaches other modules through the
		// host, on behalf of this request.
		c.rh = requestHost{s: s, parent: req.ID, r: r, deadline: c.deadline}
		c.host = &c.rh
	}
	return c
}

func (c *callCtx) Deadline() (time.Time, bool) { return c.deadline, !c.deadline.IsZero() }

func (c *callCtx) Done() <-chan struct{} {
	c.mu.Lock()
	if c.done == nil {
		c.done = make(chan struct{})
		if c.err != nil {
			close(c.done)
		} else {
			c.watch() // closes done if the deadline has passed
		}
	}
	done := c.done
	c.mu.Unlock()
	c.ran()
	return done
}

// watch sets the timer of the deadline, unless it is set or the context has
// ended; c.mu is held.
func (c *callCtx) watch() {
	if c.expired(); c.err == nil && c.timer == nil && !c.deadline.IsZero() {
		c.timer = time.AfterFunc(time.Until(c.deadline), func() { c.cancel(context.DeadlineExceeded) })
	}
}

// AfterFunc runs f when the context ends (at once, on a goroutine of its
// own, if it has). The context package uses it for contexts derived from
// this one, and for context.AfterFunc, instead of a goroutine that waits
// for Done.
func (c *callCtx) AfterFunc(f func()) (stop func() bool) {
	c.mu.Lock()
	c.watch()
	if c.err != nil {
		c.mu.Unlock()
		c.ran()
		go f()
		return func() bool { return false }
	}
	if c.after == nil {
		c.after = map[int]func(){}
	}
	id := c.next
	c.next++
	c.after[id] = f
	c.mu.Unlock()
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		_, ok := c.after[id]
		delete(c.after, id)
		return ok
	}
}

func (c *callCtx) Err() error {
	c.mu.Lock()
	c.expired()
	err := c.err
	c.mu.Unlock()
	c.ran()
	return err
}

// expired sets err when the deadline has passed; c.mu is held.
func (c *callCtx) expired() {
	if c.err == nil && !c.deadline.IsZero() && !time.Now().Before(c.deadline) {
		c.end(context.DeadlineExceeded)
	}
}

// cancel ends the context with err, unless it has ended.
func (c *callCtx) cancel(err error) {
	c.mu.Lock()
	if c.err == nil {
		c.end(err)
	}
	c.mu.Unlock()
	c.ran()
}

// ran runs the functions of AfterFunc once the context has ended (whoever
// notices first that the deadline passed ends it).
func (c *callCtx) ran() {
	c.mu.Lock()
	var after map[int]func()
	if c.err != nil {
		after, c.after = c.after, nil
	}
	c.mu.Unlock()
	for _, f := range after {
		f()
	}
}

// end sets err and closes done; c.mu is held and err is unset. The
// functions of AfterFunc are left for the caller to run, without the lock.
func (c *callCtx) end(err error) {
	c.err = err
	if c.done != nil {
		close(c.done)
	}
	if c.timer != nil {
		c.timer.Stop()
	}
}

func (c *callCtx) Value(key any) any {
	switch key.(type) {
	case traceParentKey:
		if c.trace != "" {
			return c.trace
		}
	case requestHostKey:
		if c.host != nil {
			return c.host
		}
	}
	return c.parent.Value(key)
}

func (c *callCtx) String() string { return "sdk.processCall" }
