package main

import (
	"context"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/hotmod/hotmod"
	"github.com/hotmod/hotmod/internal/auth"
	"github.com/hotmod/hotmod/internal/server"
	"github.com/hotmod/hotmod/observe"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/pflag"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// observeFlags are serve's flags for metrics and traces.
type observeFlags struct {
	metrics bool
}

func addObserveFlags(fl *pflag.FlagSet) *observeFlags {
	f := &observeFlags{}
	fl.BoolVar(&f.metrics, "metrics", true, "serve Prometheus metrics at GET /metrics")
	return f
}

// observability is what serve needs for metrics and traces: options for
// the registry, routes for the API, and what to start once the registry
// exists.
type observability struct {
	opts    []hotmod.Option
	routes  []server.Option // GET /metrics
	metrics *observe.Metrics
	traces  *sdktrace.TracerProvider // nil: traces are off
	logger  *slog.Logger
}

func newObservability(f *observeFlags, logger *slog.Logger) (*observability, error) {
	o := &observability{logger: logger}
	tp, err := observe.TracerProviderFromEnv(context.Background(), os.Stdout)
	if err != nil {
		return nil, usagef("%v", err)
	}
	if tp != nil {
		o.traces = tp
		o.opts = append(o.opts, hotmod.WithObserver(observe.NewTracing(tp)))
		logger.Info("tracing", "exporter", os.Getenv("OTEL_TRACES_EXPORTER"))
	}
	if f == nil || !f.metrics {
		return o, nil
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), collectors.NewGoCollector())
	m, err := observe.NewMetrics(reg)
	if err != nil {
		return nil, err
	}
	o.metrics = m
	o.opts = append(o.opts, hotmod.WithObserver(m))
	metrics := promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn), Timeout: metricsTimeout})
	o.routes = append(o.routes, server.WithEndpoints(func(handle server.Handle, _ *slog.Logger) {
		handle("GET /metrics", auth.RoleRead, metrics.ServeHTTP)
	}))
	return o, nil
}

// metricsTimeout bounds one scrape.
const metricsTimeout = 10 * time.Second

// traceFlushTimeout bounds the export of the spans still held at shutdown.
const traceFlushTimeout = 5 * time.Second

// watch starts what follows the registry's lifecycle; the returned function
// stops it, and flushes the spans not exported yet.
func (o *observability) watch(reg *hotmod.Registry) func() {
	stop := func() {}
	if o.metrics != nil {
		var err error
		if stop, err = o.metrics.Watch(reg); err != nil {
			o.logger.Error("lifecycle metrics are off", "error", err)
			stop = func() {}
		}
	}
	return func() {
		stop()
		if o.traces != nil {
			ctx, cancel := context.WithTimeout(context.Background(), traceFlushTimeout)
			defer cancel()
			if err := o.traces.Shutdown(ctx); err != nil {
				o.logger.Warn("spans may be lost", "error", err)
			}
		}
	}
}

// handler wraps the API's handler: with traces on, each request continues
// the trace of its traceparent header.
func (o *observability) handler(h http.Handler) http.Handler {
	if o.traces == nil {
		return h
	}
	return observe.TraceHTTP(h, o.traces, observe.Propagator)
}

// durationsInSeconds is a slog ReplaceAttr for JSON logs: a duration is
// written as seconds (a float), not as integer nanoseconds.
func durationsInSeconds(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		return slog.Float64(a.Key, a.Value.Duration().Seconds())
	}
	return a
}
