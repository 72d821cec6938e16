package guard

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hotmod/hotmod/sdk"
)

// margin is how late past a deadline a timed-out call may return: generous,
// because the test machines are shared and busy.
const margin = 250 * time.Millisecond

func TestDeadlineAbandonsAHungCall(t *testing.T) {
	f := newFaulty("1.0.0")
	h, st := f.chain(Deadline(DeadlineConfig{Default: 50 * time.Millisecond, Logger: quiet}))
	start := time.Now()
	_, err := h(bg, "hang", ms(400))
	took := time.Since(start)
	wantCode(t, "a hung call", err, sdk.ErrTimeout)
	if took < 50*time.Millisecond || took > 50*time.Millisecond+margin {
		t.Errorf("the timeout came after %s, want 50ms (+%s)", took, margin)
	}
	for _, want := range []string{"faulty@1.0.0", "hang gave no answer within 50ms", "abandoned"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q does not say %q", err, want)
		}
	}
	if a, l, to := st.Abandoned.Load(), st.Lingering.Load(), st.Timeouts.Load(); a != 1 || l != 1 || to != 1 {
		t.Errorf("Abandoned, Lingering, Timeouts = %d, %d, %d; want 1, 1, 1", a, l, to)
	}
	// The module returns at last: the call no longer lingers, and stays counted as abandoned.
	eventually(t, "the hung call returns", func() bool { return st.Lingering.Load() == 0 })
	if st.Abandoned.Load() != 1 {
		t.Error("Abandoned changed when the call returned")
	}
}

// A well-behaved module stops at the deadline in its context; a transport
// that enforces contexts itself (wasm, process) needs no goroutine.
func TestDeadlineAttached(t *testing.T) {
	f := newFaulty("1.0.0")
	info := f.info("wasm")
	h := Chain(info, f.mod.Invoke, Deadline(DeadlineConfig{Default: 50 * time.Millisecond, Logger: quiet}))
	start := time.Now()
	_, err := h(bg, "sleep", ms(5000))
	wantCode(t, "a slow call", err, sdk.ErrTimeout)
	if took := time.Since(start); took > 50*time.Millisecond+margin {
		t.Errorf("the timeout came after %s", took)
	}
	if !strings.Contains(err.Error(), "gave no answer within 50ms") {
		t.Errorf("%q does not name the deadline", err)
	}
	st := info.Stats
	if st.Timeouts.Load() != 1 || st.Abandoned.Load() != 0 {
		t.Errorf("Timeouts %d, Abandoned %d; want 1, 0", st.Timeouts.Load(), st.Abandoned.Load())
	}
	if out, err := h(bg, "sleep", ms(1)); err != nil || out["slept_ms"] != int64(1) {
		t.Errorf("a call within its deadline: %v, %v", out, err)
	}
}

func TestDeadlineCallersSoonerDeadline(t *testing.T) {
	f := newFaulty("1.0.0")
	h, st := f.chain(Deadline(DeadlineConfig{Default: time.Hour, Logger: quiet}))
	ctx, cancel := context.WithTimeout(bg, 40*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := h(ctx, "hang", ms(300))
	wantCode(t, "a hung call with a short caller deadline", err, sdk.ErrTimeout)
	if took := time.Since(start); took > 40*time.Millisecond+margin {
		t.Errorf("the timeout came after %s", took)
	}
	if !strings.Contains(err.Error(), "the caller's context ended") {
		t.Errorf("%q does not say the caller's deadline passed", err)
	}
	if st.Abandoned.Load() != 1 {
		t.Errorf("Abandoned = %d", st.Abandoned.Load())
	}
	// Over before it began: the module is not called at all.
	before := f.calls.Load()
	_, err = h(ctx, "ok", nil)
	wantCode(t, "a call with an expired context", err, sdk.ErrTimeout)
	if f.calls.Load() != before {
		t.Error("a call whose context had ended reached the module")
	}
}

func TestDeadlinePileUp(t *testing.T) {
	const limit = 3
	f := newFaulty("1.0.0")
	var fired atomic.Int64
	var mu sync.Mutex
	var got []int64
	h, st := f.chain(Deadline(DeadlineConfig{Default: 10 * time.Millisecond, AbandonLimit: limit, Logger: quiet,
		OnPileUp: func(info Info, lingering int64) {
			mu.Lock()
			got = append(got, lingering)
			mu.Unlock()
			if info.Module != "faulty" || info.Version != "1.0.0" || info.Stats == nil {
				t.Errorf("OnPileUp got %+v", info)
			}
			fired.Add(1)
		}}))
	for i := 0; i < limit-1; i++ {
		_, err := h(bg, "hang", ms(1000))
		wantCode(t, "a hung call", err, sdk.ErrTimeout)
	}
	time.Sleep(50 * time.Millisecond)
	if fired.Load() != 0 {
		t.Fatalf("OnPileUp fired with %d lingering calls, under the limit of %d", st.Lingering.Load(), limit)
	}
	for i := 0; i < 3; i++ {
		_, err := h(bg, "hang", ms(1000))
		wantCode(t, "a hung call", err, sdk.ErrTimeout)
	}
	eventually(t, "OnPileUp fires", func() bool { return fired.Load() > 0 })
	time.Sleep(50 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 || got[0] != limit {
		t.Errorf("OnPileUp calls: %v, want one with %d", got, limit)
	}
	if a := st.Abandoned.Load(); a != limit+2 {
		t.Errorf("Abandoned = %d, want %d", a, limit+2)
	}
}

func TestDeadlinePrecedence(t *testing.T) {
	mod := sdk.New("m", "1.0.0")
	seen := map[string]time.Duration{}
	var mu sync.Mutex
	for _, name := range []string{"a", "b", "c", "d"} {
		mod.Handle(name, func(ctx context.Context, _ map[string]any) (map[string]any, error) {
			d := time.Duration(-1)
			if dl, ok := ctx.Deadline(); ok {
				d = time.Until(dl).Round(time.Minute)
			}
			mu.Lock()
			seen[name] = d
			mu.Unlock()
			return nil, nil
		})
	}
	info := Info{Module: "m", Version: "1.0.0", Transport: "process", Manifest: mod.Manifest(), Stats: new(Stats)}
	cfg := DeadlineConfig{
		Default: 10 * time.Minute,
		Methods: map[string]map[string]time.Duration{"m": {"a": 20 * time.Minute, "d": -1}},
		Suggested: func(m sdk.Manifest, method string) time.Duration {
			if m.Name != "m" {
				t.Errorf("Suggested got the manifest of %q", m.Name)
			}
			switch method {
			case "a":
				return time.Minute // the host's setting wins
			case "b":
				return 3 * time.Minute
			case "c":
				return 300 * time.Minute // capped
			}
			return 0
		},
		MaxSuggested: 30 * time.Minute,
		Logger:       quiet,
	}
	h := Chain(info, mod.Invoke, Deadline(cfg))
	for _, name := range []string{"a", "b", "c", "d"} {
		if _, err := h(bg, name, nil); err != nil {
			t.Fatal(err)
		}
	}
	want := map[string]time.Duration{"a": 20 * time.Minute, "b": 3 * time.Minute, "c": 30 * time.Minute, "d": -1}
	for name, d := range want {
		if seen[name] != d {
			t.Errorf("%s ran with deadline %v, want %v", name, seen[name], d)
		}
	}
	// A module-wide setting overrules suggestions.
	cfg.Modules = map[string]time.Duration{"m": 7 * time.Minute}
	h = Chain(info, mod.Invoke, Deadline(cfg))
	for _, name := range []string{"a", "b", "c"} {
		_, _ = h(bg, name, nil)
	}
	want = map[string]time.Duration{"a": 20 * time.Minute, "b": 7 * time.Minute, "c": 7 * time.Minute}
	for name, d := range want {
		if seen[name] != d {
			t.Errorf("with a module setting, %s ran with deadline %v, want %v", name, seen[name], d)
		}
	}
}

// No deadline anywhere: the call runs on the caller's goroutine, with the
// caller's context.
func TestDeadlineNone(t *testing.T) {
	type key struct{}
	ctx := context.WithValue(bg, key{}, "mine")
	mod := sdk.New("m", "1.0.0").Handle("f", func(got context.Context, _ map[string]any) (map[string]any, error) {
		if got != ctx {
			t.Error("the module got another context than the caller's")
		}
		return nil, nil
	})
	for _, transport := range []string{"native", "process"} {
		info := Info{Module: "m", Version: "1.0.0", Transport: transport, Manifest: mod.Manifest(), Stats: new(Stats)}
		h := Chain(info, mod.Invoke, Deadline(DeadlineConfig{Default: -1}))
		if _, err := h(ctx, "f", nil); err != nil {
			t.Fatal(err)
		}
	}
}

// The detached goroutine has a panic net of its own, for chains that have
// no Recover inside the Deadline guard.
func TestDeadlinePanicOnItsGoroutine(t *testing.T) {
	f := newFaulty("1.0.0")
	h, st := f.chain(Deadline(DeadlineConfig{Default: time.Second, Logger: quiet}))
	_, err := h(bg, "panic", nil)
	wantCode(t, "a panic on the detached goroutine", err, sdk.ErrPanic)
	if st.Panics.Load() != 1 {
		t.Errorf("Panics = %d", st.Panics.Load())
	}
}

// Past a handful of per-method deadlines the guard looks them up by hash;
// the answers are the same.
func TestDeadlineManyMethods(t *testing.T) {
	mod := sdk.New("m", "1.0.0")
	perMethod := map[string]time.Duration{}
	var mu sync.Mutex
	seen := map[string]time.Duration{}
	for i := 0; i < 2*fewMethods; i++ {
		name := string(rune('a' + i))
		perMethod[name] = time.Duration(i+1) * time.Minute
		mod.Handle(name, func(ctx context.Context, _ map[string]any) (map[string]any, error) {
			dl, _ := ctx.Deadline()
			mu.Lock()
			seen[name] = time.Until(dl).Round(time.Minute)
			mu.Unlock()
			return nil, nil
		})
	}
	mod.Handle("other", func(ctx context.Context, _ map[string]any) (map[string]any, error) {
		dl, _ := ctx.Deadline()
		mu.Lock()
		seen["other"] = time.Until(dl).Round(time.Minute)
		mu.Unlock()
		return nil, nil
	})
	perMethod["other"] = 0 // not set: the default
	info := Info{Module: "m", Version: "1.0.0", Transport: "wasm", Manifest: mod.Manifest(), Stats: new(Stats)}
	h := Chain(info, mod.Invoke, Deadline(DeadlineConfig{Default: 99 * time.Minute,
		Methods: map[string]map[string]time.Duration{"m": perMethod}}))
	for name := range perMethod {
		if _, err := h(bg, name, nil); err != nil {
			t.Fatal(err)
		}
	}
	perMethod["other"] = 99 * time.Minute
	for name, want := range perMethod {
		if seen[name] != want {
			t.Errorf("%s ran with deadline %v, want %v", name, seen[name], want)
		}
	}
}
