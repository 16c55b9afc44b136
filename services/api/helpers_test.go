package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/hammer-webhooks/hammer/platform/config"
	"github.com/hammer-webhooks/hammer/platform/events"
	"github.com/hammer-webhooks/hammer/platform/testkit"
	"github.com/hammer-webhooks/hammer/sql/dbsqlc"
)

// bundle is what a test of the API needs: its own database and JetStream,
// the server built on them, and what the server logged.
type bundle struct {
	t    *testing.T
	db   *testkit.DB
	nats *testkit.NATS
	q    *dbsqlc.Queries
	srv  *Server
	reg  *prometheus.Registry
	logs *observer.ObservedLogs
}

type setupOption func(*Options)

func withTokens(tokens ...string) setupOption {
	return func(o *Options) { o.Config.APITokens = tokens }
}

func withMaxMessageBytes(n int) setupOption {
	return func(o *Options) { o.Config.MaxMessageBytes = n }
}

func testConfig(t *testing.T, dbURL, natsURL string) config.API {
	t.Helper()
	var cfg config.API
	require.NoError(t, config.LoadFrom(&cfg, map[string]string{
		"HAMMER_DATABASE_URL": dbURL,
		"HAMMER_NATS_URL":     natsURL,
		"HAMMER_HTTP_ADDR":    "127.0.0.1:0",
	}))
	return cfg
}

func setup(t *testing.T, opts ...setupOption) *bundle {
	t.Helper()
	db := testkit.NewDB(t)
	n := testkit.NewNATS(t)
	core, logs := observer.New(zapcore.DebugLevel)
	log := zap.New(zapcore.NewTee(core, testkit.Logger(t).Core()))
	reg := prometheus.NewRegistry()
	o := Options{Config: testConfig(t, db.URL, n.URL), Pool: db.Pool, NATS: n.Conn, Logger: log, Registry: reg}
	for _, opt := range opts {
		opt(&o)
	}
	srv, err := New(o)
	require.NoError(t, err)
	return &bundle{t: t, db: db, nats: n, q: dbsqlc.New(db.Pool), srv: srv, reg: reg, logs: logs}
}

// response is an answer, read whole.
type response struct {
	Code   int
	Header http.Header
	Body   []byte
}

func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(r.Body, &m), "body: %s", r.Body)
	return m
}

// errorCode is the code of an error answer, checking its shape.
func (r response) errorCode(t *testing.T) string {
	t.Helper()
	m := r.json(t)
	require.NotEmpty(t, m["message"], "error without message: %s", r.Body)
	code, _ := m["code"].(string)
	return code
}

// do sends a request through the server's handler. Header pairs follow the
// body; a JSON body gets Content-Type application/json unless one is given.
func (b *bundle) do(method, path, body string, header ...string) response {
	b.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, path, rd)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		if header[i+1] == "" {
			req.Header.Del(header[i])
			continue
		}
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	b.srv.Handler().ServeHTTP(rec, req)
	return response{Code: rec.Code, Header: rec.Header(), Body: rec.Body.Bytes()}
}

// doChunked sends a body without announcing its length.
func (b *bundle) doChunked(method, path, body string) response {
	b.t.Helper()
	req := httptest.NewRequest(method, path, io.NopCloser(strings.NewReader(body)))
	req.ContentLength = -1
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	b.srv.Handler().ServeHTTP(rec, req)
	return response{Code: rec.Code, Header: rec.Header(), Body: rec.Body.Bytes()}
}

// ok sends a request that must answer want and returns the decoded body.
func (b *bundle) ok(want int, method, path, body string, header ...string) map[string]any {
	b.t.Helper()
	r := b.do(method, path, body, header...)
	require.Equal(b.t, want, r.Code, "%s %s: %s", method, path, r.Body)
	if len(r.Body) == 0 {
		return nil
	}
	return r.json(b.t)
}

// fails sends a request that must answer status with code.
func (b *bundle) fails(status int, code, method, path, body string, header ...string) response {
	b.t.Helper()
	r := b.do(method, path, body, header...)
	require.Equal(b.t, status, r.Code, "%s %s: %s", method, path, r.Body)
	require.Equal(b.t, code, r.errorCode(b.t), "%s %s: %s", method, path, r.Body)
	return r
}

func (b *bundle) createTopic(id string) {
	b.t.Helper()
	b.ok(http.StatusOK, "POST", "/v1/topics", `{"topic": {"id": "`+id+`", "name": "Topic `+id+`"}}`)
}

func (b *bundle) createSubscription(id, topicID string) map[string]any {
	b.t.Helper()
	return b.ok(http.StatusOK, "POST", "/v1/subscriptions",
		`{"subscription": {"id": "`+id+`", "topic_id": "`+topicID+`", "name": "Sub `+id+`", "url": "http://127.0.0.1:9/hook"}}`)
}

func (b *bundle) ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	b.t.Cleanup(cancel)
	return ctx
}

// streamMsgs is how many messages a stream holds now.
func (b *bundle) streamMsgs(name string) uint64 {
	b.t.Helper()
	s, err := b.nats.JS.Stream(b.ctx(), name)
	require.NoError(b.t, err)
	info, err := s.Info(b.ctx())
	require.NoError(b.t, err)
	return info.State.Msgs
}

// lastEvent is the last event published on subject, or nil.
func (b *bundle) lastEvent(subject string) *jetstream.RawStreamMsg {
	b.t.Helper()
	s, err := b.nats.JS.Stream(b.ctx(), events.StreamEvents)
	require.NoError(b.t, err)
	msg, err := s.GetLastMsgForSubject(b.ctx(), subject)
	if err != nil {
		return nil
	}
	return msg
}

// bucketEntry is the bucket's view of a subscription, or nil when absent.
func (b *bundle) bucketEntry(id string) *events.Subscription {
	b.t.Helper()
	kv, err := b.nats.JS.KeyValue(b.ctx(), events.BucketSubscriptions)
	require.NoError(b.t, err)
	e, err := kv.Get(b.ctx(), events.EncodeID(id))
	if err != nil {
		return nil
	}
	var s events.Subscription
	require.NoError(b.t, json.Unmarshal(e.Value(), &s))
	return &s
}

// compact re-encodes JSON without spaces, to compare bodies.
func compact(t *testing.T, s string) string {
	t.Helper()
	var buf bytes.Buffer
	require.NoError(t, json.Compact(&buf, []byte(s)))
	return buf.String()
}

// stopNATS shuts the bundle's NATS server down and returns a function that
// starts it again on the same port and storage and waits for the client to
// reconnect.
func stopNATS(t *testing.T, b *bundle) (restart func()) {
	t.Helper()
	port := b.nats.Server.Addr().(*net.TCPAddr).Port
	dir := filepath.Dir(b.nats.Server.StoreDir())
	b.nats.Server.Shutdown()
	b.nats.Server.WaitForShutdown()
	testkit.Eventually(t, 5*time.Second, func() bool { return b.nats.Conn.Status() != nats.CONNECTED }, "client notices the outage")
	return func() {
		t.Helper()
		srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: dir, NoLog: true, NoSigs: true})
		require.NoError(t, err)
		go srv.Start()
		require.True(t, srv.ReadyForConnections(10*time.Second))
		t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
		b.nats.Server = srv
		testkit.Eventually(t, 15*time.Second, func() bool { return b.nats.Conn.Status() == nats.CONNECTED }, "client reconnects")
	}
}
