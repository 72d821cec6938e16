package guard

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hotmod/hotmod/sdk"
)

// transitions records a breaker's state changes.
type transitions struct {
	mu   sync.Mutex
	list []string
}

func (tr *transitions) record(_ Info, _ string, from, to BreakerState, _ string) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.list = append(tr.list, from.String()+"→"+to.String())
}

func (tr *transitions) String() string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return strings.Join(tr.list, " ")
}

// coolDown is the tests' cool-down: long enough that a busy machine does not
// let it pass between a transition and the call that checks for a refusal.
const coolDown = 150 * time.Millisecond

// afterCoolDown sleeps until the cool-down is over.
func afterCoolDown() { time.Sleep(coolDown + 20*time.Millisecond) }

func breakerChain(f *faulty, c BreakerConfig) (Handler, *Stats, *transitions) {
	tr := &transitions{}
	c.OnStateChange, c.Logger = tr.record, quiet
	h, st := f.chain(Breaker(c), Recover(RecoverConfig{Logger: quiet}))
	return h, st, tr
}

func state(t *testing.T, st *Stats) BreakerState {
	t.Helper()
	s, ok := st.BreakerState()
	if !ok {
		t.Fatal("the chain has no breaker")
	}
	return s
}

// tripped fails calls of maybe until its breaker opens after the default 3.
func tripped(t *testing.T, h Handler, st *Stats) { t.Helper(); trippedWith(t, h, st, do("fail")) }

func trippedWith(t *testing.T, h Handler, st *Stats, params map[string]any) {
	t.Helper()
	for i := 0; i < DefaultConsecutive; i++ {
		if state(t, st) != BreakerClosed {
			t.Fatalf("open after %d failures, want %d", i, DefaultConsecutive)
		}
		if _, err := h(bg, "maybe", params); err == nil {
			t.Fatalf("maybe %v succeeded", params)
		}
	}
	if s := state(t, st); s != BreakerOpen {
		t.Fatalf("after %d failures the breaker is %s, want open", DefaultConsecutive, s)
	}
}

func TestBreakerOpensAfterConsecutiveFailures(t *testing.T) {
	for _, method := range []string{"fail", "panic", "internal"} {
		t.Run(method, func(t *testing.T) {
			f := newFaulty("1.0.0")
			h, st, tr := breakerChain(f, BreakerConfig{CoolDown: time.Hour})
			// Successes of the same method in between reset the count.
			for i := 0; i < 5; i++ {
				_, _ = h(bg, "maybe", do(method))
				_, _ = h(bg, "maybe", do(method))
				if _, err := h(bg, "maybe", nil); err != nil {
					t.Fatal(err)
				}
			}
			if s := state(t, st); s != BreakerClosed {
				t.Fatalf("two failures between successes opened the breaker (%s)", s)
			}
			trippedWith(t, h, st, do(method))
			before := f.calls.Load()
			_, err := h(bg, "maybe", nil)
			wantCode(t, "a call to an open breaker", err, sdk.ErrCircuitOpen)
			if f.calls.Load() != before {
				t.Error("an open breaker let a call reach the module")
			}
			for _, want := range []string{"faulty@1.0.0", "circuit of maybe", "3 failures in a row", "probe call at"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("the refusal %q does not say %q", err, want)
				}
			}
			snap := st.Snapshot()
			if snap.Breaker != "open" || snap.ProbeAt.Before(time.Now().Add(50*time.Minute)) || snap.ShortCircuited != 1 ||
				snap.Failures != 13 || snap.Calls != 18 || !strings.HasPrefix(snap.BreakerReason, "maybe: 3 failures in a row") ||
				len(snap.Breakers) != 1 || snap.Breakers["maybe"].State != BreakerOpen {
				t.Errorf("snapshot %+v", snap)
			}
			// The version's other methods keep answering.
			if _, err := h(bg, "ok", nil); err != nil {
				t.Errorf("a healthy method of the version: %v", err)
			}
			if s, _ := st.MethodBreakerState("ok"); s != BreakerClosed {
				t.Errorf("the healthy method's breaker is %s", s)
			}
			if got := tr.String(); got != "closed→open" {
				t.Errorf("transitions %q", got)
			}
		})
	}
}

func TestBreakerProbeCloses(t *testing.T) {
	f := newFaulty("1.0.0")
	h, st, tr := breakerChain(f, BreakerConfig{CoolDown: coolDown})
	tripped(t, h, st)
	if r := st.Snapshot().BreakerReason; r == "" {
		t.Error("an open breaker gives no reason")
	}
	afterCoolDown()
	if _, err := h(bg, "maybe", nil); err != nil {
		t.Fatalf("the probe: %v", err)
	}
	if s := state(t, st); s != BreakerClosed {
		t.Fatalf("after a good probe the breaker is %s", s)
	}
	if r := st.Snapshot().BreakerReason; r != "" {
		t.Errorf("a closed breaker still gives the reason it opened: %q", r)
	}
	if got := tr.String(); got != "closed→open open→half-open half-open→closed" {
		t.Errorf("transitions %q", got)
	}
	// The counts start again: it takes three new failures to open it.
	tripped(t, h, st)
}

func TestBreakerProbeFailsReopens(t *testing.T) {
	f := newFaulty("1.0.0")
	h, st, tr := breakerChain(f, BreakerConfig{CoolDown: coolDown})
	tripped(t, h, st)
	afterCoolDown()
	before := f.calls.Load()
	if _, err := h(bg, "maybe", do("panic")); !strings.Contains(fmt.Sprint(err), "panicked") {
		t.Fatalf("the probe: %v", err)
	}
	if f.calls.Load() != before+1 {
		t.Fatal("the probe did not reach the module")
	}
	if s := state(t, st); s != BreakerOpen {
		t.Fatalf("after a failed probe the breaker is %s", s)
	}
	_, err := h(bg, "maybe", nil)
	wantCode(t, "right after a failed probe", err, sdk.ErrCircuitOpen)
	if !strings.Contains(err.Error(), "the probe call to maybe failed") {
		t.Errorf("the refusal does not say the probe failed: %v", err)
	}
	if got := tr.String(); got != "closed→open open→half-open half-open→open" {
		t.Errorf("transitions %q", got)
	}
	// A new cool-down, then a good probe.
	afterCoolDown()
	if _, err := h(bg, "maybe", nil); err != nil {
		t.Fatalf("the second probe: %v", err)
	}
	if s := state(t, st); s != BreakerClosed {
		t.Fatalf("after a good probe the breaker is %s", s)
	}
}

func TestBreakerOneProbeAtATime(t *testing.T) {
	f := newFaulty("1.0.0")
	h, st, _ := breakerChain(f, BreakerConfig{CoolDown: coolDown})
	tripped(t, h, st)
	afterCoolDown()
	probe := make(chan error, 1)
	go func() {
		_, err := h(bg, "maybe", do("block"))
		probe <- err
	}()
	f.waitEntered(t, 1)
	if s := state(t, st); s != BreakerHalfOpen {
		t.Fatalf("while the probe runs the breaker is %s", s)
	}
	_, err := h(bg, "maybe", nil)
	wantCode(t, "a call during the probe", err, sdk.ErrCircuitOpen)
	if !strings.Contains(err.Error(), "half-open") {
		t.Errorf("the refusal does not say a probe is running: %v", err)
	}
	f.open()
	if err := <-probe; err != nil {
		t.Fatalf("the probe: %v", err)
	}
	if s := state(t, st); s != BreakerClosed {
		t.Fatalf("after a good probe the breaker is %s", s)
	}
}

// A probe that gives no answer for a whole cool-down does not keep the
// breaker half-open for ever: another call may probe in its place, and the
// late answer of the first decides nothing.
func TestBreakerStuckProbeIsReplaced(t *testing.T) {
	f := newFaulty("1.0.0")
	h, st, _ := breakerChain(f, BreakerConfig{CoolDown: coolDown})
	tripped(t, h, st)
	afterCoolDown()
	stuck := make(chan error, 1)
	go func() {
		_, err := h(bg, "maybe", do("block"))
		stuck <- err
	}()
	f.waitEntered(t, 1)
	afterCoolDown()
	if _, err := h(bg, "maybe", do("fail")); err == nil || sdk.CodeOf(err) == sdk.CodeCircuitOpen {
		t.Fatalf("the second probe: %v; want it to reach the module and fail", err)
	}
	if s := state(t, st); s != BreakerOpen {
		t.Fatalf("after the second probe failed the breaker is %s", s)
	}
	f.open()
	if err := <-stuck; err != nil {
		t.Fatal(err)
	}
	if s := state(t, st); s != BreakerOpen {
		t.Fatalf("the stale probe's success changed the breaker to %s", s)
	}
}

func TestBreakerFailureRate(t *testing.T) {
	f := newFaulty("1.0.0")
	h, st, _ := breakerChain(f, BreakerConfig{Consecutive: -1, Window: 10, MinCalls: 10, FailureRate: 0.5, CoolDown: time.Hour})
	// ok, fail, ok, fail …: never two failures in a row, half of them
	// failed. The method's window starts at its first failure: after 11
	// calls it holds 10, 5 of them failed, but the last was a success.
	for i := 0; i < 11; i++ {
		what := "ok"
		if i%2 == 1 {
			what = "fail"
		}
		_, _ = h(bg, "maybe", do(what))
	}
	if s := state(t, st); s != BreakerClosed {
		t.Fatalf("opened before the window held MinCalls calls (%s)", s)
	}
	_, _ = h(bg, "maybe", do("fail")) // 5 of 10
	if s := state(t, st); s != BreakerOpen {
		t.Fatalf("5 failures in the last 10 calls left the breaker %s", s)
	}
	if r := st.Snapshot().BreakerReason; !strings.Contains(r, "5 of the last 10 calls failed") {
		t.Errorf("reason %q", r)
	}
}

// The window slides: old failures drop out as new calls succeed.
func TestBreakerWindowSlides(t *testing.T) {
	f := newFaulty("1.0.0")
	h, st, _ := breakerChain(f, BreakerConfig{Consecutive: -1, Window: 10, MinCalls: 10, FailureRate: 0.5, CoolDown: time.Hour})
	for i := 0; i < 4; i++ {
		_, _ = h(bg, "maybe", do("fail"))
	}
	for i := 0; i < 100; i++ {
		_, _ = h(bg, "maybe", nil)
	}
	for i := 0; i < 4; i++ {
		_, _ = h(bg, "maybe", do("fail"))
	}
	if s := state(t, st); s != BreakerClosed {
		t.Fatalf("4 failures in the last 10 calls opened the breaker (%s): old failures did not slide out", s)
	}
	_, _ = h(bg, "maybe", do("fail"))
	if s := state(t, st); s != BreakerOpen {
		t.Fatalf("5 failures in the last 10 calls left the breaker %s", s)
	}
}

// The caller's mistakes, refusals and calls whose caller gave up say
// nothing about the module: they neither open the breaker nor reset its
// count.
func TestBreakerIgnoresWhatIsNotTheModules(t *testing.T) {
	f := newFaulty("1.0.0")
	h, st, _ := breakerChain(f, BreakerConfig{Window: -1, CoolDown: time.Hour})
	gone, cancel := context.WithCancel(bg)
	cancel()
	for i := 0; i < 2; i++ {
		_, _ = h(bg, "maybe", do("fail"))
	}
	for i := 0; i < 10; i++ {
		_, err := h(bg, "maybe", map[string]any{"do": "sleep", "ms": "soon"})
		wantCode(t, "sleep with a string", err, sdk.ErrBadParams)
		_, err = h(bg, "maybe", do("nosuch"))
		wantCode(t, "an unknown method", err, sdk.ErrUnknownMethod)
		_, err = h(gone, "maybe", map[string]any{"do": "sleep", "ms": int64(1000)})
		wantCode(t, "a call whose caller gave up", err, sdk.ErrTimeout)
	}
	if s := state(t, st); s != BreakerClosed {
		t.Fatalf("the caller's mistakes opened the breaker (%s)", s)
	}
	if got := st.Failures.Load(); got != 2 {
		t.Errorf("Failures = %d, want 2", got)
	}
	_, _ = h(bg, "maybe", do("fail")) // the third in a row: the others did not reset the count
	if s := state(t, st); s != BreakerOpen {
		t.Fatalf("the third failure left the breaker %s", s)
	}
}

func TestBreakerOff(t *testing.T) {
	f := newFaulty("1.0.0")
	h, st, _ := breakerChain(f, BreakerConfig{Consecutive: -1, Window: -1})
	for i := 0; i < 10; i++ {
		_, _ = h(bg, "maybe", do("fail"))
	}
	if _, ok := st.BreakerState(); ok {
		t.Error("a breaker with both rules off is in the chain")
	}
	if _, err := h(bg, "maybe", nil); err != nil {
		t.Fatal(err)
	}
}

// One method's open circuit leaves the version's other methods answering,
// and the snapshot shows which method is cut off and why.
func TestBreakerPerMethod(t *testing.T) {
	f := newFaulty("1.0.0")
	h, st, tr := breakerChain(f, BreakerConfig{CoolDown: time.Hour})
	for i := 0; i < DefaultConsecutive; i++ {
		_, _ = h(bg, "fail", nil)
		_, _ = h(bg, "panic", nil)
	}
	_, err := h(bg, "fail", nil)
	wantCode(t, "fail after 3 failures", err, sdk.ErrCircuitOpen)
	if !strings.Contains(err.Error(), "circuit of fail") {
		t.Errorf("the refusal does not name the method: %v", err)
	}
	for i := 0; i < 10; i++ {
		if out, err := h(bg, "sleep", ms(1)); err != nil || out["slept_ms"] != int64(1) {
			t.Fatalf("a healthy method after another's circuit opened: %v %v", out, err)
		}
	}
	snap := st.Snapshot()
	if snap.Breaker != "open" || len(snap.Breakers) != 2 || snap.Breakers["fail"].State != BreakerOpen ||
		snap.Breakers["panic"].State != BreakerOpen || snap.ProbeAt.IsZero() {
		t.Fatalf("snapshot %+v", snap)
	}
	if !strings.HasPrefix(snap.BreakerReason, "fail: 3 failures in a row") || !strings.Contains(snap.BreakerReason, "; panic: 3 failures in a row") {
		t.Errorf("reason %q", snap.BreakerReason)
	}
	b, err := json.Marshal(snap)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"breakers":{"fail":{"state":"open","reason":"3 failures in a row`) {
		t.Errorf("JSON %s", b)
	}
	var back Snapshot
	if err := json.Unmarshal(b, &back); err != nil || back.Breakers["panic"].State != BreakerOpen {
		t.Errorf("the snapshot does not read back: %v %+v", err, back)
	}
	if got := tr.String(); got != "closed→open closed→open" {
		t.Errorf("transitions %q", got)
	}
}

// Past MaxBreakerMethods failing methods, the others share one breaker: the
// memory a version's breakers take is bounded whatever names callers use.
func TestBreakerMethodsBounded(t *testing.T) {
	mod := sdk.New("any", "1.0.0")
	h := Chain(Info{Module: "any", Version: "1.0.0", Transport: "builtin", Manifest: mod.Manifest()},
		func(context.Context, string, map[string]any) (map[string]any, error) {
			return nil, errors.New("always failing")
		}, Breaker(BreakerConfig{CoolDown: time.Hour, Logger: quiet}))
	for i := 0; i < MaxBreakerMethods+10; i++ {
		_, _ = h(bg, fmt.Sprint("m", i), nil)
	}
	// The 10 methods past the limit failed once each, on one breaker: it
	// is open, for them and any method never seen, not for m0.
	if _, err := h(bg, "m0", nil); err == nil || sdk.CodeOf(err) == sdk.CodeCircuitOpen {
		t.Errorf("m0, failed once before: %v", err)
	}
	_, err := h(bg, "another", nil)
	wantCode(t, "a method past the limit", err, sdk.ErrCircuitOpen)
	if !strings.Contains(err.Error(), OtherMethods) {
		t.Errorf("the refusal does not name %q: %v", OtherMethods, err)
	}
}
