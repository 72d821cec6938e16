package wasm_test

import (
	"context"
	"testing"

	"github.com/hotmod/hotmod/internal/wasm"
)

// TestLongRun makes 600,000 calls into one guest: its heap must stay small.
// With wazero's default monotonic clock (a millisecond per reading), Go's
// runtime in the guest came to believe hours had passed and its memory grew
// from 7 MB to 69 MB by the 500,000th call, on to the memory limit later;
// the sandbox's clock measures real time (see sandbox in grants.go).
func TestLongRun(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("600,000 calls")
	}
	// trusted: faster; the clock is what matters here
	l, _ := newLoader(t, wasm.Config{PoolSize: 1, Tiers: tierFor(false)})
	g := load(t, l, source(t, "testguest", testGuest))
	ctx := context.Background()
	params := map[string]any{"a": int64(1), "b": int64(2)}
	for k := 0; k < 600_000; k++ {
		if _, err := g.Invoke(ctx, "add_dynamic", params); err != nil {
			t.Fatalf("call %d: %v", k, err)
		}
	}
	stats, err := g.Invoke(ctx, "memstats", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("after 600,000 calls: %v", stats)
	if sys := stats["sys"].(int64); sys > 32<<20 {
		t.Errorf("the guest's runtime holds %d MiB after 600,000 calls; its heap is %d KiB", sys>>20, stats["heap"].(int64)>>10)
	}
}
