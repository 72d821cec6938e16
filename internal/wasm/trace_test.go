package wasm_test

import (
	"context"
	"testing"

	"github.com/hotmod/hotmod/internal/wasm"
	"github.com/hotmod/hotmod/sdk"
)

// traceGuest answers with the traceparent sdk.TraceParent gives it.
const traceGuest = `package main

import (
	"context"

	"github.com/hotmod/hotmod/sdk"
)

var Module = sdk.New("tracer", "1.0.0").
	Handle("trace", func(ctx context.Context, _ map[string]any) (map[string]any, error) {
		return map[string]any{"traceparent": sdk.TraceParent(ctx)}, nil
	})

func main() { sdk.Main(Module) }
`

// A guest gets the W3C traceparent of the call it serves from the host
// when it asks with sdk.TraceParent; a call with none gives "".
func TestTraceParentReachesTheGuest(t *testing.T) {
	l, _ := newLoader(t, wasm.Config{PoolSize: 1})
	inst := load(t, l, source(t, "tracer", traceGuest))
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	for _, want := range []string{tp, ""} {
		ctx := context.Background()
		if want != "" {
			ctx = sdk.WithTraceParent(ctx, want)
		}
		out, err := inst.Invoke(ctx, "trace", nil)
		if err != nil {
			t.Fatal(err)
		}
		if out["traceparent"] != want {
			t.Errorf("the guest saw traceparent %q, want %q", out["traceparent"], want)
		}
	}
}
