// Package observe gives a hotmod Registry Prometheus metrics and
// OpenTelemetry traces. It lives apart from package hotmod so that programs
// that want neither do not link them.
//
// Metrics:
//
//	m, err := observe.NewMetrics(prometheus.DefaultRegisterer)
//	reg := hotmod.New(hotmod.WithObserver(m))
//	stop, err := m.Watch(reg) // lifecycle metrics: versions, swaps, load stages, …
//	defer stop()
//	http.Handle("/metrics", promhttp.Handler())
//
// Traces: see Tracing.
package observe

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/Masterminds/semver/v3"
	"github.com/hotmod/hotmod"
	"github.com/hotmod/hotmod/sdk"
	"github.com/prometheus/client_golang/prometheus"
)

// The metric names; every one starts with hotmod_.
const (
	MetricCalls        = "hotmod_calls_total"
	MetricCallDuration = "hotmod_call_duration_seconds"
	MetricInFlight     = "hotmod_in_flight"
	MetricVersions     = "hotmod_versions"
	MetricLoadStage    = "hotmod_load_stage_duration_seconds"
	MetricSwaps        = "hotmod_swaps_total"
	MetricRollbacks    = "hotmod_rollbacks_total"
	MetricBreakerState = "hotmod_breaker_state"
	// MetricBreakerMethods counts a version's methods whose circuit is
	// open or half-open (which ones: hotmod ls, GuardStats.Breakers).
	MetricBreakerMethods = "hotmod_breaker_methods"
	MetricAbandoned      = "hotmod_abandoned_calls_total"
	MetricLingering      = "hotmod_lingering_calls"
	MetricProcesses      = "hotmod_process_children"
	MetricRestarts       = "hotmod_process_restarts_total"
	MetricGuests         = "hotmod_wasm_guests"
	MetricGuestMemory    = "hotmod_wasm_guest_memory_bytes"
	MetricShortCircuits  = "hotmod_short_circuited_calls_total"
)

// UnknownMethod is the method label of calls to a method the version's
// manifest does not list: labels take only bounded values.
const UnknownMethod = "(unknown)"

// CodeOK is the code label of a call that succeeded.
const CodeOK = "ok"

// Buckets are the classic buckets of the call duration histogram, in
// seconds: from 10 µs (a native call) to 30 s (a call at a long deadline).
var Buckets = []float64{1e-5, 5e-5, 1e-4, 5e-4, 1e-3, 5e-3, 0.01, 0.05, 0.1, 0.5, 1, 5, 30}

// StageBuckets are the buckets of the load stage histogram, in seconds:
// from 100 µs (a builtin's Init) to 60 s (a cold wasm compile, a probe).
var StageBuckets = []float64{1e-4, 1e-3, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}

// nativeFactor is the growth factor between the buckets of the native
// (sparse) histograms that WithNativeHistograms keeps beside the classic
// ones: about 10 %.
const nativeFactor = 1.1

// MetricsOption configures NewMetrics.
type MetricsOption func(*metricsConfig)

type metricsConfig struct{ nativeFactor float64 }

// WithNativeHistograms keeps a native (sparse) histogram beside each
// classic one, for a Prometheus that scrapes them (protobuf exposition).
// It costs about twice the classic histogram's time per call (measured:
// BenchmarkHistogram), so it is off unless asked for.
func WithNativeHistograms() MetricsOption {
	return func(c *metricsConfig) { c.nativeFactor = nativeFactor }
}

// Metrics is a hotmod.Observer that counts calls and times them, and (after
// Watch) reports the registry's lifecycle. Make one with NewMetrics.
type Metrics struct {
	calls    *prometheus.CounterVec
	duration *prometheus.HistogramVec
	stage    *prometheus.HistogramVec
	swaps    *prometheus.CounterVec
	rollback *prometheus.CounterVec

	registerer prometheus.Registerer

	mu     sync.Mutex
	active map[string]*semver.Version // by artifact: the version it serves
}

// NewMetrics registers hotmod's metrics with r and returns the observer
// that keeps them. Give it to hotmod.New with hotmod.WithObserver, then
// call Watch with the registry.
func NewMetrics(r prometheus.Registerer, opts ...MetricsOption) (*Metrics, error) {
	var c metricsConfig
	for _, o := range opts {
		o(&c)
	}
	m := &Metrics{
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricCalls,
			Help: "Calls into module versions, by result: code is ok or the error code."},
			[]string{"module", "version", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: MetricCallDuration,
			Help:    "How long calls into module versions took, guards included.",
			Buckets: Buckets, NativeHistogramBucketFactor: c.nativeFactor},
			[]string{"module", "version", "method"}),
		stage: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: MetricLoadStage,
			Help:    "How long each stage of loading a module version took (read, preflight, probe, open, compile, instantiate, start, validate, init, check, wait, activate, drain).",
			Buckets: StageBuckets, NativeHistogramBucketFactor: c.nativeFactor},
			[]string{"transport", "stage"}),
		swaps: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricSwaps,
			Help: "Versions activated in place of another version from the same artifact."},
			[]string{"module"}),
		rollback: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricRollbacks,
			Help: "Swaps to a lower version than the one replaced."},
			[]string{"module"}),
		active:     map[string]*semver.Version{},
		registerer: r,
	}
	for _, c := range []prometheus.Collector{m.calls, m.duration, m.stage, m.swaps, m.rollback} {
		if err := r.Register(c); err != nil {
			return nil, fmt.Errorf("registering hotmod's metrics: %w", err)
		}
	}
	return m, nil
}

// ForVersion binds the version's series once, per method, so that a call
// costs a map lookup and two atomic updates, and no allocation. The series
// of each method start at zero; those of methods the manifest does not
// list (method "(unknown)") appear with their first call.
func (m *Metrics) ForVersion(v hotmod.VersionInfo) hotmod.VersionObserver {
	vm := &versionMetrics{methods: make(map[string]*methodMetrics, len(v.Manifest.Methods)),
		unknown:  methodMetrics{labels: [3]string{v.Module, v.Version, UnknownMethod}, calls: m.calls},
		duration: m.duration}
	for _, mi := range v.Manifest.Methods {
		vm.methods[mi.Name] = &methodMetrics{
			labels: [3]string{v.Module, v.Version, mi.Name},
			calls:  m.calls,
			ok:     m.calls.WithLabelValues(v.Module, v.Version, mi.Name, CodeOK),
			took:   m.duration.WithLabelValues(v.Module, v.Version, mi.Name),
		}
	}
	return vm
}

type versionMetrics struct {
	methods  map[string]*methodMetrics
	unknown  methodMetrics // bound on first use
	duration *prometheus.HistogramVec
}

type methodMetrics struct {
	labels [3]string // module, version, method
	calls  *prometheus.CounterVec
	ok     prometheus.Counter
	took   prometheus.Observer
	mu     sync.Mutex                    // serializes binding a new code
	codes  atomic.Pointer[[]codeCounter] // the codes seen so far, copied on write
}

type codeCounter struct {
	code sdk.Code
	ctr  prometheus.Counter
}

func (vm *versionMetrics) CallStart(ctx context.Context, _ hotmod.CallInfo) context.Context {
	return ctx
}

func (vm *versionMetrics) CallEnd(_ context.Context, c hotmod.CallInfo, took time.Duration, err error) {
	mm := vm.methods[c.Method]
	if mm == nil {
		mm = &vm.unknown
		l := mm.labels
		vm.duration.WithLabelValues(l[0], l[1], l[2]).Observe(took.Seconds())
		if err == nil {
			err = errUnknownOK // a transport that answers methods it does not list
		}
	} else {
		mm.took.Observe(took.Seconds())
		if err == nil {
			mm.ok.Inc()
			return
		}
	}
	code := sdk.CodeModule
	if e, ok := err.(*sdk.Error); ok { // what the registry returns: no errors.As
		code = e.Code
	} else {
		code = sdk.CodeOf(err)
	}
	mm.count(code)
}

// errUnknownOK stands for a success of an unlisted method, counted as ok.
var errUnknownOK = &sdk.Error{Code: CodeOK}

// count adds one to the method's calls that ended with code.
func (mm *methodMetrics) count(code sdk.Code) {
	if p := mm.codes.Load(); p != nil {
		for _, cc := range *p { // a handful of codes: a scan beats a hash
			if cc.code == code {
				cc.ctr.Inc()
				return
			}
		}
	}
	mm.mu.Lock()
	defer mm.mu.Unlock()
	var seen []codeCounter
	if p := mm.codes.Load(); p != nil {
		seen = *p
	}
	for _, cc := range seen {
		if cc.code == code {
			cc.ctr.Inc()
			return
		}
	}
	ctr := mm.calls.WithLabelValues(mm.labels[0], mm.labels[1], mm.labels[2], string(code))
	next := append(append(make([]codeCounter, 0, len(seen)+1), seen...), codeCounter{code, ctr})
	mm.codes.Store(&next)
	ctr.Inc()
}

// Watch reports reg's lifecycle from now on: load stages, swaps and
// rollbacks from its events, and at each scrape its versions by state,
// calls in flight, breakers, abandoned calls, process children and wasm
// guests (a collector registered with the Registerer NewMetrics was
// given). The returned function stops it. Watch one registry at a time.
func (m *Metrics) Watch(reg *hotmod.Registry) (stop func(), err error) {
	c := newStateCollector(reg)
	r := m.registerer
	if err := r.Register(c); err != nil {
		return nil, fmt.Errorf("registering hotmod's state metrics: %w", err)
	}
	events, cancel := reg.Subscribe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for e := range events {
			m.event(e)
		}
	}()
	return func() {
		cancel()
		<-done
		r.Unregister(c)
	}, nil
}

// event updates the lifecycle metrics with one event.
func (m *Metrics) event(e hotmod.Event) {
	transport := string(e.Transport)
	switch e.To {
	case hotmod.StateActive, hotmod.StateFailed:
		for _, s := range e.Stages {
			if s.Name != "drain" {
				m.stage.WithLabelValues(transport, s.Name).Observe(s.Duration.Seconds())
			}
		}
	case hotmod.StateUnloaded:
		if n := len(e.Stages); n > 0 && e.Stages[n-1].Name == "drain" {
			m.stage.WithLabelValues(transport, "drain").Observe(e.Stages[n-1].Duration.Seconds())
		}
		// Its call series end with it: labels stay bounded by the versions
		// the registry holds.
		m.calls.DeletePartialMatch(prometheus.Labels{"module": e.Module, "version": e.Version})
		m.duration.DeletePartialMatch(prometheus.Labels{"module": e.Module, "version": e.Version})
	}
	if e.Module == "" || e.Artifact == "" {
		return // builtins never replace one another
	}
	key := e.Artifact
	v, err := semver.NewVersion(e.Version)
	if err != nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	switch e.To {
	case hotmod.StateActive:
		if old := m.active[key]; old != nil && !old.Equal(v) {
			m.swaps.WithLabelValues(e.Module).Inc()
			if v.LessThan(old) {
				m.rollback.WithLabelValues(e.Module).Inc()
			}
		}
		m.active[key] = v
	case hotmod.StateUnloaded, hotmod.StateFailed:
		if old := m.active[key]; old != nil && old.Equal(v) {
			delete(m.active, key) // gone without a successor
		}
	}
}
