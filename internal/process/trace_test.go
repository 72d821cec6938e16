package process

import (
	"testing"

	"github.com/hotmod/hotmod/sdk"
)

// The W3C traceparent of a call crosses to the child in the call message,
// and the module reads it with sdk.TraceParent; a call that carries none
// sends none.
func TestTraceParentCrosses(t *testing.T) {
	cfg, _ := testConfig(t)
	inst := load(t, cfg, launch(t, "helper"))
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	for _, want := range []string{tp, ""} {
		ctx := bg
		if want != "" {
			ctx = sdk.WithTraceParent(bg, want)
		}
		out, err := inst.Invoke(ctx, "traceparent", nil)
		if err != nil {
			t.Fatal(err)
		}
		if out["traceparent"] != want {
			t.Errorf("the child saw traceparent %q, want %q", out["traceparent"], want)
		}
	}
}
