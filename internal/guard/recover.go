package guard

import (
	"context"
	"errors"
	"log/slog"
	"runtime/debug"

	"github.com/hotmod/hotmod/sdk"
)

// RecoverConfig configures the Recover guard.
type RecoverConfig struct {
	// Logger gets each recovered panic with its stack, at level Error.
	// The default is slog.Default().
	Logger *slog.Logger
}

// Recover turns a panic in the rest of the chain into an error with code
// panic (errors.Is(err, sdk.ErrPanic)) and logs it with its stack. The
// native and builtin transports recover on their own already; this is the
// safety net for everything else, and costs one open-coded defer: no
// allocation unless a panic happens. It counts Stats.Panics: the panics it
// recovers, and the errors with code panic that come back from the rest of
// the chain (a transport that recovered a panic itself, a process child
// that died during the call).
//
// It can only catch panics on the calling goroutine: put it inside the
// Deadline guard (Standard does) so that it also runs on that guard's
// goroutines. A panic on a goroutine the module started itself cannot be
// recovered by anyone, and ends the host.
func Recover(c RecoverConfig) Interceptor {
	return func(info Info, next Handler) Handler {
		log, st := loggerOr(c.Logger), info.Stats
		return func(ctx context.Context, method string, params map[string]any) (out map[string]any, err error) {
			defer func() {
				if p := recover(); p != nil {
					out, err = nil, panicked(log, info, st, method, p)
				}
			}()
			out, err = next(ctx, method, params)
			if err != nil && isPanic(err) {
				st.Panics.Add(1)
			}
			return out, err
		}
	}
}

// isPanic reports whether err says the module panicked.
func isPanic(err error) bool {
	var e *sdk.Error
	return errors.As(err, &e) && e.Code == sdk.CodePanic
}

// panicked logs a recovered panic and returns the caller's error. It runs in
// the deferred function, so the stack still shows where the panic happened.
func panicked(log *slog.Logger, info Info, st *Stats, method string, p any) error {
	st.Panics.Add(1)
	log.Error("module panicked", "module", info.Module, "version", info.Version, "method", method,
		"panic", p, "stack", string(debug.Stack()))
	return sdk.Errorf(sdk.CodePanic, "%s.%s (version %s) panicked: %v", info.Module, method, info.Version, p)
}
