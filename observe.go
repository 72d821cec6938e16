package hotmod

import (
	"context"
	"encoding/json"
	"time"

	"github.com/hotmod/hotmod/internal/chain"
	"github.com/hotmod/hotmod/internal/guard"
	"github.com/hotmod/hotmod/internal/stages"
	"github.com/hotmod/hotmod/internal/wasm"
	"github.com/hotmod/hotmod/sdk"
)

// Observer watches every call into every module version: metrics, traces,
// audit. Package github.com/hotmod/hotmod/observe has observers for
// Prometheus and OpenTelemetry. Events (loads, swaps, failures) are
// observed with Subscribe.
//
// ForVersion is called once per version, when it has been validated and
// before it serves; whatever a VersionObserver needs per call (metric
// handles bound to the version's labels, say) is best made there, so that
// a call costs no lookup and no allocation. It returns nil to leave the
// version unobserved.
type Observer interface {
	ForVersion(VersionInfo) VersionObserver
}

// VersionObserver is told of each call into one version, on the caller's
// goroutine: CallStart as the call enters (before the guards), CallEnd as
// it returns. Both must be quick and safe for concurrent use.
//
// CallStart returns the context the call continues with: ctx itself to add
// nothing, or one carrying what the observer needs (a trace span, say);
// CallEnd gets that context. err is nil for a success; sdk.CodeOf(err)
// gives its code.
type VersionObserver interface {
	CallStart(ctx context.Context, c CallInfo) context.Context
	CallEnd(ctx context.Context, c CallInfo, took time.Duration, err error)
}

// VersionInfo describes the version a VersionObserver is made for.
type VersionInfo struct {
	Module    string
	Version   string
	Transport Transport
	Manifest  sdk.Manifest
}

// CallInfo describes one call. It is passed by value and holds nothing
// that needs allocating.
type CallInfo struct {
	Method string
	// Start is when the call entered, read from the monotonic clock (as an
	// offset from when the process started observing; a change of the
	// system's wall clock since then does not show in it).
	Start time.Time
}

// WithObserver has o watch every call (see Observer). Several observers
// may be given; each sees every call. Without one calls pay nothing for
// observation.
func WithObserver(o Observer) Option {
	return optionFunc(func(c *config) {
		if o != nil {
			c.observers = append(c.observers, o)
		}
	})
}

// Caller returns the module version ("name@version") that made the call
// ctx belongs to, when a module called another through the host, or ""
// for a call made by the host's own code. Observers use it to tell a
// module-to-module call.
func Caller(ctx context.Context) string { return chain.Caller(ctx) }

// Stage is how long one stage of loading a version took (read, preflight,
// probe, open, compile, instantiate, start, validate, init, check, wait,
// activate, drain — whichever apply to its transport). ModuleInfo.Stages
// and Event.Stages list them; in JSON a stage is {"stage": "compile",
// "seconds": 0.052}.
type Stage = stages.Stage

// clockBase is when the process started observing: a call's times are
// read as offsets from it, on the monotonic clock alone (time.Since reads
// one clock; time.Now reads two, the wall clock too).
var clockBase = time.Now()

// observing returns the interceptor that tells the observers of each
// version about its calls, or nil when there are none.
func observing(obs []Observer) guard.Interceptor {
	if len(obs) == 0 {
		return nil
	}
	return func(info guard.Info, next guard.Handler) guard.Handler {
		vi := VersionInfo{Module: info.Module, Version: info.Version, Transport: Transport(info.Transport), Manifest: info.Manifest}
		var vos []VersionObserver
		for _, o := range obs {
			if vo := o.ForVersion(vi); vo != nil {
				vos = append(vos, vo)
			}
		}
		switch len(vos) {
		case 0:
			return next
		case 1:
			vo := vos[0]
			return func(ctx context.Context, method string, params map[string]any) (map[string]any, error) {
				at := time.Since(clockBase)
				c := CallInfo{Method: method, Start: clockBase.Add(at)}
				ctx = vo.CallStart(ctx, c)
				out, err := next(ctx, method, params)
				vo.CallEnd(ctx, c, time.Since(clockBase)-at, err)
				return out, err
			}
		}
		return func(ctx context.Context, method string, params map[string]any) (map[string]any, error) {
			at := time.Since(clockBase)
			c := CallInfo{Method: method, Start: clockBase.Add(at)}
			for _, vo := range vos {
				ctx = vo.CallStart(ctx, c)
			}
			out, err := next(ctx, method, params)
			took := time.Since(clockBase) - at
			for k := len(vos) - 1; k >= 0; k-- {
				vos[k].CallEnd(ctx, c, took, err)
			}
			return out, err
		}
	}
}

// Runtime is what a transport shows of the resources a version holds:
// the processes of a process module, the guests of a WebAssembly module.
type Runtime struct {
	Processes        int    `json:"processes,omitempty"`          // process: children serving now
	Restarts         int64  `json:"restarts,omitempty"`           // process: children restarted after dying
	Guests           int    `json:"guests,omitempty"`             // wasm: guest instances (idle, busy or starting)
	GuestMemoryBytes int64  `json:"guest_memory_bytes,omitempty"` // wasm: their linear memory
	Tier             string `json:"tier,omitempty"`               // wasm: "interruptible" or "trusted"
}

// runtimeOf asks inst for its Runtime, or returns nil when its transport
// has none to show.
func runtimeOf(inst instance) *Runtime {
	switch i := inst.(type) {
	case interface {
		PIDs() []int
		Restarts() int64
	}:
		return &Runtime{Processes: len(i.PIDs()), Restarts: i.Restarts()}
	case interface {
		Live() (int, int64)
		Tier() wasm.Tier
	}:
		n, mem := i.Live()
		return &Runtime{Guests: n, GuestMemoryBytes: mem, Tier: string(i.Tier())}
	}
	return nil
}

// uninterruptible reports whether inst's calls cannot be stopped although
// its transport would stop them (a wasm version on the trusted tier).
func uninterruptible(inst instance) bool {
	i, ok := inst.(interface{ Interruptible() bool })
	return ok && !i.Interruptible()
}

// eventJSON is how an Event is written in JSON.
type eventJSON struct {
	Time      time.Time `json:"time"`
	Module    string    `json:"module,omitempty"`
	Version   string    `json:"version,omitempty"`
	Transport Transport `json:"transport,omitempty"`
	Artifact  string    `json:"artifact,omitempty"`
	From      State     `json:"from"`
	To        State     `json:"to"`
	Code      sdk.Code  `json:"code,omitempty"` // of the error
	Error     string    `json:"error,omitempty"`
	Reason    string    `json:"reason,omitempty"`
	Stages    []Stage   `json:"stages,omitempty"`
}

// MarshalJSON writes the event with its error as a string and stage
// durations in seconds, as GET /v1/events sends it.
func (e Event) MarshalJSON() ([]byte, error) {
	j := eventJSON{Time: e.Time, Module: e.Module, Version: e.Version, Transport: e.Transport,
		Artifact: e.Artifact, From: e.From, To: e.To, Reason: e.Reason, Stages: e.Stages}
	if e.Err != nil {
		se := sdk.AsError(e.Err)
		j.Code, j.Error = se.Code, se.Message
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads what MarshalJSON writes; the error comes back as an
// *sdk.Error with its code and message.
func (e *Event) UnmarshalJSON(b []byte) error {
	var j eventJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*e = Event{Time: j.Time, Module: j.Module, Version: j.Version, Transport: j.Transport,
		Artifact: j.Artifact, From: j.From, To: j.To, Reason: j.Reason, Stages: j.Stages}
	if j.Error != "" {
		e.Err = &sdk.Error{Code: j.Code, Message: j.Error}
	}
	return nil
}
