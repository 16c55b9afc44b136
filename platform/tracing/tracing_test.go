package tracing

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/hammer-webhooks/hammer/platform/testkit"
)

// The tests here change the process's tracer provider, so none is parallel,
// and they run in this order: off, Setup, then propagation.

// Without Setup, nothing is recorded or written, and nothing is allocated.
func TestOffCostsNothing(t *testing.T) {
	require.False(t, Enabled())
	h := nats.Header{}
	ctx := context.Background()
	allocs := testing.AllocsPerRun(100, func() {
		cctx, span := StartConsumer(ctx, h, "fanout message")
		SetString(span, "hammer.message_id", "01JP9ZMQCNYQ9WYDYYX2AR61BD")
		SetInt(span, "http.response.status_code", 200)
		Fail(span, context.Canceled)
		Inject(cctx, h)
		span.End()
	})
	require.Zero(t, allocs)
	require.Empty(t, h, "no trace headers while tracing is off")
	got, span := StartClient(ctx, "POST")
	require.Equal(t, ctx, got)
	require.False(t, span.SpanContext().IsValid())
}

func TestSetupRefusesWhatIsNotAnOTLPHTTPURL(t *testing.T) {
	for _, endpoint := range []string{"otel-collector:4318", "grpc://otel-collector:4317", "http://"} {
		_, err := Setup(context.Background(), endpoint, "hammer")
		require.ErrorContains(t, err, "HAMMER_OTLP_ENDPOINT", endpoint)
	}
	shutdown, err := Setup(context.Background(), "", "hammer")
	require.NoError(t, err)
	require.NoError(t, shutdown(context.Background()))
	require.False(t, Enabled(), "an empty endpoint leaves tracing off")
}

// Setup sends spans over OTLP/HTTP to the collector's /v1/traces, named
// after the service; shutdown flushes them.
func TestSetupExportsToTheCollector(t *testing.T) {
	var mu sync.Mutex
	var requests []*collectortrace.ExportTraceServiceRequest
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Method != http.MethodPost || r.URL.Path != "/v1/traces" || r.Header.Get("Content-Type") != "application/x-protobuf" {
			t.Errorf("collector got %s %s (%s)", r.Method, r.URL.Path, r.Header.Get("Content-Type"))
			w.WriteHeader(http.StatusNotFound)
			return
		}
		var req collectortrace.ExportTraceServiceRequest
		if err := proto.Unmarshal(body, &req); err != nil {
			t.Errorf("decoding an export: %v", err)
		}
		mu.Lock()
		requests = append(requests, &req)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusOK)
	}))
	defer collector.Close()

	shutdown, err := Setup(context.Background(), collector.URL, "hammer-api")
	require.NoError(t, err)
	require.True(t, Enabled())
	req := httptest.NewRequest(http.MethodPost, "/v1/messages", nil)
	_, span := StartServer(req, "POST /v1/messages")
	require.True(t, span.SpanContext().IsValid())
	span.End()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, shutdown(ctx))

	mu.Lock()
	defer mu.Unlock()
	require.Len(t, requests, 1)
	rs := requests[0].GetResourceSpans()
	require.Len(t, rs, 1)
	var service string
	for _, a := range rs[0].GetResource().GetAttributes() {
		if a.GetKey() == "service.name" {
			service = a.GetValue().GetStringValue()
		}
	}
	require.Equal(t, "hammer-api", service)
	spans := rs[0].GetScopeSpans()[0].GetSpans()
	require.Len(t, spans, 1)
	require.Equal(t, "POST /v1/messages", spans[0].GetName())
	require.Equal(t, span.SpanContext().TraceID().String(), trace.TraceID(spans[0].GetTraceId()).String())
}

// A trace goes from an HTTP caller through a NATS message, as JetStream
// stores and returns it, to an outgoing HTTP request.
func TestPropagatesThroughNATSAndHTTP(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	Use(tp)
	n := testkit.NewNATS(t)

	const callerTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
	in := httptest.NewRequest(http.MethodPost, "/v1/messages", nil)
	in.Header.Set("traceparent", "00-"+callerTrace+"-00f067aa0ba902b7-01")
	ctx, api := StartServer(in, "POST /v1/messages")
	require.Equal(t, callerTrace, api.SpanContext().TraceID().String(), "the caller's trace goes on")

	msg := nats.NewMsg("hammer.messages.dGVzdA")
	msg.Data = []byte("m")
	Inject(ctx, msg.Header)
	require.NotEmpty(t, msg.Header.Get("traceparent"), "W3C's lower-case name")
	_, err := n.JS.PublishMsg(context.Background(), msg)
	require.NoError(t, err)
	api.End()

	stored, err := n.JS.Stream(context.Background(), "MESSAGES")
	require.NoError(t, err)
	raw, err := stored.GetLastMsgForSubject(context.Background(), msg.Subject)
	require.NoError(t, err)
	ctx, consumer := StartConsumer(context.Background(), raw.Header, "fanout message")
	require.Equal(t, callerTrace, consumer.SpanContext().TraceID().String())

	ctx, client := StartClient(ctx, "POST")
	SetString(client, "url.full", "http://127.0.0.1/hook")
	SetInt(client, "http.response.status_code", 503)
	Fail(client, errors.New("unexpected status 503"))
	out := http.Header{}
	InjectHTTP(ctx, out)
	client.End()
	consumer.End()
	require.Equal(t, "00-"+callerTrace+"-"+client.SpanContext().SpanID().String()+"-01", out.Get("traceparent"))

	ended := rec.Ended()
	require.Len(t, ended, 3)
	byName := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range ended {
		byName[s.Name()] = s
	}
	require.Equal(t, api.SpanContext().SpanID(), byName["fanout message"].Parent().SpanID())
	require.Equal(t, consumer.SpanContext().SpanID(), byName["POST"].Parent().SpanID())
	require.Equal(t, trace.SpanKindConsumer, byName["fanout message"].SpanKind())
	post := byName["POST"]
	require.Equal(t, codes.Error, post.Status().Code)
	require.ElementsMatch(t, []attribute.KeyValue{
		attribute.String("url.full", "http://127.0.0.1/hook"), attribute.Int("http.response.status_code", 503),
	}, post.Attributes())

	// A header written in another case is read all the same.
	h := nats.Header{"Traceparent": []string{out.Get("traceparent")}}
	require.Equal(t, client.SpanContext().SpanID(), trace.SpanContextFromContext(Extract(context.Background(), h)).SpanID())
}
