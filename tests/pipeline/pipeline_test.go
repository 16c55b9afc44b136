package pipeline_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hammer-webhooks/hammer/platform/events"
	"github.com/hammer-webhooks/hammer/platform/testkit"
	"github.com/hammer-webhooks/hammer/platform/topology"
	"github.com/hammer-webhooks/hammer/tests/inproc"
)

// receiver is a webhook endpoint that records what it gets and answers with
// the statuses it is given, one per request, then 200.
type receiver struct {
	*httptest.Server
	mu       sync.Mutex
	requests []received
	statuses []int
}

type received struct {
	header http.Header
	body   []byte
}

func newReceiver(t *testing.T, statuses ...int) *receiver {
	r := &receiver{statuses: statuses}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.requests = append(r.requests, received{req.Header.Clone(), body})
		status := http.StatusOK
		if len(r.statuses) > 0 {
			status, r.statuses = r.statuses[0], r.statuses[1:]
		}
		r.mu.Unlock()
		w.WriteHeader(status)
		fmt.Fprintf(w, `{"ok": %v}`, status == http.StatusOK)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) got() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.requests...)
}

// verify checks a Standard Webhooks signature the way a receiver's library
// does, independently of hammer's own signing code.
func verify(t *testing.T, secret string, r received) {
	t.Helper()
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	require.NoError(t, err)
	id, ts := r.header.Get("webhook-id"), r.header.Get("webhook-timestamp")
	require.NotEmpty(t, id)
	require.NotEmpty(t, ts)
	mac := hmac.New(sha256.New, key)
	fmt.Fprintf(mac, "%s.%s.%s", id, ts, r.body)
	want := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
	require.Contains(t, strings.Split(r.header.Get("webhook-signature"), " "), want)
}

// The seed README's flow, from the first request to the last.
func TestSeedFlow(t *testing.T) {
	t.Parallel()
	s := setup(t)
	rcv := newReceiver(t)

	topic := s.MustCall(t, http.MethodPost, "/v1/topics", `{"topic": {"id": "person", "name": "Person"}}`, http.StatusOK)
	require.Equal(t, "person", topic["id"])

	sub := s.MustCall(t, http.MethodPost, "/v1/subscriptions", fmt.Sprintf(`{"subscription": {"id": "httpbin-post", "topic_id": "person", "name": "Httpbin Post", "url": %q, "secret_token": "my-super-secret-token", "max_delivery_attempts": 5, "delivery_attempt_delay": 60, "delivery_attempt_timeout": 5}}`, rcv.URL+"/post"), http.StatusOK)
	secret, _ := sub["signing_secret"].(string)
	require.True(t, strings.HasPrefix(secret, "whsec_"), "signing_secret %q", secret)

	msg := s.MustCall(t, http.MethodPost, "/v1/messages", `{"message": {"topic_id": "person", "data": "{\"name\": \"Allisson\"}"}}`, http.StatusOK)
	require.Equal(t, "eyJuYW1lIjogIkFsbGlzc29uIn0=", msg["data"])
	messageID := msg["id"].(string)

	testkit.Eventually(t, 15*time.Second, func() bool { return len(rcv.got()) == 1 }, "the receiver got no request")
	r := rcv.got()[0]
	var envelope map[string]any
	require.NoError(t, json.Unmarshal(r.body, &envelope))
	require.Equal(t, "person", envelope["topic_id"])
	require.Equal(t, "httpbin-post", envelope["subscription_id"])
	require.Equal(t, messageID, envelope["message_id"])
	require.Equal(t, "my-super-secret-token", envelope["secret_token"])
	require.Equal(t, "eyJuYW1lIjogIkFsbGlzc29uIn0=", envelope["data"])
	require.Equal(t, msg["created_at"], envelope["created_at"])
	require.Equal(t, "application/json", r.header.Get("Content-Type"))
	require.True(t, strings.HasPrefix(r.header.Get("User-Agent"), "hammer/"))
	verify(t, secret, r)

	// The delivery and its attempt reach Postgres (eventually consistent).
	var deliveries []any
	testkit.Eventually(t, 10*time.Second, func() bool {
		list := s.MustCall(t, http.MethodGet, "/v1/deliveries?message_id="+messageID, "", http.StatusOK)
		deliveries, _ = list["deliveries"].([]any)
		return len(deliveries) == 1 && deliveries[0].(map[string]any)["status"] == "completed"
	}, "the delivery was not recorded completed")
	deliveryID := deliveries[0].(map[string]any)["id"].(string)
	require.Equal(t, r.header.Get("webhook-id"), deliveryID, "webhook-id is the delivery ID")

	// The delivery's data comes from the message's row, which the recorder
	// may write a moment after the delivery's (they come from different
	// streams).
	var d map[string]any
	testkit.Eventually(t, 10*time.Second, func() bool {
		d = s.MustCall(t, http.MethodGet, "/v1/deliveries/"+deliveryID, "", http.StatusOK)
		return d["data"] != ""
	}, "the delivery never showed its message's data")
	require.Equal(t, "completed", d["status"])
	require.EqualValues(t, 1, d["delivery_attempts"])
	require.Equal(t, rcv.URL+"/post", d["url"])
	require.Equal(t, "my-super-secret-token", d["secret_token"])
	require.Equal(t, "eyJuYW1lIjogIkFsbGlzc29uIn0=", d["data"])
	require.Equal(t, "person", d["topic_id"])
	require.Equal(t, "httpbin-post", d["subscription_id"])
	require.EqualValues(t, 5, d["max_delivery_attempts"])
	require.EqualValues(t, 60, d["delivery_attempt_delay"])
	require.EqualValues(t, 5, d["delivery_attempt_timeout"])
	for _, f := range []string{"created_at", "updated_at", "scheduled_at"} {
		_, err := time.Parse(time.RFC3339Nano, d[f].(string))
		require.NoError(t, err, f)
	}

	var attempts []any
	testkit.Eventually(t, 10*time.Second, func() bool {
		list := s.MustCall(t, http.MethodGet, "/v1/delivery-attempts?delivery_id="+deliveryID, "", http.StatusOK)
		attempts, _ = list["delivery_attempts"].([]any)
		return len(attempts) == 1
	}, "the attempt was not recorded")
	a := attempts[0].(map[string]any)
	require.Equal(t, deliveryID, a["delivery_id"])
	require.Equal(t, true, a["success"])
	require.EqualValues(t, 200, a["response_status_code"])
	require.GreaterOrEqual(t, a["execution_duration"].(float64), 0.0)
	require.True(t, strings.HasPrefix(a["request"].(string), "POST /post HTTP/1.1\r\n"), "request %q", a["request"])
	// The recorded request shows the body sent, its secret_token redacted:
	// the attempt travelled on EVENTS, where no secret may.
	require.Contains(t, a["request"], strings.Replace(string(r.body), `"my-super-secret-token"`, `"[redacted]"`, 1))
	require.NotContains(t, a["request"], "my-super-secret-token")
	require.True(t, strings.HasPrefix(a["response"].(string), "HTTP/1.1 200 OK\r\n"), "response %q", a["response"])
	require.Contains(t, a["response"], `{"ok": true}`)

	got := s.MustCall(t, http.MethodGet, "/v1/messages/"+messageID, "", http.StatusOK)
	require.Equal(t, msg["data"], got["data"])
	require.Equal(t, msg["created_at"], got["created_at"])
}

// Replaying every stream from the start into the recorder changes nothing:
// one row per message, delivery and attempt.
func TestReplayLeavesOneRowEach(t *testing.T) {
	t.Parallel()
	db := testkit.NewDB(t)
	n := testkit.NewNATS(t)
	s := inproc.Start(t, db, n)
	flaky := newReceiver(t, http.StatusInternalServerError) // first attempt fails, the retry succeeds
	steady := newReceiver(t)

	s.MustCall(t, http.MethodPost, "/v1/topics", `{"topic": {"id": "orders", "name": "Orders"}}`, http.StatusOK)
	for id, url := range map[string]string{"flaky": flaky.URL, "steady": steady.URL} {
		s.MustCall(t, http.MethodPost, "/v1/subscriptions", fmt.Sprintf(`{"subscription": {"id": %q, "topic_id": "orders", "name": %q, "url": %q, "delivery_attempt_delay": 1}}`, id, id, url), http.StatusOK)
	}
	const messages = 3
	for i := range messages {
		s.MustCall(t, http.MethodPost, "/v1/messages", fmt.Sprintf(`{"message": {"topic_id": "orders", "data": "order %d"}}`, i), http.StatusOK)
	}

	counts := func() (m, d, a, completed int) {
		ctx := context.Background()
		require.NoError(t, db.Pool.QueryRow(ctx, `SELECT
			(SELECT count(*) FROM messages), (SELECT count(*) FROM deliveries),
			(SELECT count(*) FROM delivery_attempts),
			(SELECT count(*) FROM deliveries WHERE status = 'completed')`).Scan(&m, &d, &a, &completed))
		return
	}
	// 3 messages, 6 deliveries, 3 + 1 + 3 attempts (the flaky receiver
	// fails only its first request).
	testkit.Eventually(t, 20*time.Second, func() bool {
		_, _, a, completed := counts()
		return completed == 2*messages && a == 2*messages+1
	}, "deliveries did not complete")
	m, d, a, _ := counts()
	require.Equal(t, []int{messages, 2 * messages, 2*messages + 1}, []int{m, d, a})

	// Replay: stop, drop the recorder's consumers and start again.
	replayRecorder(t, s, db, n)
	m2, d2, a2, completed2 := counts()
	require.Equal(t, []int{m, d, a, 2 * messages}, []int{m2, d2, a2, completed2}, "replay changed the record")
	require.Len(t, flaky.got(), messages+1, "a replay into the recorder sends nothing")
}

// replayRecorder stops s, drops the recorder's durable consumers and starts
// the services again: the topology recreates the consumers at the start of
// every stream, so the recorder reads everything once more. It returns when
// the recorder has caught up.
func replayRecorder(t *testing.T, s *inproc.Stack, db *testkit.DB, n *testkit.NATS) *inproc.Stack {
	t.Helper()
	s.Stop()
	ctx := context.Background()
	consumers := map[string]string{
		events.StreamMessages:   topology.ConsumerRecorderMessages,
		events.StreamDeliveries: topology.ConsumerRecorderDeliveries,
		events.StreamEvents:     topology.ConsumerRecorderEvents,
	}
	for stream, consumer := range consumers {
		require.NoError(t, n.JS.DeleteConsumer(ctx, stream, consumer))
	}
	again := inproc.Start(t, db, n)
	testkit.Eventually(t, 20*time.Second, func() bool {
		for stream, consumer := range consumers {
			c, err := n.JS.Consumer(ctx, stream, consumer)
			if err != nil {
				return false
			}
			info, err := c.Info(ctx)
			if err != nil || info.NumPending > 0 || info.NumAckPending > 0 {
				return false
			}
		}
		return true
	}, "the recorder did not replay every stream")
	return again
}

// A deleted message stays deleted: neither late events nor a replay of every
// stream bring its row or its deliveries back.
func TestDeletedMessageStaysDeleted(t *testing.T) {
	t.Parallel()
	db := testkit.NewDB(t)
	n := testkit.NewNATS(t)
	s := inproc.Start(t, db, n)
	rcv := newReceiver(t)
	s.MustCall(t, http.MethodPost, "/v1/topics", `{"topic": {"id": "gone", "name": "Gone"}}`, http.StatusOK)
	s.MustCall(t, http.MethodPost, "/v1/subscriptions", fmt.Sprintf(`{"subscription": {"id": "gone-sub", "topic_id": "gone", "name": "g", "url": %q}}`, rcv.URL), http.StatusOK)
	kept := s.MustCall(t, http.MethodPost, "/v1/messages", `{"message": {"topic_id": "gone", "data": "kept"}}`, http.StatusOK)["id"].(string)
	deleted := s.MustCall(t, http.MethodPost, "/v1/messages", `{"message": {"topic_id": "gone", "data": "deleted"}}`, http.StatusOK)["id"].(string)

	completed := func(id string) bool {
		list := s.MustCall(t, http.MethodGet, "/v1/deliveries?status=completed&message_id="+id, "", http.StatusOK)
		return len(list["deliveries"].([]any)) == 1
	}
	recorded := func(id string) bool {
		code, _ := s.Call(t, http.MethodGet, "/v1/messages/"+id, "")
		return code == http.StatusOK
	}
	testkit.Eventually(t, 15*time.Second, func() bool {
		return completed(kept) && completed(deleted) && recorded(kept) && recorded(deleted)
	}, "messages and deliveries not recorded")

	s.MustCall(t, http.MethodDelete, "/v1/messages/"+deleted, "", http.StatusNoContent)
	s.MustCall(t, http.MethodGet, "/v1/messages/"+deleted, "", http.StatusNotFound)

	s = replayRecorder(t, s, db, n)
	s.MustCall(t, http.MethodGet, "/v1/messages/"+deleted, "", http.StatusNotFound)
	list := s.MustCall(t, http.MethodGet, "/v1/deliveries?message_id="+deleted, "", http.StatusOK)
	require.Empty(t, list["deliveries"], "a replay recreated the deleted message's delivery")
	var attempts int
	require.NoError(t, db.Pool.QueryRow(context.Background(),
		"SELECT count(*) FROM delivery_attempts a JOIN deliveries d ON d.id = a.delivery_id WHERE d.message_id = $1", deleted).Scan(&attempts))
	require.Zero(t, attempts)
	// The other message was replayed as before.
	s.MustCall(t, http.MethodGet, "/v1/messages/"+kept, "", http.StatusOK)
	require.True(t, completed(kept))
}
