package api

import (
	"github.com/hammer-webhooks/hammer/services/api/app"

	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zapcore"
)

func TestMediaTypes(t *testing.T) {
	t.Parallel()
	b := setup(t)
	topic := func(id string) string { return `{"topic": {"id": "` + id + `", "name": "n"}}` }
	// Read as JSON: none (curl -d without -H sends form), JSON and its kin.
	for i, ct := range []string{"", "application/x-www-form-urlencoded", "application/json", "application/json; charset=utf-8",
		"Application/JSON", "application/merge-patch+json", "text/plain; charset=utf-8"} {
		h := []string{"Content-Type", ct}
		b.ok(http.StatusOK, "POST", "/v1/topics", topic("t"+string(rune('a'+i))), h...)
	}
	for _, ct := range []string{"application/xml", "multipart/form-data; boundary=x", "text/html", "image/png", "application/octet-stream", "bad/type;;=", "json"} {
		b.fails(http.StatusUnsupportedMediaType, "unsupported_media_type", "POST", "/v1/topics", topic("x"), "Content-Type", ct)
		b.fails(http.StatusUnsupportedMediaType, "unsupported_media_type", "POST", "/v1/messages", `{"message": {"topic_id": "ta", "data": "x"}}`, "Content-Type", ct)
	}
	b.fails(http.StatusNotFound, "topic_does_not_exists", "GET", "/v1/topics/x", "")
}

func TestBodyLimits(t *testing.T) {
	t.Parallel()
	b := setup(t)
	big := `{"topic": {"id": "t", "name": "` + strings.Repeat("n", resourceBodyLimit) + `"}}`
	b.fails(http.StatusRequestEntityTooLarge, "payload_too_large", "POST", "/v1/topics", big)
	b.fails(http.StatusRequestEntityTooLarge, "payload_too_large", "PATCH", "/v1/topics/t", big)
	b.fails(http.StatusRequestEntityTooLarge, "payload_too_large", "POST", "/v1/subscriptions", big)
	// A body that does not announce its length is cut at the limit too.
	r := b.doChunked("POST", "/v1/topics", big)
	require.Equal(t, http.StatusRequestEntityTooLarge, r.Code, "%s", r.Body)
	// Just below the limit is read (and refused for its content).
	b.fails(http.StatusBadRequest, "invalid_name", "POST", "/v1/topics", `{"topic": {"id": "t", "name": "`+strings.Repeat("n", app.MaxNameBytes+1)+`"}}`)
}

func TestNotFoundAndMethods(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.fails(http.StatusNotFound, "not_found", "GET", "/v2/topics", "")
	b.fails(http.StatusNotFound, "not_found", "GET", "/v1/nothing", "")
	b.fails(http.StatusMethodNotAllowed, "method_not_allowed", "PUT", "/v1/topics/x", `{}`)
	b.fails(http.StatusMethodNotAllowed, "method_not_allowed", "DELETE", "/v1/topics", "")
	b.fails(http.StatusMethodNotAllowed, "method_not_allowed", "POST", "/v1/deliveries", `{}`)
}

func TestAuth(t *testing.T) {
	t.Parallel()
	t.Run("tokens set", func(t *testing.T) {
		t.Parallel()
		b := setup(t, withTokens("first-token", "second-token"))
		b.run(nil)
		for _, h := range []string{"", "Bearer", "Bearer ", "Bearer wrong", "Basic Zmlyc3QtdG9rZW4=", "first-token", "Bearer first-token-and-more", "Bearer first"} {
			r := b.fails(http.StatusUnauthorized, "unauthorized", "GET", "/v1/topics", "", "Authorization", h)
			require.Equal(t, `Bearer realm="hammer"`, r.Header.Get("WWW-Authenticate"))
		}
		b.fails(http.StatusUnauthorized, "unauthorized", "POST", "/v1/topics", `{"topic": {"id": "t", "name": "n"}}`)
		b.fails(http.StatusUnauthorized, "unauthorized", "POST", "/v1/messages:batch", `{}`)
		b.fails(http.StatusUnauthorized, "unauthorized", "DELETE", "/v1/messages/x", "")
		b.ok(http.StatusOK, "POST", "/v1/topics", `{"topic": {"id": "t", "name": "n"}}`, "Authorization", "Bearer first-token")
		b.ok(http.StatusOK, "GET", "/v1/topics/t", "", "Authorization", "Bearer second-token")
		b.ok(http.StatusOK, "GET", "/v1/topics/t", "", "Authorization", "bearer second-token")
		for _, open := range []string{"/healthz", "/readyz", "/metrics", "/openapi.json"} {
			require.Equal(t, http.StatusOK, b.do("GET", open, "").Code, open)
		}
		for _, e := range b.logs.All() {
			for k, v := range e.ContextMap() {
				s, _ := v.(string)
				require.NotContains(t, s, "first-token", "log field %s", k)
				require.NotContains(t, s, "second-token", "log field %s", k)
			}
		}
	})
	t.Run("no tokens", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.ok(http.StatusOK, "GET", "/v1/topics", "")
		b.ok(http.StatusOK, "GET", "/v1/topics", "", "Authorization", "Bearer anything")
	})
}

// TestRequestLogAndMetrics checks the X-Request-Id, the one log line per
// request and the hammer_http_* metrics.
func TestRequestLogAndMetrics(t *testing.T) {
	t.Parallel()
	b := setup(t, withTokens("s3cr3t"))
	r := b.do("GET", "/v1/topics/nope", "", "Authorization", "Bearer s3cr3t", "X-Request-Id", "caller-id-1")
	require.Equal(t, http.StatusNotFound, r.Code)
	require.Equal(t, "caller-id-1", r.Header.Get("X-Request-Id"))

	r = b.do("GET", "/v1/topics", "", "Authorization", "Bearer s3cr3t")
	generated := r.Header.Get("X-Request-Id")
	require.Regexp(t, `^[0-9A-Z]{26}$`, generated)
	r = b.do("GET", "/v1/topics", "", "Authorization", "Bearer s3cr3t", "X-Request-Id", "bad id\twith spaces")
	require.NotEqual(t, "bad id\twith spaces", r.Header.Get("X-Request-Id"))
	b.do("GET", "/no/such/path", "")

	lines := b.logs.FilterMessage("request").All()
	require.Len(t, lines, 4, "one line per request")
	first := lines[0].ContextMap()
	require.Equal(t, "GET", first["method"])
	require.Equal(t, "/v1/topics/nope", first["path"])
	require.Equal(t, "/v1/topics/{id}", first["route"])
	require.EqualValues(t, 404, first["status"])
	require.Equal(t, "caller-id-1", first["request_id"])
	require.Contains(t, first, "duration")
	require.Equal(t, zapcore.InfoLevel, lines[0].Level)
	require.Equal(t, generated, lines[1].ContextMap()["request_id"])
	for _, l := range lines {
		for k, v := range l.ContextMap() {
			s, _ := v.(string)
			require.NotContains(t, s, "s3cr3t", "log field %s", k)
		}
	}

	require.Equal(t, 1.0, testutil.ToFloat64(b.srv.metrics.requests.WithLabelValues("GET", "/v1/topics/{id}", "404")))
	require.Equal(t, 2.0, testutil.ToFloat64(b.srv.metrics.requests.WithLabelValues("GET", "/v1/topics", "200")))
	require.Equal(t, 1.0, testutil.ToFloat64(b.srv.metrics.requests.WithLabelValues("GET", "unmatched", "404")))
	require.Equal(t, 3, testutil.CollectAndCount(b.srv.metrics.duration))

	metrics := string(b.do("GET", "/metrics", "").Body)
	require.Contains(t, metrics, `hammer_http_requests_total{method="GET",route="/v1/topics",status="200"} 2`)
	require.Contains(t, metrics, `hammer_http_request_duration_seconds_bucket{method="GET",route="/v1/topics",le="+Inf"} 2`)

	b.do("POST", "/v1/messages:batch", `{}`, "Authorization", "Bearer s3cr3t")
	require.Equal(t, 1.0, testutil.ToFloat64(b.srv.metrics.requests.WithLabelValues("POST", "/v1/messages:batch", "400")))
}

func TestHealth(t *testing.T) {
	t.Parallel()
	b := setup(t)
	require.Equal(t, map[string]any{"status": "ok"}, b.ok(http.StatusOK, "GET", "/healthz", ""))
	r := b.do("GET", "/readyz", "")
	require.Equal(t, http.StatusServiceUnavailable, r.Code, "not ready before the streams and the bucket are")
	require.Equal(t, "unavailable", r.json(t)["checks"].(map[string]any)["jetstream"], "the public port says which check fails, not why")
	b.run(nil)
	ready := b.ok(http.StatusOK, "GET", "/readyz", "")
	require.Equal(t, map[string]any{"jetstream": "ok", "nats": "ok", "postgres": "ok"}, ready["checks"])

	// A Postgres that cannot be reached (nothing listens on port 1).
	pool, err := pgxpool.New(context.Background(), "postgres://hammer:x@127.0.0.1:1/hammer?connect_timeout=1")
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	down, err := New(Options{Config: b.srv.cfg, Pool: pool, NATS: b.nats.Conn, Logger: b.srv.log})
	require.NoError(t, err)
	b.srv = down
	r = b.do("GET", "/readyz", "")
	require.Equal(t, http.StatusServiceUnavailable, r.Code)
	checks := r.json(t)["checks"].(map[string]any)
	require.NotEqual(t, "ok", checks["postgres"])
	require.Equal(t, "ok", checks["nats"])
	b.fails(http.StatusServiceUnavailable, "unavailable", "GET", "/v1/topics", "")
	b.fails(http.StatusServiceUnavailable, "unavailable", "POST", "/v1/topics", `{"topic": {"id": "t", "name": "n"}}`)
	b.fails(http.StatusServiceUnavailable, "unavailable", "POST", "/v1/messages", `{"message": {"topic_id": "t", "data": "x"}}`)
}
