// Package tracing follows one message through hammer with OpenTelemetry:
// the trace starts at the API call that publishes it, travels in NATS
// headers (W3C Trace Context) through fanout to every delivery event and the
// deliverer, and reaches the receiver as the traceparent header of the
// webhook request.
//
// Tracing is on only when HAMMER_OTLP_ENDPOINT is set. Until Setup (or Use)
// turns it on, every function here returns at once without allocating, so
// the hot paths of fanout and the deliverer pay nothing for it.
package tracing

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/hammer-webhooks/hammer/platform/version"
)

// instrumentation names hammer's spans in the tracer provider.
const instrumentation = "github.com/hammer-webhooks/hammer"

// enabled is set once a tracer provider is installed.
var enabled atomic.Bool

// propagator is W3C Trace Context: traceparent and tracestate.
var propagator = propagation.TraceContext{}

// Setup turns tracing on when endpoint is set: spans of this process go in
// batches over OTLP/HTTP to endpoint, as service. endpoint is the base URL
// of a collector, such as http://otel-collector:4318 (/v1/traces is added),
// or the full URL of its traces path. The usual OTEL_EXPORTER_OTLP_* and
// OTEL_TRACES_SAMPLER* variables refine the exporter (headers, TLS,
// timeout) and the sampler (every trace by default, or as the caller's
// traceparent says). With endpoint empty it does nothing. shutdown flushes
// the spans not sent yet, for at most ShutdownTimeout; call it when the
// process stops.
func Setup(ctx context.Context, endpoint, service string) (shutdown func(context.Context) error, err error) {
	if endpoint == "" {
		return func(context.Context) error { return nil }, nil
	}
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("HAMMER_OTLP_ENDPOINT=%q: want the http:// or https:// URL of an OTLP/HTTP collector, such as http://otel-collector:4318", endpoint)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/v1/traces"
	}
	exporter, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(u.String()))
	if err != nil {
		return nil, fmt.Errorf("tracing: OTLP exporter for %s: %w", u.Redacted(), err)
	}
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(
		attribute.String("service.name", service),
		attribute.String("service.version", version.Version),
	))
	if err != nil {
		return nil, fmt.Errorf("tracing: resource: %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exporter), sdktrace.WithResource(res))
	Use(tp)
	return func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, ShutdownTimeout)
		defer cancel()
		return tp.Shutdown(ctx)
	}, nil
}

// ShutdownTimeout bounds the flush at shutdown: a collector that is away
// must not hold up a stopping process.
const ShutdownTimeout = 5 * time.Second

// Use installs tp as the process's tracer provider and turns tracing on.
// Setup calls it; tests pass a provider with an in-memory exporter.
func Use(tp trace.TracerProvider) {
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagator)
	enabled.Store(true)
}

// Enabled reports whether spans are recorded and propagated.
func Enabled() bool { return enabled.Load() }

func tracer() trace.Tracer {
	return otel.Tracer(instrumentation, trace.WithInstrumentationVersion(version.Version))
}

// noopSpan is what the Start functions return while tracing is off.
var noopSpan trace.Span = noop.Span{}

// StartServer starts the span of an API call, continuing the trace of the
// caller when its request carries a traceparent.
func StartServer(r *http.Request, name string, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	ctx := r.Context()
	if !enabled.Load() {
		return ctx, noopSpan
	}
	ctx = propagator.Extract(ctx, propagation.HeaderCarrier(r.Header))
	return tracer().Start(ctx, name, trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(
		append(attrs, attribute.String("http.request.method", r.Method), attribute.String("url.path", r.URL.Path))...))
}

// StartConsumer starts the span of handling one NATS message, as a child of
// the span that published it (from the message's headers).
func StartConsumer(ctx context.Context, h nats.Header, name string, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	if !enabled.Load() {
		return ctx, noopSpan
	}
	ctx = Extract(ctx, h)
	return tracer().Start(ctx, name, trace.WithSpanKind(trace.SpanKindConsumer), trace.WithAttributes(attrs...))
}

// StartClient starts the span of an outgoing request, such as a webhook
// POST; InjectHTTP then puts it on the request.
func StartClient(ctx context.Context, name string, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	if !enabled.Load() {
		return ctx, noopSpan
	}
	return tracer().Start(ctx, name, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
}

// SetString records a string attribute on span, such as the message ID;
// while tracing is off it does nothing, not even build the attribute.
func SetString(span trace.Span, key, value string) {
	if enabled.Load() {
		span.SetAttributes(attribute.String(key, value))
	}
}

// SetInt records an integer attribute on span, such as a status code.
func SetInt(span trace.Span, key string, value int) {
	if enabled.Load() {
		span.SetAttributes(attribute.Int(key, value))
	}
}

// Fail marks span as failed with err (nothing when err is nil).
func Fail(span trace.Span, err error) {
	if err != nil && enabled.Load() {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
}

// Inject writes the trace context of ctx into the headers of a NATS message
// about to be published, so that its consumer continues the trace.
func Inject(ctx context.Context, h nats.Header) {
	if !enabled.Load() || h == nil {
		return
	}
	propagator.Inject(ctx, headerCarrier(h))
}

// Extract reads the trace context a NATS message carries into ctx.
func Extract(ctx context.Context, h nats.Header) context.Context {
	if !enabled.Load() || h == nil {
		return ctx
	}
	return propagator.Extract(ctx, headerCarrier(h))
}

// InjectHTTP writes the trace context of ctx into an outgoing HTTP request's
// headers: the receiver of a webhook gets traceparent.
func InjectHTTP(ctx context.Context, h http.Header) {
	if !enabled.Load() {
		return
	}
	propagator.Inject(ctx, propagation.HeaderCarrier(h))
}

// headerCarrier adapts nats.Header, whose keys are case-sensitive, to the
// propagator: it writes the W3C names as they are (lower case) and reads
// them in any case.
type headerCarrier nats.Header

func (c headerCarrier) Get(key string) string {
	if v := nats.Header(c).Get(key); v != "" {
		return v
	}
	for k, v := range c {
		if len(v) > 0 && strings.EqualFold(k, key) {
			return v[0]
		}
	}
	return ""
}

func (c headerCarrier) Set(key, value string) { nats.Header(c).Set(key, value) }

func (c headerCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}
