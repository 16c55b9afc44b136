package tracing

import (
	"context"
	"net/http"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// StartRPC starts the span of a gRPC (or Connect) call that procedure names,
// such as "/hammer.v1.Hammer/CreateMessage", continuing the caller's trace
// when its metadata carries a traceparent. gRPC metadata arrives as HTTP
// headers, so h is the request's header. The span is named
// "hammer.v1.Hammer/CreateMessage", as OpenTelemetry's RPC conventions want.
func StartRPC(ctx context.Context, h http.Header, procedure string, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	if !enabled.Load() {
		return ctx, noopSpan
	}
	ctx = propagator.Extract(ctx, propagation.HeaderCarrier(h))
	name := strings.TrimPrefix(procedure, "/")
	service, method, _ := strings.Cut(name, "/")
	return tracer().Start(ctx, name, trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(
		append(attrs,
			attribute.String("rpc.system", "grpc"),
			attribute.String("rpc.service", service),
			attribute.String("rpc.method", method))...))
}
