package observability_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
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

// stack is hammer's four services running in this process, each with its
// own registry and ops handler, as separate processes would have.
type stack struct {
	apiURL string
	// ops serves /metrics of the services other than the API, by name.
	ops map[string]http.Handler
}

func start(t *testing.T) *stack {
	t.Helper()
	db := testkit.NewDB(t)
	n := testkit.NewNATS(t)
	env := map[string]string{
		"HAMMER_DATABASE_URL":            db.URL,
		"HAMMER_NATS_URL":                n.URL,
		"HAMMER_HTTP_ADDR":               "127.0.0.1:0",
		"HAMMER_DELIVERY_ALLOWED_CIDRS":  "127.0.0.0/8,::1/128",
		"HAMMER_DELIVERY_CONCURRENCY":    "4",
		"HAMMER_RECORDER_FLUSH_INTERVAL": "10ms",
	}
	var apiCfg config.API
	var fanCfg config.Fanout
	var delCfg config.Deliverer
	var recCfg config.Recorder
	require.NoError(t, config.LoadFrom(&apiCfg, env))
	require.NoError(t, config.LoadFrom(&fanCfg, env))
	require.NoError(t, config.LoadFrom(&delCfg, env))
	require.NoError(t, config.LoadFrom(&recCfg, env))
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
		done <- lifecycle.Run(ctx, log, 10*time.Second,
			lifecycle.Component{Name: "api", Run: apiSrv.Run},
			lifecycle.Component{Name: "fanout", Run: fan.Run},
			lifecycle.Component{Name: "deliverer", Run: del.Run},
			lifecycle.Component{Name: "recorder", Run: rec.Run},
		)
	}()
	var once sync.Once
	t.Cleanup(func() {
		once.Do(func() {
			cancel()
			require.NoError(t, <-done)
		})
	})
	s := &stack{
		apiURL: "http://" + ln.Addr().String(),
		ops: map[string]http.Handler{
			"fanout":    ops.Handler(regs["fanout"], fan.Checks(), false),
			"deliverer": ops.Handler(regs["deliverer"], del.Checks(), false),
			"recorder":  ops.Handler(regs["recorder"], rec.Checks(), false),
		},
	}
	testkit.Eventually(t, 10*time.Second, func() bool {
		code, _ := s.call(t, http.MethodGet, "/readyz", "", nil)
		return code == http.StatusOK
	}, "the API never became ready")
	return s
}

// call sends one request to the API and returns the status and body.
func (s *stack) call(t *testing.T, method, path, body string, header http.Header) (int, []byte) {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = bytes.NewBufferString(body)
	}
	req, err := http.NewRequest(method, s.apiURL+path, r)
	require.NoError(t, err)
	for k, v := range header {
		req.Header[k] = v
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

func (s *stack) mustCall(t *testing.T, method, path, body string, want int) map[string]any {
	t.Helper()
	code, b := s.call(t, method, path, body, nil)
	require.Equal(t, want, code, "%s %s: %s", method, path, b)
	out := map[string]any{}
	if len(b) > 0 {
		require.NoError(t, json.Unmarshal(b, &out))
	}
	return out
}

// metrics returns what /metrics of service answers.
func (s *stack) metrics(t *testing.T, service string) string {
	t.Helper()
	if service == "api" {
		code, b := s.call(t, http.MethodGet, "/metrics", "", nil)
		require.Equal(t, http.StatusOK, code)
		return string(b)
	}
	rec := httptest.NewRecorder()
	s.ops[service].ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	require.Equal(t, http.StatusOK, rec.Code)
	return rec.Body.String()
}

// receiver is a webhook endpoint that keeps the headers of what it gets.
type receiver struct {
	*httptest.Server
	mu      sync.Mutex
	headers []http.Header
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		_, _ = io.Copy(io.Discard, req.Body)
		r.mu.Lock()
		r.headers = append(r.headers, req.Header.Clone())
		r.mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) got() []http.Header {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]http.Header(nil), r.headers...)
}

// subscribe creates topic and a subscription of it to url.
func (s *stack) subscribe(t *testing.T, topic, url string) {
	t.Helper()
	s.mustCall(t, http.MethodPost, "/v1/topics", fmt.Sprintf(`{"topic": {"id": %q, "name": %q}}`, topic, topic), http.StatusOK)
	s.mustCall(t, http.MethodPost, "/v1/subscriptions", fmt.Sprintf(`{"subscription": {"id": %q, "topic_id": %q, "name": "s", "url": %q}}`, topic+"-sub", topic, url), http.StatusOK)
}
