// Package inproc runs hammer's four services in a test's own process, on the
// test's PostgreSQL database and JetStream server, each service with its own
// metrics registry as separate processes would have. The pipeline and
// observability tests share it.
package inproc

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/hammer-webhooks/hammer/platform/config"
	"github.com/hammer-webhooks/hammer/platform/lifecycle"
	"github.com/hammer-webhooks/hammer/platform/ops"
	"github.com/hammer-webhooks/hammer/platform/testkit"
	"github.com/hammer-webhooks/hammer/services/api"
	"github.com/hammer-webhooks/hammer/services/deliverer"
	"github.com/hammer-webhooks/hammer/services/fanout"
	"github.com/hammer-webhooks/hammer/services/recorder"
)

// Stack is every service of hammer running in this process.
type Stack struct {
	DB     *testkit.DB
	NATS   *testkit.NATS
	APIURL string
	// Ops serves /healthz, /readyz and /metrics of the services other than
	// the API (which serves its own), by name.
	Ops  map[string]http.Handler
	stop func()
}

// Start runs api, fanout, deliverer and recorder on db and n until the test
// ends or Stop is called, and returns once the API is ready. Deliveries may
// reach loopback, where test receivers listen. env adds or overrides
// HAMMER_* settings.
func Start(t *testing.T, db *testkit.DB, n *testkit.NATS, env ...map[string]string) *Stack {
	t.Helper()
	settings := map[string]string{
		"HAMMER_DATABASE_URL":            db.URL,
		"HAMMER_NATS_URL":                n.URL,
		"HAMMER_HTTP_ADDR":               "127.0.0.1:0",
		"HAMMER_DELIVERY_ALLOWED_CIDRS":  "127.0.0.0/8,::1/128",
		"HAMMER_DELIVERY_CONCURRENCY":    "16",
		"HAMMER_RECORDER_FLUSH_INTERVAL": "10ms",
	}
	for _, e := range env {
		for k, v := range e {
			settings[k] = v
		}
	}
	var apiCfg config.API
	var fanCfg config.Fanout
	var delCfg config.Deliverer
	var recCfg config.Recorder
	require.NoError(t, config.LoadFrom(&apiCfg, settings))
	require.NoError(t, config.LoadFrom(&fanCfg, settings))
	require.NoError(t, config.LoadFrom(&delCfg, settings))
	require.NoError(t, config.LoadFrom(&recCfg, settings))

	conn := func() *nats.Conn {
		nc, err := nats.Connect(n.URL)
		require.NoError(t, err)
		t.Cleanup(nc.Close)
		return nc
	}
	log := testkit.Logger(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	regs := map[string]*prometheus.Registry{}
	for _, name := range []string{"api", "fanout", "deliverer", "recorder"} {
		regs[name] = ops.NewRegistry()
	}

	apiSrv, err := api.New(api.Options{Config: apiCfg, Pool: db.Pool, NATS: conn(), Logger: log.Named("api"), Registry: regs["api"], Listener: ln})
	require.NoError(t, err)
	fan, err := fanout.New(fanout.Options{Config: fanCfg, Pool: db.Pool, NATS: conn(), Logger: log.Named("fanout"), Registry: regs["fanout"]})
	require.NoError(t, err)
	del, err := deliverer.New(deliverer.Options{Config: delCfg, NATS: conn(), Logger: log.Named("deliverer"), Registry: regs["deliverer"]})
	require.NoError(t, err)
	rec, err := recorder.New(recorder.Options{Config: recCfg, Pool: db.Pool, NATS: conn(), Logger: log.Named("recorder"), Registry: regs["recorder"]})
	require.NoError(t, err)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- lifecycle.Run(ctx, log, 30*time.Second,
			lifecycle.Component{Name: "api", Run: apiSrv.Run},
			lifecycle.Component{Name: "fanout", Run: fan.Run},
			lifecycle.Component{Name: "deliverer", Run: del.Run},
			lifecycle.Component{Name: "recorder", Run: rec.Run},
		)
	}()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			require.NoError(t, <-done)
		})
	}
	t.Cleanup(stop)
	s := &Stack{
		DB: db, NATS: n, APIURL: "http://" + ln.Addr().String(), stop: stop,
		Ops: map[string]http.Handler{
			"fanout":    ops.Handler(regs["fanout"], fan.Checks(), false),
			"deliverer": ops.Handler(regs["deliverer"], del.Checks(), false),
			"recorder":  ops.Handler(regs["recorder"], rec.Checks(), false),
		},
	}
	testkit.Eventually(t, 10*time.Second, func() bool {
		code, _ := s.Call(t, http.MethodGet, "/readyz", "")
		return code == http.StatusOK
	}, "the API never became ready")
	return s
}

// Stop stops every service and waits for them (a clean shutdown).
func (s *Stack) Stop() { s.stop() }

// Call sends one request to the API and returns the status and body.
func (s *Stack) Call(t *testing.T, method, path, body string, header ...http.Header) (int, []byte) {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = bytes.NewBufferString(body)
	}
	req, err := http.NewRequest(method, s.APIURL+path, r)
	require.NoError(t, err)
	for _, h := range header {
		for k, v := range h {
			req.Header[k] = v
		}
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, b
}

// MustCall is Call that requires the given status and decodes the answer.
func (s *Stack) MustCall(t *testing.T, method, path, body string, want int) map[string]any {
	t.Helper()
	code, b := s.Call(t, method, path, body)
	require.Equal(t, want, code, "%s %s: %s", method, path, b)
	out := map[string]any{}
	if len(b) > 0 {
		require.NoError(t, json.Unmarshal(b, &out), "%s %s: %s", method, path, b)
	}
	return out
}

// Metrics returns what /metrics of service answers.
func (s *Stack) Metrics(t *testing.T, service string) string {
	t.Helper()
	if service == "api" {
		code, b := s.Call(t, http.MethodGet, "/metrics", "")
		require.Equal(t, http.StatusOK, code)
		return string(b)
	}
	rec := httptest.NewRecorder()
	s.Ops[service].ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	require.Equal(t, http.StatusOK, rec.Code)
	return rec.Body.String()
}
