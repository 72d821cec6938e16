package guard

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hotmod/hotmod/sdk"
)

// Handler calls a method of one module version: the shape of every
// transport's Invoke.
type Handler func(ctx context.Context, method string, params map[string]any) (map[string]any, error)

// Info describes the module version a chain is built for.
type Info struct {
	Module    string
	Version   string
	Transport string // "native", "builtin", "wasm", "process"
	Manifest  sdk.Manifest
	// Uninterruptible: the version's calls cannot be stopped from outside
	// although its transport is not native (a wasm module on the trusted
	// tier); DetachNative detaches them as native calls.
	Uninterruptible bool
	// Stats is where the guards count what they do for this version, and
	// where the breaker and the bulkhead show their state (see
	// Stats.Snapshot). Give each version a Stats of its own; Chain makes a
	// private one when it is nil.
	Stats *Stats
}

// ref is "name@version", as errors and logs name a version.
func (i Info) ref() string { return i.Module + "@" + i.Version }

// Interceptor wraps next, the rest of the chain, for the version info
// describes. It runs once, when the chain is built; the Handler it returns
// runs on every call. An interceptor with nothing to do for a version
// returns next itself, which costs nothing per call.
type Interceptor func(info Info, next Handler) Handler

// Chain wraps h in the interceptors: is[0] is outermost, the first to see
// a call and the last to see its result. Nil interceptors are skipped.
// Build the chain once per version, when it is activated, not per call.
func Chain(info Info, h Handler, is ...Interceptor) Handler {
	if info.Stats == nil {
		info.Stats = new(Stats)
	}
	for i := len(is) - 1; i >= 0; i-- {
		if is[i] != nil {
			h = is[i](info, h)
		}
	}
	return h
}

// Config configures the standard guards.
type Config struct {
	Breaker  BreakerConfig
	Bulkhead BulkheadConfig
	Deadline DeadlineConfig
	Recover  RecoverConfig
	// Logger is used by every guard whose own config has no logger.
	// The default is slog.Default().
	Logger *slog.Logger
}

// Standard returns the guards in the order they are meant to run: Breaker,
// Bulkhead, Deadline, Recover (see the package doc for why). Make them once,
// for the registry, and apply them to every version with Chain: the
// Bulkhead is per module only because its versions share one interceptor.
func Standard(c Config) []Interceptor {
	if c.Breaker.Logger == nil {
		c.Breaker.Logger = c.Logger
	}
	if c.Deadline.Logger == nil {
		c.Deadline.Logger = c.Logger
	}
	if c.Recover.Logger == nil {
		c.Recover.Logger = c.Logger
	}
	return []Interceptor{Breaker(c.Breaker), Bulkhead(c.Bulkhead), Deadline(c.Deadline), Recover(c.Recover)}
}

// Stats counts what the guards did for one module version. Each counter is
// kept by one guard, named in its comment; a chain without that guard leaves
// it at zero. Read the counters with their Load methods, or all at once
// with Snapshot.
type Stats struct {
	// Calls the breaker let through to the rest of the chain (Breaker).
	Calls atomic.Int64
	// Failures among those calls (Breaker; see the package doc).
	Failures atomic.Int64
	// ShortCircuited: calls refused with circuit_open (Breaker).
	ShortCircuited atomic.Int64
	// Overloaded: calls refused with overloaded (Bulkhead).
	Overloaded atomic.Int64
	// Timeouts: calls that ended in timeout because a deadline passed,
	// the host's or the caller's (Deadline).
	Timeouts atomic.Int64
	// Abandoned: timed-out calls whose goroutine was left running (Deadline).
	Abandoned atomic.Int64
	// Lingering: abandoned calls whose goroutine has not returned yet
	// (Deadline). This is what DeadlineConfig.AbandonLimit is checked against.
	Lingering atomic.Int64
	// Panics the guards recovered (Recover, and the Deadline guard's own
	// safety net on its goroutines).
	Panics atomic.Int64

	breaker  atomic.Pointer[breakers]
	bulkhead atomic.Pointer[semaphore]
}

// Snapshot is a copy of a version's Stats at one moment, with the state of
// its breaker and of its module's bulkhead; it is what `hotmod ls --json`
// and the HTTP API show.
type Snapshot struct {
	// Breaker sums up the breakers of the version's methods: "open" when
	// one is open, else "half-open" when one is, else "closed"; empty
	// without a breaker.
	Breaker string `json:"breaker,omitempty"`
	// BreakerReason says which methods' breakers are not closed and why
	// they opened ("fail: 3 failures in a row (…)"); empty when all are
	// closed.
	BreakerReason string `json:"breaker_reason,omitempty"`
	// ProbeAt is when the first open breaker lets a probe call through.
	ProbeAt time.Time `json:"probe_at,omitzero"`
	// Breakers is the state of each method whose breaker is not closed,
	// by method; a method not listed answers normally.
	Breakers map[string]MethodBreaker `json:"breakers,omitempty"`
	// ModuleInFlight and ModuleLimit are the bulkhead's: calls running now
	// in all versions of the module, and how many may. Zero without a
	// bulkhead.
	ModuleInFlight int64 `json:"module_in_flight"`
	ModuleLimit    int64 `json:"module_limit,omitempty"`

	Calls          int64 `json:"calls"`
	Failures       int64 `json:"failures"`
	ShortCircuited int64 `json:"short_circuited"`
	Overloaded     int64 `json:"overloaded"`
	Timeouts       int64 `json:"timeouts"`
	Abandoned      int64 `json:"abandoned"`
	Lingering      int64 `json:"lingering"`
	Panics         int64 `json:"panics"`
}

// Snapshot returns the counters and states as they are now. It is safe to
// call while calls run; the values are read one by one, not as one atomic
// whole.
func (s *Stats) Snapshot() Snapshot {
	snap := Snapshot{
		Calls: s.Calls.Load(), Failures: s.Failures.Load(), ShortCircuited: s.ShortCircuited.Load(),
		Overloaded: s.Overloaded.Load(), Timeouts: s.Timeouts.Load(), Abandoned: s.Abandoned.Load(),
		Lingering: s.Lingering.Load(), Panics: s.Panics.Load(),
	}
	if set := s.breaker.Load(); set != nil {
		snap.Breakers = set.describe()
		st := summary(snap.Breakers)
		snap.Breaker = st.String()
		reasons := make([]string, 0, len(snap.Breakers))
		for method, mb := range snap.Breakers {
			reasons = append(reasons, method+": "+mb.Reason)
			if mb.State == BreakerOpen && (snap.ProbeAt.IsZero() || mb.ProbeAt.Before(snap.ProbeAt)) {
				snap.ProbeAt = mb.ProbeAt
			}
		}
		slices.Sort(reasons)
		snap.BreakerReason = strings.Join(reasons, "; ")
	}
	if sem := s.bulkhead.Load(); sem != nil {
		snap.ModuleInFlight, snap.ModuleLimit = sem.n.Load(), sem.limit
	}
	return snap
}

// summary is the worst of the states: open, half-open, closed.
func summary(m map[string]MethodBreaker) BreakerState {
	st := BreakerClosed
	for _, mb := range m {
		if mb.State == BreakerOpen {
			return BreakerOpen
		}
		st = BreakerHalfOpen
	}
	return st
}

// BreakerState returns the state of the version's breakers summed up as
// Snapshot.Breaker is, and false when its chain has none.
func (s *Stats) BreakerState() (BreakerState, bool) {
	set := s.breaker.Load()
	if set == nil {
		return 0, false
	}
	return summary(set.describe()), true
}

// MethodBreakerState returns the state of a method's breaker (closed for a
// method that never failed), and false when the chain has no breaker.
func (s *Stats) MethodBreakerState(method string) (BreakerState, bool) {
	set := s.breaker.Load()
	if set == nil {
		return 0, false
	}
	if b := set.find(method); b != nil {
		return BreakerState(b.state.Load()), true
	}
	return BreakerClosed, true
}

func loggerOr(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.Default()
	}
	return l
}
