// Package process assembles one hammer process: it connects what each
// service needs (NATS, PostgreSQL), builds the services, serves the ops
// address, runs everything until a signal or a failure, and stops it in
// order. Every way of running hammer goes through it: hammer dev, hammer
// worker, hammer api|fanout|deliverer|recorder and the per-service mains
// under services/*/cmd.
package process

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
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
)

// StopTimeout is how long each service may take to stop once asked (the
// recorder flushes its last batch, the API finishes its requests), unless
// a service asks for longer (the deliverer's grace for requests in flight).
const StopTimeout = 30 * time.Second

// Service is what every hammer service offers its process.
type Service interface {
	Run(ctx context.Context) error
	Checks() map[string]ops.Check
}

// stopTimer is a Service that needs longer than StopTimeout to stop, as its
// own configuration says.
type stopTimer interface {
	StopTimeout() time.Duration
}

// Deps is what the process connected for one service. Pool is nil for a
// service without a database.
type Deps struct {
	Logger   *zap.Logger
	NATS     *nats.Conn
	Pool     *pgxpool.Pool
	Registry *prometheus.Registry
}

// Unit is one service of a process.
type Unit struct {
	// Name names the service in logs, /readyz checks and its NATS connection.
	Name string
	// Common is the service's common configuration: its NATS settings.
	Common config.Common
	// DatabaseURL is the service's PostgreSQL; empty for none.
	DatabaseURL string
	// Build makes the service from what the process connected.
	Build func(Deps) (Service, error)
}

// Process is what one hammer process runs: its services in stopping
// order, their readiness checks, and what to close once they have stopped.
type Process struct {
	log        *zap.Logger
	level      zapcore.Level
	reg        *prometheus.Registry
	components []lifecycle.Component
	checks     map[string]ops.Check
	closers    []func()
	stopAfter  time.Duration
}

// New returns an empty process whose own log lines carry name.
func New(level zapcore.Level, name string) *Process {
	return &Process{
		log:    logging.New(level, name),
		level:  level,
		reg:    ops.NewRegistry(),
		checks: map[string]ops.Check{},
	}
}

// Logger is the process's own logger.
func (p *Process) Logger() *zap.Logger { return p.log }

// Trace turns tracing on when endpoint (HAMMER_OTLP_ENDPOINT) is set; the
// spans not yet sent are flushed when the process closes, after everything
// registered later.
func (p *Process) Trace(ctx context.Context, endpoint, service string) error {
	shutdown, err := tracing.Setup(ctx, endpoint, service)
	if err != nil {
		return err
	}
	p.OnClose(func() {
		if err := shutdown(context.WithoutCancel(ctx)); err != nil {
			p.log.Warn("flushing traces", zap.Error(err))
		}
	})
	return nil
}

// OnClose registers f to run after the services stop, last registered first.
func (p *Process) OnClose(f func()) { p.closers = append(p.closers, f) }

// Close runs what OnClose registered. Run calls it; a caller whose start
// failed before Run calls it itself.
func (p *Process) Close() {
	for i := len(p.closers) - 1; i >= 0; i-- {
		p.closers[i]()
	}
	p.closers = nil
	_ = p.log.Sync()
}

// AddFunc appends a component; its checks are named "<name>.<check>" so
// that one /readyz can answer for several services.
func (p *Process) AddFunc(name string, run func(context.Context) error, checks map[string]ops.Check) {
	p.components = append(p.components, lifecycle.Component{Name: name, Run: run})
	for k, c := range checks {
		p.checks[name+"."+k] = c
	}
}

// Add connects what u needs, builds it and appends it.
func (p *Process) Add(ctx context.Context, u Unit) error {
	log := logging.New(p.level, u.Name)
	nc, err := p.connect(u.Common, u.Name, log)
	if err != nil {
		return err
	}
	deps := Deps{Logger: log, NATS: nc, Registry: p.reg}
	if u.DatabaseURL != "" {
		if deps.Pool, err = database.Open(ctx, u.DatabaseURL); err != nil {
			return err
		}
		p.OnClose(deps.Pool.Close)
	}
	svc, err := u.Build(deps)
	if err != nil {
		return err
	}
	if st, ok := svc.(stopTimer); ok {
		p.stopAfter = max(p.stopAfter, st.StopTimeout())
	}
	p.AddFunc(u.Name, svc.Run, svc.Checks())
	return nil
}

func (p *Process) connect(c config.Common, service string, log *zap.Logger) (*nats.Conn, error) {
	opts, err := c.NATSOptions()
	if err != nil {
		return nil, err
	}
	nc, err := topology.Connect(c.NATSURL, "hammer-"+service, log, opts...)
	if err != nil {
		return nil, err
	}
	p.OnClose(func() {
		// Closing on purpose is not the disconnection the handler warns of.
		nc.SetDisconnectErrHandler(nil)
		nc.Close()
	})
	return nc, nil
}

// AddOps serves /healthz, /readyz (every service's checks, with details:
// the ops address is for operators) and /metrics on ln. Added last, it
// answers until the services have stopped.
func (p *Process) AddOps(ln net.Listener, pprof bool) {
	srv := ops.NewServer(ops.Handler(p.reg, p.checks, pprof))
	log := p.log.With(zap.String("component", "ops"))
	p.components = append(p.components, lifecycle.Component{Name: "ops", Run: func(ctx context.Context) error {
		return ops.ServeListener(ctx, log, ln, srv, 5*time.Second)
	}})
}

// Run runs every component until ctx is cancelled or one fails, then stops
// them in the order they were added and closes the connections.
func (p *Process) Run(ctx context.Context) error {
	defer p.Close()
	return lifecycle.Run(ctx, p.log, max(StopTimeout, p.stopAfter), p.components...)
}

// Plan is a process of one or more services: hammer worker, hammer
// api|fanout|deliverer|recorder and the mains under services/*/cmd.
type Plan struct {
	// Name names the process in logs and traces ("hammer-<name>").
	Name string
	// Common is the process's common configuration (log level, ops
	// address, tracing).
	Common config.Common
	// Ops serves the ops address (HAMMER_OPS_ADDR); the API alone serves
	// its health and metrics on its own address instead.
	Ops bool
	// Units are the services, in stopping order. They may use Listeners.
	Units []Unit
	// Listeners were opened by the caller before anything started; they
	// are closed if the process fails to start.
	Listeners []net.Listener
}

// RunPlan runs plan until ctx ends (SIGINT or SIGTERM stop it too).
// Addresses are taken before anything starts, so a port in use fails at
// once.
func RunPlan(ctx context.Context, plan Plan) error {
	lns := plan.Listeners
	fail := func(p *Process, err error) error {
		for _, ln := range lns {
			ln.Close()
		}
		if p != nil {
			p.Close()
		}
		return err
	}
	ctx, stop := lifecycle.SignalContext(ctx)
	defer stop()
	var opsLn net.Listener
	if plan.Ops {
		ln, err := Listen("HAMMER_OPS_ADDR", plan.Common.OpsAddr)
		if err != nil {
			return fail(nil, err)
		}
		opsLn = ln
		lns = append(lns, ln)
	}
	p := New(plan.Common.ZapLevel(), plan.Name)
	if err := p.Trace(ctx, plan.Common.OTLPEndpoint, "hammer-"+plan.Name); err != nil {
		return fail(p, err)
	}
	for _, u := range plan.Units {
		if err := p.Add(ctx, u); err != nil {
			return fail(p, err)
		}
	}
	if opsLn != nil {
		p.AddOps(opsLn, plan.Common.Pprof)
	}
	return p.Run(ctx)
}

// Main is the whole of a per-service main: it loads cfg (a pointer to one
// of package config's structs) from the environment, asks plan for the
// process (or why it must not start), runs it and exits non-zero on failure, with one line that says
// why. "-h" prints the variables cfg reads.
func Main(name, summary string, cfg config.Validator, plan func() (Plan, error)) {
	if len(os.Args) > 1 && (os.Args[1] == "-h" || os.Args[1] == "--help" || os.Args[1] == "help") {
		fmt.Printf("%s: %s. Configuration:\n", name, summary)
		for _, v := range config.Variables(cfg) {
			fmt.Printf("  %-36s %s (default %q)\n", v.Name, v.Description, v.Default)
		}
		return
	}
	if err := run(cfg, plan); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %s\n", name, OneLine(err))
		os.Exit(1)
	}
}

func run(cfg config.Validator, plan func() (Plan, error)) error {
	if err := config.LoadInto(cfg); err != nil {
		return err
	}
	p, err := plan()
	if err != nil {
		return err
	}
	return RunPlan(context.Background(), p)
}

// OneLine joins the lines of an error (errors.Join makes several) so that
// every failure is one line a person can read at a glance.
func OneLine(err error) string {
	var parts []string
	for _, l := range strings.Split(err.Error(), "\n") {
		l = strings.Join(strings.Fields(l), " ")
		if l != "" && !slices.Contains(parts, l) {
			parts = append(parts, l)
		}
	}
	return strings.Join(parts, "; ")
}

// Listen opens addr for the variable name, turning "address in use" into
// one line that says what to do.
func Listen(name, addr string) (net.Listener, error) {
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
