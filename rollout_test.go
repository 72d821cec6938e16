package hotmod_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hotmod/hotmod"
	"github.com/hotmod/hotmod/sdk"
)

// canary is a policy for tests; it fails the test when it is not valid.
func canary(t testing.TB, steps []int, interval time.Duration) hotmod.RolloutPolicy {
	t.Helper()
	p, err := hotmod.Canary(steps, interval)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// flaky is a greeter whose every third call fails.
func flaky(version string) *sdk.Module {
	var n atomic.Int64
	return sdk.New("greeter", version).Handle("hello", func(context.Context, map[string]any) (map[string]any, error) {
		if n.Add(1)%3 == 0 {
			return nil, fmt.Errorf("%s is broken", version)
		}
		return map[string]any{"version": version}, nil
	})
}

// share calls the plain name n times and returns the share of calls (in
// percent) that version answered.
func share(t *testing.T, r *hotmod.Registry, ctx context.Context, n int, version string) float64 {
	t.Helper()
	hits := 0
	for i := 0; i < n; i++ {
		out, err := r.Invoke(ctx, "greeter", "hello", map[string]any{"name": "Ada"})
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		if out["version"] == version {
			hits++
		}
	}
	return 100 * float64(hits) / float64(n)
}

func status(t *testing.T, r *hotmod.Registry, module string) hotmod.RolloutStatus {
	t.Helper()
	s, err := r.RolloutOf(module)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestCanaryShareAtEachStep: over 4000 calls the canary gets its step's
// share within 3 points (4000 calls at 10 % have a standard deviation of
// 0.47 points: 3 points is over 6 of them), and explicit versions are
// never split.
func TestCanaryShareAtEachStep(t *testing.T) {
	r := newRegistry(t, hotmod.WithRollout(canary(t, []int{10, 50}, time.Hour)))
	ctx := context.Background()
	mustRegister(t, r, greeter("1.0.0"))
	mustRegister(t, r, greeter("1.1.0"))
	s := status(t, r, "greeter")
	if s.Stable != "1.0.0" || s.Canary != "1.1.0" || s.Percent != 10 || s.Step != 1 || !strings.Contains(s.Next, "50 % at") {
		t.Fatalf("status after the canary arrived: %+v", s)
	}
	if got := share(t, r, ctx, 4000, "1.1.0"); got < 7 || got > 13 {
		t.Errorf("canary share at 10 %%: %.1f %%", got)
	} else {
		t.Logf("canary share at 10 %%: %.2f %% of 4000 calls", got)
	}
	if got := share(t, r, ctx, 200, "1.1.0"); got == 0 {
		t.Error("no call reached the canary")
	}
	for _, ref := range []string{"greeter@1.0.0", "greeter@1.1.0"} {
		for i := 0; i < 200; i++ {
			out, err := r.Invoke(ctx, ref, "hello", map[string]any{"name": "Ada"})
			if err != nil || ref != "greeter@"+out["version"].(string) {
				t.Fatalf("%s reached %v (%v)", ref, out, err)
			}
		}
	}
	mods := r.Modules()
	if mods[0].Route != "10 %" || mods[1].Route != "90 %" {
		t.Errorf("routes listed: %q %q", mods[0].Route, mods[1].Route)
	}
	if _, err := r.Promote(ctx, "greeter"); err != nil {
		t.Fatal(err)
	}
	if got := share(t, r, ctx, 4000, "1.1.0"); got < 47 || got > 53 {
		t.Errorf("canary share at 50 %%: %.1f %%", got)
	} else {
		t.Logf("canary share at 50 %%: %.2f %% of 4000 calls", got)
	}
	s, err := r.Promote(ctx, "greeter")
	if err != nil {
		t.Fatal(err)
	}
	if s.Stable != "1.1.0" || s.Canary != "" || len(s.Standby) != 1 || s.Standby[0] != "1.0.0" {
		t.Errorf("status after the last promotion: %+v", s)
	}
	if got := share(t, r, ctx, 500, "1.1.0"); got != 100 {
		t.Errorf("share after promotion: %.1f %%", got)
	}
	if m := state(t, r, "greeter@1.0.0"); m.State != hotmod.StateStandby {
		t.Errorf("the old stable is %s, want Standby", m.State)
	}
}

// TestKeyReachesOneVersion: every call with the same key reaches the same
// version, and keys spread by the weight.
func TestKeyReachesOneVersion(t *testing.T) {
	r := newRegistry(t, hotmod.WithRollout(canary(t, []int{50}, time.Hour)))
	mustRegister(t, r, greeter("1.0.0"))
	mustRegister(t, r, greeter("1.1.0"))
	onCanary := 0
	for k := 0; k < 400; k++ {
		ctx := hotmod.WithKey(context.Background(), fmt.Sprintf("user-%d", k))
		got := share(t, r, ctx, 10, "1.1.0")
		if got != 0 && got != 100 {
			t.Fatalf("key user-%d reached both versions (%.0f %% canary)", k, got)
		}
		if got == 100 {
			onCanary++
		}
	}
	if onCanary < 160 || onCanary > 240 {
		t.Errorf("%d of 400 keys on a 50 %% canary", onCanary)
	}
}

// callers runs n goroutines calling the plain name until stop is closed;
// it returns the count of calls and the failures.
func callers(r *hotmod.Registry, n int, stop <-chan struct{}) func() (int64, []error) {
	var calls atomic.Int64
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				_, err := r.Invoke(context.Background(), "greeter", "hello", map[string]any{"name": "Ada"})
				calls.Add(1)
				if err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		}()
	}
	return func() (int64, []error) {
		wg.Wait()
		return calls.Load(), errs
	}
}

// rolloutEvents returns the actions of the rollout events until want comes
// (or the timeout).
func waitRollout(t *testing.T, events <-chan hotmod.Event, want string, timeout time.Duration) (seen []string, last hotmod.Event) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case e := <-events:
			if e.Kind != hotmod.EventRollout {
				continue
			}
			seen = append(seen, e.Rollout.Action)
			if e.Rollout.Action == want {
				return seen, e
			}
		case <-deadline:
			t.Fatalf("no %q rollout event within %s; saw %v", want, timeout, seen)
		}
	}
}

// TestFaultyCanaryIsRolledBack: a canary failing a third of its calls is
// rolled back within its first step, with the numbers, and no call to
// stable fails.
func TestFaultyCanaryIsRolledBack(t *testing.T) {
	const step = 5 * time.Second
	r := newRegistry(t, hotmod.WithRollout(canary(t, []int{10, 50}, step)))
	mustRegister(t, r, greeter("1.0.0"))
	events, cancel := r.Subscribe()
	defer cancel()
	stop := make(chan struct{})
	wait := callers(r, 8, stop)
	start := time.Now()
	mustRegister(t, r, flaky("1.1.0"))
	_, e := waitRollout(t, events, "rolled-back", step)
	took := time.Since(start)
	time.Sleep(50 * time.Millisecond) // calls go on after the rollback
	close(stop)
	calls, errs := wait()
	for _, err := range errs {
		if !strings.Contains(err.Error(), "1.1.0 is broken") {
			t.Errorf("a call failed that the canary did not fail: %v", err)
		}
	}
	if !strings.HasPrefix(e.Rollout.Detail, "rolled back at 10 %: ") || !strings.Contains(e.Rollout.Detail, "failures over") || !strings.Contains(e.Rollout.Detail, "vs 0 % on 1.0.0") {
		t.Errorf("the reason: %q", e.Rollout.Detail)
	}
	m := state(t, r, "greeter@1.1.0")
	if m.State != hotmod.StateFailed || !strings.Contains(m.Reason, e.Rollout.Detail) {
		t.Errorf("the canary is %s (%q), want Failed with the reason", m.State, m.Reason)
	}
	if s := status(t, r, "greeter"); s.Stable != "1.0.0" || s.Canary != "" {
		t.Errorf("status after the rollback: %+v", s)
	}
	t.Logf("rolled back after %s, %d calls, %d failed on the canary: %s", took.Round(time.Millisecond), calls, len(errs), e.Rollout.Detail)
	// It stays rolled back.
	if _, err := r.Register(context.Background(), flaky("1.1.0")); err == nil || !strings.Contains(err.Error(), "was rolled back") {
		t.Errorf("registering the rolled-back version again: %v", err)
	}
}

// TestHealthyCanaryIsPromotedThroughEveryStep with short steps; stable
// becomes Standby, and Rollback takes calls back to it.
func TestHealthyCanaryIsPromotedThroughEveryStep(t *testing.T) {
	r := newRegistry(t, hotmod.WithRollout(canary(t, []int{10, 25, 50}, 150*time.Millisecond)))
	mustRegister(t, r, greeter("1.0.0"))
	events, cancel := r.Subscribe()
	defer cancel()
	stop := make(chan struct{})
	wait := callers(r, 4, stop)
	mustRegister(t, r, greeter("1.1.0"))
	seen, _ := waitRollout(t, events, "promoted", 10*time.Second)
	close(stop)
	if _, errs := wait(); len(errs) > 0 {
		t.Errorf("%d calls failed, the first: %v", len(errs), errs[0])
	}
	if got := strings.Join(seen, " "); got != "canary step step promoted" {
		t.Errorf("rollout events: %s", got)
	}
	s := status(t, r, "greeter")
	if s.Stable != "1.1.0" || len(s.Standby) != 1 {
		t.Fatalf("after promotion: %+v", s)
	}
	if s, err := r.Rollback(context.Background(), "greeter"); err != nil || s.Stable != "1.0.0" {
		t.Fatalf("Rollback: %+v, %v", s, err)
	}
	if got := share(t, r, context.Background(), 100, "1.0.0"); got != 100 {
		t.Errorf("after the rollback %.0f %% of calls reach 1.0.0", got)
	}
	if m := state(t, r, "greeter@1.1.0"); m.State != hotmod.StateFailed || !strings.Contains(m.Reason, "rolled back by an operator to 1.0.0") {
		t.Errorf("1.1.0 after the rollback: %s %q", m.State, m.Reason)
	}
}

// TestManualPolicy: a new version waits Standby until promoted.
func TestManualPolicy(t *testing.T) {
	r := newRegistry(t, hotmod.WithRollout(hotmod.Manual(), "greeter"))
	ctx := context.Background()
	mustRegister(t, r, greeter("1.0.0"))
	mustRegister(t, r, greeter("1.1.0"))
	if m := state(t, r, "greeter@1.1.0"); m.State != hotmod.StateStandby {
		t.Fatalf("a manual candidate is %s", m.State)
	}
	if _, err := r.Invoke(ctx, "greeter@1.1.0", "hello", map[string]any{"name": "Ada"}); !errors.Is(err, hotmod.ErrNotActive) {
		t.Errorf("calling a Standby version: %v", err)
	}
	if got := share(t, r, ctx, 100, "1.0.0"); got != 100 {
		t.Errorf("%.0f %% of calls on stable before promotion", got)
	}
	if s := status(t, r, "greeter"); !strings.Contains(s.Next, "waits Standby") {
		t.Errorf("status: %+v", s)
	}
	if _, err := r.Promote(ctx, "greeter"); err != nil {
		t.Fatal(err)
	}
	if got := share(t, r, ctx, 100, "1.1.0"); got != 100 {
		t.Errorf("%.0f %% of calls on the promoted version", got)
	}
	if _, err := r.Promote(ctx, "greeter"); err == nil || !strings.Contains(err.Error(), "nothing to promote") {
		t.Errorf("promoting with nothing to promote: %v", err)
	}
}

// TestOperatorCommandsUnderLoad: promote, rollback, pin, unpin and unload
// fail no call of 8 concurrent callers.
func TestOperatorCommandsUnderLoad(t *testing.T) {
	r := newRegistry(t, hotmod.WithRollout(canary(t, []int{10, 50}, time.Hour)))
	ctx := context.Background()
	mustRegister(t, r, greeter("1.0.0"))
	stop := make(chan struct{})
	wait := callers(r, 8, stop)
	pause := func() { time.Sleep(30 * time.Millisecond) }
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		pause()
	}
	mustRegister(t, r, greeter("1.1.0"))
	pause()
	_, err := r.Promote(ctx, "greeter")
	must("promote to 50 %", err)
	_, err = r.Promote(ctx, "greeter")
	must("promote to 100 %", err)
	_, err = r.Rollback(ctx, "greeter")
	must("rollback to 1.0.0", err)
	mustRegister(t, r, greeter("1.2.0"))
	pause()
	if err := r.Pin(ctx, "greeter@1.1.0"); err == nil {
		t.Error("pinning during a rollout")
	}
	_, err = r.Rollback(ctx, "greeter")
	must("rollback of the 1.2.0 canary", err)
	must("pin 1.0.0", r.Pin(ctx, "greeter@1.0.0"))
	mustRegister(t, r, greeter("1.3.0"))
	pause()
	if m := state(t, r, "greeter@1.3.0"); m.State != hotmod.StateStandby {
		t.Errorf("a version arriving while pinned is %s, want Standby", m.State)
	}
	must("unpin", r.Unpin(ctx, "greeter"))
	_, err = r.Promote(ctx, "greeter")
	must("promote 1.3.0, waiting since the pin", err)
	must("unload the Standby 1.0.0", r.Unload(ctx, "greeter@1.0.0"))
	mustRegister(t, r, greeter("1.4.0"))
	pause()
	if err := r.Unload(ctx, "greeter@1.3.0"); err == nil || !errors.Is(err, sdk.ErrInUse) {
		t.Errorf("unloading the stable of a rollout: %v", err)
	}
	must("unload the canary", r.Unload(ctx, "greeter@1.4.0"))
	close(stop)
	calls, errs := wait()
	if len(errs) > 0 {
		t.Errorf("%d of %d calls failed, the first: %v", len(errs), calls, errs[0])
	}
	if got := share(t, r, ctx, 100, "1.3.0"); got != 100 {
		t.Errorf("%.0f %% of calls on 1.3.0 at the end", got)
	}
	t.Logf("%d calls, none failed", calls)
}

// TestRestartResumesTheRollout: a registry made again on the same state
// directory comes back in the same step, with the same pins, and what was
// rolled back stays so.
func TestRestartResumesTheRollout(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	ctx := context.Background()
	opts := []hotmod.Option{hotmod.WithRollout(canary(t, []int{10, 50}, time.Hour)), hotmod.WithStateDir(dir)}
	r := newRegistry(t, opts...)
	mustRegister(t, r, greeter("1.0.0"))
	mustRegister(t, r, flaky("0.9.0")) // older: it is a canary all the same, and rolled back
	if _, err := r.Rollback(ctx, "greeter"); err != nil {
		t.Fatal(err)
	}
	mustRegister(t, r, greeter("1.1.0"))
	if _, err := r.Promote(ctx, "greeter"); err != nil {
		t.Fatal(err)
	}
	before := status(t, r, "greeter")
	if err := r.Close(ctx); err != nil {
		t.Fatal(err)
	}

	for _, order := range [][]string{{"1.0.0", "1.1.0"}, {"1.1.0", "1.0.0"}} {
		r2 := newRegistry(t, opts...)
		for _, v := range order {
			mustRegister(t, r2, greeter(v))
		}
		s := status(t, r2, "greeter")
		if s.Stable != before.Stable || s.Canary != before.Canary || s.Step != 2 || s.Percent != 50 {
			t.Errorf("registered in order %v: status %+v, want as before: %+v", order, s, before)
		}
		if got := share(t, r2, ctx, 2000, "1.1.0"); got < 45 || got > 55 {
			t.Errorf("registered in order %v: canary share %.1f %%", order, got)
		}
		if _, err := r2.Register(ctx, greeter("0.9.0")); err == nil || !strings.Contains(err.Error(), "was rolled back") {
			t.Errorf("the rolled-back version after a restart: %v", err)
		}
		if err := r2.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}

	// After a promotion, the version it replaced comes back Standby whatever
	// the order, not as a canary.
	r5 := newRegistry(t, opts...)
	mustRegister(t, r5, greeter("1.0.0"))
	mustRegister(t, r5, greeter("1.1.0"))
	if _, err := r5.Promote(ctx, "greeter"); err != nil {
		t.Fatal(err)
	}
	_ = r5.Close(ctx)
	for _, order := range [][]string{{"1.1.0", "1.0.0"}, {"1.0.0", "1.1.0"}} {
		r6 := newRegistry(t, opts...)
		for _, v := range order {
			mustRegister(t, r6, greeter(v))
		}
		if s := status(t, r6, "greeter"); s.Stable != "1.1.0" || s.Canary != "" || len(s.Standby) != 1 {
			t.Errorf("registered in order %v after a promotion: %+v", order, s)
		}
		_ = r6.Close(ctx)
	}

	// A pin survives too.
	r3 := newRegistry(t, opts...)
	mustRegister(t, r3, greeter("1.0.0"))
	mustRegister(t, r3, greeter("1.1.0"))
	if _, err := r3.Rollback(ctx, "greeter"); err != nil {
		t.Fatal(err)
	}
	mustRegister(t, r3, greeter("1.2.0"))
	if _, err := r3.Rollback(ctx, "greeter"); err != nil {
		t.Fatal(err)
	}
	if err := r3.Pin(ctx, "greeter@1.0.0"); err != nil {
		t.Fatal(err)
	}
	_ = r3.Close(ctx)
	r4 := newRegistry(t, opts...)
	mustRegister(t, r4, greeter("1.0.0"))
	mustRegister(t, r4, greeter("1.3.0"))
	if s := status(t, r4, "greeter"); !s.Pinned || s.Stable != "1.0.0" {
		t.Errorf("after a restart the pin is gone: %+v", s)
	}
	if m := state(t, r4, "greeter@1.3.0"); m.State != hotmod.StateStandby {
		t.Errorf("a version arriving at a pinned module is %s", m.State)
	}
}

// TestCanaryKeepsDependencyRules: a canary out of a dependent's range is
// refused as a swap is; a dependent's calls reach stable.
func TestCanaryKeepsDependencyRules(t *testing.T) {
	r := newRegistry(t, hotmod.WithRollout(canary(t, []int{50}, time.Hour)))
	ctx := context.Background()
	mustRegister(t, r, geo("1.0.0"))
	mustRegister(t, r, shop("1.0.0", "geo", "^1.0", false))
	if _, err := r.Register(ctx, geo("2.0.0")); err == nil || !strings.Contains(err.Error(), "shop@1.0.0 needs") {
		t.Errorf("a canary out of a dependent's range: %v", err)
	}
	mustRegister(t, r, geo("1.1.0"))
	if s := status(t, r, "geo"); s.Canary != "1.1.0" {
		t.Fatalf("geo status: %+v", s)
	}
	for i := 0; i < 100; i++ {
		out, err := r.Invoke(ctx, "shop", "quote", nil)
		if err != nil || out["via"] != "1.0.0" {
			t.Fatalf("shop reached geo %v (%v), want stable 1.0.0", out["via"], err)
		}
	}
	// A dependent that needs what only the canary has waits for its
	// promotion: a canary may still be rolled back.
	mustRegister(t, r, shop("1.1.0", "geo", "^1.1", false))
	if m := state(t, r, "shop@1.1.0"); m.State != hotmod.StateValidated || m.Reason != "waiting for geo ^1.1" {
		t.Errorf("shop 1.1.0 needing the canary: %s %q", m.State, m.Reason)
	}
	if _, err := r.Promote(ctx, "geo"); err != nil {
		t.Fatal(err)
	}
	if m := state(t, r, "shop@1.1.0"); m.State != hotmod.StateActive {
		t.Errorf("shop 1.1.0 after geo 1.1.0 was promoted: %s %q", m.State, m.Reason)
	}
	out, err := r.Invoke(ctx, "shop@1.1.0", "quote", nil)
	if err != nil || out["via"] != "1.1.0" {
		t.Errorf("shop 1.1.0 reached geo %v (%v)", out["via"], err)
	}
}

// BenchmarkRouteChange measures how long Promote and Rollback take, from
// the call to the moment plain calls reach the version they route to (the
// switch is one table swap, so that is when they return); with a state
// directory, the durable write of the rollout state is included.
func BenchmarkRouteChange(b *testing.B) {
	for _, withState := range []bool{false, true} {
		name := "memory"
		opts := []hotmod.Option{hotmod.WithRollout(canary(b, []int{50}, time.Hour))}
		if withState {
			name = "state-dir"
			opts = append(opts, hotmod.WithStateDir(filepath.Join(b.TempDir(), "state")))
		}
		b.Run(name, func(b *testing.B) {
			r := newRegistry(b, opts...)
			ctx := context.Background()
			mustRegister(b, r, greeter("1.0.0"))
			var promote, rollback time.Duration
			i := 0
			for b.Loop() {
				i++
				b.StopTimer()
				mustRegister(b, r, greeter(fmt.Sprintf("1.%d.0", i))) // a canary at 50 %
				b.StartTimer()
				start := time.Now()
				if _, err := r.Promote(ctx, "greeter"); err != nil { // to 100 %
					b.Fatal(err)
				}
				promote += time.Since(start)
				start = time.Now()
				if _, err := r.Rollback(ctx, "greeter"); err != nil { // back to the Standby one
					b.Fatal(err)
				}
				rollback += time.Since(start)
			}
			b.ReportMetric(float64(promote.Nanoseconds())/float64(b.N), "promote-ns")
			b.ReportMetric(float64(rollback.Nanoseconds())/float64(b.N), "rollback-ns")
		})
	}
}
