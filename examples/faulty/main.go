// Command faulty is a module that misbehaves on request, to see the host's
// guards at work: deadlines, abandoned calls, panics, the circuit breaker
// and the concurrency limit.
//
//	hotmod invoke faulty ok                  →  {"ok":true}
//	hotmod invoke faulty fail                →  module_error (3 in a row open the circuit of fail)
//	hotmod invoke faulty panic               →  panic; the host keeps serving
//	hotmod invoke faulty sleep '{"ms":500}'  →  sleeps, but stops at the call's deadline
//	hotmod invoke faulty hang '{"ms":60000}' →  ignores its deadline: the call is abandoned
package main

import (
	"context"
	"errors"
	"time"

	"github.com/hotmod/hotmod/sdk"
)

// version is the one place faulty's version is set.
const version = "1.0.0"

// Module is the symbol hotmod looks up in the built artifact.
var Module = sdk.New("faulty", version).
	Handle("ok", ok, sdk.Doc(`{} → {"ok": true}`)).
	Handle("fail", fail, sdk.Doc(`{} → an error of the module's own (module_error)`)).
	Handle("panic", panicking, sdk.Doc(`{} → panics`)).
	Handle("sleep", sleep, sdk.Doc(`{"ms": int} → sleeps ms milliseconds, or until the call's context ends (timeout)`)).
	Handle("hang", hang, sdk.Doc(`{"ms": int} → sleeps ms milliseconds whatever the call's context says`))

func ok(context.Context, map[string]any) (map[string]any, error) {
	return map[string]any{"ok": true}, nil
}

func fail(context.Context, map[string]any) (map[string]any, error) {
	return nil, errors.New("failing on purpose")
}

func panicking(context.Context, map[string]any) (map[string]any, error) {
	panic("faulty: panicking on purpose")
}

// sleep is a well-behaved slow method: it stops when its context ends.
func sleep(ctx context.Context, p map[string]any) (map[string]any, error) {
	d, err := millis(p)
	if err != nil {
		return nil, err
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return map[string]any{"slept_ms": d.Milliseconds()}, nil
	case <-ctx.Done():
		return nil, sdk.Errorf(sdk.CodeTimeout, "sleep of %s stopped: %v", d, ctx.Err())
	}
}

// hang is a badly behaved slow method: it never looks at its context, so a
// host can only stop waiting for it, not stop it.
func hang(_ context.Context, p map[string]any) (map[string]any, error) {
	d, err := millis(p)
	if err != nil {
		return nil, err
	}
	time.Sleep(d)
	return map[string]any{"slept_ms": d.Milliseconds()}, nil
}

func millis(p map[string]any) (time.Duration, error) {
	ms, err := sdk.Int(p, "ms")
	if err != nil {
		return 0, err
	}
	if ms < 0 || ms > 24*60*60*1000 {
		return 0, sdk.Errorf(sdk.CodeBadParams, `"ms" must be between 0 and 86400000 (a day), got %d`, ms)
	}
	return time.Duration(ms) * time.Millisecond, nil
}

func main() { sdk.Main(Module) }
