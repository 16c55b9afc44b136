package main

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/hammer-webhooks/hammer/platform/config"
	"github.com/hammer-webhooks/hammer/platform/lifecycle"
	"github.com/hammer-webhooks/hammer/sql/migrations"
)

func noArgs(name string, args []string) error {
	if len(args) > 0 {
		return usageError{fmt.Sprintf("%s takes no arguments (configuration comes from HAMMER_* variables; see hammer --help)", name)}
	}
	return nil
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
	ctx, stop := lifecycle.SignalContext(ctx)
	defer stop()
	ln, err := listen("HAMMER_HTTP_ADDR", cfg.HTTPAddr)
	if err != nil {
		return err
	}
	p := newProcess(cfg.ZapLevel(), "api")
	if err := p.trace(ctx, cfg.OTLPEndpoint, "hammer-api"); err != nil {
		ln.Close()
		return err
	}
	if err := p.addAPI(ctx, cfg, ln); err != nil {
		ln.Close()
		p.close()
		return err
	}
	return p.run(ctx)
}

// runOne runs one worker service with ops on HAMMER_OPS_ADDR.
func runOne(ctx context.Context, name string, args []string, common func() (config.Common, error), add func(context.Context, *process) error) error {
	if err := noArgs(name, args); err != nil {
		return err
	}
	cfg, err := common()
	if err != nil {
		return err
	}
	ctx, stop := lifecycle.SignalContext(ctx)
	defer stop()
	ln, err := listen("HAMMER_OPS_ADDR", cfg.OpsAddr)
	if err != nil {
		return err
	}
	p := newProcess(cfg.ZapLevel(), name)
	if err := p.trace(ctx, cfg.OTLPEndpoint, "hammer-"+name); err != nil {
		ln.Close()
		return err
	}
	if err := add(ctx, p); err != nil {
		ln.Close()
		p.close()
		return err
	}
	p.addOps(ln, cfg.Pprof)
	return p.run(ctx)
}

func runFanout(ctx context.Context, args []string) error {
	var cfg config.Fanout
	return runOne(ctx, "fanout", args,
		func() (config.Common, error) { err := config.Load(&cfg); return cfg.Common, err },
		func(ctx context.Context, p *process) error { return p.addFanout(ctx, cfg) })
}

func runDeliverer(ctx context.Context, args []string) error {
	var cfg config.Deliverer
	return runOne(ctx, "deliverer", args,
		func() (config.Common, error) { err := config.Load(&cfg); return cfg.Common, err },
		func(_ context.Context, p *process) error { return p.addDeliverer(cfg) })
}

func runRecorder(ctx context.Context, args []string) error {
	var cfg config.Recorder
	return runOne(ctx, "recorder", args,
		func() (config.Common, error) { err := config.Load(&cfg); return cfg.Common, err },
		func(ctx context.Context, p *process) error { return p.addRecorder(ctx, cfg) })
}

// runWorker runs fanout, deliverer and recorder in one process: the seed's
// worker, for a small installation. In production each runs on its own.
func runWorker(ctx context.Context, args []string) error {
	var f config.Fanout
	var d config.Deliverer
	var r config.Recorder
	return runOne(ctx, "worker", args,
		func() (config.Common, error) {
			err := errors.Join(config.Load(&f), config.Load(&d), config.Load(&r))
			return f.Common, err
		},
		func(ctx context.Context, p *process) error {
			if err := p.addFanout(ctx, f); err != nil {
				return err
			}
			if err := p.addDeliverer(d); err != nil {
				return err
			}
			return p.addRecorder(ctx, r)
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
