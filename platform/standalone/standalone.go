// Package standalone runs one hammer service as a process of its own: the
// thin mains under services/*/cmd share it, so every service starts, connects,
// serves its ops address and stops the same way.
package standalone

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/hammer-webhooks/hammer/platform/config"
	"github.com/hammer-webhooks/hammer/platform/database"
	"github.com/hammer-webhooks/hammer/platform/lifecycle"
	"github.com/hammer-webhooks/hammer/platform/logging"
	"github.com/hammer-webhooks/hammer/platform/ops"
	"github.com/hammer-webhooks/hammer/platform/topology"
	"github.com/hammer-webhooks/hammer/platform/tracing"
)

// Service is what every hammer service offers its process.
type Service interface {
	Run(ctx context.Context) error
	Checks() map[string]ops.Check
}

// stopTimer is a Service that needs longer than its Spec's StopTimeout to
// stop, as its own configuration says (the deliverer's grace for requests
// in flight).
type stopTimer interface {
	StopTimeout() time.Duration
}

// Deps is what the process connected for the service. Pool is nil for a
// service whose configuration has no database.
type Deps struct {
	Logger   *zap.Logger
	NATS     *nats.Conn
	Pool     *pgxpool.Pool
	Registry *prometheus.Registry
}

// Spec describes one service's process.
type Spec struct {
	// Name names the service in logs, errors and its NATS connection.
	Name string
	// Summary is the first line of --help.
	Summary string
	// Config points at the service's configuration struct; Main fills it
	// from the environment before calling Build.
	Config config.Validator
	// Build makes the service from what the process connected.
	Build func(Deps) (Service, error)
	// StopTimeout bounds the service's stop (default 30 s); a service with a
	// StopTimeout method of its own may raise it.
	StopTimeout time.Duration
}

// Main runs s until SIGINT or SIGTERM and exits non-zero on failure.
func Main(s Spec) {
	if len(os.Args) > 1 && (os.Args[1] == "-h" || os.Args[1] == "--help" || os.Args[1] == "help") {
		fmt.Printf("%s: %s. Configuration:\n", s.Name, s.Summary)
		for _, v := range config.Variables(s.Config) {
			fmt.Printf("  %-36s %s (default %q)\n", v.Name, v.Description, v.Default)
		}
		return
	}
	if err := run(s); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", s.Name, err)
		os.Exit(1)
	}
}

func run(s Spec) error {
	if err := config.LoadInto(s.Config); err != nil {
		return err
	}
	common := config.CommonOf(s.Config)
	log := logging.New(common.ZapLevel(), s.Name)
	defer log.Sync() //nolint:errcheck

	ctx, stop := lifecycle.SignalContext(context.Background())
	defer stop()
	flushTraces, err := tracing.Setup(ctx, common.OTLPEndpoint, "hammer-"+s.Name)
	if err != nil {
		return err
	}
	defer flushTraces(context.WithoutCancel(ctx)) //nolint:errcheck // best effort at exit

	nc, err := topology.Connect(common.NATSURL, "hammer-"+s.Name, log)
	if err != nil {
		return err
	}
	defer nc.Close()
	deps := Deps{Logger: log, NATS: nc, Registry: ops.NewRegistry()}
	if url, ok := config.DatabaseURLOf(s.Config); ok {
		if deps.Pool, err = database.Open(ctx, url); err != nil {
			return err
		}
		defer deps.Pool.Close()
	}

	svc, err := s.Build(deps)
	if err != nil {
		return err
	}
	timeout := s.StopTimeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	if st, ok := svc.(stopTimer); ok {
		timeout = max(timeout, st.StopTimeout())
	}
	opsSrv := ops.NewServer(ops.Handler(deps.Registry, svc.Checks(), common.Pprof))
	// The service stops first, so it can flush while NATS and Postgres are
	// still there; the ops server answers until then.
	return lifecycle.Run(ctx, log, timeout,
		lifecycle.Component{Name: s.Name, Run: svc.Run},
		lifecycle.Component{Name: "ops", Run: func(ctx context.Context) error {
			return ops.Serve(ctx, log, common.OpsAddr, opsSrv, 5*time.Second)
		}},
	)
}
