package hotmod_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hotmod/hotmod"
	"github.com/hotmod/hotmod/sdk"
)

// faulty is a builtin twin of examples/faulty: fail, hang (ignores its
// context until released) and ok.
func faulty(release <-chan struct{}) *sdk.Module {
	return sdk.New("faulty", "1.0.0").
		Handle("fail", func(context.Context, map[string]any) (map[string]any, error) { return nil, errors.New("it broke") }).
		Handle("hang", func(context.Context, map[string]any) (map[string]any, error) { <-release; return nil, nil }).
		Handle("ok", func(context.Context, map[string]any) (map[string]any, error) { return map[string]any{"ok": true}, nil })
}

func TestGuardsOffByDefault(t *testing.T) {
	r := newRegistry(t)
	mustRegister(t, r, faulty(nil))
	for i := 0; i < 5; i++ {
		if _, err := r.Invoke(context.Background(), "faulty", "fail", nil); !errors.Is(err, hotmod.ErrModule) {
			t.Fatalf("call %d: %v; without guards every failure reaches the module", i, err)
		}
	}
	if g := r.Modules()[0].Guard; g != nil {
		t.Fatalf("guard stats without guards: %+v", g)
	}
}

func TestCircuitBreaker(t *testing.T) {
	r := newRegistry(t, hotmod.WithGuards(hotmod.Guards{BreakerCoolDown: time.Hour}))
	mustRegister(t, r, faulty(nil))
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		if _, err := r.Invoke(ctx, "faulty", "fail", nil); !errors.Is(err, hotmod.ErrModule) {
			t.Fatalf("failure %d: %v", i+1, err)
		}
	}
	_, err := r.Invoke(ctx, "faulty", "fail", nil)
	if !errors.Is(err, hotmod.ErrCircuitOpen) {
		t.Fatalf("the fourth call: %v; want circuit_open after 3 failures", err)
	}
	// The circuit is the method's: the version's other methods answer.
	if _, err := r.Invoke(ctx, "faulty", "ok", nil); err != nil {
		t.Fatalf("a healthy method after fail's circuit opened: %v", err)
	}
	g := r.Modules()[0].Guard
	if g == nil || g.Breaker != "open" || g.ShortCircuited != 1 || g.Breakers["fail"].State.String() != "open" || len(g.Breakers) != 1 {
		t.Fatalf("guard stats: %+v", g)
	}
}

func TestTimeoutAndQuarantine(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	r := newRegistry(t, hotmod.WithGuards(hotmod.Guards{
		Timeout: 30 * time.Millisecond, AbandonLimit: 2, BreakerFailures: -1,
	}))
	mustRegister(t, r, faulty(release))
	ctx := context.Background()
	for i := 0; i < 2; i++ {
		start := time.Now()
		_, err := r.Invoke(ctx, "faulty", "hang", nil)
		if !errors.Is(err, hotmod.ErrTimeout) {
			t.Fatalf("hang %d: %v; want timeout", i+1, err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("hang %d returned after %s; the deadline was 30ms", i+1, d)
		}
	}
	// Two abandoned calls still run: the version is quarantined.
	waitFor(t, func() bool { m := r.Modules(); return len(m) == 1 && m[0].State == hotmod.StateFailed })
	if m := r.Modules()[0]; !strings.Contains(m.Reason, "quarantined: 2 calls abandoned") || m.Guard.Abandoned != 2 {
		t.Fatalf("after the pile-up: %s %q %+v", m.State, m.Reason, m.Guard)
	}
	if _, err := r.Invoke(ctx, "faulty", "ok", nil); !errors.Is(err, hotmod.ErrNotActive) {
		t.Fatalf("a call to the quarantined version: %v", err)
	}
}

func TestBulkhead(t *testing.T) {
	release := make(chan struct{})
	r := newRegistry(t, hotmod.WithGuards(hotmod.Guards{Concurrency: 1, Timeout: -1}))
	mustRegister(t, r, faulty(release))
	done := make(chan error, 1)
	go func() {
		_, err := r.Invoke(context.Background(), "faulty", "hang", nil)
		done <- err
	}()
	waitFor(t, func() bool { return r.Modules()[0].InFlight == 1 })
	if _, err := r.Invoke(context.Background(), "faulty", "ok", nil); !errors.Is(err, hotmod.ErrOverloaded) {
		t.Fatalf("a second call over a limit of 1: %v; want overloaded", err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := r.Invoke(context.Background(), "faulty", "ok", nil); err != nil {
		t.Fatalf("after the first call returned: %v", err)
	}
}
