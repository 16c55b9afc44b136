package grpcapi

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"
	"connectrpc.com/grpcreflect"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
	"google.golang.org/protobuf/types/known/timestamppb"

	hammerv1 "github.com/hammer-webhooks/hammer/proto/hammer/v1"
	"github.com/hammer-webhooks/hammer/proto/hammer/v1/hammerv1connect"
)

// bundle is a server running on a loopback port and what talks to it.
type bundle struct {
	url    string
	h2c    *http.Client // HTTP/2 with prior knowledge, as gRPC clients speak
	reg    *prometheus.Registry
	logs   *observer.ObservedLogs
	cancel context.CancelFunc
	served chan error // Serve's result once cancel is called
}

// setup starts a server with opts (Logger and Registry are filled in) on
// 127.0.0.1:0 and stops it when the test ends.
func setup(t *testing.T, opts Options) *bundle {
	t.Helper()
	core, logs := observer.New(zapcore.DebugLevel)
	opts.Logger = zap.New(core)
	reg := prometheus.NewRegistry()
	opts.Registry = reg
	s, err := New(opts)
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	b := &bundle{
		url:    "http://" + ln.Addr().String(),
		h2c:    h2cClient(),
		reg:    reg,
		logs:   logs,
		cancel: cancel,
		served: make(chan error, 1),
	}
	go func() { b.served <- s.ServeListener(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-b.served:
			require.NoError(t, err)
		case <-time.After(DrainTimeout + 5*time.Second):
			t.Error("Serve did not return after its context ended")
		}
		b.h2c.CloseIdleConnections()
	})
	return b
}

func h2cClient() *http.Client {
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	return &http.Client{Transport: &http.Transport{Protocols: &p, TLSClientConfig: &tls.Config{}}}
}

// hammer is a gRPC client of the Hammer service.
func (b *bundle) hammer(opts ...connect.ClientOption) hammerv1connect.HammerClient {
	return hammerv1connect.NewHammerClient(b.h2c, b.url, append([]connect.ClientOption{connect.WithGRPC()}, opts...)...)
}

// withToken sends "authorization: Bearer <token>" metadata on every call.
func withToken(token string) connect.ClientOption {
	return connect.WithInterceptors(connect.UnaryInterceptorFunc(func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			req.Header().Set("Authorization", "Bearer "+token)
			return next(ctx, req)
		}
	}))
}

// counted is the value of hammer_grpc_requests_total for procedure and code.
func (b *bundle) counted(t *testing.T, procedure, code string) float64 {
	t.Helper()
	families, err := b.reg.Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() != "hammer_grpc_requests_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["procedure"] == procedure && labels["code"] == code {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// topics is a Service that knows one topic, or answers what its fields say.
type topics struct {
	hammerv1connect.UnimplementedHammerHandler
	err     error
	panics  bool
	entered chan struct{} // closed when GetTopic starts, if set
	release chan struct{} // GetTopic waits for it, if set
}

func (s *topics) GetTopic(ctx context.Context, req *hammerv1.GetTopicRequest) (*hammerv1.Topic, error) {
	if s.entered != nil {
		close(s.entered)
	}
	if s.release != nil {
		<-s.release
	}
	if s.panics {
		panic("a bug holding a secret")
	}
	if s.err != nil {
		return nil, s.err
	}
	return &hammerv1.Topic{Id: req.GetId(), Name: "Person", CreatedAt: timestamppb.Now()}, nil
}

const getTopic = "/hammer.v1.Hammer/GetTopic"

func TestHealthAnswersServing(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{Tokens: []string{"s3cret"}})
	client := grpchealth.NewClient(b.h2c, b.url, connect.WithGRPC())
	for _, service := range []string{"", "hammer.v1.Hammer"} {
		res, err := client.Check(context.Background(), &grpchealth.CheckRequest{Service: service})
		require.NoError(t, err, "health stays open when tokens are set")
		require.Equal(t, grpchealth.StatusServing, res.Status, service)
	}
	_, err := client.Check(context.Background(), &grpchealth.CheckRequest{Service: "nope.v1.Nope"})
	require.Equal(t, connect.CodeNotFound, connect.CodeOf(err))
}

// What grpcurl -plaintext localhost:50051 list does: reflection over gRPC.
func TestReflectionListsTheService(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{Tokens: []string{"s3cret"}})
	stream := grpcreflect.NewClient(b.h2c, b.url, connect.WithGRPC()).NewStream(context.Background())
	t.Cleanup(func() { _, _ = stream.Close() })
	names, err := stream.ListServices()
	require.NoError(t, err, "reflection stays open when tokens are set")
	var got []string
	for _, n := range names {
		got = append(got, string(n))
	}
	require.Contains(t, got, "hammer.v1.Hammer")
	require.Contains(t, got, "grpc.health.v1.Health")

	files, err := stream.FileContainingSymbol("hammer.v1.Hammer")
	require.NoError(t, err)
	var methods []string
	for _, f := range files {
		for _, svc := range f.GetService() {
			if svc.GetName() == "Hammer" {
				for _, m := range svc.GetMethod() {
					methods = append(methods, m.GetName())
				}
			}
		}
	}
	require.Contains(t, methods, "CreateTopic")
	require.Contains(t, methods, "ListDeliveryAttempts")
	require.Contains(t, methods, "RotateSubscriptionSecret")
}

func TestMethodsNotWiredAnswerUnimplemented(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	_, err := b.hammer().CreateMessage(context.Background(), &hammerv1.CreateMessageRequest{
		Message: &hammerv1.Message{TopicId: "person", Data: `{"name":"Allisson"}`},
	})
	require.Equal(t, connect.CodeUnimplemented, connect.CodeOf(err))
	require.Equal(t, 1.0, b.counted(t, "/hammer.v1.Hammer/CreateMessage", "unimplemented"))
}

func TestTokensGuardTheHammerService(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{Service: &topics{}, Tokens: []string{"first", " second "}})
	ctx := context.Background()
	req := &hammerv1.GetTopicRequest{Id: "person"}

	for name, client := range map[string]hammerv1connect.HammerClient{
		"none":  b.hammer(),
		"wrong": b.hammer(withToken("firs")),
	} {
		_, err := client.GetTopic(ctx, req)
		require.Equal(t, connect.CodeUnauthenticated, connect.CodeOf(err), name)
		var ce *connect.Error
		require.ErrorAs(t, err, &ce)
		require.True(t, strings.HasPrefix(ce.Message(), "unauthorized: "), ce.Message())
		require.Equal(t, "unauthorized", ce.Meta().Get(ErrorCodeKey))
	}
	for _, token := range []string{"first", "second"} {
		topic, err := b.hammer(withToken(token)).GetTopic(ctx, req)
		require.NoError(t, err, token)
		require.Equal(t, "person", topic.GetId())
	}
	require.Equal(t, 2.0, b.counted(t, getTopic, "unauthenticated"))
	require.Equal(t, 2.0, b.counted(t, getTopic, "ok"))
}

func TestNewRefusesAnEmptyToken(t *testing.T) {
	t.Parallel()
	_, err := New(Options{Logger: zap.NewNop(), Tokens: []string{"a", " "}})
	require.ErrorContains(t, err, "token 2 is empty")
	_, err = New(Options{})
	require.ErrorContains(t, err, "Logger is required")
}

func TestErrorsReachTheCallerAsGRPCCodes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	req := &hammerv1.GetTopicRequest{Id: "person"}

	// One of hammer's answers: its code, its message, its trailer.
	b := setup(t, Options{Service: &topics{err: Error(http.StatusNotFound, "topic_does_not_exists", "topic does not exist")}})
	_, err := b.hammer().GetTopic(ctx, req)
	var ce *connect.Error
	require.ErrorAs(t, err, &ce)
	require.Equal(t, connect.CodeNotFound, ce.Code())
	require.Equal(t, "topic_does_not_exists: topic does not exist", ce.Message())
	require.Equal(t, "topic_does_not_exists", ce.Meta().Get(ErrorCodeKey))
	require.Equal(t, 1.0, b.counted(t, getTopic, "not_found"))
	logged := b.logs.FilterMessage("grpc call").FilterField(zap.String("error_code", "topic_does_not_exists")).All()
	require.Len(t, logged, 1)

	// Anything else is internal_error; the cause stays in the log.
	b = setup(t, Options{Service: &topics{err: errors.New("dial postgres://hammer:hunter2@db")}})
	_, err = b.hammer().GetTopic(ctx, req)
	require.ErrorAs(t, err, &ce)
	require.Equal(t, connect.CodeInternal, ce.Code())
	require.Equal(t, "internal_error: the request failed on our side", ce.Message())
	logged = b.logs.FilterMessage("grpc call").FilterLevelExact(zapcore.ErrorLevel).All()
	require.Len(t, logged, 1)
	require.Contains(t, logged[0].ContextMap()["error"], "hunter2")

	// So is a panic.
	b = setup(t, Options{Service: &topics{panics: true}})
	_, err = b.hammer().GetTopic(ctx, req)
	require.ErrorAs(t, err, &ce)
	require.Equal(t, connect.CodeInternal, ce.Code())
	require.NotContains(t, ce.Message(), "secret")
	require.Len(t, b.logs.FilterMessage("panic in a gRPC handler").All(), 1)
}

func TestOneLogLinePerCall(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{Service: &topics{}})
	_, err := b.hammer().GetTopic(context.Background(), &hammerv1.GetTopicRequest{Id: "person"})
	require.NoError(t, err)
	lines := b.logs.FilterMessage("grpc call").FilterLevelExact(zapcore.InfoLevel).All()
	require.Len(t, lines, 1)
	fields := lines[0].ContextMap()
	require.Equal(t, getTopic, fields["procedure"])
	require.Equal(t, "ok", fields["code"])
	require.Equal(t, "grpc", fields["protocol"])

	_, err = grpchealth.NewClient(b.h2c, b.url, connect.WithGRPC()).Check(context.Background(), &grpchealth.CheckRequest{})
	require.NoError(t, err)
	require.Len(t, b.logs.FilterMessage("grpc call").FilterLevelExact(zapcore.DebugLevel).All(), 1,
		"health checks are logged at debug")
}

// The same handler answers the Connect protocol over HTTP/1.1 (curl works)
// and gRPC-Web.
func TestConnectAndGRPCWebOverHTTP1(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{Service: &topics{}, Tokens: []string{"s3cret"}})
	req, err := http.NewRequest(http.MethodPost, b.url+getTopic, strings.NewReader(`{"id":"person"}`))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer s3cret")
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Equal(t, 1, res.ProtoMajor)

	// And gRPC-Web, as a browser sends it.
	web := hammerv1connect.NewHammerClient(http.DefaultClient, b.url, connect.WithGRPCWeb(), withToken("s3cret"))
	topic, err := web.GetTopic(context.Background(), &hammerv1.GetTopicRequest{Id: "person"})
	require.NoError(t, err)
	require.Equal(t, "person", topic.GetId())
	require.Equal(t, 2.0, b.counted(t, getTopic, "ok"))
}

// A call in flight when Serve's context ends gets its answer, and Serve
// returns nil.
func TestServeDrainsCallsInFlight(t *testing.T) {
	t.Parallel()
	svc := &topics{entered: make(chan struct{}), release: make(chan struct{})}
	b := setup(t, Options{Service: svc})
	var wg sync.WaitGroup
	var callErr error
	wg.Go(func() {
		_, callErr = b.hammer().GetTopic(context.Background(), &hammerv1.GetTopicRequest{Id: "person"})
	})
	<-svc.entered
	b.cancel()
	// Shutdown closes the listener first: wait until new connections fail.
	require.Eventually(t, func() bool {
		conn, err := net.Dial("tcp", strings.TrimPrefix(b.url, "http://"))
		if err == nil {
			conn.Close()
		}
		return err != nil
	}, 5*time.Second, 10*time.Millisecond)
	close(svc.release)
	wg.Wait()
	require.NoError(t, callErr)
}

func TestServeReportsABadAddress(t *testing.T) {
	t.Parallel()
	s, err := New(Options{Logger: zap.NewNop()})
	require.NoError(t, err)
	err = s.Serve(context.Background(), "256.0.0.1:bad")
	require.ErrorContains(t, err, "listening on 256.0.0.1:bad")
}

func TestCode(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		status int
		code   string
		want   connect.Code
	}{
		{400, "invalid_id", connect.CodeInvalidArgument},
		{413, "payload_too_large", connect.CodeInvalidArgument},
		{401, "unauthorized", connect.CodeUnauthenticated},
		{404, "subscription_does_not_exists", connect.CodeNotFound},
		{409, "topic_already_exists", connect.CodeAlreadyExists},
		{409, "idempotency_key_reused", connect.CodeAlreadyExists},
		{409, "delivery_pending", connect.CodeFailedPrecondition},
		{422, "topic_does_not_exists", connect.CodeFailedPrecondition},
		{503, "unavailable", connect.CodeUnavailable},
		{500, "internal_error", connect.CodeInternal},
		{200, "", connect.CodeUnknown},
	} {
		require.Equal(t, c.want, Code(c.status, c.code), "%d %s", c.status, c.code)
	}
}

// A health Watch open at shutdown hears NOT_SERVING or ends; it does not
// hold Serve for DrainTimeout.
func TestServeEndsStreamsAtShutdown(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events := grpchealth.NewClient(b.h2c, b.url, connect.WithGRPC()).Watch(ctx, &grpchealth.CheckRequest{})
	first := <-events
	require.NoError(t, first.Err)
	require.Equal(t, grpchealth.StatusServing, first.Response.Status)

	start := time.Now()
	b.cancel()
	select {
	case err := <-b.served:
		require.NoError(t, err)
		b.served <- nil // for the cleanup
	case <-time.After(DrainTimeout / 2):
		t.Fatal("Serve waited on the open stream")
	}
	require.Less(t, time.Since(start), DrainTimeout/2)
	for ev := range events {
		if ev.Err != nil {
			break
		}
		require.Equal(t, grpchealth.StatusNotServing, ev.Response.Status)
	}
}
