// Command deliverer runs hammer's deliverer service on its own: configuration
// from HAMMER_* variables, health and metrics on HAMMER_OPS_ADDR. Run as many
// as the receivers need; they share one durable consumer.
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/hammer-webhooks/hammer/platform/config"
	"github.com/hammer-webhooks/hammer/platform/lifecycle"
	"github.com/hammer-webhooks/hammer/platform/logging"
	"github.com/hammer-webhooks/hammer/platform/ops"
	"github.com/hammer-webhooks/hammer/platform/topology"
	"github.com/hammer-webhooks/hammer/platform/tracing"
	"github.com/hammer-webhooks/hammer/services/deliverer"
)

func main() {
	if len(os.Args) > 1 && (os.Args[1] == "-h" || os.Args[1] == "--help" || os.Args[1] == "help") {
		fmt.Println("deliverer: makes delivery attempts and records them as events. Configuration:")
		for _, v := range config.Variables(config.Deliverer{}) {
			fmt.Printf("  %-32s %s (default %q)\n", v.Name, v.Description, v.Default)
		}
		return
	}
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "deliverer:", err)
		os.Exit(1)
	}
}

func run() error {
	var cfg config.Deliverer
	if err := config.Load(&cfg); err != nil {
		return err
	}
	log := logging.New(cfg.ZapLevel(), "deliverer")
	defer log.Sync() //nolint:errcheck

	ctx, stop := lifecycle.SignalContext(context.Background())
	defer stop()
	flushTraces, err := tracing.Setup(ctx, cfg.OTLPEndpoint, "hammer-deliverer")
	if err != nil {
		return err
	}
	defer flushTraces(context.WithoutCancel(ctx)) //nolint:errcheck // best effort at exit

	nc, err := topology.Connect(cfg.NATSURL, "hammer-deliverer", log)
	if err != nil {
		return err
	}
	defer nc.Close()

	reg := ops.NewRegistry()
	svc, err := deliverer.New(deliverer.Options{Config: cfg, NATS: nc, Logger: log, Registry: reg})
	if err != nil {
		return err
	}
	srv := ops.NewServer(ops.Handler(reg, svc.Checks(), cfg.Pprof))
	// The stop timeout leaves room for the deliverer's grace for requests
	// in flight.
	return lifecycle.Run(ctx, log, deliverer.DefaultStopGrace+15*time.Second,
		lifecycle.Component{Name: "deliverer", Run: svc.Run},
		lifecycle.Component{Name: "ops", Run: func(ctx context.Context) error {
			return ops.Serve(ctx, log, cfg.OpsAddr, srv, 5*time.Second)
		}},
	)
}
