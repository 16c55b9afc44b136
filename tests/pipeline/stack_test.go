package pipeline_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
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

// stack is every service of hammer running in this process.
type stack struct {
	db     *testkit.DB
	nats   *testkit.NATS
	apiURL string
	stop   func()
}

// setup starts api, fanout, deliverer and recorder on a fresh database and
// JetStream. Deliveries may reach loopback, where the test receivers listen.
func setup(t *testing.T) *stack {
	t.Helper()
	db := testkit.NewDB(t)
	n := testkit.NewNATS(t)
	return start(t, db, n)
}

func start(t *testing.T, db *testkit.DB, n *testkit.NATS) *stack {
	t.Helper()
	env := map[string]string{
		"HAMMER_DATABASE_URL":            db.URL,
		"HAMMER_NATS_URL":                n.URL,
		"HAMMER_HTTP_ADDR":               "127.0.0.1:0",
		"HAMMER_DELIVERY_ALLOWED_CIDRS":  "127.0.0.0/8,::1/128",
		"HAMMER_DELIVERY_CONCURRENCY":    "16",
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

	apiSrv, err := api.New(api.Options{Config: apiCfg, Pool: db.Pool, NATS: conn(), Logger: log.Named("api"), Registry: ops.NewRegistry(), Listener: ln})
	require.NoError(t, err)
	fan, err := fanout.New(fanout.Options{Config: fanCfg, Pool: db.Pool, NATS: conn(), Logger: log.Named("fanout"), Registry: ops.NewRegistry()})
	require.NoError(t, err)
	del, err := deliverer.New(deliverer.Options{Config: delCfg, NATS: conn(), Logger: log.Named("deliverer"), Registry: ops.NewRegistry()})
	require.NoError(t, err)
	rec, err := recorder.New(recorder.Options{Config: recCfg, Pool: db.Pool, NATS: conn(), Logger: log.Named("recorder"), Registry: ops.NewRegistry()})
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
	s := &stack{db: db, nats: n, apiURL: "http://" + ln.Addr().String(), stop: stop}
	testkit.Eventually(t, 10*time.Second, func() bool {
		code, _ := s.call(t, http.MethodGet, "/readyz", "")
		return code == http.StatusOK
	}, "the API never became ready")
	return s
}

// call sends one request to the API and returns the status and body.
func (s *stack) call(t *testing.T, method, path, body string) (int, []byte) {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = bytes.NewBufferString(body)
	}
	req, err := http.NewRequest(method, s.apiURL+path, r)
	require.NoError(t, err)
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

// mustCall is call that requires the given status and decodes the answer.
func (s *stack) mustCall(t *testing.T, method, path, body string, want int) map[string]any {
	t.Helper()
	code, b := s.call(t, method, path, body)
	require.Equal(t, want, code, "%s %s: %s", method, path, b)
	out := map[string]any{}
	if len(b) > 0 {
		require.NoError(t, json.Unmarshal(b, &out), "%s %s: %s", method, path, b)
	}
	return out
}
