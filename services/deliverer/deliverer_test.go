package deliverer_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hammer-webhooks/hammer/platform/events"
	"github.com/hammer-webhooks/hammer/platform/version"
	"github.com/hammer-webhooks/hammer/services/deliverer/signing"
)

func TestDeliveryReachesReceiverSignedAndIsRecorded(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusAccepted)
		_, _ = w.Write([]byte("thanks"))
	})
	sub := subscription("orders.created+v1", rc.URL+"/hooks/orders?src=hammer")
	b.putSubscription(t, sub)
	b.start(t)

	m := b.publishMessage(t, `{"name": "Allisson"}`)
	id := b.deliver(t, m, sub)
	o, rec := b.waitOutcome(t, id, 10*time.Second)

	// What the receiver got.
	reqs := rc.got()
	require.Len(t, reqs, 1)
	got := reqs[0]
	require.Equal(t, "/hooks/orders", got.path)
	require.Equal(t, "application/json", got.header.Get("Content-Type"))
	require.Equal(t, "hammer/"+version.Version, got.header.Get("User-Agent"))
	require.Equal(t, id, got.header.Get("webhook-id"))
	require.NoError(t, signing.Verify(testSecret, got.header, got.body, time.Now(), signing.DefaultTolerance),
		"a Standard Webhooks receiver must accept the request")
	var env map[string]any
	require.NoError(t, json.Unmarshal(got.body, &env))
	require.Equal(t, map[string]any{
		"topic_id":        "topic",
		"subscription_id": sub.ID,
		"message_id":      m.ID,
		"secret_token":    sub.SecretToken,
		"data":            base64.StdEncoding.EncodeToString([]byte(`{"name": "Allisson"}`)),
		"created_at":      events.Time(m.CreatedAt),
	}, env)

	// What was recorded.
	require.Equal(t, events.StatusCompleted, o.Status)
	require.Equal(t, 1, o.Attempts)
	require.Equal(t, "hammer.events.delivery.completed."+events.EncodeID(sub.ID), rec.subjects[id])
	attempts := rec.attemptsOf(id)
	require.Len(t, attempts, 1)
	a := attempts[0]
	require.Equal(t, 1, a.Attempt)
	require.Equal(t, events.AttemptID(id, 1, a.ScheduledAt), a.AttemptID)
	require.True(t, a.Success)
	require.Empty(t, a.Error)
	require.Equal(t, http.StatusAccepted, a.ResponseStatusCode)
	require.Equal(t, events.StatusCompleted, a.Status)
	require.Nil(t, a.NextAttemptAt)
	require.GreaterOrEqual(t, a.ExecutionDuration, int64(0))
	require.Equal(t, sub.URL, a.URL)
	host := strings.TrimPrefix(rc.URL, "http://")
	require.True(t, strings.HasPrefix(a.Request, "POST /hooks/orders?src=hammer HTTP/1.1\r\nHost: "+host+"\r\n"), a.Request)
	require.Contains(t, a.Request, "\r\nContent-Type: application/json\r\n")
	require.Contains(t, a.Request, "\r\nwebhook-signature: v1,")
	// The recorded body is the one sent, but for its secret_token: events
	// carry no secret.
	recorded := strings.Replace(string(got.body), `"secret_token":"`+sub.SecretToken+`"`, `"secret_token":"[redacted]"`, 1)
	require.NotEqual(t, string(got.body), recorded)
	require.True(t, strings.HasSuffix(a.Request, "\r\n\r\n"+recorded), a.Request)
	require.NotContains(t, a.Request, sub.SecretToken)
	require.Contains(t, a.Request, fmt.Sprintf("\r\nContent-Length: %d\r\n", len(got.body)), "the length of the body sent")
	require.True(t, strings.HasPrefix(a.Response, "HTTP/1.1 202 Accepted\r\n"), a.Response)
	require.Contains(t, a.Response, "\r\nContent-Type: text/plain\r\n")
	require.True(t, strings.HasSuffix(a.Response, "\r\n\r\nthanks"), a.Response)
}

func TestReceiverFailingTwiceGetsExactlyThreeRequests(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rc := newReceiver(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		if n <= 2 {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	sub := subscription("flaky", rc.URL)
	b.putSubscription(t, sub)
	b.start(t)

	id := b.deliver(t, b.publishMessage(t, "hello"), sub)
	o, rec := b.waitOutcome(t, id, 20*time.Second)
	require.Equal(t, events.StatusCompleted, o.Status)
	require.Equal(t, 3, o.Attempts)

	attempts := rec.attemptsOf(id)
	require.Len(t, attempts, 3)
	for i, a := range attempts {
		require.Equal(t, i+1, a.Attempt)
	}
	require.Equal(t, events.StatusPending, attempts[0].Status)
	require.Equal(t, 500, attempts[0].ResponseStatusCode)
	require.Contains(t, attempts[0].Error, "unexpected status 500")
	require.NotNil(t, attempts[0].NextAttemptAt)
	// The next attempt waits the subscription's delay, plus at most 10%.
	// (Measured from the end of the request; the slack is for a loaded machine.)
	wait := attempts[0].NextAttemptAt.Sub(attempts[0].CreatedAt) - time.Duration(attempts[0].ExecutionDuration)*time.Millisecond
	require.GreaterOrEqual(t, wait, time.Second-time.Millisecond)
	require.Less(t, wait, 1100*time.Millisecond+time.Second)
	require.Equal(t, *attempts[0].NextAttemptAt, attempts[1].ScheduledAt)
	require.Equal(t, events.StatusCompleted, attempts[2].Status)
	require.NotEqual(t, attempts[0].AttemptID, attempts[1].AttemptID)

	reqs := rc.got()
	require.Len(t, reqs, 3)
	require.GreaterOrEqual(t, reqs[1].at.Sub(reqs[0].at), time.Second, "the retry came before its delay")
	b.waitIdle(t, 10*time.Second)
	require.Equal(t, 3, rc.count())
}

func TestAlwaysFailingReceiverEndsFailedAfterMaxAttempts(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rc := newReceiver(t, status(http.StatusInternalServerError))
	sub := subscription("dead", rc.URL)
	sub.MaxDeliveryAttempts = 3
	b.putSubscription(t, sub)
	b.start(t)

	id := b.deliver(t, b.publishMessage(t, "hello"), sub)
	o, rec := b.waitOutcome(t, id, 20*time.Second)
	require.Equal(t, events.StatusFailed, o.Status)
	require.Equal(t, events.ReasonMaxAttempts, o.Reason)
	require.Equal(t, 3, o.Attempts)
	require.Equal(t, events.EventSubject(events.KindDeliveryFailed, sub.ID), rec.subjects[id])
	attempts := rec.attemptsOf(id)
	require.Len(t, attempts, 3)
	require.Equal(t, events.StatusFailed, attempts[2].Status)
	require.Nil(t, attempts[2].NextAttemptAt)

	b.waitIdle(t, 10*time.Second)
	require.Equal(t, 3, rc.count(), "no 4th request")
}

func TestReceiverSlowerThanTimeout(t *testing.T) {
	t.Parallel()
	b := setup(t)
	release := make(chan struct{})
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	t.Cleanup(func() { close(release) })
	sub := subscription("slow", rc.URL)
	sub.DeliveryAttemptTimeout = 1
	sub.MaxDeliveryAttempts = 1
	b.putSubscription(t, sub)
	b.start(t)

	id := b.deliver(t, b.publishMessage(t, "hello"), sub)
	o, rec := b.waitOutcome(t, id, 10*time.Second)
	require.Equal(t, events.StatusFailed, o.Status)
	a := rec.attemptsOf(id)
	require.Len(t, a, 1)
	require.False(t, a[0].Success)
	require.Contains(t, a[0].Error, "timeout")
	require.Zero(t, a[0].ResponseStatusCode)
	require.Empty(t, a[0].Response)
	require.GreaterOrEqual(t, a[0].ExecutionDuration, int64(1000))
	require.Less(t, a[0].ExecutionDuration, int64(5000))
}
