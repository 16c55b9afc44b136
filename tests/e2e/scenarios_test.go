package e2e

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/hammer-webhooks/hammer/platform/events"
)

// The scenarios share one stack (starting one takes seconds) and run one
// after another; each uses topics and subscriptions of its own.
func TestScenarios(t *testing.T) {
	s := newStack(t, stackOptions{})
	t.Run("SeedReadme", func(t *testing.T) { seedReadme(t, s.on(t)) })
	t.Run("RetryThenSuccess", func(t *testing.T) { retryThenSuccess(t, s.on(t)) })
	t.Run("MaxAttemptsFailed", func(t *testing.T) { maxAttemptsFailed(t, s.on(t)) })
	t.Run("Timeout", func(t *testing.T) { attemptTimeout(t, s.on(t)) })
	t.Run("SubscriptionUsedAtOnce", func(t *testing.T) { subscriptionUsedAtOnce(t, s.on(t)) })
	t.Run("SubscriptionChangedWithRetriesPending", func(t *testing.T) { subscriptionChanged(t, s.on(t)) })
	s.requireNoCrashes()
}

// on is the stack seen from a subtest, whose failures it reports.
func (s *stack) on(t testing.TB) *stack {
	c := *s
	c.t = t
	return &c
}

// verifySignature checks a Standard Webhooks signature as a receiver's
// library does, independently of hammer's signing code.
func verifySignature(t testing.TB, secret string, r request) {
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

// subscription is the JSON body of a subscription with the limits given.
func subscription(id, topic, url string, attempts, delay, timeout int) map[string]any {
	return map[string]any{"subscription": map[string]any{
		"id": id, "topic_id": topic, "name": id, "url": url,
		"max_delivery_attempts": attempts, "delivery_attempt_delay": delay, "delivery_attempt_timeout": timeout,
	}}
}

// publish posts one message and returns its ID.
func (s *stack) publish(topic, data string) string {
	s.t.Helper()
	msg := s.must(http.MethodPost, "/v1/messages", map[string]any{"message": map[string]any{"topic_id": topic, "data": data}}, http.StatusOK)
	return msg["id"].(string)
}

// delivery waits until the API shows the single delivery of message to
// subscription in status, and returns it.
func (s *stack) delivery(messageID, subscriptionID, status string, timeout time.Duration) map[string]any {
	s.t.Helper()
	var last []map[string]any
	ok := waitFor(timeout, func() bool {
		last = s.list("/v1/deliveries?message_id="+messageID+"&subscription_id="+subscriptionID, "deliveries")
		return len(last) == 1 && last[0]["status"] == status
	})
	require.True(s.t, ok, "delivery of %s to %s not %s after %s: %v", messageID, subscriptionID, status, timeout, last)
	return last[0]
}

// attempts waits until the API lists n attempts of a delivery and returns
// them in attempt order.
func (s *stack) attempts(deliveryID string, n int, timeout time.Duration) []map[string]any {
	s.t.Helper()
	var last []map[string]any
	ok := waitFor(timeout, func() bool {
		last = s.list("/v1/delivery-attempts?order=asc&delivery_id="+deliveryID, "delivery_attempts")
		return len(last) == n
	})
	require.True(s.t, ok, "delivery %s: want %d attempts, have %v", deliveryID, n, last)
	for i, a := range last {
		require.EqualValues(s.t, i+1, a["attempt"], "attempts in order")
	}
	return last
}

// The seed README, request by request, against the separate processes.
func seedReadme(t *testing.T, s *stack) {
	rcv := newReceiver(t)
	topic := s.must(http.MethodPost, "/v1/topics", `{"topic": {"id": "person", "name": "Person"}}`, http.StatusOK)
	require.Equal(t, "person", topic["id"])
	require.Equal(t, "Person", topic["name"])

	sub := s.must(http.MethodPost, "/v1/subscriptions", fmt.Sprintf(`{"subscription": {"id": "httpbin-post", "topic_id": "person", "name": "Httpbin Post", "url": %q, "secret_token": "my-super-secret-token", "max_delivery_attempts": 5, "delivery_attempt_delay": 60, "delivery_attempt_timeout": 5}}`, rcv.url+"/post"), http.StatusOK)
	secret, _ := sub["signing_secret"].(string)
	require.True(t, strings.HasPrefix(secret, "whsec_"), "signing_secret %q", secret)
	require.EqualValues(t, 5, sub["max_delivery_attempts"])

	msg := s.must(http.MethodPost, "/v1/messages", `{"message": {"topic_id": "person", "data": "{\"name\": \"Allisson\"}"}}`, http.StatusOK)
	require.Equal(t, "eyJuYW1lIjogIkFsbGlzc29uIn0=", msg["data"])
	require.Equal(t, "person", msg["topic_id"])
	messageID := msg["id"].(string)

	eventually(t, 20*time.Second, func() bool { return rcv.count() >= 1 }, "the receiver got no request")
	r := rcv.got()[0]
	require.Equal(t, "/post", r.path)
	require.Equal(t, "person", r.env.TopicID)
	require.Equal(t, "httpbin-post", r.env.SubscriptionID)
	require.Equal(t, messageID, r.env.MessageID)
	require.Equal(t, "my-super-secret-token", r.env.SecretToken)
	require.Equal(t, `{"name": "Allisson"}`, string(r.env.Data))
	require.Equal(t, msg["created_at"], r.env.CreatedAt)
	require.Equal(t, "application/json", r.header.Get("Content-Type"))
	require.True(t, strings.HasPrefix(r.header.Get("User-Agent"), "hammer/"), r.header.Get("User-Agent"))
	verifySignature(t, secret, r)

	d := s.delivery(messageID, "httpbin-post", "completed", 15*time.Second)
	deliveryID := d["id"].(string)
	require.Equal(t, r.header.Get("webhook-id"), deliveryID)
	d = s.must(http.MethodGet, "/v1/deliveries/"+deliveryID, nil, http.StatusOK)
	require.EqualValues(t, 1, d["delivery_attempts"])
	require.Equal(t, rcv.url+"/post", d["url"])
	require.Equal(t, "my-super-secret-token", d["secret_token"])
	require.Equal(t, msg["data"], d["data"])
	require.Equal(t, messageID, d["message_id"])
	for _, f := range []string{"created_at", "updated_at", "scheduled_at"} {
		_, err := time.Parse(time.RFC3339Nano, d[f].(string))
		require.NoError(t, err, f)
	}

	a := s.attempts(deliveryID, 1, 15*time.Second)[0]
	require.Equal(t, true, a["success"])
	require.EqualValues(t, 200, a["response_status_code"])
	require.True(t, strings.HasPrefix(a["request"].(string), "POST /post HTTP/1.1\r\n"), "request %q", a["request"])
	// The body sent, its secret_token redacted (attempts travel on EVENTS).
	require.Contains(t, a["request"], strings.Replace(string(r.body), `"my-super-secret-token"`, `"[redacted]"`, 1))
	require.NotContains(t, a["request"], "my-super-secret-token")
	require.True(t, strings.HasPrefix(a["response"].(string), "HTTP/1.1 200 OK\r\n"), "response %q", a["response"])
	got := s.must(http.MethodGet, "/v1/delivery-attempts/"+a["id"].(string), nil, http.StatusOK)
	require.Equal(t, a["id"], got["id"])

	m := s.must(http.MethodGet, "/v1/messages/"+messageID, nil, http.StatusOK)
	require.Equal(t, msg["data"], m["data"])
	require.Equal(t, msg["created_at"], m["created_at"])
	require.Equal(t, 1, rcv.count(), "one request for one delivery")
}

// A receiver that fails twice and then answers 200 gets three requests for
// the same delivery, about a second apart, and the API shows all three.
func retryThenSuccess(t *testing.T, s *stack) {
	rcv := newReceiver(t, behaviour{status: http.StatusInternalServerError}, behaviour{status: http.StatusServiceUnavailable})
	s.must(http.MethodPost, "/v1/topics", `{"topic": {"id": "retry", "name": "Retry"}}`, http.StatusOK)
	s.must(http.MethodPost, "/v1/subscriptions", subscription("retry-sub", "retry", rcv.url, 5, 1, 5), http.StatusOK)
	messageID := s.publish("retry", "try me")

	d := s.delivery(messageID, "retry-sub", "completed", 30*time.Second)
	require.EqualValues(t, 3, d["delivery_attempts"])
	got := rcv.got()
	require.Len(t, got, 3)
	for i, r := range got {
		require.Equal(t, d["id"], r.header.Get("webhook-id"), "request %d is the same delivery", i)
		require.Equal(t, messageID, r.env.MessageID)
	}
	for i := 1; i < len(got); i++ {
		gap := got[i].at.Sub(got[i-1].at)
		require.GreaterOrEqual(t, gap, 900*time.Millisecond, "retry %d came %s after the previous attempt; the delay is 1 s", i, gap)
	}
	as := s.attempts(d["id"].(string), 3, 15*time.Second)
	for i, want := range []struct {
		code    int
		success bool
	}{{500, false}, {503, false}, {200, true}} {
		require.EqualValues(t, want.code, as[i]["response_status_code"], "attempt %d", i+1)
		require.Equal(t, want.success, as[i]["success"], "attempt %d", i+1)
	}
}

// A receiver that always fails gets exactly max_delivery_attempts
// requests, and the delivery ends failed.
func maxAttemptsFailed(t *testing.T, s *stack) {
	rcv := newReceiver(t)
	rcv.set(behaviour{status: http.StatusInternalServerError})
	s.must(http.MethodPost, "/v1/topics", `{"topic": {"id": "doomed", "name": "Doomed"}}`, http.StatusOK)
	s.must(http.MethodPost, "/v1/subscriptions", subscription("doomed-sub", "doomed", rcv.url, 3, 1, 5), http.StatusOK)

	// Watch for the delivery.failed event other services would consume.
	failed := make(chan events.Outcome, 4)
	sub, err := s.nc.Subscribe(events.EventSubject(events.KindDeliveryFailed, "doomed-sub"), func(m *nats.Msg) {
		var o events.Outcome
		if events.Decode(m.Data, &o) == nil {
			failed <- o
		}
	})
	require.NoError(t, err)
	defer sub.Unsubscribe()

	messageID := s.publish("doomed", "never lands")
	d := s.delivery(messageID, "doomed-sub", "failed", 30*time.Second)
	require.EqualValues(t, 3, d["delivery_attempts"])
	require.Equal(t, events.ReasonMaxAttempts, d["failure_reason"])
	as := s.attempts(d["id"].(string), 3, 15*time.Second)
	for _, a := range as {
		require.Equal(t, false, a["success"])
		require.EqualValues(t, 500, a["response_status_code"])
	}
	select {
	case o := <-failed:
		require.Equal(t, events.ReasonMaxAttempts, o.Reason)
		require.Equal(t, d["id"], o.DeliveryID)
		require.Equal(t, 3, o.Attempts)
	case <-time.After(10 * time.Second):
		t.Fatal("no delivery.failed event")
	}
	require.Equal(t, 3, rcv.count(), "no request after the last attempt")
}

// A receiver that holds the first request past delivery_attempt_timeout:
// the attempt is cut at the timeout and recorded as failed, the retry
// succeeds.
func attemptTimeout(t *testing.T, s *stack) {
	rcv := newReceiver(t, behaviour{stall: true})
	s.must(http.MethodPost, "/v1/topics", `{"topic": {"id": "slow", "name": "Slow"}}`, http.StatusOK)
	s.must(http.MethodPost, "/v1/subscriptions", subscription("slow-sub", "slow", rcv.url, 3, 1, 1), http.StatusOK)
	messageID := s.publish("slow", "wait for it")

	d := s.delivery(messageID, "slow-sub", "completed", 30*time.Second)
	require.EqualValues(t, 2, d["delivery_attempts"])
	as := s.attempts(d["id"].(string), 2, 15*time.Second)
	first := as[0]
	require.Equal(t, false, first["success"])
	require.EqualValues(t, 0, first["response_status_code"], "no response was received")
	require.NotEmpty(t, first["error"], "the timeout is explained")
	dur := first["execution_duration"].(float64)
	require.GreaterOrEqual(t, dur, 900.0, "cut at the 1 s timeout, not before")
	require.Less(t, dur, 3000.0, "cut at the 1 s timeout, not long after")
	require.Equal(t, true, as[1]["success"])
	require.Equal(t, 2, rcv.count())
}

// A subscription created and used at once gets the message: fanout reads
// it from Postgres and the deliverers' view of it is not yet a reason to
// drop it. Several rounds, each with a new subscription.
func subscriptionUsedAtOnce(t *testing.T, s *stack) {
	s.must(http.MethodPost, "/v1/topics", `{"topic": {"id": "fresh", "name": "Fresh"}}`, http.StatusOK)
	const rounds = 5
	rcvs := make([]*receiver, rounds)
	ids := make([]string, rounds)
	for i := range rounds {
		rcvs[i] = newReceiver(t)
		subID := fmt.Sprintf("fresh-%d", i)
		s.must(http.MethodPost, "/v1/subscriptions", subscription(subID, "fresh", rcvs[i].url, 5, 1, 5), http.StatusOK)
		ids[i] = s.publish("fresh", fmt.Sprintf("round %d", i))
	}
	for i := range rounds {
		subID := fmt.Sprintf("fresh-%d", i)
		d := s.delivery(ids[i], subID, "completed", 30*time.Second)
		require.EqualValues(t, 1, d["delivery_attempts"], "the first attempt reached %s", subID)
		// Each subscription gets the messages published after it was
		// created, and none from before.
		want := rounds - i
		eventually(t, 15*time.Second, func() bool { return rcvs[i].count() >= want }, "%s: want %d requests, have %d", subID, want, rcvs[i].count())
		for _, r := range rcvs[i].got() {
			require.Equal(t, subID, r.env.SubscriptionID)
			require.Contains(t, ids[i:], r.env.MessageID, "%s got a message from before it existed", subID)
		}
	}
	// Every delivery is in the record, completed.
	for i := range rounds {
		for j := i; j < rounds; j++ {
			s.delivery(ids[j], fmt.Sprintf("fresh-%d", i), "completed", 15*time.Second)
		}
	}
}

// Retries follow the subscription as it is now: with a retry pending, one
// subscription is deleted (its delivery ends without another request) and
// another's URL changes (its next attempt goes to the new URL).
func subscriptionChanged(t *testing.T, s *stack) {
	gone := newReceiver(t)
	gone.set(behaviour{status: http.StatusInternalServerError})
	old := newReceiver(t)
	old.set(behaviour{status: http.StatusInternalServerError})
	moved := newReceiver(t)
	s.must(http.MethodPost, "/v1/topics", `{"topic": {"id": "changing", "name": "Changing"}}`, http.StatusOK)
	s.must(http.MethodPost, "/v1/subscriptions", subscription("changing-deleted", "changing", gone.url, 5, 3, 5), http.StatusOK)
	s.must(http.MethodPost, "/v1/subscriptions", subscription("changing-moved", "changing", old.url+"/old", 5, 3, 5), http.StatusOK)

	failed := make(chan events.Outcome, 4)
	sub, err := s.nc.Subscribe(events.EventSubject(events.KindDeliveryFailed, "changing-deleted"), func(m *nats.Msg) {
		var o events.Outcome
		if events.Decode(m.Data, &o) == nil {
			failed <- o
		}
	})
	require.NoError(t, err)
	defer sub.Unsubscribe()

	messageID := s.publish("changing", "follow me")
	// The first attempts fail; both deliveries wait for their retry.
	pending := s.delivery(messageID, "changing-moved", "pending", 15*time.Second)
	s.delivery(messageID, "changing-deleted", "pending", 15*time.Second)
	require.Equal(t, 1, gone.count())
	require.Equal(t, 1, old.count())

	s.must(http.MethodDelete, "/v1/subscriptions/changing-deleted", nil, http.StatusNoContent)
	patched := s.must(http.MethodPatch, "/v1/subscriptions/changing-moved",
		map[string]any{"subscription": map[string]any{"url": moved.url + "/new"}}, http.StatusOK)
	require.Equal(t, moved.url+"/new", patched["url"])

	d := s.delivery(messageID, "changing-moved", "completed", 30*time.Second)
	require.Equal(t, pending["id"], d["id"])
	require.EqualValues(t, 2, d["delivery_attempts"])
	require.Equal(t, moved.url+"/new", d["url"], "the delivery shows the URL of its latest attempt")
	as := s.attempts(d["id"].(string), 2, 15*time.Second)
	require.True(t, strings.HasPrefix(as[0]["request"].(string), "POST /old "), as[0]["request"])
	require.True(t, strings.HasPrefix(as[1]["request"].(string), "POST /new "), as[1]["request"])
	require.Len(t, moved.got(), 1)
	require.Equal(t, "/new", moved.got()[0].path)
	require.Equal(t, 1, old.count(), "no request to the old URL after the change")

	select {
	case o := <-failed:
		require.Equal(t, events.ReasonSubscriptionDeleted, o.Reason)
		require.Equal(t, messageID, o.MessageID)
	case <-time.After(20 * time.Second):
		t.Fatal("the deleted subscription's delivery did not end with subscription_deleted")
	}
	require.Equal(t, 1, gone.count(), "no request for a deleted subscription")
	s.must(http.MethodGet, "/v1/subscriptions/changing-deleted", nil, http.StatusNotFound)
	require.Empty(t, s.list("/v1/deliveries?subscription_id=changing-deleted", "deliveries"),
		"a deleted subscription's deliveries go with it")
}
