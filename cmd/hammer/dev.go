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
	pgcfg, err := pgrun.LoadConfig()
	if err != nil {
		return err
	}
	if cfg.DatabaseURL == "" {
		if err := pgrun.Preflight(pgcfg); err != nil {
			return err
		}
	}
	ctx, stop := lifecycle.SignalContext(ctx)
	defer stop()
	p := newProcess(cfg.ZapLevel(), "dev")
	log := p.log

	// Whatever started is stopped in this order on the way out: the
	// services' connections (p.close), NATS, PostgreSQL, the lock.
	var (
		nats   *server.Server
		pg     *pgrun.Server
		unlock func()
	)
	defer func() {
		p.close()
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
	if err := p.trace(ctx, cfg.OTLPEndpoint, "hammer-dev"); err != nil {
		return err
	}
	// Every address is taken before anything starts, so that a port in
	// use fails at once.
	httpLn, err := listen("HAMMER_HTTP_ADDR", cfg.HTTPAddr)
	if err != nil {
		return err
	}
	p.onClose(func() { httpLn.Close() })
	opsLn, err := listen("HAMMER_OPS_ADDR", cfg.OpsAddr)
	if err != nil {
		return err
	}
	p.onClose(func() { opsLn.Close() })

	natsURL := cfg.NATSURL
	if _, set := os.LookupEnv("HAMMER_NATS_URL"); set {
		log.Info("using the NATS at HAMMER_NATS_URL instead of an embedded one", zap.String("url", natsURL))
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

	common := cfg.Common
	common.NATSURL = natsURL
	db := config.Database{DatabaseURL: dbURL}
	apiCfg := cfg.API
	apiCfg.Common, apiCfg.Database = common, db
	also := cfg.AlsoAllowedCIDRs
	if len(cfg.AllowedCIDRs) == 0 && len(also) == 0 {
		also = ssrf.DevAllowedCIDRs()
		log.Info("deliveries may reach public addresses and, in hammer dev, loopback and private networks; cloud metadata addresses stay refused (set HAMMER_DELIVERY_ALSO_ALLOWED_CIDRS or HAMMER_DELIVERY_ALLOWED_CIDRS to change it)",
			zap.Strings("also_allowed_cidrs", also))
	}

	if err := p.addAPI(ctx, apiCfg, httpLn); err != nil {
		return err
	}
	if err := p.addFanout(ctx, config.Fanout{Common: common, Database: db}); err != nil {
		return err
	}
	if err := p.addDeliverer(config.Deliverer{Common: common, DeliveryConcurrency: cfg.DeliveryConcurrency,
		AllowedCIDRs: cfg.AllowedCIDRs, AlsoAllowedCIDRs: also, AckWait: cfg.AckWait, StopGrace: cfg.StopGrace}); err != nil {
		return err
	}
	if err := p.addRecorder(ctx, config.Recorder{Common: common, Database: db,
		BatchSize: cfg.BatchSize, FlushInterval: cfg.FlushInterval}); err != nil {
		return err
	}
	p.addOps(opsLn, cfg.Pprof)
	if pg != nil {
		// PostgreSQL dying under hammer stops hammer rather than leaving
		// it answering 503s.
		p.add("postgres", func(ctx context.Context) error {
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
		zap.String("nats", natsURL),
		zap.String("data_dir", dataDir))
	return p.run(ctx)
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
