package grpcapi

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"net/http"
	"strings"
	"time"

	"connectrpc.com/connect"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/hammer-webhooks/hammer/platform/tracing"
	"github.com/hammer-webhooks/hammer/proto/hammer/v1/hammerv1connect"
)

// metrics are the hammer_grpc_* metrics. The procedure label is bounded:
// only registered procedures reach the interceptors (any other path is a
// 404 of the mux).
type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newMetrics() metrics {
	return metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hammer_grpc_requests_total",
			Help: "gRPC calls answered, by procedure (/package.Service/Method) and code (ok, not_found, ...).",
		}, []string{"procedure", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "hammer_grpc_request_duration_seconds",
			Help:    "Time a gRPC call took to answer (for a stream: until it ended), by procedure.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"procedure"}),
	}
}

func (m metrics) register(reg prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{m.requests, m.duration} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// callObserver gives every call a span, one log line and its metrics, and makes
// sure no unexpected error text reaches the caller (see outgoing).
type callObserver struct {
	log     *zap.Logger
	metrics metrics
}

func (o *callObserver) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		start := time.Now()
		ctx, span := tracing.StartRPC(ctx, req.Header(), req.Spec().Procedure)
		defer span.End()
		res, err := next(ctx, req)
		err = o.done(ctx, span, req.Spec(), req.Peer(), start, err)
		return res, err
	}
}

func (o *callObserver) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		start := time.Now()
		ctx, span := tracing.StartRPC(ctx, conn.RequestHeader(), conn.Spec().Procedure)
		defer span.End()
		return o.done(ctx, span, conn.Spec(), conn.Peer(), start, next(ctx, conn))
	}
}

// WrapStreamingClient leaves clients alone: the interceptor is for servers.
func (o *callObserver) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

// done records the end of a call and returns the error to answer with.
func (o *callObserver) done(ctx context.Context, span trace.Span, spec connect.Spec, peer connect.Peer, start time.Time, err error) error {
	elapsed := time.Since(start)
	err, cause := outgoing(ctx, err)
	code, status := "ok", 0
	if err != nil {
		c := connect.CodeOf(err)
		code, status = c.String(), int(c)
		if serverFault(c) {
			tracing.Fail(span, err)
		}
	}
	tracing.SetInt(span, "rpc.grpc.status_code", status)
	o.metrics.requests.WithLabelValues(spec.Procedure, code).Inc()
	o.metrics.duration.WithLabelValues(spec.Procedure).Observe(elapsed.Seconds())

	level := zapcore.InfoLevel
	switch {
	case cause != nil:
		level = zapcore.ErrorLevel
	case !strings.HasPrefix(spec.Procedure, "/"+hammerv1connect.HammerName+"/"):
		// Health checks and reflection come often and say little.
		level = zapcore.DebugLevel
	}
	if ce := o.log.Check(level, "grpc call"); ce != nil {
		fields := []zap.Field{
			zap.String("procedure", spec.Procedure),
			zap.String("code", code),
			zap.Duration("duration", elapsed),
			zap.String("protocol", peer.Protocol),
			zap.String("peer", peer.Addr),
		}
		if cause != nil {
			fields = append(fields, zap.Error(cause))
		} else if code := errorCode(err); code != "" {
			fields = append(fields, zap.String("error_code", code))
		}
		ce.Write(fields...)
	}
	return err
}

// serverFault reports whether code says the server failed, rather than the
// caller (OpenTelemetry's rule for the status of a gRPC server span).
func serverFault(c connect.Code) bool {
	switch c {
	case connect.CodeUnknown, connect.CodeDeadlineExceeded, connect.CodeUnimplemented,
		connect.CodeInternal, connect.CodeUnavailable, connect.CodeDataLoss:
		return true
	}
	return false
}

// errorCode is hammer's error code an answer carries, if any.
func errorCode(err error) string {
	if ce, ok := errors.AsType[*connect.Error](err); ok {
		return ce.Meta().Get(ErrorCodeKey)
	}
	return ""
}

func (a *authenticator) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		if err := a.check(req.Header()); err != nil {
			return nil, err
		}
		return next(ctx, req)
	}
}

func (a *authenticator) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		if err := a.check(conn.RequestHeader()); err != nil {
			return err
		}
		return next(ctx, conn)
	}
}

// WrapStreamingClient leaves clients alone: the interceptor is for servers.
func (a *authenticator) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

// check wants "authorization: Bearer <token>" with one of the tokens, when
// any is configured. As in REST, tokens are compared as hashes in constant
// time against every configured one, so neither timing nor length tells
// anything.
func (a *authenticator) check(h http.Header) error {
	if len(a.tokens) == 0 {
		return nil
	}
	scheme, token, _ := strings.Cut(h.Get("Authorization"), " ")
	sum := sha256.Sum256([]byte(strings.TrimSpace(token)))
	match := 0
	for _, t := range a.tokens {
		match |= subtle.ConstantTimeCompare(sum[:], t[:])
	}
	if match != 1 || !strings.EqualFold(scheme, "Bearer") {
		return Error(http.StatusUnauthorized, "unauthorized", "a valid bearer token is required (authorization: Bearer <token>)")
	}
	return nil
}

// streamsEnd ends every streaming call when stopping does, so that a
// client holding a stream open cannot hold up the drain; unary calls are
// left to finish.
type streamsEnd struct {
	stopping context.Context
}

func (e streamsEnd) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc { return next }

func (e streamsEnd) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		defer context.AfterFunc(e.stopping, cancel)()
		return next(ctx, conn)
	}
}

func (e streamsEnd) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}
