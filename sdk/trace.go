package sdk

import "context"

type traceParentKey struct{}

// TraceParent returns the W3C trace context of the call ctx belongs to, as
// a traceparent header value ("00-<trace id>-<parent span id>-<flags>"),
// or "" when the host traces nothing. A module that makes spans of its own
// (or calls a service over HTTP) continues the host's trace with it. The
// host sets it on native and builtin calls and on process calls (the
// "traceparent" field of a call message); a wasm guest asks the host for
// it when it calls TraceParent (see docs/wasm-abi.md).
func TraceParent(ctx context.Context) string {
	if tp, ok := ctx.Value(traceParentKey{}).(string); ok {
		return tp
	}
	return hostTraceParent()
}

// WithTraceParent returns ctx carrying traceparent, a W3C traceparent
// header value: hosts and transports call it, modules read it with
// TraceParent.
func WithTraceParent(ctx context.Context, traceparent string) context.Context {
	return context.WithValue(ctx, traceParentKey{}, traceparent)
}
