package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"go.uber.org/zap"

	"github.com/hammer-webhooks/hammer/platform/config"
	"github.com/hammer-webhooks/hammer/platform/lifecycle"
	"github.com/hammer-webhooks/hammer/platform/pgrun"
	"github.com/hammer-webhooks/hammer/platform/process"
	"github.com/hammer-webhooks/hammer/services/deliverer/ssrf"
	"github.com/hammer-webhooks/hammer/sql/migrations"
)

// runDev runs every service in one process for a developer's machine: an
// embedded NATS (unless HAMMER_NATS_URL is set) and a private PostgreSQL
// (unless HAMMER_DATABASE_URL is set), both under HAMMER_DATA_DIR. It
// stops the services in order (api, fanout, deliverer, recorder), then
// NATS, then PostgreSQL.
func runDev(ctx context.Context, args []string) (err error) {
	if err := noArgs("dev", args); err != nil {
		return err
	}
	var cfg config.Dev
	if err := config.Load(&cfg); err != nil {
		return err
	}
	pgcfg := cfg.Postgres
	if cfg.DatabaseURL == "" {
		if err := pgrun.Preflight(pgcfg); err != nil {
			return err
		}
	}
	apiCfg := cfg.API
	apiCfg.HTTPAddr = cfg.HTTPAddr
	if err := apiCfg.CheckAuth(); err != nil {
		return err
	}
	ctx, stop := lifecycle.SignalContext(ctx)
	defer stop()
	p := process.New(cfg.ZapLevel(), "dev")
	log := p.Logger()

	// Whatever started is stopped in this order on the way out: the
	// services' connections (p.Close), NATS, PostgreSQL, the lock.
	var (
		nats   *server.Server
		pg     *pgrun.Server
		unlock func()
	)
	defer func() {
		p.Close()
		if nats != nil {
			log.Info("stopping the embedded NATS")
			nats.Shutdown()
			nats.WaitForShutdown()
		}
		if pg != nil {
			if serr := pg.Stop(); serr != nil && err == nil {
				err = serr
			}
		}
		if unlock != nil {
			unlock()
		}
		if ctx.Err() != nil && err != nil && errors.Is(err, context.Canceled) {
			err = nil // interrupted while starting: nothing to report
		}
	}()

	dataDir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return fmt.Errorf("HAMMER_DATA_DIR=%q: %w", cfg.DataDir, err)
	}
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return fmt.Errorf("cannot create HAMMER_DATA_DIR %s (%v): set HAMMER_DATA_DIR to a directory you can write", dataDir, errors.Unwrap(err))
	}
	if unlock, err = lockDataDir(dataDir); err != nil {
		return err
	}
	if err := p.Trace(ctx, cfg.OTLPEndpoint, "hammer-dev"); err != nil {
		return err
	}
	// Every address is taken before anything starts, so that a port in
	// use fails at once.
	httpLn, err := process.Listen("HAMMER_HTTP_ADDR", cfg.HTTPAddr)
	if err != nil {
		return err
	}
	p.OnClose(func() { httpLn.Close() })
	opsLn, err := process.Listen("HAMMER_OPS_ADDR", cfg.OpsAddr)
	if err != nil {
		return err
	}
	p.OnClose(func() { opsLn.Close() })

	natsURL := cfg.NATSURL
	if _, set := os.LookupEnv("HAMMER_NATS_URL"); set {
		log.Info("using the NATS at HAMMER_NATS_URL instead of an embedded one", zap.String("url", config.Redact(natsURL)))
	} else {
		if nats, err = startNATS(cfg.DevNATSAddr, filepath.Join(dataDir, "nats"), log); err != nil {
			return err
		}
		natsURL = nats.ClientURL()
	}

	dbURL := cfg.DatabaseURL
	if dbURL == "" {
		if pg, err = pgrun.Start(ctx, pgrun.Options{DataDir: dataDir, Config: pgcfg, Logger: log.With(zap.String("component", "postgres"))}); err != nil {
			return err
		}
		dbURL = pg.URL()
	} else {
		log.Info("using the PostgreSQL at HAMMER_DATABASE_URL")
	}
	start := time.Now()
	if err := migrations.Up(dbURL); err != nil {
		return err
	}
	log.Info("schema up to date", zap.Duration("took", time.Since(start)))

	// Every service gets its own configuration, pointed at dev's NATS and
	// PostgreSQL.
	common := cfg.Common
	common.NATSURL = natsURL
	common.OpsAddr = cfg.OpsAddr
	db := config.Database{DatabaseURL: dbURL}
	apiCfg.Common, apiCfg.Database = common, db
	delivererCfg := cfg.Deliverer
	delivererCfg.Common = common
	if len(delivererCfg.AllowedCIDRs) == 0 && len(delivererCfg.AlsoAllowedCIDRs) == 0 {
		delivererCfg.AlsoAllowedCIDRs = ssrf.DevAllowedCIDRs()
		log.Info("deliveries may reach public addresses and, in hammer dev, loopback and private networks; cloud metadata addresses stay refused (set HAMMER_DELIVERY_ALSO_ALLOWED_CIDRS or HAMMER_DELIVERY_ALLOWED_CIDRS to change it)",
			zap.Strings("also_allowed_cidrs", delivererCfg.AlsoAllowedCIDRs))
	}
	recorderCfg := cfg.Recorder
	recorderCfg.Common, recorderCfg.Database = common, db
	for _, u := range []process.Unit{
		apiUnit(apiCfg, httpLn),
		fanoutUnit(config.Fanout{Common: common, Database: db}),
		delivererUnit(delivererCfg),
		recorderUnit(recorderCfg),
	} {
		if err := p.Add(ctx, u); err != nil {
			return err
		}
	}
	p.AddOps(opsLn, cfg.Pprof)
	if pg != nil {
		// PostgreSQL dying under hammer stops hammer rather than leaving
		// it answering 503s.
		p.AddFunc("postgres", func(ctx context.Context) error {
			select {
			case <-ctx.Done():
				return nil
			case <-pg.Done():
				return pg.Err()
			}
		}, nil)
	}
	log.Info("hammer dev is up",
		zap.String("api", "http://"+displayAddr(httpLn.Addr().String())),
		zap.String("ops", "http://"+displayAddr(opsLn.Addr().String())),
		zap.String("nats", config.Redact(natsURL)),
		zap.String("data_dir", dataDir))
	return p.Run(ctx)
}

// displayAddr turns a wildcard listen address into one a browser can open.
func displayAddr(addr string) string {
	for _, wild := range []string{"0.0.0.0:", "[::]:"} {
		if strings.HasPrefix(addr, wild) {
			return "localhost:" + strings.TrimPrefix(addr, wild)
		}
	}
	return addr
}

// lockDataDir keeps a second hammer dev off the same data directory (its
// JetStream store and PostgreSQL cluster). The kernel drops the lock when
// the process dies, however it dies.
func lockDataDir(dir string) (func(), error) {
	path := filepath.Join(dir, "hammer.lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("cannot write in HAMMER_DATA_DIR %s: set HAMMER_DATA_DIR to a directory you can write", dir)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder, _ := os.ReadFile(path)
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			pid := strings.TrimSpace(string(holder))
			if pid == "" {
				pid = "unknown"
			}
			return nil, fmt.Errorf("another hammer dev (pid %s) is using HAMMER_DATA_DIR %s: stop it first, or set HAMMER_DATA_DIR to another directory", pid, dir)
		}
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return func() {
		_ = f.Truncate(0)
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		_ = f.Close()
	}, nil
}
