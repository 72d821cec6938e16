package observe

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.37.0"
)

// ServiceName is the service.name of hotmod's traces unless
// OTEL_SERVICE_NAME or OTEL_RESOURCE_ATTRIBUTES says otherwise.
const ServiceName = "hotmod"

// Propagator is how trace context crosses HTTP: W3C traceparent and
// tracestate, and baggage.
var Propagator propagation.TextMapPropagator = propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})

// TracerProviderFromEnv makes a tracer provider from the standard
// OpenTelemetry environment variables, or returns nil when traces are not
// asked for: nothing is exported unless OTEL_TRACES_EXPORTER says where.
//
//	OTEL_TRACES_EXPORTER        otlp (OTLP over HTTP), console (spans as JSON to console), none (the default here)
//	OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, OTEL_EXPORTER_OTLP_HEADERS, …
//	                            read by the OTLP exporter
//	OTEL_TRACES_SAMPLER, OTEL_TRACES_SAMPLER_ARG
//	                            read by the SDK (default parentbased_always_on)
//	OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES
//	OTEL_SDK_DISABLED=true      no traces whatever the rest says
//
// Shut the provider down to flush the spans it holds.
func TracerProviderFromEnv(ctx context.Context, console io.Writer) (*sdktrace.TracerProvider, error) {
	if strings.EqualFold(strings.TrimSpace(os.Getenv("OTEL_SDK_DISABLED")), "true") {
		return nil, nil
	}
	var exp sdktrace.SpanExporter
	var err error
	switch v := strings.ToLower(strings.TrimSpace(os.Getenv("OTEL_TRACES_EXPORTER"))); v {
	case "", "none":
		return nil, nil
	case "otlp":
		if p := os.Getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"); p == "" {
			p = os.Getenv("OTEL_EXPORTER_OTLP_PROTOCOL")
			if p != "" && p != "http/protobuf" {
				return nil, fmt.Errorf("OTEL_EXPORTER_OTLP_PROTOCOL=%s: hotmod exports OTLP over HTTP only; use http/protobuf (or leave it unset)", p)
			}
		} else if p != "http/protobuf" {
			return nil, fmt.Errorf("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL=%s: hotmod exports OTLP over HTTP only; use http/protobuf (or leave it unset)", p)
		}
		exp, err = otlptracehttp.New(ctx)
	case "console":
		exp, err = stdouttrace.New(stdouttrace.WithWriter(console))
	default:
		return nil, fmt.Errorf("OTEL_TRACES_EXPORTER=%s: use otlp, console or none", v)
	}
	if err != nil {
		return nil, fmt.Errorf("the %s trace exporter: %w", os.Getenv("OTEL_TRACES_EXPORTER"), err)
	}
	res, err := resource.New(ctx, resource.WithAttributes(semconv.ServiceName(ServiceName)),
		resource.WithFromEnv(), resource.WithTelemetrySDK(), resource.WithHost())
	if err != nil {
		return nil, fmt.Errorf("the trace resource (OTEL_RESOURCE_ATTRIBUTES?): %w", err)
	}
	// No sampler option: the SDK reads OTEL_TRACES_SAMPLER itself.
	return sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res)), nil
}
