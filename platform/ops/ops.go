// Package ops serves what operators and orchestrators ask of every process:
// /healthz (the process is alive), /readyz (what the service uses answers),
// /metrics (Prometheus) and, when enabled, /debug/pprof.
package ops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"sort"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
)

// Check reports whether one dependency can serve.
type Check func(ctx context.Context) error

// NewRegistry returns a Prometheus registry with the Go runtime and process
// collectors; services register their hammer_* metrics on it.
func NewRegistry() *prometheus.Registry {
	r := prometheus.NewRegistry()
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return r
}

// Handler serves /healthz, /readyz, /metrics and optionally pprof.
func Handler(reg *prometheus.Registry, checks map[string]Check, withPprof bool) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		status, body := Ready(r.Context(), checks)
		writeJSON(w, status, body)
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	if withPprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return mux
}

// Ready runs every check with a short deadline and returns the status code
// and body of a /readyz answer.
func Ready(ctx context.Context, checks map[string]Check) (int, map[string]any) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	names := make([]string, 0, len(checks))
	for name := range checks {
		names = append(names, name)
	}
	sort.Strings(names)
	results := map[string]string{}
	status := http.StatusOK
	for _, name := range names {
		if err := checks[name](ctx); err != nil {
			results[name] = err.Error()
			status = http.StatusServiceUnavailable
		} else {
			results[name] = "ok"
		}
	}
	word := "ok"
	if status != http.StatusOK {
		word = "unavailable"
	}
	return status, map[string]any{"status": word, "checks": results}
}

// PublicReady is Ready for a port anyone may reach (the API's): each check
// answers only "ok" or "unavailable", and why one is unavailable goes to
// log, where an operator finds it, never to the caller.
func PublicReady(ctx context.Context, log *zap.Logger, checks map[string]Check) (int, map[string]any) {
	status, body := Ready(ctx, checks)
	results, _ := body["checks"].(map[string]string)
	public := make(map[string]string, len(results))
	for name, r := range results {
		if r == "ok" {
			public[name] = "ok"
			continue
		}
		public[name] = "unavailable"
		log.Warn("not ready", zap.String("check", name), zap.String("error", r))
	}
	return status, map[string]any{"status": body["status"], "checks": public}
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

// Serve runs srv on addr until ctx is cancelled, then shuts it down, letting
// requests in flight finish for up to drain.
func Serve(ctx context.Context, log *zap.Logger, addr string, srv *http.Server, drain time.Duration) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", addr, err)
	}
	return ServeListener(ctx, log, ln, srv, drain)
}

// ServeListener is Serve on a listener the caller opened (tests pass ":0").
func ServeListener(ctx context.Context, log *zap.Logger, ln net.Listener, srv *http.Server, drain time.Duration) error {
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("listening", zap.String("addr", ln.Addr().String()))
	select {
	case err := <-errc:
		return fmt.Errorf("serving %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), drain)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
		return fmt.Errorf("draining %s: %w", ln.Addr(), err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// NewServer is an http.Server with timeouts suited to hammer's endpoints.
func NewServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
	}
}

// NATSConnected is ready while nc is connected.
func NATSConnected(nc *nats.Conn) Check {
	return func(context.Context) error {
		if status := nc.Status(); status != nats.CONNECTED {
			return fmt.Errorf("nats connection is %s", status)
		}
		return nil
	}
}

// Ping is ready while p answers a ping; a *pgxpool.Pool is one.
func Ping(p interface{ Ping(context.Context) error }) Check {
	return func(ctx context.Context) error { return p.Ping(ctx) }
}
