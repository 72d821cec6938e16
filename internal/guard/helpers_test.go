package guard

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hotmod/hotmod/sdk"
)

// quiet is the logger of tests that do not look at the log.
var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// faulty is examples/faulty in-process (the examples are a module of their
// own), plus what tests need to steer it: block waits until its gate is
// opened, and every call is counted, so a test can tell whether the module
// was reached at all.
type faulty struct {
	mod   *sdk.Module
	calls atomic.Int64
	gate  chan struct{} // block returns when it is closed
	// entered receives one value per block call that started.
	entered chan struct{}
}

func newFaulty(version string) *faulty {
	f := &faulty{gate: make(chan struct{}), entered: make(chan struct{}, 1024)}
	count := func(h sdk.Handler) sdk.Handler {
		return func(ctx context.Context, p map[string]any) (map[string]any, error) {
			f.calls.Add(1)
			return h(ctx, p)
		}
	}
	f.mod = sdk.New("faulty", version).
		Handle("ok", count(func(context.Context, map[string]any) (map[string]any, error) {
			return map[string]any{"ok": true}, nil
		})).
		Handle("fail", count(func(context.Context, map[string]any) (map[string]any, error) {
			return nil, errors.New("failing on purpose")
		})).
		Handle("internal", count(func(context.Context, map[string]any) (map[string]any, error) {
			return nil, sdk.Errorf(sdk.CodeInternal, "a coded error of the module's own")
		})).
		Handle("panic", count(func(context.Context, map[string]any) (map[string]any, error) {
			panic("faulty: panicking on purpose")
		})).
		Handle("sleep", count(func(ctx context.Context, p map[string]any) (map[string]any, error) {
			ms, err := sdk.Int(p, "ms")
			if err != nil {
				return nil, err
			}
			t := time.NewTimer(time.Duration(ms) * time.Millisecond)
			defer t.Stop()
			select {
			case <-t.C:
				return map[string]any{"slept_ms": ms}, nil
			case <-ctx.Done():
				return nil, sdk.Errorf(sdk.CodeTimeout, "sleep stopped: %v", ctx.Err())
			}
		})).
		Handle("hang", count(func(_ context.Context, p map[string]any) (map[string]any, error) {
			ms, err := sdk.Int(p, "ms")
			if err != nil {
				return nil, err
			}
			time.Sleep(time.Duration(ms) * time.Millisecond)
			return map[string]any{"slept_ms": ms}, nil
		})).
		Handle("block", count(func(context.Context, map[string]any) (map[string]any, error) {
			f.entered <- struct{}{}
			<-f.gate
			return map[string]any{"ok": true}, nil
		}))
	// maybe does what its "do" parameter names (ok without one): one
	// method that fails and succeeds, as a method's breaker needs.
	f.mod.Handle("maybe", func(ctx context.Context, p map[string]any) (map[string]any, error) {
		what, _ := p["do"].(string)
		if what == "" {
			what = "ok"
		}
		return f.mod.Invoke(ctx, what, p)
	})
	return f
}

// do is the parameters of a call of maybe that does what.
func do(what string) map[string]any { return map[string]any{"do": what} }

func (f *faulty) open() { close(f.gate) }

// waitEntered waits until n block calls have started.
func (f *faulty) waitEntered(t *testing.T, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		select {
		case <-f.entered:
		case <-time.After(5 * time.Second):
			t.Fatalf("only %d of %d block calls started", i, n)
		}
	}
}

func (f *faulty) info(transport string) Info {
	return Info{Module: "faulty", Version: f.mod.Version(), Transport: transport, Manifest: f.mod.Manifest(), Stats: new(Stats)}
}

// chain builds a chain around f for the native transport and returns it
// with its Stats.
func (f *faulty) chain(is ...Interceptor) (Handler, *Stats) {
	info := f.info("native")
	return Chain(info, f.mod.Invoke, is...), info.Stats
}

// wantCode fails the test unless err carries the sentinel's code.
func wantCode(t *testing.T, what string, err error, sentinel *sdk.Error) {
	t.Helper()
	if !errors.Is(sdk.AsError(err), sentinel) {
		t.Fatalf("%s: err = %v, want code %s", what, err, sentinel.Code)
	}
}

// eventually polls cond until it holds or 5s pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("still not true after 5s: %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// syncBuffer is a bytes.Buffer safe for the concurrent writes of a logger.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var bg = context.Background()

func ms(n int) map[string]any { return map[string]any{"ms": int64(n)} }
