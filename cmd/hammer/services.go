package main

import (
	"context"
	"fmt"
	"net"
	"slices"

	"github.com/hammer-webhooks/hammer/platform/config"
	"github.com/hammer-webhooks/hammer/platform/process"
	"github.com/hammer-webhooks/hammer/services/api"
	"github.com/hammer-webhooks/hammer/services/deliverer"
	"github.com/hammer-webhooks/hammer/services/fanout"
	"github.com/hammer-webhooks/hammer/services/recorder"
	"github.com/hammer-webhooks/hammer/sql/migrations"
)

func noArgs(name string, args []string) error {
	if len(args) > 0 {
		return usageError{fmt.Sprintf("%s takes no arguments (configuration comes from HAMMER_* variables; see hammer --help)", name)}
	}
	return nil
}

// The units below are each service as a part of a process; every command
// assembles its process from them.

func apiUnit(cfg config.API, ln net.Listener) process.Unit {
	return process.Unit{Name: "api", Common: cfg.Common, DatabaseURL: cfg.DatabaseURL, Build: func(d process.Deps) (process.Service, error) {
		return api.New(api.Options{Config: cfg, Pool: d.Pool, NATS: d.NATS, Logger: d.Logger, Registry: d.Registry, Listener: ln})
	}}
}

func fanoutUnit(cfg config.Fanout) process.Unit {
	return process.Unit{Name: "fanout", Common: cfg.Common, DatabaseURL: cfg.DatabaseURL, Build: func(d process.Deps) (process.Service, error) {
		return fanout.New(fanout.Options{Config: cfg, Pool: d.Pool, NATS: d.NATS, Logger: d.Logger, Registry: d.Registry})
	}}
}

func delivererUnit(cfg config.Deliverer) process.Unit {
	return process.Unit{Name: "deliverer", Common: cfg.Common, Build: func(d process.Deps) (process.Service, error) {
		return deliverer.New(deliverer.Options{Config: cfg, NATS: d.NATS, Logger: d.Logger, Registry: d.Registry})
	}}
}

func recorderUnit(cfg config.Recorder) process.Unit {
	return process.Unit{Name: "recorder", Common: cfg.Common, DatabaseURL: cfg.DatabaseURL, Build: func(d process.Deps) (process.Service, error) {
		return recorder.New(recorder.Options{Config: cfg, Pool: d.Pool, NATS: d.NATS, Logger: d.Logger, Registry: d.Registry})
	}}
}

// runAPI serves the REST API, whose /healthz, /readyz and /metrics are on
// HAMMER_HTTP_ADDR itself.
func runAPI(ctx context.Context, args []string) error {
	if err := noArgs("api", args); err != nil {
		return err
	}
	var cfg config.API
	if err := config.Load(&cfg); err != nil {
		return err
	}
	if err := cfg.CheckAuth(); err != nil {
		return err
	}
	ln, err := process.Listen("HAMMER_HTTP_ADDR", cfg.HTTPAddr)
	if err != nil {
		return err
	}
	return process.RunPlan(ctx, process.Plan{Name: "api", Common: cfg.Common,
		Units: []process.Unit{apiUnit(cfg, ln)}, Listeners: []net.Listener{ln}})
}

// runOne runs worker services with ops on HAMMER_OPS_ADDR.
func runOne(ctx context.Context, name string, args []string, cfg config.Validator, common func() config.Common, units func() []process.Unit) error {
	if err := noArgs(name, args); err != nil {
		return err
	}
	if err := config.LoadInto(cfg); err != nil {
		return err
	}
	return process.RunPlan(ctx, process.Plan{Name: name, Common: common(), Ops: true, Units: units()})
}

func runFanout(ctx context.Context, args []string) error {
	var cfg config.Fanout
	return runOne(ctx, "fanout", args, &cfg, func() config.Common { return cfg.Common },
		func() []process.Unit { return []process.Unit{fanoutUnit(cfg)} })
}

func runDeliverer(ctx context.Context, args []string) error {
	var cfg config.Deliverer
	return runOne(ctx, "deliverer", args, &cfg, func() config.Common { return cfg.Common },
		func() []process.Unit { return []process.Unit{delivererUnit(cfg)} })
}

func runRecorder(ctx context.Context, args []string) error {
	var cfg config.Recorder
	return runOne(ctx, "recorder", args, &cfg, func() config.Common { return cfg.Common },
		func() []process.Unit { return []process.Unit{recorderUnit(cfg)} })
}

// runWorker runs fanout, deliverer and recorder in one process: the seed's
// worker, for a small installation. In production each runs on its own.
func runWorker(ctx context.Context, args []string) error {
	var cfg config.Worker
	return runOne(ctx, "worker", args, &cfg, func() config.Common { return cfg.Fanout.Common },
		func() []process.Unit {
			return []process.Unit{fanoutUnit(cfg.Fanout), delivererUnit(cfg.Deliverer), recorderUnit(cfg.Recorder)}
		})
}

func runMigrate(_ context.Context, args []string) error {
	if len(args) != 1 || !slices.Contains([]string{"up", "down", "version"}, args[0]) {
		return usageError{"want hammer migrate up, down or version"}
	}
	var cfg config.Database
	if err := config.Load(&cfg); err != nil {
		return err
	}
	switch args[0] {
	case "up":
		if err := migrations.Up(cfg.DatabaseURL); err != nil {
			return err
		}
	case "down":
		if err := migrations.Down(cfg.DatabaseURL); err != nil {
			return err
		}
	}
	v, dirty, err := migrations.Version(cfg.DatabaseURL)
	if err != nil {
		return err
	}
	state := ""
	if dirty {
		state = " (dirty: a migration failed halfway; fix the schema by hand, then run hammer migrate again)"
	}
	fmt.Printf("schema version %d%s\n", v, state)
	return nil
}
