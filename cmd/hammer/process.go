package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/hammer-webhooks/hammer/platform/config"
	"github.com/hammer-webhooks/hammer/platform/database"
	"github.com/hammer-webhooks/hammer/platform/lifecycle"
	"github.com/hammer-webhooks/hammer/platform/logging"
	"github.com/hammer-webhooks/hammer/platform/ops"
	"github.com/hammer-webhooks/hammer/platform/topology"
	"github.com/hammer-webhooks/hammer/platform/tracing"
	"github.com/hammer-webhooks/hammer/services/api"
	"github.com/hammer-webhooks/hammer/services/deliverer"
	"github.com/hammer-webhooks/hammer/services/fanout"
	"github.com/hammer-webhooks/hammer/services/recorder"
)

// stopTimeout is how long each service may take to stop once asked (the
// recorder flushes its last batch, the API finishes its requests), unless
// the deliverer's grace for requests in flight asks for longer.
const stopTimeout = 30 * time.Second

// process is what one hammer process runs: its services in stopping order,
// their readiness checks, and what to close once they have all stopped.
type process struct {
	log        *zap.Logger
	level      zapcore.Level
	reg        *prometheus.Registry
	components []lifecycle.Component
	checks     map[string]ops.Check
	closers    []func()
	stopAfter  time.Duration // stopTimeout, or longer for the deliverer
}

func newProcess(level zapcore.Level, name string) *process {
	return &process{
		log:    logging.New(level, name),
		level:  level,
		reg:    ops.NewRegistry(),
		checks: map[string]ops.Check{},
	}
}

// trace turns tracing on when endpoint (HAMMER_OTLP_ENDPOINT) is set; the
// spans not yet sent are flushed when the process closes, after everything
// registered later.
func (p *process) trace(ctx context.Context, endpoint, service string) error {
	shutdown, err := tracing.Setup(ctx, endpoint, service)
	if err != nil {
		return err
	}
	p.onClose(func() {
		if err := shutdown(context.WithoutCancel(ctx)); err != nil {
			p.log.Warn("flushing traces", zap.Error(err))
		}
	})
	return nil
}

// onClose registers f to run after the services stop, last registered first.
func (p *process) onClose(f func()) { p.closers = append(p.closers, f) }

// close runs what onClose registered.
func (p *process) close() {
	for i := len(p.closers) - 1; i >= 0; i-- {
		p.closers[i]()
	}
	p.closers = nil
	_ = p.log.Sync()
}

// add appends a service; its checks are named "<service>.<check>" so that
// one /readyz can answer for several services.
func (p *process) add(name string, run func(context.Context) error, checks map[string]ops.Check) {
	p.components = append(p.components, lifecycle.Component{Name: name, Run: run})
	for k, c := range checks {
		p.checks[name+"."+k] = c
	}
}

// run runs every component until ctx is cancelled or one fails, then stops
// them in the order they were added and closes the connections.
func (p *process) run(ctx context.Context) error {
	defer p.close()
	return lifecycle.Run(ctx, p.log, max(stopTimeout, p.stopAfter), p.components...)
}

func (p *process) connect(url, service string, log *zap.Logger) (*nats.Conn, error) {
	nc, err := topology.Connect(url, "hammer-"+service, log)
	if err != nil {
		return nil, err
	}
	p.onClose(func() {
		// Closing on purpose is not the disconnection the handler warns of.
		nc.SetDisconnectErrHandler(nil)
		nc.Close()
	})
	return nc, nil
}

func (p *process) open(ctx context.Context, url string) (*pgxpool.Pool, error) {
	pool, err := database.Open(ctx, url)
	if err != nil {
		return nil, err
	}
	p.onClose(pool.Close)
	return pool, nil
}

func (p *process) addAPI(ctx context.Context, cfg config.API, ln net.Listener) error {
	log := logging.New(p.level, "api")
	nc, err := p.connect(cfg.NATSURL, "api", log)
	if err != nil {
		return err
	}
	pool, err := p.open(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	srv, err := api.New(api.Options{Config: cfg, Pool: pool, NATS: nc, Logger: log, Registry: p.reg, Listener: ln})
	if err != nil {
		return err
	}
	p.add("api", srv.Run, srv.Checks())
	return nil
}

func (p *process) addFanout(ctx context.Context, cfg config.Fanout) error {
	log := logging.New(p.level, "fanout")
	nc, err := p.connect(cfg.NATSURL, "fanout", log)
	if err != nil {
		return err
	}
	pool, err := p.open(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	svc, err := fanout.New(fanout.Options{Config: cfg, Pool: pool, NATS: nc, Logger: log, Registry: p.reg})
	if err != nil {
		return err
	}
	p.add("fanout", svc.Run, svc.Checks())
	return nil
}

func (p *process) addDeliverer(cfg config.Deliverer) error {
	log := logging.New(p.level, "deliverer")
	nc, err := p.connect(cfg.NATSURL, "deliverer", log)
	if err != nil {
		return err
	}
	svc, err := deliverer.New(deliverer.Options{Config: cfg, NATS: nc, Logger: log, Registry: p.reg})
	if err != nil {
		return err
	}
	p.stopAfter = max(p.stopAfter, svc.StopTimeout())
	p.add("deliverer", svc.Run, svc.Checks())
	return nil
}

func (p *process) addRecorder(ctx context.Context, cfg config.Recorder) error {
	log := logging.New(p.level, "recorder")
	nc, err := p.connect(cfg.NATSURL, "recorder", log)
	if err != nil {
		return err
	}
	pool, err := p.open(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	svc, err := recorder.New(recorder.Options{Config: cfg, Pool: pool, NATS: nc, Logger: log, Registry: p.reg})
	if err != nil {
		return err
	}
	p.add("recorder", svc.Run, svc.Checks())
	return nil
}

// addOps serves /healthz, /readyz (every service's checks) and /metrics on
// ln. It is added last, so it answers until the services have stopped.
func (p *process) addOps(ln net.Listener, pprof bool) {
	srv := ops.NewServer(ops.Handler(p.reg, p.checks, pprof))
	log := p.log.With(zap.String("component", "ops"))
	p.components = append(p.components, lifecycle.Component{Name: "ops", Run: func(ctx context.Context) error {
		return ops.ServeListener(ctx, log, ln, srv, 5*time.Second)
	}})
}

// listen opens addr for the variable name, turning "address in use" into
// one line that says what to do. Listening before anything else starts
// makes a taken port fail at once.
func listen(name, addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err == nil {
		return ln, nil
	}
	if errors.Is(err, syscall.EADDRINUSE) {
		return nil, fmt.Errorf("%s=%s is already in use by another process: stop that process or set %s to a free address", name, addr, name)
	}
	if strings.Contains(err.Error(), "permission denied") {
		return nil, fmt.Errorf("%s=%s: not allowed to listen there (ports below 1024 need privileges): set %s to another address", name, addr, name)
	}
	return nil, fmt.Errorf("%s=%s: %w", name, addr, err)
}
