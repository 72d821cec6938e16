package main

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hotmod/hotmod"
	"github.com/hotmod/hotmod/internal/plugintest"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// apiGet is the one place these tests make raw HTTP requests to the daemon.
func apiGet(t *testing.T, d *daemon, path string) *http.Response {
	t.Helper()
	resp, err := d.request(t, http.MethodGet, path, "") // with the admin token: auth is on
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, body)
	}
	return resp
}

// scrape reads the daemon's metrics.
func scrape(t *testing.T, d *daemon) map[string]*dto.MetricFamily {
	t.Helper()
	resp := apiGet(t, d, "/metrics")
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parsing /metrics: %v", err)
	}
	return families
}

// metric returns the sample of family name whose labels include want, or
// nil.
func metric(families map[string]*dto.MetricFamily, name string, want map[string]string) *dto.Metric {
	f := families[name]
	if f == nil {
		return nil
	}
next:
	for _, m := range f.Metric {
		have := map[string]string{}
		for _, l := range m.Label {
			have[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if have[k] != v {
				continue next
			}
		}
		return m
	}
	return nil
}

// TestServeObservability runs a known sequence of calls against a real
// daemon serving a module of each transport, and checks what the metrics,
// `hotmod ls --json`, the event stream and `hotmod events` say of it.
func TestServeObservability(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping (builds hotmod and modules of every transport)")
	}
	dir := t.TempDir()
	mustRun(t, nil, "build", "-o", dir, plugintest.Example(t, "faulty"))
	mustRun(t, nil, "build", "--transport", "wasm", "-o", dir, plugintest.Example(t, "pricing"))
	mustRun(t, nil, "build", "--transport", "process", "-o", dir, plugintest.Example(t, "greeter"))
	d := startDaemon(t, dir, "--timeout", "300ms", "--breaker-failures", "20")
	addr := []string{"HOTMOD_ADDR=" + d.addr}
	d.waitModules(t, "faulty, pricing and greeter active", func(mods []hotmod.ModuleInfo) bool {
		return find(mods, active("faulty", "1.0.0")) != nil && find(mods, active("pricing", "1.1.0")) != nil &&
			find(mods, active("greeter", "1.0.0")) != nil
	})

	for range 3 {
		mustRun(t, addr, "invoke", "faulty", "ok")
	}
	for _, c := range []struct{ method, params, code string }{
		{"fail", "{}", "module_error"}, {"fail", "{}", "module_error"}, {"panic", "{}", "panic"},
		{"hang", `{"ms":3000}`, "timeout"}, {"nope", "{}", "unknown_method"},
	} {
		if r := hotmodRun(t, addr, "", "invoke", "faulty", c.method, c.params); r.code != 1 || !strings.HasPrefix(r.stderr, c.code+":") {
			t.Fatalf("faulty %s: %s, want %s", c.method, r, c.code)
		}
	}
	mustRun(t, addr, "invoke", "greeter", "hello", `{"name":"Ada"}`)
	mustRun(t, addr, "invoke", "pricing", "quote", `{"sku":"tea","qty":3}`)

	// hotmod ls --json: the panic counted, the abandoned hang in flight.
	var list struct{ Modules []hotmod.ModuleInfo }
	if err := json.Unmarshal([]byte(mustRun(t, addr, "ls", "--json").stdout), &list); err != nil {
		t.Fatal(err)
	}
	faulty := find(list.Modules, active("faulty", "1.0.0"))
	if faulty == nil || faulty.Guard == nil || faulty.Guard.Panics != 1 || faulty.Guard.Abandoned != 1 || faulty.InFlight != 1 {
		t.Errorf("faulty in ls --json after a panic and an abandoned call: %+v %+v", faulty, faulty.Guard)
	}
	for _, c := range []struct {
		module string
		stage  string
	}{{"faulty", "probe"}, {"pricing", "compile"}, {"greeter", "start"}} {
		m := find(list.Modules, func(m hotmod.ModuleInfo) bool { return m.Name == c.module })
		if m == nil || !hasStage(m.Stages, c.stage) || !hasStage(m.Stages, "activate") {
			t.Errorf("%s: stages %v, want %s and activate", c.module, m.Stages, c.stage)
		}
	}

	fams := scrape(t, d)
	for _, c := range []struct {
		method, code string
		n            float64
	}{{"ok", "ok", 3}, {"fail", "module_error", 2}, {"panic", "panic", 1}, {"hang", "timeout", 1}, {"(unknown)", "unknown_method", 1}} {
		m := metric(fams, "hotmod_calls_total", map[string]string{"module": "faulty", "version": "1.0.0", "method": c.method, "code": c.code})
		if m == nil || m.GetCounter().GetValue() != c.n {
			t.Errorf("hotmod_calls_total faulty %s %s = %v, want %v", c.method, c.code, m, c.n)
		}
	}
	if m := metric(fams, "hotmod_calls_total", map[string]string{"module": "pricing", "method": "quote", "code": "ok"}); m == nil || m.GetCounter().GetValue() != 1 {
		t.Errorf("hotmod_calls_total pricing quote ok = %v", m)
	}
	if m := metric(fams, "hotmod_call_duration_seconds", map[string]string{"module": "faulty", "method": "ok"}); m == nil || m.GetHistogram().GetSampleCount() != 3 {
		t.Errorf("hotmod_call_duration_seconds faulty ok = %v, want 3 samples", m)
	}
	for _, c := range []struct{ transport, stage string }{
		{"native", "read"}, {"native", "preflight"}, {"native", "probe"}, {"native", "open"},
		{"wasm", "compile"}, {"wasm", "instantiate"}, {"process", "start"},
		{"process", "init"}, {"wasm", "check"}, {"native", "activate"},
	} {
		if m := metric(fams, "hotmod_load_stage_duration_seconds", map[string]string{"transport": c.transport, "stage": c.stage}); m == nil || m.GetHistogram().GetSampleCount() < 1 {
			t.Errorf("no %s stage %s in hotmod_load_stage_duration_seconds", c.transport, c.stage)
		}
	}
	gauges := []struct {
		name   string
		labels map[string]string
		ok     func(float64) bool
	}{
		{"hotmod_versions", map[string]string{"module": "faulty", "state": "Active"}, func(v float64) bool { return v == 1 }},
		{"hotmod_in_flight", map[string]string{"module": "faulty"}, func(v float64) bool { return v == 1 }}, // the abandoned hang
		{"hotmod_abandoned_calls_total", map[string]string{"module": "faulty"}, func(v float64) bool { return v == 1 }},
		{"hotmod_breaker_state", map[string]string{"module": "faulty", "state": "closed"}, func(v float64) bool { return v == 1 }},
		{"hotmod_process_children", map[string]string{"module": "greeter"}, func(v float64) bool { return v == 1 }},
		{"hotmod_wasm_guests", map[string]string{"module": "pricing"}, func(v float64) bool { return v >= 1 }},
		{"hotmod_wasm_guest_memory_bytes", map[string]string{"module": "pricing"}, func(v float64) bool { return v >= 64<<10 }},
		{"process_resident_memory_bytes", nil, func(v float64) bool { return v > 0 }},
	}
	for _, g := range gauges {
		m := metric(fams, g.name, g.labels)
		var v float64
		switch {
		case m == nil:
		case m.Gauge != nil:
			v = m.GetGauge().GetValue()
		case m.Counter != nil:
			v = m.GetCounter().GetValue()
		}
		if m == nil || !g.ok(v) {
			t.Errorf("%s%v = %v", g.name, g.labels, v)
		}
	}

	// A swap, seen on the event stream and by `hotmod events`, in order.
	stream := apiGet(t, d, "/v1/events")
	defer stream.Body.Close()
	if ct := stream.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Errorf("GET /v1/events: Content-Type %q", ct)
	}
	follow := exec.Command(hotmodBin, "events", "--addr", d.addr)
	follow.Env = baseEnv()
	followOut, err := follow.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := follow.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = follow.Process.Kill(); _ = follow.Wait() }()
	time.Sleep(200 * time.Millisecond) // let `hotmod events` subscribe before the swap
	mustRun(t, nil, "build", "-o", dir, plugintest.Example(t, "faulty", `const version = "1.0.0"`, `const version = "2.0.0"`))

	want := []string{
		"faulty@2.0.0 None → Loaded", "faulty@2.0.0 Loaded → Validated", "faulty@2.0.0 Validated → Active",
		"faulty@1.0.0 Active → Draining", "faulty@1.0.0 Draining → Unloaded",
	}
	events := sseEvents(t, stream.Body, len(want))
	for i, e := range events {
		if e.String() != want[i] {
			t.Errorf("event %d on the stream: %q, want %q", i, e.String(), want[i])
		}
	}
	if e := events[2]; !hasStage(e.Stages, "probe") || !hasStage(e.Stages, "activate") {
		t.Errorf("the Active event's stages: %v", e.Stages)
	}
	lines := bufio.NewScanner(followOut)
	for i, w := range want {
		if !lines.Scan() {
			t.Fatalf("hotmod events ended after %d lines", i)
		}
		if !strings.Contains(lines.Text(), " "+w) {
			t.Errorf("hotmod events line %d: %q, want %q", i, lines.Text(), w)
		}
	}
	fams = scrape(t, d)
	if m := metric(fams, "hotmod_swaps_total", map[string]string{"module": "faulty"}); m == nil || m.GetCounter().GetValue() != 1 {
		t.Errorf("hotmod_swaps_total faulty = %v, want 1", m)
	}
	if m := metric(fams, "hotmod_calls_total", map[string]string{"module": "faulty", "version": "1.0.0"}); m != nil {
		t.Errorf("the unloaded faulty@1.0.0 still has call series: %v", m)
	}
	d.stop(t, syscall.SIGTERM)
}

func hasStage(ss []hotmod.Stage, name string) bool {
	for _, s := range ss {
		if s.Name == name && s.Duration > 0 {
			return true
		}
	}
	return false
}

// sseEvents reads n lifecycle events from a Server-Sent Events stream, or
// fails the test when they do not come within a minute.
func sseEvents(t *testing.T, body io.Reader, n int) []hotmod.Event {
	t.Helper()
	got := make(chan hotmod.Event)
	go func() {
		defer close(got)
		sc := bufio.NewScanner(body)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			data, ok := strings.CutPrefix(sc.Text(), "data: ")
			if !ok {
				continue
			}
			var e hotmod.Event
			if err := json.Unmarshal([]byte(data), &e); err != nil {
				t.Errorf("an event that is not JSON: %q: %v", data, err)
				return
			}
			got <- e
		}
	}()
	var out []hotmod.Event
	timeout := time.After(time.Minute)
	for len(out) < n {
		select {
		case e, ok := <-got:
			if !ok {
				t.Fatalf("the stream ended after %d events: %v", len(out), out)
			}
			out = append(out, e)
		case <-timeout:
			t.Fatalf("only %d of %d events within a minute: %v", len(out), n, out)
		}
	}
	return out
}
