package ops_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/hammer-webhooks/hammer/platform/ops"
)

func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	b, _ := io.ReadAll(rec.Body)
	return rec.Code, string(b)
}

func TestHealthReadyMetrics(t *testing.T) {
	t.Parallel()
	reg := ops.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "hammer_test_total", Help: "test"})
	reg.MustRegister(c)
	c.Inc()
	healthy := true
	h := ops.Handler(reg, map[string]ops.Check{
		"nats": func(context.Context) error {
			if healthy {
				return nil
			}
			return errors.New("nats: not connected")
		},
	}, false)

	code, _ := get(t, h, "/healthz")
	require.Equal(t, http.StatusOK, code)
	code, body := get(t, h, "/readyz")
	require.Equal(t, http.StatusOK, code)
	require.JSONEq(t, `{"status":"ok","checks":{"nats":"ok"}}`, body)

	healthy = false
	code, body = get(t, h, "/readyz")
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.JSONEq(t, `{"status":"unavailable","checks":{"nats":"nats: not connected"}}`, body)
	code, _ = get(t, h, "/healthz")
	require.Equal(t, http.StatusOK, code, "liveness does not depend on dependencies")

	code, body = get(t, h, "/metrics")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, "hammer_test_total 1")
	require.Contains(t, body, "go_goroutines")

	code, _ = get(t, h, "/debug/pprof/")
	require.Equal(t, http.StatusNotFound, code, "pprof is off unless asked for")
	code, _ = get(t, ops.Handler(reg, nil, true), "/debug/pprof/")
	require.Equal(t, http.StatusOK, code)
}

// The API's port answers ok or unavailable per check; the reason goes to
// the log only.
func TestPublicReadyHidesErrors(t *testing.T) {
	t.Parallel()
	core, logs := observer.New(zap.WarnLevel)
	checks := map[string]ops.Check{
		"postgres": func(context.Context) error {
			return errors.New("failed to connect to `user=hammer database=hammer`: 10.0.0.5:5432: dial error")
		},
		"nats": func(context.Context) error { return nil },
	}
	status, body := ops.PublicReady(context.Background(), zap.New(core), checks)
	require.Equal(t, http.StatusServiceUnavailable, status)
	require.Equal(t, map[string]any{"status": "unavailable", "checks": map[string]string{"postgres": "unavailable", "nats": "ok"}}, body)
	require.Equal(t, 1, logs.FilterField(zap.String("check", "postgres")).Len(), "the reason is logged")
	require.Contains(t, logs.All()[0].ContextMap()["error"], "10.0.0.5:5432")
}
