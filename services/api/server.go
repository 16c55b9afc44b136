package api

import (
	"context"
	"crypto/sha256"
	_ "embed"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/labstack/echo/v4"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/hammer-webhooks/hammer/platform/config"
	"github.com/hammer-webhooks/hammer/platform/ops"
	"github.com/hammer-webhooks/hammer/platform/topology"
	"github.com/hammer-webhooks/hammer/services/api/app"
	"github.com/hammer-webhooks/hammer/sql/store/catalog"
	"github.com/hammer-webhooks/hammer/sql/store/record"
)

// openAPI is the API's description, served at /openapi.json. It is a copy of
// docs/openapi.json (a test keeps the two equal and the routes in step).
//
//go:generate cp ../../docs/openapi.json openapi.json
//go:embed openapi.json
var openAPI []byte

// DefaultPublishTimeout is how long a publish waits for JetStream's
// acknowledgement before the API answers 503.
const DefaultPublishTimeout = 2 * time.Second

// drainTimeout is how long requests in flight may finish at shutdown.
const drainTimeout = 10 * time.Second

// Options is what New needs. Pool, NATS and Logger are required.
type Options struct {
	Config   config.API
	Pool     *pgxpool.Pool
	NATS     *nats.Conn
	Logger   *zap.Logger
	Registry *prometheus.Registry // hammer_* metrics go here; a new one when nil
	// Listener, when set, is served instead of Config.HTTPAddr (tests pass
	// one on 127.0.0.1:0).
	Listener net.Listener
	// PublishTimeout bounds the wait for JetStream's acknowledgement;
	// DefaultPublishTimeout when zero.
	PublishTimeout time.Duration
}

// Server is the REST API: topics and subscriptions in Postgres, messages
// published to JetStream, and the recorder's rows read back.
type Server struct {
	cfg      config.API
	pool     *pgxpool.Pool
	app      *app.App
	nc       *nats.Conn
	js       jetstream.JetStream
	log      *zap.Logger
	reg      *prometheus.Registry
	listener net.Listener
	tokens   [][sha256.Size]byte
	echo     *echo.Echo
	routes   map[string]string // Echo path → OpenAPI path
	metrics  httpMetrics

	prepared     chan struct{} // closed once topology and bucket rebuild are done
	preparedOnce sync.Once
}

// New checks opts and builds the server; it does no I/O.
func New(opts Options) (*Server, error) {
	switch {
	case opts.Pool == nil:
		return nil, errors.New("api: Options.Pool is required")
	case opts.NATS == nil:
		return nil, errors.New("api: Options.NATS is required")
	case opts.Logger == nil:
		return nil, errors.New("api: Options.Logger is required")
	case opts.Listener == nil && opts.Config.HTTPAddr == "":
		return nil, errors.New("api: HAMMER_HTTP_ADDR is empty and no listener was given")
	case opts.Config.MaxMessageBytes < 1:
		return nil, fmt.Errorf("api: HAMMER_MAX_MESSAGE_BYTES=%d: want a positive size", opts.Config.MaxMessageBytes)
	}
	timeout := opts.PublishTimeout
	if timeout <= 0 {
		timeout = DefaultPublishTimeout
	}
	reg := opts.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	js, err := jetstream.New(opts.NATS,
		jetstream.WithPublishAsyncTimeout(timeout),
		jetstream.WithPublishAsyncMaxPending(4*app.MaxBatchItems))
	if err != nil {
		return nil, fmt.Errorf("api: jetstream: %w", err)
	}
	s := &Server{
		cfg:  opts.Config,
		pool: opts.Pool,
		app: app.New(app.Options{
			Catalog: catalog.New(opts.Pool), Record: record.New(opts.Pool),
			NATS: opts.NATS, JS: js, Logger: opts.Logger,
			PublishTimeout: timeout, MaxMessageBytes: opts.Config.MaxMessageBytes,
		}),
		nc:       opts.NATS,
		js:       js,
		log:      opts.Logger,
		reg:      reg,
		listener: opts.Listener,
		metrics:  newHTTPMetrics(),
		prepared: make(chan struct{}),
	}
	for i, t := range opts.Config.APITokens {
		t = strings.TrimSpace(t)
		if t == "" {
			return nil, fmt.Errorf("api: HAMMER_API_TOKENS: token %d is empty", i+1)
		}
		s.tokens = append(s.tokens, sha256.Sum256([]byte(t)))
	}
	for _, c := range append([]prometheus.Collector{s.metrics.requests, s.metrics.duration}, s.app.Collectors()...) {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("api: registering metrics: %w", err)
		}
	}
	s.echo = s.newEcho()
	return s, nil
}

// newEcho builds the router. Every /v1 route is registered here and in
// docs/openapi.json; a test holds the two equal.
func (s *Server) newEcho() *echo.Echo {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = s.handleError
	e.Use(s.observe, recoverPanic)
	s.routes = map[string]string{}
	add := func(method, path string, h echo.HandlerFunc, mw ...echo.MiddlewareFunc) {
		e.Add(method, path, h, mw...)
		s.routes[path] = openAPIPath(path)
	}
	v1 := func(method, path string, h echo.HandlerFunc) {
		add(method, "/v1"+path, h, s.authenticate)
	}

	v1(http.MethodPost, "/topics", s.createTopic)
	v1(http.MethodGet, "/topics", s.listTopics)
	v1(http.MethodGet, "/topics/:id", s.getTopic)
	v1(http.MethodPatch, "/topics/:id", s.patchTopic)
	v1(http.MethodDelete, "/topics/:id", s.deleteTopic)

	v1(http.MethodPost, "/subscriptions", s.createSubscription)
	v1(http.MethodGet, "/subscriptions", s.listSubscriptions)
	v1(http.MethodGet, "/subscriptions/:id", s.getSubscription)
	v1(http.MethodPatch, "/subscriptions/:id", s.patchSubscription)
	v1(http.MethodDelete, "/subscriptions/:id", s.deleteSubscription)

	v1(http.MethodPost, "/messages", s.publishMessage)
	// Echo reads ':' as the start of a parameter; escaped, it is literal.
	v1(http.MethodPost, `/messages\:batch`, s.publishBatch)
	v1(http.MethodGet, "/messages", s.listMessages)
	v1(http.MethodGet, "/messages/:id", s.getMessage)
	v1(http.MethodDelete, "/messages/:id", s.deleteMessage)

	v1(http.MethodGet, "/deliveries", s.listDeliveries)
	v1(http.MethodGet, "/deliveries/:id", s.getDelivery)

	v1(http.MethodGet, "/delivery-attempts", s.listAttempts)
	v1(http.MethodGet, "/delivery-attempts/:id", s.getAttempt)

	add(http.MethodGet, "/healthz", func(c echo.Context) error {
		return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
	})
	add(http.MethodGet, "/readyz", func(c echo.Context) error {
		status, body := ops.PublicReady(c.Request().Context(), s.log, s.Checks())
		return c.JSON(status, body)
	})
	add(http.MethodGet, "/metrics", echo.WrapHandler(promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{Registry: s.reg})))
	add(http.MethodGet, "/openapi.json", func(c echo.Context) error {
		return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, openAPI)
	})
	return e
}

// openAPIPath writes an Echo path the OpenAPI way: /v1/topics/:id becomes
// /v1/topics/{id} and an escaped colon a plain one.
func openAPIPath(p string) string {
	parts := strings.Split(p, "/")
	for i, part := range parts {
		if strings.HasPrefix(part, ":") {
			parts[i] = "{" + part[1:] + "}"
		}
	}
	return strings.ReplaceAll(strings.Join(parts, "/"), `\:`, ":")
}

// Handler is the API, for tests and for embedding in another server.
func (s *Server) Handler() http.Handler { return s.echo }

// Checks are what /readyz asks: the API needs Postgres and JetStream.
func (s *Server) Checks() map[string]ops.Check {
	return map[string]ops.Check{
		"postgres": ops.Ping(s.pool),
		// Until the streams exist and the subscriptions bucket is rebuilt,
		// a publish or a deliverer's lookup could miss.
		"jetstream": func(context.Context) error {
			select {
			case <-s.prepared:
				return nil
			default:
				return errors.New("streams and the subscriptions bucket are not ready yet")
			}
		},
		"nats": func(ctx context.Context) error {
			if err := ops.NATSConnected(s.nc)(ctx); err != nil {
				return err
			}
			_, err := s.js.AccountInfo(ctx)
			return err
		},
	}
}

// Run serves the API until ctx is cancelled. Alongside, it applies the
// topology, rebuilds the subscriptions bucket from Postgres (retrying until
// both succeed) and then keeps retrying view writes that failed.
func (s *Server) Run(ctx context.Context) error {
	ln := s.listener
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", s.cfg.HTTPAddr); err != nil {
			return fmt.Errorf("api: listening on %s: %w", s.cfg.HTTPAddr, err)
		}
	}
	if len(s.tokens) == 0 && !loopback(ln.Addr()) {
		s.log.Warn("the API is open: HAMMER_API_TOKENS is unset and it listens beyond loopback",
			zap.String("addr", ln.Addr().String()))
	}
	mctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { s.maintain(mctx) })
	err := ops.ServeListener(ctx, s.log, ln, ops.NewServer(s.echo), drainTimeout)
	stop()
	wg.Wait()
	if err != nil {
		return fmt.Errorf("api: %w", err)
	}
	return nil
}

// maintain prepares JetStream and the bucket, then retries what failed.
func (s *Server) maintain(ctx context.Context) {
	wait := 250 * time.Millisecond
	for {
		err := s.prepare(ctx)
		if err == nil {
			break
		}
		s.log.Warn("preparing JetStream; will retry", zap.Error(err), zap.Duration("retry_in", wait))
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, 30*time.Second)
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	prune := time.NewTicker(pruneEvery)
	defer prune.Stop()
	s.pruneTombstones(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			s.app.Retry(rctx)
			cancel()
		case <-prune.C:
			s.pruneTombstones(ctx)
		}
	}
}

// pruneEvery is how often the API forgets old message tombstones.
const pruneEvery = time.Hour

// pruneTombstones forgets deleted messages older than anything the streams
// still hold (HAMMER_STREAM_MAX_AGE): no event about them can arrive any more.
// Several API replicas doing it at once is harmless.
func (s *Server) pruneTombstones(ctx context.Context) {
	pctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	n, err := s.app.PruneTombstones(pctx, time.Now().Add(-s.cfg.StreamMaxAge))
	if err != nil {
		s.log.Warn("pruning message tombstones; will retry", zap.Error(err))
		return
	}
	if n > 0 {
		s.log.Info("message tombstones pruned", zap.Int64("count", n))
	}
}

// prepare applies the topology and rebuilds the bucket. The rebuild has no
// overall deadline (it takes as long as there are subscriptions); each of
// its NATS calls has JetStream's default one.
func (s *Server) prepare(ctx context.Context) error {
	tctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := topology.Ensure(tctx, s.js, s.cfg.Topology()); err != nil {
		return err
	}
	n, err := s.app.Rebuild(ctx)
	if err != nil {
		return fmt.Errorf("rebuilding the subscriptions bucket: %w", err)
	}
	s.log.Info("subscriptions bucket rebuilt", zap.Int("subscriptions", n))
	s.preparedOnce.Do(func() { close(s.prepared) })
	return nil
}

func loopback(addr net.Addr) bool {
	tcp, ok := addr.(*net.TCPAddr)
	return ok && tcp.IP.IsLoopback()
}
