// Command api runs hammer's REST API on its own: configuration from HAMMER_*
// variables, the API on HAMMER_HTTP_ADDR (with its own /healthz, /readyz and
// /metrics) and pprof, when enabled, with the same on HAMMER_OPS_ADDR.
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
	"github.com/hammer-webhooks/hammer/services/api"
)

func main() {
	if len(os.Args) > 1 && (os.Args[1] == "-h" || os.Args[1] == "--help" || os.Args[1] == "help") {
		fmt.Println("api: hammer's REST API. Configuration:")
		for _, v := range config.Variables(config.API{}) {
			fmt.Printf("  %-28s %s (default %q)\n", v.Name, v.Description, v.Default)
		}
		return
	}
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "api:", err)
		os.Exit(1)
	}
}

func run() error {
	var cfg config.API
	if err := config.Load(&cfg); err != nil {
		return err
	}
	log := logging.New(cfg.ZapLevel(), "api")
	defer log.Sync() //nolint:errcheck

	ctx, stop := lifecycle.SignalContext(context.Background())
	defer stop()
	flushTraces, err := tracing.Setup(ctx, cfg.OTLPEndpoint, "hammer-api")
	if err != nil {
		return err
	}
	defer flushTraces(context.WithoutCancel(ctx)) //nolint:errcheck // best effort at exit

	nc, err := topology.Connect(cfg.NATSURL, "hammer-api", log)
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
	srv, err := api.New(api.Options{Config: cfg, Pool: pool, NATS: nc, Logger: log, Registry: reg})
	if err != nil {
		return err
	}
	opsSrv := ops.NewServer(ops.Handler(reg, srv.Checks(), cfg.Pprof))
	return lifecycle.Run(ctx, log, 30*time.Second,
		lifecycle.Component{Name: "api", Run: srv.Run},
		lifecycle.Component{Name: "ops", Run: func(ctx context.Context) error {
			return ops.Serve(ctx, log, cfg.OpsAddr, opsSrv, 5*time.Second)
		}},
	)
}
