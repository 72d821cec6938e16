package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"sync"
	"syscall"
	"testing"

	"github.com/hotmod/hotmod"
	"github.com/hotmod/hotmod/internal/plugintest"
)

// lockedBuffer is a bytes.Buffer the daemon's output may be written to
// while the test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.buf.Bytes())
}

// consoleSpan is what the console exporter writes of a span.
type consoleSpan struct {
	Name        string
	SpanContext struct{ TraceID, SpanID string }
	Parent      struct{ TraceID, SpanID string }
}

// TestServeTracesAcrossTransports: with OTEL_TRACES_EXPORTER=console, a
// call of checkout (a process module) that calls pricing (a wasm module)
// through the host is one trace on the daemon's standard output: the HTTP
// request's span, checkout's span its child, pricing's span checkout's.
func TestServeTracesAcrossTransports(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping (builds hotmod and modules of two transports)")
	}
	dir := t.TempDir()
	mustRun(t, nil, "build", "--transport", "wasm", "-o", dir, plugintest.Example(t, "pricing"))
	mustRun(t, nil, "build", "--transport", "process", "-o", dir, plugintest.Example(t, "checkout"))
	var out lockedBuffer
	d := launchDaemonWith(t, dir, []string{"OTEL_TRACES_EXPORTER=console"}, &out)
	d.waitReady(t)
	d.waitModules(t, "checkout and pricing active", func(mods []hotmod.ModuleInfo) bool {
		return find(mods, active("checkout", "1.0.0")) != nil && find(mods, active("pricing", "1.1.0")) != nil
	})
	mustRun(t, []string{"HOTMOD_ADDR=" + d.addr}, "invoke", "checkout", "total", `{"lines":[{"sku":"tea","qty":2}]}`)
	d.stop(t, syscall.SIGTERM) // flushes the spans still batched

	spans := map[string]consoleSpan{}
	dec := json.NewDecoder(bytes.NewReader(out.Bytes()))
	for {
		var s consoleSpan
		if err := dec.Decode(&s); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("the daemon's standard output is not a stream of spans: %v\n%s", err, out.Bytes())
		}
		spans[s.Name] = s
	}
	req, checkout, pricing := spans["POST /v1/invoke/{module}/{method}"], spans["checkout/total"], spans["pricing/quote"]
	if req.SpanContext.SpanID == "" || checkout.SpanContext.SpanID == "" || pricing.SpanContext.SpanID == "" {
		t.Fatalf("want the request's, checkout's and pricing's spans; got %v", keys(spans))
	}
	if checkout.Parent.SpanID != req.SpanContext.SpanID || pricing.Parent.SpanID != checkout.SpanContext.SpanID {
		t.Errorf("parents: checkout's %s (want the request's %s), pricing's %s (want checkout's %s)",
			checkout.Parent.SpanID, req.SpanContext.SpanID, pricing.Parent.SpanID, checkout.SpanContext.SpanID)
	}
	if tr := req.SpanContext.TraceID; checkout.SpanContext.TraceID != tr || pricing.SpanContext.TraceID != tr {
		t.Errorf("not one trace: %s, %s, %s", tr, checkout.SpanContext.TraceID, pricing.SpanContext.TraceID)
	}
}

func keys(m map[string]consoleSpan) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}
