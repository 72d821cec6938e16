package observe

import (
	"testing"

	"github.com/hotmod/hotmod"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// Swaps and rollbacks are counted from the events a registry emits when an
// artifact's version replaces the one it held: up is a swap, down a swap
// and a rollback; a removal and a reload are neither.
func TestSwapsAndRollbacks(t *testing.T) {
	m, err := NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	const file = "/plugins/pricing.so"
	active := func(v string) hotmod.Event {
		return hotmod.Event{Module: "pricing", Version: v, Artifact: file, Transport: hotmod.Native, From: hotmod.StateValidated, To: hotmod.StateActive}
	}
	gone := func(v string) hotmod.Event {
		return hotmod.Event{Module: "pricing", Version: v, Artifact: file, Transport: hotmod.Native, From: hotmod.StateDraining, To: hotmod.StateUnloaded}
	}
	for _, e := range []hotmod.Event{
		active("1.0.0"),                // first load
		active("1.1.0"), gone("1.0.0"), // swap up
		active("1.0.1"), gone("1.1.0"), // swap down: a rollback
		gone("1.0.1"), active("1.0.1"), // removed, then put back: no swap
		{Module: "pricing", Version: "2.0.0", Transport: hotmod.Builtin, To: hotmod.StateActive}, // a builtin beside it
	} {
		m.event(e)
	}
	if n := testutil.ToFloat64(m.swaps.WithLabelValues("pricing")); n != 2 {
		t.Errorf("swaps = %v, want 2", n)
	}
	if n := testutil.ToFloat64(m.rollback.WithLabelValues("pricing")); n != 1 {
		t.Errorf("rollbacks = %v, want 1", n)
	}
}
