package guard

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hotmod/hotmod/sdk"
)

// TestHammer beats on a chain with every guard from many goroutines, with
// calls that succeed, fail, panic, time out and hang, while the breaker
// opens and closes and the bulkhead fills. Under -race it checks the
// guards' shared state; afterwards, that every call got an answer with a
// code it may have, and that the counts add up.
func TestHammer(t *testing.T) {
	goroutines, calls := 16, 300
	if testing.Short() {
		calls = 50
	}
	f := newFaulty("1.0.0")
	var piled atomic.Int64
	h, st := f.chain(Standard(Config{
		Breaker:  BreakerConfig{Consecutive: 5, Window: 20, MinCalls: 10, FailureRate: 0.6, CoolDown: 2 * time.Millisecond},
		Bulkhead: BulkheadConfig{Limit: 4, Wait: time.Millisecond},
		Deadline: DeadlineConfig{Default: 5 * time.Millisecond, AbandonLimit: 1 << 20,
			OnPileUp: func(Info, int64) { piled.Add(1) }},
		Logger: quiet,
	})...)
	allowed := map[string][]sdk.Code{
		"ok":       {""},
		"fail":     {sdk.CodeModule},
		"internal": {sdk.CodeInternal},
		"panic":    {sdk.CodePanic},
		"sleep":    {""},
		"hang":     {""},
		"bad":      {sdk.CodeBadParams},
	}
	methods := []string{"ok", "ok", "ok", "ok", "fail", "internal", "panic", "sleep", "hang", "bad"}
	var mu sync.Mutex
	seen := map[string]int{}
	var wg sync.WaitGroup
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(g), 1))
			for i := 0; i < calls; i++ {
				name := methods[r.IntN(len(methods))]
				method, params := name, ms(r.IntN(10))
				if name == "bad" {
					method, params = "sleep", map[string]any{"ms": "x"}
				}
				_, err := h(bg, method, params)
				code := sdk.CodeOf(err)
				// Any call may be refused, and any may time out on a busy machine.
				ok := code == sdk.CodeOverloaded || code == sdk.CodeCircuitOpen || code == sdk.CodeTimeout
				for _, c := range allowed[name] {
					ok = ok || c == code
				}
				if !ok {
					t.Errorf("%s: unexpected %v", name, err)
					return
				}
				mu.Lock()
				seen[string(code)]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	eventually(t, "abandoned calls return", func() bool { return st.Lingering.Load() == 0 })
	snap := st.Snapshot()
	t.Logf("outcomes %v\nsnapshot %+v", seen, snap)
	total := 0
	for _, n := range seen {
		total += n
	}
	if total != goroutines*calls {
		t.Errorf("%d answers for %d calls", total, goroutines*calls)
	}
	if snap.ModuleInFlight != 0 {
		t.Errorf("%d calls still hold a bulkhead slot", snap.ModuleInFlight)
	}
	if got, want := snap.ShortCircuited, int64(seen[string(sdk.CodeCircuitOpen)]); got != want {
		t.Errorf("ShortCircuited = %d, %d calls were refused so", got, want)
	}
	if got, want := snap.Overloaded, int64(seen[string(sdk.CodeOverloaded)]); got != want {
		t.Errorf("Overloaded = %d, %d calls were refused so", got, want)
	}
	if got := snap.Calls + snap.ShortCircuited; got != int64(total) {
		t.Errorf("Calls + ShortCircuited = %d, want %d", got, total)
	}
	// An abandoned call may panic after its caller got timeout: it still counts.
	if p := int64(seen[string(sdk.CodePanic)]); snap.Panics < p || snap.Panics > p+snap.Abandoned {
		t.Errorf("Panics = %d, %d calls answered panic and %d were abandoned", snap.Panics, p, snap.Abandoned)
	}
	if seen[string(sdk.CodeCircuitOpen)] == 0 || seen[""] == 0 {
		t.Errorf("the hammer did not open the breaker and let calls through: %v", seen)
	}
	if piled.Load() != 0 {
		t.Error(fmt.Sprintf("OnPileUp fired %d times under a limit of 1<<20", piled.Load()))
	}
}
