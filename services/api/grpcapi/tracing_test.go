package grpcapi

import (
	"context"
	"testing"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/hammer-webhooks/hammer/platform/tracing"
	hammerv1 "github.com/hammer-webhooks/hammer/proto/hammer/v1"
)

// Not parallel: it installs the process's tracer provider. (Parallel tests
// start after it.)
func TestEveryCallHasASpanContinuingTheCallersTrace(t *testing.T) {
	recorder := tracetest.NewSpanRecorder()
	tracing.Use(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(recorder)))
	b := setup(t, Options{Service: &topics{}})

	const traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	client := b.hammer(connect.WithInterceptors(connect.UnaryInterceptorFunc(func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			req.Header().Set("traceparent", traceparent)
			return next(ctx, req)
		}
	})))
	_, err := client.GetTopic(context.Background(), &hammerv1.GetTopicRequest{Id: "person"})
	require.NoError(t, err)
	_, err = client.CreateTopic(context.Background(), &hammerv1.CreateTopicRequest{})
	require.Equal(t, connect.CodeUnimplemented, connect.CodeOf(err))

	spans := recorder.Ended()
	require.Len(t, spans, 2)
	get, create := spans[0], spans[1]
	require.Equal(t, "hammer.v1.Hammer/GetTopic", get.Name())
	require.Equal(t, trace.SpanKindServer, get.SpanKind())
	require.Equal(t, "4bf92f3577b34da6a3ce929d0e0e4736", get.SpanContext().TraceID().String())
	require.Equal(t, "00f067aa0ba902b7", get.Parent().SpanID().String())
	require.Contains(t, get.Attributes(), attribute.String("rpc.method", "GetTopic"))
	require.Contains(t, get.Attributes(), attribute.Int("rpc.grpc.status_code", 0))
	require.Equal(t, codes.Unset, get.Status().Code)

	require.Equal(t, "hammer.v1.Hammer/CreateTopic", create.Name())
	require.Contains(t, create.Attributes(), attribute.Int("rpc.grpc.status_code", int(connect.CodeUnimplemented)))
	require.Equal(t, codes.Error, create.Status().Code)
}
