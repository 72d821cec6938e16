package guard

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hotmod/hotmod/sdk"
)

// The Deadline guard's defaults.
const (
	DefaultTimeout      = 10 * time.Second
	DefaultMaxSuggested = time.Minute
	DefaultAbandonLimit = 5
)

// DeadlineConfig configures the Deadline guard. A duration that is 0 in a
// map means "not set here"; a negative one means "no deadline".
type DeadlineConfig struct {
	// Default is the deadline of a call when nothing more specific is set.
	// 0 means DefaultTimeout (10s); negative means none.
	Default time.Duration
	// Modules sets the deadline of every method of a module, by module name.
	Modules map[string]time.Duration
	// Methods sets the deadline of one method: Methods[module][method].
	Methods map[string]map[string]time.Duration
	// Suggested returns the deadline a module suggests for one of its
	// methods, or 0 for none (the registry reads sdk.MethodInfo.Timeout).
	// A suggestion counts only where the host set nothing for the method
	// or its module, and never beyond MaxSuggested.
	Suggested func(m sdk.Manifest, method string) time.Duration
	// MaxSuggested caps suggestions. 0 means DefaultMaxSuggested (1m).
	MaxSuggested time.Duration
	// Detach reports whether a version's calls must run on a goroutine of
	// their own to be abandoned at their deadline: true for transports
	// whose calls cannot be pre-empted. For the others the deadline is
	// only put in the call's context, which the transport enforces itself.
	// nil means DetachNative.
	Detach func(Info) bool
	// AbandonLimit: when this many abandoned calls of one version are
	// still running at the same time, OnPileUp is called, once per
	// version. 0 means DefaultAbandonLimit (5); negative means never.
	AbandonLimit int
	// OnPileUp is told that a version's abandoned calls piled up to
	// AbandonLimit; the registry quarantines the version. It runs on a
	// goroutine of its own, so it may take locks and wait for calls.
	OnPileUp func(info Info, lingering int64)
	// Logger gets each abandoned call at Warn, its return at Info, and the
	// pile-up at Error. The default is slog.Default().
	Logger *slog.Logger
}

// DetachNative is the default DeadlineConfig.Detach: calls into native and
// builtin modules, which are Go code in the host's own process, are
// detached, and so are those of a version whose Info says Uninterruptible
// (wasm on the trusted tier); wasm and process transports otherwise
// enforce a context's deadline themselves.
func DetachNative(info Info) bool {
	return info.Transport == "native" || info.Transport == "builtin" || info.Uninterruptible
}

// Deadline gives every call a deadline: per method, per module, suggested
// by the module, or the default, in that order of precedence. When the
// caller's context ends sooner, that is the deadline. Expiry is an error
// with code timeout (errors.Is(err, sdk.ErrTimeout)).
//
// For a detached version (see DeadlineConfig.Detach) the call runs on a
// goroutine of its own while the caller waits for the result or the
// deadline, whichever comes first. At the deadline the caller gets timeout
// and the call is abandoned: its goroutine runs on until the module
// returns, because Go code cannot be stopped from outside. Stats counts
// Abandoned calls and those still Lingering; at AbandonLimit lingering
// calls, OnPileUp is called. The goroutine has a panic net of its own: a
// panic on it must not end the host.
//
// Cost: nothing is added when no deadline applies (none configured, none in
// the context). A deadline of the guard's own costs a context.WithTimeout;
// a detached call costs a goroutine as well. A caller's context whose
// deadline is already sooner than the guard's saves the WithTimeout.
func Deadline(c DeadlineConfig) Interceptor {
	if c.Default == 0 {
		c.Default = DefaultTimeout
	}
	if c.MaxSuggested <= 0 {
		c.MaxSuggested = DefaultMaxSuggested
	}
	if c.Detach == nil {
		c.Detach = DetachNative
	}
	if c.AbandonLimit == 0 {
		c.AbandonLimit = DefaultAbandonLimit
	}
	return func(info Info, next Handler) Handler {
		g := &deadlineGuard{info: info, st: info.Stats, next: next, log: loggerOr(c.Logger),
			detach: c.Detach(info), limit: int64(c.AbandonLimit), onPileUp: c.OnPileUp}
		g.resolve(c)
		if !g.detach && g.base <= 0 && g.methods == nil && g.byName == nil {
			return next // the transport enforces whatever deadline the caller's context has
		}
		if !g.detach {
			return g.attached
		}
		if g.base > 0 || g.methods != nil || g.byName != nil {
			return g.detached
		}
		// No deadline of the guard's: detach only calls whose context has one.
		return func(ctx context.Context, method string, params map[string]any) (map[string]any, error) {
			if _, ok := ctx.Deadline(); !ok {
				return next(ctx, method, params)
			}
			return g.detached(ctx, method, params)
		}
	}
}

type deadlineGuard struct {
	info Info
	st   *Stats
	next Handler
	log  *slog.Logger

	base     time.Duration            // for methods without their own; <= 0: none
	methods  []methodDeadline         // methods whose deadline differs from base, when few
	byName   map[string]time.Duration // the same, when many
	detach   bool
	limit    int64 // AbandonLimit; <= 0: never
	piled    atomic.Bool
	onPileUp func(Info, int64)
}

type methodDeadline struct {
	name string
	d    time.Duration
}

// fewMethods is how many per-method deadlines are scanned instead of hashed.
const fewMethods = 8

// resolve works out each method's deadline once, when the chain is built.
func (g *deadlineGuard) resolve(c DeadlineConfig) {
	module := g.info.Module
	g.base = c.Default
	modSet := false
	if d := c.Modules[module]; d != 0 {
		g.base, modSet = d, true
	}
	names := map[string]bool{}
	for _, m := range g.info.Manifest.Methods {
		names[m.Name] = true
	}
	for name := range c.Methods[module] {
		names[name] = true
	}
	all := map[string]time.Duration{}
	for name := range names {
		d := g.base
		if md := c.Methods[module][name]; md != 0 {
			d = md
		} else if !modSet && c.Suggested != nil {
			if s := c.Suggested(g.info.Manifest, name); s > 0 {
				d = min(s, c.MaxSuggested)
			}
		}
		if d != g.base && !(d < 0 && g.base < 0) {
			all[name] = d
		}
	}
	if len(all) > fewMethods {
		g.byName = all
		return
	}
	for name, d := range all {
		g.methods = append(g.methods, methodDeadline{name, d})
	}
}

func (g *deadlineGuard) timeout(method string) time.Duration {
	if g.byName != nil {
		if d, ok := g.byName[method]; ok {
			return d
		}
		return g.base
	}
	for i := range g.methods {
		if g.methods[i].name == method {
			return g.methods[i].d
		}
	}
	return g.base
}

// deadline returns the context the call runs with: ctx itself when no
// deadline of the guard's applies or ctx's own ends sooner, and otherwise a
// child of ctx with the guard's deadline and the function that releases it.
func (g *deadlineGuard) deadline(ctx context.Context, method string) (context.Context, context.CancelFunc, time.Duration) {
	d := g.timeout(method)
	if d <= 0 {
		return ctx, nil, 0
	}
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= d {
		return ctx, nil, 0
	}
	ctx, cancel := context.WithTimeout(ctx, d)
	return ctx, cancel, d
}

// attached serves a transport that enforces its context itself: the
// deadline goes into the context and the call runs on the caller's
// goroutine.
func (g *deadlineGuard) attached(ctx context.Context, method string, params map[string]any) (map[string]any, error) {
	callCtx, cancel, d := g.deadline(ctx, method)
	if cancel == nil {
		out, err := g.next(ctx, method, params)
		if err != nil && sdk.CodeOf(err) == sdk.CodeTimeout {
			g.st.Timeouts.Add(1)
		}
		return out, err
	}
	out, err := g.next(callCtx, method, params)
	if err != nil && sdk.CodeOf(err) == sdk.CodeTimeout {
		g.st.Timeouts.Add(1)
		if ctx.Err() == nil && errors.Is(callCtx.Err(), context.DeadlineExceeded) {
			err = sdk.Errorf(sdk.CodeTimeout, "%s: %s gave no answer within %s, its deadline (%s)",
				g.info.ref(), method, d, sdk.AsError(err).Message)
		}
	}
	cancel()
	return out, err
}

// call is one detached call; calls are pooled, so that a call that is not
// abandoned costs no allocation of its own.
type call struct {
	g      *deadlineGuard
	ctx    context.Context
	method string
	params map[string]any
	out    map[string]any
	err    error
	state  atomic.Int32  // running, returned or abandoned; the first to move it owns the call
	done   chan struct{} // the module returned (buffered: the goroutine never waits)
}

const (
	running int32 = iota
	returned
	abandoned
)

var callPool = sync.Pool{New: func() any { return &call{done: make(chan struct{}, 1)} }}

func (c *call) recycle() {
	c.g, c.ctx, c.method, c.params, c.out, c.err = nil, nil, "", nil, nil, nil
	c.state.Store(running)
	callPool.Put(c)
}

// run is the detached goroutine.
func (c *call) run() {
	defer c.finish()
	c.out, c.err = c.g.next(c.ctx, c.method, c.params)
}

func (c *call) finish() {
	g := c.g
	if p := recover(); p != nil {
		c.out, c.err = nil, panicked(g.log, g.info, g.st, c.method, p)
	}
	if c.state.CompareAndSwap(running, returned) {
		c.done <- struct{}{} // the caller owns c from here
		return
	}
	// Abandoned: nobody waits for the result any more.
	g.st.Lingering.Add(-1)
	g.log.Info("an abandoned call returned", "module", g.info.Module, "version", g.info.Version,
		"method", c.method, "err", c.err)
	c.recycle()
}

// detached serves a transport whose calls cannot be pre-empted: when a
// deadline applies, the call runs on a goroutine of its own and the caller
// waits for it or for the deadline.
func (g *deadlineGuard) detached(ctx context.Context, method string, params map[string]any) (map[string]any, error) {
	callCtx, cancel, d := g.deadline(ctx, method)
	if cancel == nil {
		if _, ok := ctx.Deadline(); !ok {
			return g.next(ctx, method, params) // no deadline anywhere: nothing to wait for
		}
	}
	if err := callCtx.Err(); err != nil { // over before it began: do not start what cannot finish
		if cancel != nil {
			cancel()
		}
		g.st.Timeouts.Add(1)
		return nil, sdk.Errorf(sdk.CodeTimeout, "%s: %s: the call's context had ended (%v) before it began", g.info.ref(), method, err)
	}
	c := callPool.Get().(*call)
	c.g, c.ctx, c.method, c.params = g, callCtx, method, params
	go c.run()
	select {
	case <-c.done:
		return g.returned(c, cancel)
	case <-callCtx.Done():
	}
	// Count it lingering before the goroutine can see it abandoned and
	// count it back; the count the increment returns is exact, where a
	// later Load could already miss a call.
	lingering := g.st.Lingering.Add(1)
	if !c.state.CompareAndSwap(running, abandoned) {
		g.st.Lingering.Add(-1)
		<-c.done // it returned just now: take its answer
		return g.returned(c, cancel)
	}
	// From here c belongs to the goroutine.
	g.st.Abandoned.Add(1)
	g.st.Timeouts.Add(1)
	var err error
	if ctx.Err() == nil && d > 0 {
		err = sdk.Errorf(sdk.CodeTimeout, "%s: %s gave no answer within %s, its deadline; the call was abandoned and runs on (%d abandoned calls of this version still running)",
			g.info.ref(), method, d, lingering)
	} else {
		err = sdk.Errorf(sdk.CodeTimeout, "%s: %s: the caller's context ended (%v) before the module answered; the call was abandoned and runs on (%d abandoned calls of this version still running)",
			g.info.ref(), method, ctx.Err(), lingering)
	}
	if cancel != nil {
		cancel()
	}
	g.log.Warn("call abandoned at its deadline", "module", g.info.Module, "version", g.info.Version,
		"method", method, "deadline", d, "lingering", lingering)
	if g.limit > 0 && lingering >= g.limit && g.piled.CompareAndSwap(false, true) {
		g.log.Error("abandoned calls piled up", "module", g.info.Module, "version", g.info.Version,
			"lingering", lingering, "limit", g.limit)
		if g.onPileUp != nil {
			go g.onPileUp(g.info, lingering)
		}
	}
	return nil, err
}

func (g *deadlineGuard) returned(c *call, cancel context.CancelFunc) (map[string]any, error) {
	out, err := c.out, c.err
	c.recycle()
	if cancel != nil {
		cancel()
	}
	if err != nil && sdk.CodeOf(err) == sdk.CodeTimeout {
		g.st.Timeouts.Add(1)
	}
	return out, err
}
