package wasm_test

import (
	"context"
	"errors"
	"log/slog"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hotmod/hotmod/internal/guard"
	"github.com/hotmod/hotmod/internal/wasm"
	"github.com/hotmod/hotmod/sdk"
)

// tiers are the isolation tiers the failure tests run on.
var tiers = []wasm.Tier{wasm.TierInterruptible, wasm.TierTrusted}

// onTier loads the artifact at path on a loader that gives every module
// tier, with cfg otherwise.
func onTier(t *testing.T, tier wasm.Tier, cfg wasm.Config, path string) *wasm.Instance {
	t.Helper()
	precompile(t, path, tier)
	cfg.Tiers = []string{string(tier)}
	l, _ := newLoader(t, cfg)
	i := load(t, l, path)
	if i.Tier() != tier || i.Interruptible() != (tier == wasm.TierInterruptible) {
		t.Fatalf("loaded on the %s tier (interruptible %t), want %s", i.Tier(), i.Interruptible(), tier)
	}
	return i
}

// guarded calls i as the registry does: through the Deadline guard, which
// detaches a call to a trusted guest and abandons it at its deadline (for
// an interruptible guest the deadline stays in the context, which stops the
// guest). limit is the guard's AbandonLimit; piled counts its pile-ups.
func guarded(i *wasm.Instance, limit int, piled *atomic.Int64) (guard.Handler, *guard.Stats) {
	st := new(guard.Stats)
	m := i.Manifest()
	info := guard.Info{Module: m.Name, Version: m.Version, Transport: "wasm", Manifest: m,
		Uninterruptible: !i.Interruptible(), Stats: st}
	return guard.Chain(info, i.Invoke, guard.Deadline(guard.DeadlineConfig{
		Default: -1, AbandonLimit: limit, Logger: slog.New(slog.DiscardHandler),
		OnPileUp: func(guard.Info, int64) {
			if piled != nil {
				piled.Add(1)
			}
		},
	})), st
}

// noGC turns the collector off until the test ends. A collection stops
// the world, and the world cannot stop while a trusted guest runs (Go
// cannot pre-empt it): a collection that starts then waits for the guest
// to return, and every goroutine with it, the Deadline guard's timer
// included. Tests of abandoning trusted calls that run long loops turn the
// collector off, so that they see abandonment, not that pause (see
// RATIONALE.md, "Why do calls into trusted guests run at most
// GOMAXPROCS−1 at once?").
func noGC(t *testing.T) {
	old := debug.SetGCPercent(-1)
	t.Cleanup(func() { debug.SetGCPercent(old) })
}

// workFor returns the n for which the guest's "work" method runs about d.
func workFor(t *testing.T, call guard.Handler, d time.Duration) int64 {
	t.Helper()
	const probe = 2_000_000
	took := time.Hour
	for range 3 { // the quickest: a busy machine only makes a run slower
		start := time.Now()
		if _, err := call(context.Background(), "work", map[string]any{"n": int64(probe)}); err != nil {
			t.Fatal(err)
		}
		took = min(took, max(time.Since(start), time.Microsecond))
	}
	return max(int64(float64(probe)*float64(d)/float64(took)), probe)
}

func TestTierRules(t *testing.T) {
	for _, bad := range []struct{ tier, want string }{
		{"fast", `unknown tier "fast": the tiers are "interruptible"`},
		{"pricing=", `unknown tier ""`},
		{"Pricing=trusted", `"Pricing" is not a module name`},
		{"pricing:trusted", `unknown tier "pricing:trusted"`},
	} {
		err := wasm.CheckTiers([]string{bad.tier})
		if err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("CheckTiers(%q) = %v, want an error saying %s", bad.tier, err, bad.want)
		}
		if _, err := wasm.NewLoader(context.Background(), wasm.Config{Tiers: []string{bad.tier}, CacheDir: t.TempDir()}); err == nil {
			t.Errorf("NewLoader took the tier %q", bad.tier)
		}
	}
	if err := wasm.CheckTiers([]string{"trusted", "pricing=interruptible", "a.b-c_d=trusted"}); err != nil {
		t.Error(err)
	}
	// A module gets its own entry's tier, else the general one (the last),
	// else interruptible.
	for _, c := range []struct {
		tiers []string
		want  wasm.Tier
	}{
		{nil, wasm.TierInterruptible},
		{[]string{"trusted"}, wasm.TierTrusted},
		{[]string{"testguest=trusted"}, wasm.TierTrusted},
		{[]string{"other=trusted"}, wasm.TierInterruptible},
		{[]string{"testguest=interruptible", "trusted"}, wasm.TierInterruptible},
		{[]string{"trusted", "testguest=interruptible", "testguest=trusted"}, wasm.TierTrusted},
		{[]string{"trusted", "interruptible"}, wasm.TierInterruptible},
	} {
		if got := wasm.TierOf(c.tiers, "testguest"); got != c.want {
			t.Errorf("tiers %q: testguest gets %s, want %s", c.tiers, got, c.want)
		}
	}
}

// A loaded module is on the tier the rules give it, and serves from there;
// Inspect says which tier a host would give it.
func TestTierChoice(t *testing.T) {
	path := source(t, "testguest", testGuest)
	precompile(t, path, wasm.TierTrusted)
	for _, c := range []struct {
		tiers []string
		want  wasm.Tier
	}{
		{[]string{"other=trusted"}, wasm.TierInterruptible},
		{[]string{"testguest=trusted"}, wasm.TierTrusted},
	} {
		l, _ := newLoader(t, wasm.Config{PoolSize: 1, Tiers: c.tiers})
		i := load(t, l, path)
		if i.Tier() != c.want {
			t.Errorf("tiers %q: testguest is %s, want %s", c.tiers, i.Tier(), c.want)
		}
		if out, err := i.Invoke(context.Background(), "add", map[string]any{"a": int64(1), "b": int64(2)}); err != nil || out["sum"] != int64(3) {
			t.Errorf("tiers %q: add = %v, %v", c.tiers, out, err)
		}
		i.Close()
	}
	in, err := wasm.Inspect(context.Background(), path, wasm.Config{CacheDir: cacheDir, Tiers: []string{"testguest=trusted"}})
	if err != nil || in.Tier != wasm.TierTrusted {
		t.Errorf("Inspect says the tier is %q (%v), want trusted", in.Tier, err)
	}
}

// On the trusted tier nothing stops a running guest: the Deadline guard
// abandons a call at its deadline (the caller gets timeout at once), the
// guest runs on and, when its work is done, goes back to the pool intact.
// Meanwhile a call that needs its guest times out waiting for it. A version
// whose abandoned calls pile up is reported, which the registry turns into
// a quarantine. (A guest in a truly endless loop would run until the
// process ends: this test uses a long finite one, so as not to leave a core
// spinning under the rest of the suite.)
func TestTrustedTimeoutAbandons(t *testing.T) {
	i := onTier(t, wasm.TierTrusted, wasm.Config{PoolSize: 1}, source(t, "testguest", testGuest))
	noGC(t)
	var piled atomic.Int64
	call, st := guarded(i, 1, &piled)
	n := workFor(t, call, 800*time.Millisecond)
	started0, _ := i.Stats()

	const deadline = 100 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	start := time.Now()
	_, err := call(ctx, "work", map[string]any{"n": n})
	took := time.Since(start)
	if !errors.Is(err, sdk.ErrTimeout) || !strings.Contains(err.Error(), "abandoned") {
		t.Fatalf("a long call with a %s deadline: %v", deadline, err)
	}
	if took > deadline+200*time.Millisecond {
		t.Errorf("the caller got its timeout after %s, deadline %s", took, deadline)
	}
	t.Logf("a call of about 800ms with a %s deadline was abandoned after %s: %v", deadline, took, err)
	if st.Abandoned.Load() != 1 || st.Lingering.Load() != 1 {
		t.Errorf("abandoned %d, lingering %d; want 1 and 1", st.Abandoned.Load(), st.Lingering.Load())
	}
	for end := time.Now().Add(5 * time.Second); piled.Load() == 0 && time.Now().Before(end); {
		time.Sleep(time.Millisecond) // it is told on a goroutine of its own
	}
	if piled.Load() != 1 {
		t.Errorf("the pile-up was reported %d times, want once (AbandonLimit 1)", piled.Load())
	}
	// The only guest is still at work, and holds the only running slot (on
	// 2 cores): a call waits for them within its deadline.
	short, cancel2 := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel2()
	if _, err := i.Invoke(short, "count", nil); !errors.Is(err, sdk.ErrTimeout) || !strings.Contains(err.Error(), "while waiting for") {
		t.Errorf("a call while the only guest works on: %v", err)
	}
	for end := time.Now().Add(30 * time.Second); st.Lingering.Load() > 0 && time.Now().Before(end); {
		time.Sleep(10 * time.Millisecond)
	}
	if st.Lingering.Load() != 0 {
		t.Fatal("the abandoned call never returned")
	}
	if out, err := call(context.Background(), "count", nil); err != nil || out["n"] != int64(1) {
		t.Errorf("count after the abandoned call returned = %v, %v", out, err)
	}
	if started, discarded := i.Stats(); started != started0 || discarded != 0 {
		t.Errorf("started %d more guests and discarded %d, want 0 and 0: the abandoned guest finishes and serves on", started-started0, discarded)
	}
}

// The failures a guest can have end the same way on the trusted tier as on
// the interruptible one (where TestPanic, TestExit, TestMemoryLimit and
// TestValueModel test them one by one): a panic, an exit and running out
// of memory discard the guest and the next call gets a fresh one.
func TestFailuresOnTrustedTier(t *testing.T) {
	path := source(t, "testguest", testGuest)
	for _, tier := range []wasm.Tier{wasm.TierTrusted} {
		t.Run(string(tier), func(t *testing.T) {
			const pages = 512 // 32 MiB
			i := onTier(t, tier, wasm.Config{PoolSize: 1, MemoryLimitPages: pages}, path)
			call, _ := guarded(i, 0, nil)
			ctx := context.Background()
			if _, err := call(ctx, "count", nil); err != nil {
				t.Fatal(err)
			}
			started0, _ := i.Stats()
			if _, err := call(ctx, "boom", nil); !errors.Is(err, sdk.ErrPanic) || err.Error() != "panic: testguest.boom panicked: boom" {
				t.Errorf("boom: %v", err)
			}
			if _, err := call(ctx, "exit", nil); !errors.Is(err, sdk.ErrPanic) || !strings.Contains(err.Error(), "exited with code 3") {
				t.Errorf("exit: %v", err)
			}
			if _, err := call(ctx, "hog", nil); !errors.Is(err, sdk.ErrPanic) || !strings.Contains(err.Error(), "ran out of memory at the limit of 512 pages") {
				t.Errorf("hog: %v", err)
			}
			if _, err := call(ctx, "echo", map[string]any{"f": func() {}}); !errors.Is(err, sdk.ErrBadParams) {
				t.Errorf("params outside the value model: %v", err)
			}
			if out, err := call(ctx, "count", nil); err != nil || out["n"] != int64(1) {
				t.Errorf("count after the failures = %v, %v; want 1 from a fresh guest", out, err)
			}
			if started, discarded := i.Stats(); started-started0 != 3 || discarded != 3 {
				t.Errorf("started %d more guests and discarded %d, want 3 and 3", started-started0, discarded)
			}
		})
	}
}
