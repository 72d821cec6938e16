package hotmod_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hotmod/hotmod"
	"github.com/hotmod/hotmod/sdk"
)

// geo answers locate with the version that answered.
func geo(version string) *sdk.Module {
	return sdk.New("geo", version).Provides("geocoding", "1.3.0").
		Handle("locate", func(_ context.Context, p map[string]any) (map[string]any, error) {
			city, err := sdk.String(p, "city")
			if err != nil {
				return nil, err
			}
			return map[string]any{"city": city, "geo": version}, nil
		})
}

// shop requires geo (or another target) and asks it in quote.
func shop(version, target, rng string, capability bool) *sdk.Module {
	m := sdk.New("shop", version)
	if capability {
		m.RequiresCapability(target, rng)
	} else {
		m.Requires(target, rng)
	}
	return m.Handle("quote", func(ctx context.Context, p map[string]any) (map[string]any, error) {
		loc, err := sdk.Call(ctx, target, "locate", map[string]any{"city": "Oslo"})
		if err != nil {
			return nil, err
		}
		return map[string]any{"price": int64(42), "via": loc["geo"]}, nil
	})
}

func state(t *testing.T, r *hotmod.Registry, ref string) hotmod.ModuleInfo {
	t.Helper()
	m, ok := find(r, ref)
	if !ok {
		t.Fatalf("%s is not listed: %v", ref, r.Modules())
	}
	return m
}

func TestMissingRequirementWaitsThenActivates(t *testing.T) {
	r := newRegistry(t)
	ctx := context.Background()
	events, cancel := r.Subscribe()
	defer cancel()

	info, err := r.Register(ctx, shop("1.0.0", "geo", "^1.2", false))
	if err != nil {
		t.Fatalf("a missing requirement is not an error, it waits: %v", err)
	}
	if info.State != hotmod.StateValidated || info.Reason != "waiting for geo ^1.2" {
		t.Fatalf("shop: %s %q, want Validated \"waiting for geo ^1.2\"", info.State, info.Reason)
	}
	_, err = r.Invoke(ctx, "shop", "quote", nil)
	if !errors.Is(err, sdk.ErrNotActive) || !strings.Contains(err.Error(), "waiting for geo ^1.2") {
		t.Fatalf("calling a waiting module: %v", err)
	}

	mustRegister(t, r, geo("1.1.0")) // out of range: still waiting
	if s := state(t, r, "shop@1.0.0"); s.State != hotmod.StateValidated {
		t.Fatalf("shop after geo 1.1.0: %s", s.State)
	}
	mustRegister(t, r, geo("1.2.5"))
	if s := state(t, r, "shop@1.0.0"); s.State != hotmod.StateActive || s.Reason != "" {
		t.Fatalf("shop after geo 1.2.5: %s %q", s.State, s.Reason)
	}
	out, err := r.Invoke(ctx, "shop", "quote", nil)
	if err != nil || out["via"] != "1.2.5" {
		t.Fatalf("quote = %v, %v; want it answered through geo 1.2.5", out, err)
	}

	// Activation follows dependency order: geo 1.2.5 is Active before shop.
	var order []string
	deadline := time.After(5 * time.Second)
	for len(order) < 3 {
		select {
		case e := <-events:
			if e.To == hotmod.StateActive {
				order = append(order, e.Module+"@"+e.Version)
			}
		case <-deadline:
			t.Fatalf("activations so far: %v", order)
		}
	}
	if strings.Join(order, " ") != "geo@1.1.0 geo@1.2.5 shop@1.0.0" {
		t.Fatalf("activation order %v", order)
	}
}

func TestCapabilityRequirementAndFind(t *testing.T) {
	r := newRegistry(t)
	ctx := context.Background()
	mustRegister(t, r, shop("1.0.0", "geocoding", "^1.2", true))
	if s := state(t, r, "shop@1.0.0"); s.Reason != "waiting for capability geocoding ^1.2" {
		t.Fatalf("reason %q", s.Reason)
	}
	mustRegister(t, r, geo("2.0.0"))
	found, err := r.Find("geocoding", "^1")
	if err != nil || len(found) != 1 || found[0].Ref() != "geo@2.0.0" {
		t.Fatalf("Find = %v, %v", found, err)
	}
	if found, _ := r.Find("geocoding", "^2"); len(found) != 0 {
		t.Fatalf("Find out of range = %v", found)
	}
	if _, err := r.Find("geocoding", "not a range"); !errors.Is(err, sdk.ErrBadParams) {
		t.Fatalf("Find with a bad range: %v", err)
	}
	out, err := r.Invoke(ctx, "shop", "quote", nil)
	if err != nil || out["via"] != "2.0.0" {
		t.Fatalf("quote through the capability = %v, %v", out, err)
	}
}

func TestCycleIsRefusedAndNamed(t *testing.T) {
	r := newRegistry(t)
	ctx := context.Background()
	a := sdk.New("a", "1.0.0").Requires("b", "^2").Handle("x", echo)
	b := sdk.New("b", "2.1.0").Requires("a", "1.x").Handle("x", echo)
	mustRegister(t, r, a)
	_, err := r.Register(ctx, b)
	if !errors.Is(err, sdk.ErrIncompatible) || !strings.Contains(err.Error(), "b@2.1.0 → a@1.0.0 → b") {
		t.Fatalf("closing a cycle: %v", err)
	}
	if s := state(t, r, "a@1.0.0"); s.State != hotmod.StateValidated || s.Reason != "waiting for b ^2" {
		t.Fatalf("a after the refusal: %s %q", s.State, s.Reason)
	}
	// A longer one, through a capability.
	c := sdk.New("c", "1.0.0").Provides("things", "1.0.0").RequiresCapability("stuff", "*").Handle("x", echo)
	d := sdk.New("d", "1.0.0").Provides("stuff", "1.0.0").Requires("e", "*").Handle("x", echo)
	e := sdk.New("e", "1.0.0").RequiresCapability("things", "^1").Handle("x", echo)
	mustRegister(t, r, c)
	mustRegister(t, r, d)
	_, err = r.Register(ctx, e)
	if err == nil || !strings.Contains(err.Error(), "e@1.0.0 → c@1.0.0 → d@1.0.0 → e") {
		t.Fatalf("a cycle through capabilities: %v", err)
	}
}

func echo(_ context.Context, p map[string]any) (map[string]any, error) { return p, nil }

func TestUnloadOfANeededModule(t *testing.T) {
	r := newRegistry(t)
	ctx := context.Background()
	mustRegister(t, r, geo("1.2.0"))
	mustRegister(t, r, shop("1.0.0", "geo", "^1.2", false))

	err := r.Unload(ctx, "geo")
	if !errors.Is(err, sdk.ErrInUse) || !strings.Contains(err.Error(), "geo@1.2.0 is needed by shop@1.0.0 (requires geo ^1.2)") {
		t.Fatalf("unloading what shop needs: %v", err)
	}
	if _, err := r.Invoke(ctx, "shop", "quote", nil); err != nil {
		t.Fatalf("after the refused unload shop must still answer: %v", err)
	}

	// A second version in range lets the first go.
	mustRegister(t, r, geo("1.3.0"))
	if err := r.Unload(ctx, "geo@1.2.0"); err != nil {
		t.Fatalf("unloading geo 1.2.0 with 1.3.0 active: %v", err)
	}

	// Forced: shop goes back to waiting, and comes back with geo.
	if err := r.Unload(ctx, "geo", hotmod.Force()); err != nil {
		t.Fatalf("forced unload: %v", err)
	}
	if s := state(t, r, "shop@1.0.0"); s.State != hotmod.StateValidated || s.Reason != "waiting for geo ^1.2" {
		t.Fatalf("shop after a forced unload of geo: %s %q", s.State, s.Reason)
	}
	mustRegister(t, r, geo("1.4.0"))
	out, err := r.Invoke(ctx, "shop", "quote", nil)
	if err != nil || out["via"] != "1.4.0" {
		t.Fatalf("shop after geo came back: %v, %v", out, err)
	}

	// A waiting version can be unloaded.
	mustRegister(t, r, sdk.New("lonely", "1.0.0").Requires("nobody", "*").Handle("x", echo))
	if err := r.Unload(ctx, "lonely"); err != nil {
		t.Fatalf("unloading a waiting module: %v", err)
	}
}

func TestCallsOnlyWhatIsDeclared(t *testing.T) {
	r := newRegistry(t)
	ctx := context.Background()
	mustRegister(t, r, geo("1.0.0"))
	mustRegister(t, r, sdk.New("secret", "1.0.0").Handle("leak", echo))
	// b requires nothing; it tries to call secret with whatever handle its
	// caller's context carried.
	mustRegister(t, r, sdk.New("b", "1.0.0").Handle("sneak", func(ctx context.Context, _ map[string]any) (map[string]any, error) {
		return sdk.Call(ctx, "secret", "leak", nil)
	}))
	mustRegister(t, r, sdk.New("a", "1.0.0").Requires("b", "*").Requires("secret", "*").Requires("geo", "*").
		Handle("undeclared", func(ctx context.Context, _ map[string]any) (map[string]any, error) {
			return sdk.Call(ctx, "pricing", "quote", nil)
		}).
		Handle("viaB", func(ctx context.Context, _ map[string]any) (map[string]any, error) {
			return sdk.Call(ctx, "b", "sneak", nil)
		}))

	_, err := r.Invoke(ctx, "a", "undeclared", nil)
	if !errors.Is(err, sdk.ErrUndeclared) || !strings.Contains(err.Error(), `a@1.0.0 called pricing.quote, which it did not declare`) {
		t.Fatalf("an undeclared call: %v", err)
	}
	_, err = r.Invoke(ctx, "a", "viaB", nil)
	if !errors.Is(err, sdk.ErrUndeclared) {
		t.Fatalf("b used a's handle: %v", err)
	}
	// Called from outside any host.
	if _, err := sdk.Call(ctx, "geo", "locate", nil); !errors.Is(err, sdk.ErrUndeclared) {
		t.Fatalf("sdk.Call without a host: %v", err)
	}
}

// recursive requires itself and calls itself n times.
func recursive() *sdk.Module {
	return sdk.New("rec", "1.0.0").Requires("rec", "^1").
		Handle("down", func(ctx context.Context, p map[string]any) (map[string]any, error) {
			n, err := sdk.Int(p, "n")
			if err != nil {
				return nil, err
			}
			dl, _ := ctx.Deadline()
			if n == 0 {
				return map[string]any{"deadline": dl.UnixNano()}, nil
			}
			return sdk.Call(ctx, "rec", "down", map[string]any{"n": n - 1})
		})
}

func TestCallChainCarriesTheDeadlineAndStopsAtTheDepthLimit(t *testing.T) {
	r := newRegistry(t, hotmod.WithCallDepth(4))
	mustRegister(t, r, recursive())
	if s := state(t, r, "rec@1.0.0"); s.State != hotmod.StateActive {
		t.Fatalf("a module that requires itself: %s %q", s.State, s.Reason)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	want, _ := ctx.Deadline()
	out, err := r.Invoke(ctx, "rec", "down", map[string]any{"n": int64(4)})
	if err != nil || out["deadline"] != want.UnixNano() {
		t.Fatalf("4 hops = %v, %v; want the caller's deadline %d at the bottom", out, err, want.UnixNano())
	}
	_, err = r.Invoke(ctx, "rec", "down", map[string]any{"n": int64(5)})
	if !errors.Is(err, sdk.ErrCallDepth) ||
		!strings.Contains(err.Error(), "rec@1.0.0 → rec@1.0.0 → rec@1.0.0 → rec@1.0.0 → rec@1.0.0 → rec is deeper than the limit of 4 hops") {
		t.Fatalf("5 hops: %v", err)
	}
}

// TestRequirementsUnderLoad replaces geo while shop calls through it from
// several goroutines: no call may fail.
func TestRequirementsUnderLoad(t *testing.T) {
	r := newRegistry(t)
	ctx := context.Background()
	mustRegister(t, r, geo("1.2.0"))
	mustRegister(t, r, shop("1.0.0", "geo", "^1.2", false))
	var stop atomic.Bool
	var calls, failed atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				calls.Add(1)
				if _, err := r.Invoke(ctx, "shop", "quote", nil); err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err)
				}
			}
		}()
	}
	prev := "1.2.0"
	for i := range 30 {
		next := fmt.Sprintf("1.%d.%d", 3+i/10, i%10)
		mustRegister(t, r, geo(next))
		if err := r.Unload(ctx, "geo@"+prev); err != nil {
			t.Fatalf("unload geo@%s with geo@%s active: %v", prev, next, err)
		}
		prev = next
	}
	stop.Store(true)
	wg.Wait()
	if failed.Load() != 0 {
		t.Fatalf("%d of %d calls failed; first: %v", failed.Load(), calls.Load(), firstErr.Load())
	}
	t.Logf("%d calls through shop → geo during 30 swaps of geo, 0 failed", calls.Load())
}

// TestWaitingVersionIsCheckedWhenItActivates: a version that waited is
// checked against the versions active when its requirements arrive, not
// only those active when it was loaded; refused then, it is closed and
// gone, and the rest activates.
func TestWaitingVersionIsCheckedWhenItActivates(t *testing.T) {
	r := newRegistry(t)
	ctx := context.Background()
	var closed atomic.Bool
	strict := quoting("1.1.0", quoteStrict()).Requires("geo", "^1").OnClose(func() error { closed.Store(true); return nil })
	mustRegister(t, r, strict) // waits; no other quoting to compare with yet
	mustRegister(t, r, quoting("1.0.0", quoteV1()))
	mustRegister(t, r, geo("1.0.0")) // 1.1.0's requirement is met: now its minor bump breaks 1.0.0's callers

	if _, ok := find(r, "quoting@1.1.0"); ok || !closed.Load() {
		t.Fatalf("quoting 1.1.0 should be refused and closed at activation: %v", r.Modules())
	}
	_, err := r.Invoke(ctx, "quoting@1.1.0", "quote", nil)
	if !errors.Is(err, sdk.ErrUnknownModule) {
		t.Fatalf("calling the refused version: %v", err)
	}
	if got := active(r); got != "geo@1.0.0 quoting@1.0.0" {
		t.Fatalf("active: %s", got)
	}
}

func find(r *hotmod.Registry, ref string) (hotmod.ModuleInfo, bool) {
	for _, m := range r.Modules() {
		if m.Ref() == ref {
			return m, true
		}
	}
	return hotmod.ModuleInfo{}, false
}

func active(r *hotmod.Registry) string {
	var out []string
	for _, m := range r.Modules() {
		if m.State == hotmod.StateActive {
			out = append(out, m.Ref())
		}
	}
	return strings.Join(out, " ")
}
