//go:build !(wasip1 && go1.24)

package sdk

// hostTraceParent: outside a wasm guest the trace context travels in the
// call's context only.
func hostTraceParent() string { return "" }
