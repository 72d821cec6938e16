package main

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/hotmod/hotmod/sdk"
)

func TestFaulty(t *testing.T) {
	if err := Module.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if out, err := Module.Invoke(ctx, "ok", nil); err != nil || out["ok"] != true {
		t.Errorf("ok: %v, %v", out, err)
	}
	if _, err := Module.Invoke(ctx, "fail", nil); sdk.CodeOf(err) != sdk.CodeModule {
		t.Errorf("fail: %v, want a module_error", err)
	}
	if _, err := Module.Invoke(ctx, "sleep", map[string]any{"ms": "x"}); !errors.Is(err, sdk.ErrBadParams) {
		t.Errorf("sleep with a string: %v, want bad_params", err)
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Error("panic did not panic")
			}
		}()
		_, _ = Module.Invoke(ctx, "panic", nil)
	}()

	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := Module.Invoke(short, "sleep", map[string]any{"ms": int64(5000)}); !errors.Is(err, sdk.ErrTimeout) {
		t.Errorf("sleep past its deadline: %v, want timeout", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("sleep ignored its context: returned after %s", d)
	}
	start = time.Now()
	out, err := Module.Invoke(short, "hang", map[string]any{"ms": int64(50)})
	if err != nil || out["slept_ms"] != int64(50) || time.Since(start) < 50*time.Millisecond {
		t.Errorf("hang: %v, %v after %s; want it to sleep the whole 50ms", out, err, time.Since(start))
	}
}
