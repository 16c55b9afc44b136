package grpcapi

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"
	"connectrpc.com/grpcreflect"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/hammer-webhooks/hammer/platform/ops"
	"github.com/hammer-webhooks/hammer/proto/hammer/v1/hammerv1connect"
)

// Service is what the gRPC door calls: one method per RPC of
// hammer.v1.Hammer, taking and returning the generated messages. The
// application layer (shared with the REST API) implements it; an
// implementation embeds hammerv1connect.UnimplementedHammerHandler so that a
// method it does not have yet answers Unimplemented, and returns the errors
// Error builds. Call metadata is at hand through connect.CallInfoForHandlerContext.
type Service = hammerv1connect.HammerHandler

// DrainTimeout is how long calls in flight may finish once Serve's context
// ends, as for the REST API.
const DrainTimeout = 10 * time.Second

// MaxRequestBytes bounds one request message: a batch of messages, the
// largest call, is 8 MiB in REST; a little room is left for the protobuf
// framing. A larger message is ResourceExhausted before it is decoded.
const MaxRequestBytes = 8<<20 + 64<<10

// Options is what New needs. Logger is required.
type Options struct {
	// Service answers the Hammer methods; nil answers Unimplemented to
	// every one (until the application layer is wired).
	Service Service
	// Tokens, when any is set, are the bearer tokens a Hammer call must
	// carry (HAMMER_API_TOKENS, as for REST). Health and reflection stay
	// open.
	Tokens []string
	Logger *zap.Logger
	// Registry receives the hammer_grpc_* metrics; a new one when nil.
	Registry *prometheus.Registry
}

// Server serves hammer.v1.Hammer, health and reflection on one handler.
type Server struct {
	log     *zap.Logger
	handler http.Handler
	health  *grpchealth.StaticChecker
	// stopping ends when Serve's context does: streams (a health Watch,
	// a reflection session) end with it instead of holding up the drain,
	// while unary calls in flight finish.
	stopping context.Context
	stop     context.CancelFunc
}

// New checks opts and builds the server; it does no I/O.
func New(opts Options) (*Server, error) {
	if opts.Logger == nil {
		return nil, errors.New("grpcapi: Options.Logger is required")
	}
	auth, err := newAuthenticator(opts.Tokens)
	if err != nil {
		return nil, err
	}
	reg := opts.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m := newMetrics()
	if err := m.register(reg); err != nil {
		return nil, fmt.Errorf("grpcapi: registering metrics: %w", err)
	}
	svc := opts.Service
	if svc == nil {
		svc = hammerv1connect.UnimplementedHammerHandler{}
	}
	stopping, stop := context.WithCancel(context.Background())
	s := &Server{
		log:      opts.Logger,
		health:   grpchealth.NewStaticChecker(hammerv1connect.HammerName),
		stopping: stopping,
		stop:     stop,
	}
	obs := &callObserver{log: opts.Logger, metrics: m}
	common := []connect.HandlerOption{
		connect.WithReadMaxBytes(MaxRequestBytes),
		connect.WithRecover(s.recovered),
		connect.WithInterceptors(streamsEnd{stopping}),
	}
	mux := http.NewServeMux()
	// Interceptors run in the order given, the first outermost: every call
	// sees the end of streams at shutdown, and the span and the metrics see
	// the calls that authentication turns away.
	mux.Handle(hammerv1connect.NewHammerHandler(svc,
		slices.Concat(common, []connect.HandlerOption{connect.WithInterceptors(obs, auth)})...))
	open := slices.Concat(common, []connect.HandlerOption{connect.WithInterceptors(obs)})
	mux.Handle(grpchealth.NewHandler(s.health, open...))
	reflector := grpcreflect.NewStaticReflector(
		hammerv1connect.HammerName,
		grpchealth.HealthV1ServiceName,
		grpcreflect.ReflectV1ServiceName,
	)
	mux.Handle(grpcreflect.NewHandlerV1(reflector, open...))
	mux.Handle(grpcreflect.NewHandlerV1Alpha(reflector, open...))
	s.handler = mux
	return s, nil
}

// Handler serves every RPC of the server over whichever protocol the
// request speaks (gRPC, gRPC-Web, Connect); Serve runs it on its own port.
func (s *Server) Handler() http.Handler { return s.handler }

// Serve listens on addr (HAMMER_GRPC_ADDR, ":50051" by default) and serves
// until ctx ends; then health answers NOT_SERVING, open streams end, and
// unary calls in flight get DrainTimeout to finish. It returns nil after a
// clean shutdown. A Server serves once.
func (s *Server) Serve(ctx context.Context, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("grpcapi: listening on %s: %w", addr, err)
	}
	return s.ServeListener(ctx, ln)
}

// ServeListener is Serve on a listener the caller opened (tests pass one on
// 127.0.0.1:0).
func (s *Server) ServeListener(ctx context.Context, ln net.Listener) error {
	// HTTP/1.1 for gRPC-Web and Connect, unencrypted HTTP/2 (with prior
	// knowledge, as gRPC clients speak it) for gRPC. TLS, when wanted, is
	// the ingress's job, as for the REST port.
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	srv := &http.Server{
		Handler:   s.handler,
		Protocols: &protocols,
		// No read or write timeout: a call's deadline is the client's
		// (grpc-timeout), and a health Watch stream lasts as long as the
		// client wants it.
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          zap.NewStdLog(s.log.Named("http")),
	}
	stop := context.AfterFunc(ctx, func() {
		// Tell load balancers first, then drain.
		s.health.SetStatus("", grpchealth.StatusNotServing)
		s.health.SetStatus(hammerv1connect.HammerName, grpchealth.StatusNotServing)
		s.stop()
	})
	defer stop()
	if err := ops.ServeListener(ctx, s.log.With(zap.String("server", "grpc")), ln, srv, DrainTimeout); err != nil {
		return fmt.Errorf("grpcapi: %w", err)
	}
	return nil
}

// recovered turns a panic in a handler into internal_error, logged with the
// procedure; the caller learns nothing of it.
func (s *Server) recovered(_ context.Context, spec connect.Spec, _ http.Header, r any) error {
	s.log.Error("panic in a gRPC handler", zap.String("procedure", spec.Procedure), zap.Any("panic", r), zap.StackSkip("stack", 3))
	return internalError()
}

// authenticator requires one of the configured tokens as a bearer token.
type authenticator struct {
	tokens [][sha256.Size]byte
}

func newAuthenticator(tokens []string) (*authenticator, error) {
	a := &authenticator{}
	for i, t := range tokens {
		t = strings.TrimSpace(t)
		if t == "" {
			return nil, fmt.Errorf("grpcapi: token %d is empty", i+1)
		}
		a.tokens = append(a.tokens, sha256.Sum256([]byte(t)))
	}
	return a, nil
}
