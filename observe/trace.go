package observe

import (
	"context"
	"net/http"
	"time"

	"github.com/hotmod/hotmod"
	"github.com/hotmod/hotmod/sdk"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// TracerName is the instrumentation scope of hotmod's spans.
const TracerName = "github.com/hotmod/hotmod"

// The span attributes hotmod sets beside the RPC semantic conventions
// (rpc.system "hotmod", rpc.service the module, rpc.method the method).
const (
	AttrVersion   = attribute.Key("hotmod.module.version")
	AttrTransport = attribute.Key("hotmod.transport")
	AttrCode      = attribute.Key("hotmod.error.code") // set when the call failed
	AttrCaller    = attribute.Key("hotmod.caller")     // name@version of the calling module, for a module-to-module call
)

// Tracing is a hotmod.Observer that makes a span for every call into a
// module version, a child of the span in the call's context: the caller's,
// the HTTP request's (see TraceHTTP), or, for a call one module makes to
// another through the host, the span of the call that made it. Give it to
// hotmod.New with hotmod.WithObserver.
type Tracing struct {
	tracer trace.Tracer
}

// NewTracing returns the observer, making spans with tp's tracer.
func NewTracing(tp trace.TracerProvider) *Tracing {
	return &Tracing{tracer: tp.Tracer(TracerName)}
}

// ForVersion makes the version's span names and attributes once.
func (t *Tracing) ForVersion(v hotmod.VersionInfo) hotmod.VersionObserver {
	vt := &versionTracer{tracer: t.tracer, names: map[string]string{}, unknown: v.Module + "/" + UnknownMethod}
	for _, m := range v.Manifest.Methods {
		vt.names[m.Name] = v.Module + "/" + m.Name
	}
	vt.attrs = []attribute.KeyValue{
		attribute.String("rpc.system", "hotmod"), attribute.String("rpc.service", v.Module),
		AttrVersion.String(v.Version), AttrTransport.String(string(v.Transport)),
	}
	return vt
}

type versionTracer struct {
	tracer  trace.Tracer
	names   map[string]string // method → span name, "module/method"
	unknown string
	attrs   []attribute.KeyValue
}

func (vt *versionTracer) CallStart(ctx context.Context, c hotmod.CallInfo) context.Context {
	name := vt.names[c.Method]
	if name == "" {
		name = vt.unknown
	}
	attrs := append(vt.attrs[:len(vt.attrs):len(vt.attrs)], attribute.String("rpc.method", c.Method))
	if caller := hotmod.Caller(ctx); caller != "" {
		attrs = append(attrs, AttrCaller.String(caller))
	}
	ctx, span := vt.tracer.Start(ctx, name, trace.WithTimestamp(c.Start), trace.WithAttributes(attrs...))
	if sc := span.SpanContext(); sc.IsValid() {
		// For the module: sdk.TraceParent, and the process transport's
		// call message.
		ctx = sdk.WithTraceParent(ctx, "00-"+sc.TraceID().String()+"-"+sc.SpanID().String()+"-"+sc.TraceFlags().String())
	}
	return ctx
}

func (vt *versionTracer) CallEnd(ctx context.Context, c hotmod.CallInfo, took time.Duration, err error) {
	span := trace.SpanFromContext(ctx)
	if err != nil {
		e := sdk.AsError(err)
		span.SetAttributes(AttrCode.String(string(e.Code)))
		span.SetStatus(codes.Error, e.Error())
	}
	span.End(trace.WithTimestamp(c.Start.Add(took)))
}

// untraced are the requests TraceHTTP makes no span for: scrapes, health
// checks and event streams would only bury the calls.
var untraced = map[string]bool{"/metrics": true, "/healthz": true, "/v1/events": true}

// TraceHTTP wraps an HTTP handler: each request continues the trace its
// W3C traceparent header names (or starts one) in a server span, which the
// spans of the calls it makes are children of. The span is named after the
// route the request matched ("POST /v1/invoke/{module}/{method}").
func TraceHTTP(next http.Handler, tp trace.TracerProvider, prop propagation.TextMapPropagator) http.Handler {
	tracer := tp.Tracer(TracerName)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if untraced[r.URL.Path] {
			next.ServeHTTP(w, r)
			return
		}
		ctx := prop.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		ctx, span := tracer.Start(ctx, r.Method, trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(attribute.String("http.request.method", r.Method), attribute.String("url.path", r.URL.Path)))
		defer span.End()
		rec := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		r = r.WithContext(ctx)
		next.ServeHTTP(rec, r)
		if r.Pattern != "" {
			span.SetName(r.Pattern)
			span.SetAttributes(attribute.String("http.route", r.Pattern))
		}
		span.SetAttributes(attribute.Int("http.response.status_code", rec.status))
		if rec.status >= 500 {
			span.SetStatus(codes.Error, http.StatusText(rec.status))
		}
	})
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }
