package guard

import (
	"context"
	"fmt"
	"log/slog"
	"math/bits"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hotmod/hotmod/sdk"
)

// BreakerState is the state of a circuit breaker.
type BreakerState uint32

// The breaker states.
const (
	// BreakerClosed: calls go through and their outcomes are watched.
	BreakerClosed BreakerState = iota
	// BreakerOpen: calls fail fast with circuit_open until the cool-down ends.
	BreakerOpen
	// BreakerHalfOpen: one probe call is running; its outcome closes the
	// breaker or opens it again. Other calls fail fast meanwhile.
	BreakerHalfOpen
)

var breakerStateNames = [...]string{"closed", "open", "half-open"}

func (s BreakerState) String() string {
	if int(s) < len(breakerStateNames) {
		return breakerStateNames[s]
	}
	return fmt.Sprintf("BreakerState(%d)", uint32(s))
}

// MarshalText writes the state's name.
func (s BreakerState) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads a state's name, as clients of the HTTP API do.
func (s *BreakerState) UnmarshalText(b []byte) error {
	for i, name := range breakerStateNames {
		if string(b) == name {
			*s = BreakerState(i)
			return nil
		}
	}
	return fmt.Errorf("%q is not a breaker state (closed, open or half-open)", b)
}

// The breaker's defaults.
const (
	DefaultConsecutive = 3
	DefaultWindow      = 100
	DefaultFailureRate = 0.5
	DefaultMinCalls    = 20
	DefaultCoolDown    = 5 * time.Second
)

// BreakerConfig configures the Breaker guard. Zero values mean the defaults.
type BreakerConfig struct {
	// Consecutive opens the breaker after this many failures in a row.
	// 0 means DefaultConsecutive (3); negative turns this rule off.
	Consecutive int
	// Window is how many of the latest calls the failure-rate rule looks
	// at. It counts calls, not time: a time window needs a clock read per
	// call (see the package doc). 0 means DefaultWindow (100); negative
	// turns the rule off.
	Window int
	// FailureRate opens the breaker when at least this share of the calls
	// in the window failed, once the window holds at least MinCalls calls.
	// 0 means DefaultFailureRate (0.5); it must be in (0, 1].
	FailureRate float64
	// MinCalls: 0 means DefaultMinCalls (20); never more than Window.
	MinCalls int
	// CoolDown is how long the breaker stays open before it lets a probe
	// call through, and how long a probe may run before another may go in
	// its place. 0 means DefaultCoolDown (5s).
	CoolDown time.Duration
	// OnStateChange, if set, is told of every transition of a method's
	// breaker, in order, with the reason. It runs on the goroutine of the call that caused it, with
	// the breaker's lock held: it must be quick and must not call the
	// module.
	OnStateChange func(info Info, method string, from, to BreakerState, reason string)
	// Logger gets every transition: opening at Warn, the rest at Info.
	// The default is slog.Default().
	Logger *slog.Logger
}

// MaxBreakerMethods is how many methods of one version get a breaker of
// their own. A method gets one at its first failure; once this many have,
// the calls of every other method share one more breaker (shown as
// OtherMethods), so that callers naming ever new methods of a module that
// accepts any name cannot grow the breaker's memory without bound.
const MaxBreakerMethods = 256

// OtherMethods names the breaker shared by the methods past
// MaxBreakerMethods.
const OtherMethods = "(other methods)"

// Breaker is a circuit breaker per method of a module version: a method
// that keeps failing is cut off while the version's other methods keep
// answering. Closed, it counts the outcomes of a method's calls (see the
// package doc for what a failure is); after Consecutive failures in a row,
// or when FailureRate of the method's last Window calls failed, it opens.
// Open, every call of that method fails at once with circuit_open
// (errors.Is(err, sdk.ErrCircuitOpen)) and a message that says when it will
// probe. After CoolDown the next call of the method is the probe
// (half-open): success closes the breaker and clears its counts, failure
// opens it for another CoolDown; while it runs, the method's other calls
// fail fast.
//
// A method has no breaker state until its first failure: a healthy method
// costs a map look-up and an atomic add per call, and reads no clock.
// Stats.Calls, Stats.Failures and Stats.ShortCircuited count for the
// whole version; Snapshot shows the state of each method that is not
// closed, and the version's worst.
func Breaker(c BreakerConfig) Interceptor {
	if c.Consecutive == 0 {
		c.Consecutive = DefaultConsecutive
	}
	if c.Window == 0 {
		c.Window = DefaultWindow
	}
	if c.FailureRate <= 0 || c.FailureRate > 1 {
		c.FailureRate = DefaultFailureRate
	}
	if c.MinCalls <= 0 {
		c.MinCalls = DefaultMinCalls
	}
	c.MinCalls = min(c.MinCalls, max(c.Window, 1))
	if c.CoolDown <= 0 {
		c.CoolDown = DefaultCoolDown
	}
	return func(info Info, next Handler) Handler {
		if c.Consecutive < 0 && c.Window < 0 {
			return next
		}
		set := &breakers{cfg: c, info: info, st: info.Stats, next: next, log: loggerOr(c.Logger)}
		info.Stats.breaker.Store(set)
		st := info.Stats
		return func(ctx context.Context, method string, params map[string]any) (map[string]any, error) {
			if b := set.find(method); b != nil {
				return b.call(ctx, method, params)
			}
			// The method has never failed: nothing to watch but this call.
			st.Calls.Add(1)
			out, err := next(ctx, method, params)
			if err != nil && classify(ctx, err) == failed {
				b := set.make(method)
				b.failure(b.calls.Add(1), err)
			}
			return out, err
		}
	}
}

// breakers holds the breakers of one version's methods.
type breakers struct {
	cfg  BreakerConfig
	info Info
	st   *Stats
	next Handler
	log  *slog.Logger

	byMethod sync.Map                // method → *breaker, for the methods that failed
	others   atomic.Pointer[breaker] // the shared one, once MaxBreakerMethods is reached
	mu       sync.Mutex              // serializes make
	n        int                     // breakers in byMethod
}

// find returns the method's breaker, or nil when it has none.
func (s *breakers) find(method string) *breaker {
	if v, ok := s.byMethod.Load(method); ok {
		return v.(*breaker)
	}
	return s.others.Load()
}

// make returns the method's breaker, making it when it has none.
func (s *breakers) make(method string) *breaker {
	s.mu.Lock()
	defer s.mu.Unlock()
	if b := s.find(method); b != nil {
		return b
	}
	b := &breaker{cfg: s.cfg, info: s.info, method: method, st: s.st, next: s.next, log: s.log}
	if s.n >= MaxBreakerMethods {
		b.method = OtherMethods
	}
	if s.cfg.Window > 0 {
		b.window = make([]atomic.Uint64, (s.cfg.Window+63)/64)
	}
	if s.n >= MaxBreakerMethods {
		s.others.Store(b)
		return b
	}
	s.n++
	s.byMethod.Store(method, b)
	return b
}

// MethodBreaker is the state of one method's breaker.
type MethodBreaker struct {
	State BreakerState `json:"state"`
	// Reason says why it opened.
	Reason string `json:"reason,omitempty"`
	// ProbeAt is when an open breaker lets a probe call through.
	ProbeAt time.Time `json:"probe_at,omitzero"`
}

// describe returns the breakers that are not closed, by method.
func (s *breakers) describe() map[string]MethodBreaker {
	var m map[string]MethodBreaker
	add := func(b *breaker) {
		st, reason, at := b.describe()
		if st == BreakerClosed {
			return
		}
		if m == nil {
			m = map[string]MethodBreaker{}
		}
		m[b.method] = MethodBreaker{State: st, Reason: reason, ProbeAt: at}
	}
	s.byMethod.Range(func(_, v any) bool { add(v.(*breaker)); return true })
	if b := s.others.Load(); b != nil {
		add(b)
	}
	return m
}

// breaker is the circuit breaker of one method.
type breaker struct {
	cfg    BreakerConfig
	info   Info
	method string
	st     *Stats
	next   Handler
	log    *slog.Logger

	// Read on every call.
	state       atomic.Uint32 // a BreakerState
	consecutive atomic.Int64  // failures in a row while closed
	failed      atomic.Int64  // bits set in window
	calls       atomic.Int64  // the method's calls since the breaker was made
	// window holds the outcome of the latest calls, one bit each (1 =
	// failed): call number n (calls after its increment) owns bit
	// n % Window. failed is always the number of bits set.
	window []atomic.Uint64
	base   atomic.Int64 // calls when the window was last cleared

	// until is, open, when a probe may go (unix ns), and half-open, when
	// another probe may go in place of one that has not answered.
	until atomic.Int64
	// refusal is the error calls get while the breaker is open or
	// half-open, made once per transition, not per refused call.
	refusal atomic.Pointer[sdk.Error]

	reason atomic.Pointer[string] // why it last opened

	mu    sync.Mutex // serializes transitions; guards probe
	probe uint64     // which probe may decide: a newer one makes an older one's outcome moot
}

// call makes a call of the breaker's method.
func (b *breaker) call(ctx context.Context, method string, params map[string]any) (map[string]any, error) {
	if BreakerState(b.state.Load()) != BreakerClosed {
		return b.notClosed(ctx, method, params)
	}
	b.st.Calls.Add(1)
	n := b.calls.Add(1)
	out, err := b.next(ctx, method, params)
	if err != nil {
		if classify(ctx, err) == failed {
			b.failure(n, err)
		}
		return out, err
	}
	if b.consecutive.Load() != 0 {
		b.consecutive.Store(0)
	}
	if b.failed.Load() != 0 {
		b.record(n, false)
	}
	return out, nil
}

// outcome is what a call's result says about the module's health.
type outcome uint8

const (
	succeeded outcome = iota
	failed
	ignored // says nothing: the caller's mistake, a refusal, or the caller gave up
)

// classify decides what a call's error says about the module; see the
// package doc.
func classify(ctx context.Context, err error) outcome {
	if err == nil {
		return succeeded
	}
	code := sdk.CodeOf(err)
	switch code {
	case sdk.CodePanic:
		return failed
	case sdk.CodeBadParams, sdk.CodeUnknownMethod, sdk.CodeOverloaded, sdk.CodeCircuitOpen:
		return ignored
	}
	if ctx.Err() != nil {
		return ignored
	}
	return failed
}

// record sets call n's bit in the window to whether it failed, keeping
// b.failed equal to the number of bits set. Calls from before the window
// was last cleared are not recorded.
func (b *breaker) record(n int64, fail bool) {
	if b.window == nil || n <= b.base.Load() {
		return
	}
	slot := uint64(n) % uint64(b.cfg.Window)
	word, mask := &b.window[slot/64], uint64(1)<<(slot%64)
	if fail {
		if word.Or(mask)&mask == 0 {
			b.failed.Add(1)
		}
	} else if word.Load()&mask != 0 && word.And(^mask)&mask != 0 {
		b.failed.Add(-1)
	}
}

// failure counts a failed call made while closed and opens the breaker
// when a rule says so.
func (b *breaker) failure(n int64, err error) {
	b.st.Failures.Add(1)
	b.record(n, true)
	inRow := b.consecutive.Add(1)
	if b.cfg.Consecutive > 0 && inRow >= int64(b.cfg.Consecutive) {
		b.open(BreakerClosed, fmt.Sprintf("%d failures in a row (the last: %v)", inRow, err))
		return
	}
	if b.window == nil {
		return
	}
	seen := min(n-b.base.Load(), int64(b.cfg.Window))
	f := b.failed.Load()
	if seen >= int64(b.cfg.MinCalls) && float64(f) >= b.cfg.FailureRate*float64(seen) {
		b.open(BreakerClosed, fmt.Sprintf("%d of the last %d calls failed (the last: %v)", f, seen, err))
	}
}

// open moves the breaker from state from (closed or half-open) to open. It
// does nothing when the breaker is no longer in from: another call moved it.
func (b *breaker) open(from BreakerState, reason string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if BreakerState(b.state.Load()) != from {
		return
	}
	b.openLocked(from, reason)
}

func (b *breaker) openLocked(from BreakerState, reason string) {
	probeAt := time.Now().Add(b.cfg.CoolDown)
	b.reason.Store(&reason)
	b.refusal.Store(&sdk.Error{Code: sdk.CodeCircuitOpen, Message: fmt.Sprintf(
		"%s: the circuit of %s is open after %s: its calls fail fast until a probe call at %s",
		b.info.ref(), b.method, reason, probeAt.Format("2006-01-02T15:04:05.000Z07:00"))})
	b.until.Store(probeAt.UnixNano())
	b.state.Store(uint32(BreakerOpen))
	b.log.Warn("circuit breaker opened", "module", b.info.Module, "version", b.info.Version,
		"method", b.method, "reason", reason, "probe_at", probeAt, "from", from.String())
	if b.cfg.OnStateChange != nil {
		b.cfg.OnStateChange(b.info, b.method, from, BreakerOpen, reason)
	}
}

// notClosed handles a call that found the breaker open or half-open: it
// becomes the probe when its time has come, and fails fast otherwise.
func (b *breaker) notClosed(ctx context.Context, method string, params map[string]any) (map[string]any, error) {
	now := time.Now().UnixNano()
	if now >= b.until.Load() {
		b.mu.Lock()
		st := BreakerState(b.state.Load())
		if st != BreakerClosed && now >= b.until.Load() {
			b.probe++
			probe := b.probe
			b.until.Store(now + int64(b.cfg.CoolDown))
			if st == BreakerOpen {
				b.refusal.Store(&sdk.Error{Code: sdk.CodeCircuitOpen, Message: fmt.Sprintf(
					"%s: the circuit of %s is half-open: a probe call is deciding whether it recovered (it opened after %s)",
					b.info.ref(), b.method, *b.reason.Load())})
				b.state.Store(uint32(BreakerHalfOpen))
				b.log.Info("circuit breaker half-open: probing", "module", b.info.Module, "version", b.info.Version, "method", b.method, "call", method)
				if b.cfg.OnStateChange != nil {
					b.cfg.OnStateChange(b.info, b.method, BreakerOpen, BreakerHalfOpen, "the cool-down ended: probing with a call to "+method)
				}
			}
			b.mu.Unlock()
			return b.probeCall(probe, ctx, method, params)
		}
		b.mu.Unlock()
		if st == BreakerClosed {
			return b.call(ctx, method, params)
		}
	}
	b.st.ShortCircuited.Add(1)
	return nil, b.refusal.Load()
}

// probeCall makes the call that decides a half-open breaker's fate.
func (b *breaker) probeCall(probe uint64, ctx context.Context, method string, params map[string]any) (out map[string]any, err error) {
	decided := false
	defer func() {
		if !decided { // the rest of the chain panicked: that is a failure
			b.st.Failures.Add(1)
			b.settle(probe, failed, fmt.Sprintf("the probe call to %s panicked", method))
		}
	}()
	b.st.Calls.Add(1)
	b.calls.Add(1)
	out, err = b.next(ctx, method, params)
	decided = true
	o := classify(ctx, err)
	reason := "the probe call to " + method + " succeeded"
	if o == failed {
		b.st.Failures.Add(1)
		reason = fmt.Sprintf("the probe call to %s failed: %v", method, err)
	}
	b.settle(probe, o, reason)
	return out, err
}

// settle applies a probe's outcome, unless a newer probe has taken its place
// or the breaker left half-open meanwhile.
func (b *breaker) settle(probe uint64, o outcome, reason string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if probe != b.probe || BreakerState(b.state.Load()) != BreakerHalfOpen {
		return
	}
	switch o {
	case failed:
		b.openLocked(BreakerHalfOpen, reason)
	case ignored:
		b.until.Store(0) // it decided nothing: the next call probes
	case succeeded:
		b.consecutive.Store(0)
		b.base.Store(b.calls.Load())
		for i := range b.window {
			b.failed.Add(-int64(bits.OnesCount64(b.window[i].Swap(0))))
		}
		b.until.Store(0)
		b.state.Store(uint32(BreakerClosed))
		b.log.Info("circuit breaker closed", "module", b.info.Module, "version", b.info.Version, "method", b.method, "reason", reason)
		if b.cfg.OnStateChange != nil {
			b.cfg.OnStateChange(b.info, b.method, BreakerHalfOpen, BreakerClosed, reason)
		}
	}
}

// describe returns the state, why the breaker opened (while it is not
// closed: a closed breaker has no reason to show) and, when it is open,
// when it probes. It takes no lock, so that a registry may call it
// under its own lock while OnStateChange takes that lock under the
// breaker's.
func (b *breaker) describe() (BreakerState, string, time.Time) {
	st := BreakerState(b.state.Load())
	var at time.Time
	if st == BreakerOpen {
		at = time.Unix(0, b.until.Load())
	}
	reason := ""
	if r := b.reason.Load(); r != nil && st != BreakerClosed {
		reason = *r
	}
	return st, reason, at
}
