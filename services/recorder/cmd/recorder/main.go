// Command recorder runs hammer's recorder on its own: configuration from
// HAMMER_* variables, health and metrics on HAMMER_OPS_ADDR.
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/hammer-webhooks/hammer/platform/config"
	"github.com/hammer-webhooks/hammer/platform/database"
	"github.com/hammer-webhooks/hammer/platform/lifecycle"
	"github.com/hammer-webhooks/hammer/platform/logging"
	"github.com/hammer-webhooks/hammer/platform/ops"
	"github.com/hammer-webhooks/hammer/platform/topology"
	"github.com/hammer-webhooks/hammer/platform/tracing"
	"github.com/hammer-webhooks/hammer/services/recorder"
)

func main() {
	if len(os.Args) > 1 && (os.Args[1] == "-h" || os.Args[1] == "--help" || os.Args[1] == "help") {
		fmt.Println("recorder: writes messages, deliveries and attempts from the streams to PostgreSQL. Configuration:")
		for _, v := range config.Variables(config.Recorder{}) {
			fmt.Printf("  %-32s %s (default %q)\n", v.Name, v.Description, v.Default)
		}
		return
	}
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "recorder:", err)
		os.Exit(1)
	}
}

func run() error {
	var cfg config.Recorder
	if err := config.Load(&cfg); err != nil {
		return err
	}
	log := logging.New(cfg.ZapLevel(), "recorder")
	defer log.Sync() //nolint:errcheck

	ctx, stop := lifecycle.SignalContext(context.Background())
	defer stop()
	flushTraces, err := tracing.Setup(ctx, cfg.OTLPEndpoint, "hammer-recorder")
	if err != nil {
		return err
	}
	defer flushTraces(context.WithoutCancel(ctx)) //nolint:errcheck // best effort at exit

	nc, err := topology.Connect(cfg.NATSURL, "hammer-recorder", log)
	if err != nil {
		return err
	}
	defer nc.Close()
	pool, err := database.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer pool.Close()

	reg := ops.NewRegistry()
	svc, err := recorder.New(recorder.Options{Config: cfg, Pool: pool, NATS: nc, Logger: log, Registry: reg})
	if err != nil {
		return err
	}
	srv := ops.NewServer(ops.Handler(reg, svc.Checks(), cfg.Pprof))
	// The recorder stops first so that it flushes while NATS and Postgres
	// are still there; the ops server answers until then.
	return lifecycle.Run(ctx, log, 30*time.Second,
		lifecycle.Component{Name: "recorder", Run: svc.Run},
		lifecycle.Component{Name: "ops", Run: func(ctx context.Context) error {
			return ops.Serve(ctx, log, cfg.OpsAddr, srv, 5*time.Second)
		}},
	)
}
