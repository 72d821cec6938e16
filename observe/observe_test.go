package observe_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hotmod/hotmod"
	"github.com/hotmod/hotmod/internal/server"
	"github.com/hotmod/hotmod/observe"
	"github.com/hotmod/hotmod/sdk"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func newRegistry(t testing.TB, opts ...hotmod.Option) *hotmod.Registry {
	t.Helper()
	r := hotmod.New(append([]hotmod.Option{hotmod.WithLogger(quiet), hotmod.WithCacheDir(t.TempDir())}, opts...)...)
	t.Cleanup(func() { _ = r.Close(context.Background()) })
	return r
}

func register(t testing.TB, r *hotmod.Registry, m *sdk.Module) {
	t.Helper()
	if _, err := r.Register(context.Background(), m); err != nil {
		t.Fatal(err)
	}
}

// geo answers locate; shop requires geo and calls it in quote.
func geo() *sdk.Module {
	return sdk.New("geo", "1.2.0").
		Handle("locate", func(ctx context.Context, _ map[string]any) (map[string]any, error) {
			return map[string]any{"city": "Oslo", "traceparent": sdk.TraceParent(ctx)}, nil
		}).
		Handle("fail", func(context.Context, map[string]any) (map[string]any, error) {
			return nil, errors.New("no such place")
		})
}

func shop() *sdk.Module {
	return sdk.New("shop", "1.0.0").Requires("geo", "^1.2").
		Handle("quote", func(ctx context.Context, _ map[string]any) (map[string]any, error) {
			if _, err := sdk.Call(ctx, "geo", "locate", nil); err != nil {
				return nil, err
			}
			return map[string]any{"price": int64(42)}, nil
		})
}

func TestMetricsCountCallsByCode(t *testing.T) {
	preg := prometheus.NewPedanticRegistry()
	m, err := observe.NewMetrics(preg)
	if err != nil {
		t.Fatal(err)
	}
	r := newRegistry(t, hotmod.WithObserver(m), hotmod.WithGuards(hotmod.Guards{BreakerFailures: 2, BreakerCoolDown: time.Hour}))
	stop, err := m.Watch(r)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	register(t, r, geo())
	register(t, r, shop())
	ctx := context.Background()
	for range 2 {
		if _, err := r.Invoke(ctx, "shop", "quote", nil); err != nil {
			t.Fatal(err)
		}
	}
	for range 3 {
		_, _ = r.Invoke(ctx, "geo", "fail", nil) // 2 failures open the breaker: the third is circuit_open
	}
	_, _ = r.Invoke(ctx, "geo", "nope", nil) // the circuit is fail's: another method reaches the module

	want := `
# HELP hotmod_calls_total Calls into module versions, by result: code is ok or the error code.
# TYPE hotmod_calls_total counter
hotmod_calls_total{code="circuit_open",method="fail",module="geo",version="1.2.0"} 1
hotmod_calls_total{code="module_error",method="fail",module="geo",version="1.2.0"} 2
hotmod_calls_total{code="ok",method="fail",module="geo",version="1.2.0"} 0
hotmod_calls_total{code="ok",method="locate",module="geo",version="1.2.0"} 2
hotmod_calls_total{code="ok",method="quote",module="shop",version="1.0.0"} 2
hotmod_calls_total{code="unknown_method",method="(unknown)",module="geo",version="1.2.0"} 1
`
	if err := testutil.GatherAndCompare(preg, strings.NewReader(want), "hotmod_calls_total"); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(preg, "hotmod_call_duration_seconds"); n != 4 { // locate, fail, (unknown), quote
		t.Errorf("%d duration series, want 4", n)
	}
	wantState := `
# HELP hotmod_breaker_methods Methods of a version whose circuit breaker is open or half-open (the breaker is per method; hotmod_breaker_state is the version's worst).
# TYPE hotmod_breaker_methods gauge
hotmod_breaker_methods{module="geo",state="half-open",version="1.2.0"} 0
hotmod_breaker_methods{module="geo",state="open",version="1.2.0"} 1
hotmod_breaker_methods{module="shop",state="half-open",version="1.0.0"} 0
hotmod_breaker_methods{module="shop",state="open",version="1.0.0"} 0
# HELP hotmod_breaker_state The state of a version's circuit breaker: 1 for its current state (closed, open or half-open), 0 for the others.
# TYPE hotmod_breaker_state gauge
hotmod_breaker_state{module="geo",state="closed",version="1.2.0"} 0
hotmod_breaker_state{module="geo",state="half-open",version="1.2.0"} 0
hotmod_breaker_state{module="geo",state="open",version="1.2.0"} 1
hotmod_breaker_state{module="shop",state="closed",version="1.0.0"} 1
hotmod_breaker_state{module="shop",state="half-open",version="1.0.0"} 0
hotmod_breaker_state{module="shop",state="open",version="1.0.0"} 0
# HELP hotmod_versions Module versions the registry holds, by state (Failed includes artifacts that failed to load).
# TYPE hotmod_versions gauge
hotmod_versions{module="geo",state="Active"} 1
hotmod_versions{module="shop",state="Active"} 1
`
	if err := testutil.GatherAndCompare(preg, strings.NewReader(wantState), "hotmod_breaker_methods", "hotmod_breaker_state", "hotmod_versions"); err != nil {
		t.Error(err)
	}
	// Load stages arrive through the events, asynchronously.
	deadline := time.Now().Add(5 * time.Second)
	for testutil.CollectAndCount(preg, "hotmod_load_stage_duration_seconds") < 4 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := testutil.CollectAndCount(preg, "hotmod_load_stage_duration_seconds"); n != 4 { // builtin: validate, init, check, activate
		t.Errorf("%d load stage series, want 4", n)
	}
}

// A call of one module to another through the host is a child span of the
// call that made it, which is a child of the caller's span.
func TestTraceOfAModuleToModuleCall(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	r := newRegistry(t, hotmod.WithObserver(observe.NewTracing(tp)))
	register(t, r, geo())
	register(t, r, shop())
	ctx, root := tp.Tracer("test").Start(context.Background(), "root")
	if _, err := r.Invoke(ctx, "shop", "quote", nil); err != nil {
		t.Fatal(err)
	}
	out, err := r.Invoke(ctx, "geo", "locate", nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = r.Invoke(ctx, "geo", "fail", nil)
	root.End()

	spans := map[string]tracetest.SpanStub{}
	for _, s := range exp.GetSpans() {
		if _, seen := spans[s.Name]; !seen { // the nested locate ends first
			spans[s.Name] = s
		}
	}
	quote, locate, fail := spans["shop/quote"], spans["geo/locate"], spans["geo/fail"]
	if len(exp.GetSpans()) != 5 {
		t.Fatalf("spans: %v", names(exp.GetSpans()))
	}
	// The module sees its call's span as the W3C traceparent.
	last := exp.GetSpans()[2].SpanContext // the second locate
	if want := "00-" + last.TraceID().String() + "-" + last.SpanID().String() + "-01"; out["traceparent"] != want {
		t.Errorf("sdk.TraceParent in the module = %q, want %q", out["traceparent"], want)
	}
	if quote.Parent.SpanID() != root.SpanContext().SpanID() || locate.Parent.SpanID() != quote.SpanContext.SpanID() {
		t.Errorf("parents: quote's %s (root %s), locate's %s (quote %s)", quote.Parent.SpanID(), root.SpanContext().SpanID(),
			locate.Parent.SpanID(), quote.SpanContext.SpanID())
	}
	if locate.SpanContext.TraceID() != root.SpanContext().TraceID() {
		t.Error("the nested call is in another trace")
	}
	attrs := func(s tracetest.SpanStub) map[string]string {
		m := map[string]string{}
		for _, a := range s.Attributes {
			m[string(a.Key)] = a.Value.Emit()
		}
		return m
	}
	if a := attrs(locate); a["hotmod.caller"] != "shop@1.0.0" || a["rpc.service"] != "geo" || a["rpc.method"] != "locate" ||
		a["hotmod.module.version"] != "1.2.0" || a["hotmod.transport"] != "builtin" {
		t.Errorf("locate's attributes: %v", a)
	}
	if a := attrs(quote); a["hotmod.caller"] != "" {
		t.Errorf("a call of the host's own has a caller: %v", a)
	}
	if a := attrs(fail); a["hotmod.error.code"] != "module_error" || fail.Status.Code.String() != "Error" {
		t.Errorf("a failed call's span: %v %v", a, fail.Status)
	}
}

// A traceparent sent with an HTTP request is continued: the request's span
// and the call's span are in its trace, children of the sender's span.
func TestTraceHTTPContinuesTraceparent(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	r := newRegistry(t, hotmod.WithObserver(observe.NewTracing(tp)))
	register(t, r, geo())
	srv := httptest.NewServer(observe.TraceHTTP(server.New(r, quiet, server.WithoutAuth()), tp, observe.Propagator))
	defer srv.Close()

	const traceID, parentID = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/invoke/geo/locate", strings.NewReader(`{}`))
	req.Header.Set("traceparent", "00-"+traceID+"-"+parentID+"-01")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	spans := exp.GetSpans()
	if len(spans) != 2 {
		t.Fatalf("spans: %v", names(spans))
	}
	call, req0 := spans[0], spans[1] // the call ends first
	if req0.Name != "POST /v1/invoke/{module}/{method}" || req0.SpanKind != trace.SpanKindServer {
		t.Errorf("the request's span: %q %s", req0.Name, req0.SpanKind)
	}
	if req0.SpanContext.TraceID().String() != traceID || req0.Parent.SpanID().String() != parentID || !req0.Parent.IsRemote() {
		t.Errorf("the request's span is not the sender's child: trace %s parent %s", req0.SpanContext.TraceID(), req0.Parent.SpanID())
	}
	if call.Name != "geo/locate" || call.Parent.SpanID() != req0.SpanContext.SpanID() || call.SpanContext.TraceID().String() != traceID {
		t.Errorf("the call's span %q: parent %s, want %s", call.Name, call.Parent.SpanID(), req0.SpanContext.SpanID())
	}
	// Scrapes and event streams make no spans.
	resp, err = http.Get(srv.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if n := len(exp.GetSpans()); n != 2 {
		t.Errorf("GET /healthz made a span: %v", names(exp.GetSpans()))
	}
}

func names(spans tracetest.SpanStubs) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Name)
	}
	return out
}
