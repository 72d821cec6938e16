package integration

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hotmod/hotmod"
	"github.com/hotmod/hotmod/internal/plugintest"
)

// TestWasmTrustedTier: a wasm module the operator put on the trusted tier
// is called as a native one is: at its deadline the caller gets timeout
// while the guest runs on (the Deadline guard abandons the call), and a
// version whose abandoned calls pile up is quarantined. The tier shows in
// the module's runtime info.
func TestWasmTrustedTier(t *testing.T) {
	if testing.Short() {
		t.Skip("builds real modules; skipped with -short")
	}
	dir := t.TempDir()
	place(t, plugintest.BuildWasm(t, plugintest.Example(t, "faulty")), dir, "faulty.wasm")
	reg := watch(t, dir, hotmod.WithWasmTier("faulty=trusted"),
		hotmod.WithGuards(hotmod.Guards{Timeout: 100 * time.Millisecond, AbandonLimit: 1, BreakerFailures: -1}))
	waitFor(t, "faulty active", func() bool {
		m := reg.Modules()
		return len(m) == 1 && m[0].State == hotmod.StateActive
	})
	if rt := reg.Modules()[0].Runtime; rt == nil || rt.Tier != "trusted" {
		t.Fatalf("runtime info %+v, want the trusted tier", rt)
	}
	ctx := context.Background()
	if out, err := reg.Invoke(ctx, "faulty", "ok", nil); err != nil || out["ok"] != true {
		t.Fatalf("ok = %v, %v", out, err)
	}
	// One call: with two cores, one trusted call runs at a time
	// (Config.TrustedCalls), so a second concurrent call would wait for
	// the running one's slot and end at its own deadline without having
	// run: it is not abandoned, and whether its wait or the guard ends it
	// first is a race. AbandonLimit 1 makes the first abandoned call the
	// pile-up.
	start := time.Now()
	_, err := reg.Invoke(ctx, "faulty", "hang", map[string]any{"ms": int64(1500)})
	if !errors.Is(err, hotmod.ErrTimeout) || time.Since(start) > time.Second {
		t.Errorf("hang: %v after %s; want timeout at the 100ms deadline", err, time.Since(start))
	}
	waitFor(t, "faulty quarantined", func() bool {
		m := reg.Modules()
		return len(m) == 1 && m[0].State == hotmod.StateFailed
	})
	if m := reg.Modules()[0]; !strings.Contains(m.Reason, "quarantined: 1 call abandoned at its deadline is still running") {
		t.Fatalf("after the pile-up: %s %q", m.State, m.Reason)
	}
}
