package guard

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/hotmod/hotmod/sdk"
)

func TestChainOrder(t *testing.T) {
	var trace []string
	tracer := func(name string) Interceptor {
		return func(info Info, next Handler) Handler {
			if info.Stats == nil {
				t.Errorf("%s got no Stats", name)
			}
			return func(ctx context.Context, method string, params map[string]any) (map[string]any, error) {
				trace = append(trace, name+">")
				out, err := next(ctx, method, params)
				trace = append(trace, "<"+name)
				return out, err
			}
		}
	}
	h := Chain(Info{Module: "m"}, func(context.Context, string, map[string]any) (map[string]any, error) {
		trace = append(trace, "module")
		return nil, nil
	}, tracer("a"), nil, tracer("b"))
	_, _ = h(bg, "f", nil)
	if got := strings.Join(trace, " "); got != "a> b> module <b <a" {
		t.Errorf("trace %q", got)
	}
}

func TestRecover(t *testing.T) {
	var log syncBuffer
	f := newFaulty("1.0.0")
	h, st := f.chain(Recover(RecoverConfig{Logger: slog.New(slog.NewTextHandler(&log, nil))}))
	_, err := h(bg, "panic", nil)
	wantCode(t, "a panic", err, sdk.ErrPanic)
	if want := "faulty.panic (version 1.0.0) panicked: faulty: panicking on purpose"; !strings.Contains(err.Error(), want) {
		t.Errorf("%q does not say %q", err, want)
	}
	if st.Panics.Load() != 1 {
		t.Errorf("Panics = %d", st.Panics.Load())
	}
	// The stack in the log shows where the module panicked.
	if s := log.String(); !strings.Contains(s, "module panicked") || !strings.Contains(s, "helpers_test.go") {
		t.Errorf("the log has no stack of the panic:\n%s", s)
	}
	if _, err := h(bg, "ok", nil); err != nil {
		t.Errorf("a call after the panic: %v", err)
	}
}

// A transport that recovers a module's panic itself (native, builtin) or
// reports a child that died (process) returns an error with code panic:
// the Recover guard counts it as a panic too.
func TestRecoverCountsPanicsTheTransportRecovered(t *testing.T) {
	f := newFaulty("1.0.0")
	recovered := func(ctx context.Context, method string, params map[string]any) (out map[string]any, err error) {
		defer func() {
			if p := recover(); p != nil {
				out, err = nil, sdk.Errorf(sdk.CodePanic, "%s panicked: %v", method, p)
			}
		}()
		return f.mod.Invoke(ctx, method, params)
	}
	info := f.info("native")
	h := Chain(info, recovered, Standard(Config{Logger: quiet})...)
	for range 2 {
		_, err := h(bg, "panic", nil)
		wantCode(t, "a panic", err, sdk.ErrPanic)
	}
	if _, err := h(bg, "fail", nil); err == nil {
		t.Fatal("fail did not fail")
	}
	if snap := info.Stats.Snapshot(); snap.Panics != 2 || snap.Failures != 3 {
		t.Errorf("after 2 panics and 1 failure: panics %d, failures %d", snap.Panics, snap.Failures)
	}
}

// Every error keeps its code through the whole chain, and the guards' own
// errors carry theirs, so errors.Is works with the sdk sentinels.
func TestErrorsKeepTheirCodes(t *testing.T) {
	f := newFaulty("1.0.0")
	h, _ := f.chain(Standard(Config{
		Breaker:  BreakerConfig{Consecutive: 100, Window: -1},
		Deadline: DeadlineConfig{Default: 30 * time.Millisecond},
		Logger:   quiet,
	})...)
	cases := []struct {
		method string
		params map[string]any
		want   *sdk.Error
	}{
		{"fail", nil, sdk.ErrModule},
		{"internal", nil, sdk.ErrInternal},
		{"panic", nil, sdk.ErrPanic},
		{"hang", ms(200), sdk.ErrTimeout},
		{"sleep", ms(5000), sdk.ErrTimeout},
		{"sleep", map[string]any{"ms": true}, sdk.ErrBadParams},
		{"nosuch", nil, sdk.ErrUnknownMethod},
	}
	for _, c := range cases {
		_, err := h(bg, c.method, c.params)
		wantCode(t, c.method, err, c.want)
	}
	// The module's own error value comes back as it was made.
	_, err := h(bg, "fail", nil)
	if err == nil || err.Error() != "failing on purpose" {
		t.Errorf("fail: %v", err)
	}
}

func TestGuardsOwnErrors(t *testing.T) {
	f := newFaulty("1.0.0")
	h, _ := f.chain(Standard(Config{
		Bulkhead: BulkheadConfig{Limit: 1},
		Breaker:  BreakerConfig{CoolDown: time.Hour},
		Logger:   quiet,
	})...)
	wg := hold(t, f, h, 1)
	_, err := h(bg, "ok", nil)
	wantCode(t, "a full module", err, sdk.ErrOverloaded)
	f.open()
	wg.Wait()
	for i := 0; i < DefaultConsecutive; i++ {
		_, _ = h(bg, "fail", nil)
	}
	_, err = h(bg, "fail", nil)
	wantCode(t, "an open circuit", err, sdk.ErrCircuitOpen)
	var e *sdk.Error
	if !errors.As(err, &e) || e.Code != sdk.CodeCircuitOpen {
		t.Errorf("%T %v is not an *sdk.Error with code circuit_open", err, err)
	}
}

func TestSnapshotJSON(t *testing.T) {
	f := newFaulty("1.0.0")
	h, st := f.chain(Standard(Config{Logger: quiet})...)
	_, _ = h(bg, "ok", nil)
	b, err := json.Marshal(st.Snapshot())
	if err != nil {
		t.Fatal(err)
	}
	want := `{"breaker":"closed","module_in_flight":0,"module_limit":64,"calls":1,"failures":0,"short_circuited":0,"overloaded":0,"timeouts":0,"abandoned":0,"lingering":0,"panics":0}`
	if string(b) != want {
		t.Errorf("snapshot JSON\n got %s\nwant %s", b, want)
	}
	var empty Stats
	if b, _ := json.Marshal(empty.Snapshot()); strings.Contains(string(b), "breaker") || strings.Contains(string(b), "probe_at") {
		t.Errorf("a snapshot without breaker: %s", b)
	}
}
