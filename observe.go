package hotmod

import (
	"context"
	"time"

	"github.com/hotmod/hotmod/internal/chain"
	"github.com/hotmod/hotmod/internal/guard"
	"github.com/hotmod/hotmod/internal/stages"
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
	Start  time.Time
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
				c := CallInfo{Method: method, Start: time.Now()}
				ctx = vo.CallStart(ctx, c)
				out, err := next(ctx, method, params)
				vo.CallEnd(ctx, c, time.Since(c.Start), err)
				return out, err
			}
		}
		return func(ctx context.Context, method string, params map[string]any) (map[string]any, error) {
			c := CallInfo{Method: method, Start: time.Now()}
			for _, vo := range vos {
				ctx = vo.CallStart(ctx, c)
			}
			out, err := next(ctx, method, params)
			took := time.Since(c.Start)
			for k := len(vos) - 1; k >= 0; k-- {
				vos[k].CallEnd(ctx, c, took, err)
			}
			return out, err
		}
	}
}
