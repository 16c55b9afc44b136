package api

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hammer-webhooks/hammer/platform/events"
	"github.com/hammer-webhooks/hammer/platform/testkit"
)

func TestSubscriptionDefaults(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.createTopic("t")
	sub := b.createSubscription("s", "t")

	require.EqualValues(t, 5, sub["max_delivery_attempts"])
	require.EqualValues(t, 60, sub["delivery_attempt_delay"])
	require.EqualValues(t, 5, sub["delivery_attempt_timeout"])
	require.EqualValues(t, 8, sub["max_concurrent_requests"])
	require.Len(t, sub["secret_token"], 40)
	secret := sub["signing_secret"].(string)
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	require.NoError(t, err)
	require.Len(t, key, 32)

	other := b.createSubscription("s2", "t")
	require.NotEqual(t, sub["secret_token"], other["secret_token"])
	require.NotEqual(t, sub["signing_secret"], other["signing_secret"])

	// Given secrets are kept.
	given := b.ok(http.StatusOK, "POST", "/v1/subscriptions", `{"subscription": {"id": "s3", "topic_id": "t", "name": "n",
		"url": "https://example.com/x?y=1", "secret_token": "tok", "signing_secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
		"max_delivery_attempts": 1, "delivery_attempt_delay": 1, "delivery_attempt_timeout": 1, "max_concurrent_requests": 1}}`)
	require.Equal(t, "tok", given["secret_token"])
	require.Equal(t, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", given["signing_secret"])
	require.EqualValues(t, 1, given["max_concurrent_requests"])
}

func TestSubscriptionValidation(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.createTopic("t")
	base := map[string]any{"id": "s", "topic_id": "t", "name": "n", "url": "https://example.com/hook"}
	body := func(changes map[string]any) string {
		m := map[string]any{}
		for k, v := range base {
			m[k] = v
		}
		for k, v := range changes {
			if v == nil {
				delete(m, k)
			} else {
				m[k] = v
			}
		}
		out, err := json.Marshal(map[string]any{"subscription": m})
		require.NoError(t, err)
		return string(out)
	}
	for _, tc := range []struct {
		changes map[string]any
		code    string
	}{
		{map[string]any{"id": nil}, "invalid_id"},
		{map[string]any{"id": "a b"}, "invalid_id"},
		{map[string]any{"topic_id": nil}, "invalid_topic_id"},
		{map[string]any{"topic_id": "a/b"}, "invalid_topic_id"},
		{map[string]any{"name": nil}, "invalid_name"},
		{map[string]any{"name": ""}, "invalid_name"},
		{map[string]any{"url": nil}, "invalid_url"},
		{map[string]any{"url": ""}, "invalid_url"},
		{map[string]any{"url": "ftp://example.com/"}, "invalid_url"},
		{map[string]any{"url": "/relative"}, "invalid_url"},
		{map[string]any{"url": "example.com/hook"}, "invalid_url"},
		{map[string]any{"url": "http://"}, "invalid_url"},
		{map[string]any{"url": "http://exa mple.com/"}, "invalid_url"},
		{map[string]any{"url": "https://example.com/" + strings.Repeat("a", 2048)}, "invalid_url"},
		{map[string]any{"secret_token": ""}, "invalid_secret_token"},
		{map[string]any{"secret_token": strings.Repeat("a", 201)}, "invalid_secret_token"},
		{map[string]any{"signing_secret": "nope"}, "invalid_signing_secret"},
		{map[string]any{"signing_secret": "whsec_c2hvcnQ="}, "invalid_signing_secret"},
		{map[string]any{"max_delivery_attempts": 0}, "invalid_max_delivery_attempts"},
		{map[string]any{"max_delivery_attempts": -1}, "invalid_max_delivery_attempts"},
		{map[string]any{"max_delivery_attempts": 101}, "invalid_max_delivery_attempts"},
		{map[string]any{"max_delivery_attempts": 1.5}, "invalid_max_delivery_attempts"},
		{map[string]any{"max_delivery_attempts": "5"}, "invalid_max_delivery_attempts"},
		{map[string]any{"max_delivery_attempts": 1e30}, "invalid_max_delivery_attempts"},
		{map[string]any{"delivery_attempt_delay": 0}, "invalid_delivery_attempt_delay"},
		{map[string]any{"delivery_attempt_delay": -60}, "invalid_delivery_attempt_delay"},
		{map[string]any{"delivery_attempt_timeout": 0}, "invalid_delivery_attempt_timeout"},
		{map[string]any{"delivery_attempt_timeout": 301}, "invalid_delivery_attempt_timeout"},
		{map[string]any{"max_concurrent_requests": 0}, "invalid_max_concurrent_requests"},
		{map[string]any{"extra": 1}, "unknown_field"},
	} {
		b.fails(http.StatusBadRequest, tc.code, "POST", "/v1/subscriptions", body(tc.changes))
	}
	b.fails(http.StatusUnprocessableEntity, "topic_does_not_exists", "POST", "/v1/subscriptions", body(map[string]any{"topic_id": "ghost"}))
	b.ok(http.StatusOK, "POST", "/v1/subscriptions", body(nil))
	b.fails(http.StatusConflict, "subscription_already_exists", "POST", "/v1/subscriptions", body(nil))
}

func TestSubscriptionCRUD(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.createTopic("t")
	b.createTopic("t2")
	sub := b.createSubscription("s", "t")

	require.Equal(t, sub, b.ok(http.StatusOK, "GET", "/v1/subscriptions/s", ""))
	b.fails(http.StatusNotFound, "subscription_does_not_exists", "GET", "/v1/subscriptions/nope", "")

	// PATCH changes exactly the fields it names.
	patched := b.ok(http.StatusOK, "PATCH", "/v1/subscriptions/s",
		`{"subscription": {"url": "https://example.com/new", "max_delivery_attempts": 9, "created_at": "bogus", "updated_at": null}}`)
	for k, v := range sub {
		switch k {
		case "url":
			require.Equal(t, "https://example.com/new", patched[k])
		case "max_delivery_attempts":
			require.EqualValues(t, 9, patched[k])
		case "updated_at":
			require.Greater(t, patched[k], v)
		default:
			require.Equal(t, v, patched[k], k)
		}
	}
	require.Equal(t, patched, b.ok(http.StatusOK, "GET", "/v1/subscriptions/s", ""))

	moved := b.ok(http.StatusOK, "PATCH", "/v1/subscriptions/s", `{"subscription": {"id": "s", "topic_id": "t2", "secret_token": "new-token"}}`)
	require.Equal(t, "t2", moved["topic_id"])
	require.Equal(t, "new-token", moved["secret_token"])
	require.Equal(t, patched["signing_secret"], moved["signing_secret"])

	b.fails(http.StatusBadRequest, "invalid_id", "PATCH", "/v1/subscriptions/s", `{"subscription": {"id": "other"}}`)
	b.fails(http.StatusBadRequest, "invalid_delivery_attempt_delay", "PATCH", "/v1/subscriptions/s", `{"subscription": {"delivery_attempt_delay": 0}}`)
	b.fails(http.StatusUnprocessableEntity, "topic_does_not_exists", "PATCH", "/v1/subscriptions/s", `{"subscription": {"topic_id": "ghost"}}`)
	b.fails(http.StatusNotFound, "subscription_does_not_exists", "PATCH", "/v1/subscriptions/nope", `{"subscription": {"name": "x"}}`)
	b.fails(http.StatusBadRequest, "unknown_field", "PATCH", "/v1/subscriptions/s", `{"topic": {"name": "x"}}`)
	b.fails(http.StatusBadRequest, "invalid_subscription", "PATCH", "/v1/subscriptions/s", `{}`)
	require.Equal(t, moved, b.ok(http.StatusOK, "GET", "/v1/subscriptions/s", ""), "failed PATCHes change nothing")
	require.Equal(t, moved, b.ok(http.StatusOK, "PATCH", "/v1/subscriptions/s", `{"subscription": {}}`))

	b.ok(http.StatusNoContent, "DELETE", "/v1/subscriptions/s", "")
	b.fails(http.StatusNotFound, "subscription_does_not_exists", "DELETE", "/v1/subscriptions/s", "")
	b.fails(http.StatusNotFound, "subscription_does_not_exists", "GET", "/v1/subscriptions/s", "")
}

// TestSubscriptionView checks the bucket and the events after every change.
func TestSubscriptionView(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.createTopic("t")
	id := "view.sub+1"

	sub := b.createSubscription(id, "t")
	entry := b.bucketEntry(id)
	require.NotNil(t, entry)
	require.Equal(t, id, entry.ID)
	require.Equal(t, "t", entry.TopicID)
	require.Equal(t, sub["url"], entry.URL)
	require.Equal(t, sub["secret_token"], entry.SecretToken)
	require.Equal(t, sub["signing_secret"], entry.SigningSecret)
	require.Equal(t, 5, entry.MaxDeliveryAttempts)
	require.Equal(t, 60, entry.DeliveryAttemptDelay)
	require.Equal(t, 5, entry.DeliveryAttemptTimeout)
	require.Equal(t, 8, entry.MaxConcurrentRequests)
	require.Equal(t, sub["created_at"], entry.CreatedAt.Format(timestampLayout))

	createdEvent := b.lastEvent(events.EventSubject(events.KindSubscriptionCreated, id))
	require.NotNil(t, createdEvent)
	var changed events.SubscriptionChanged
	require.NoError(t, events.Decode(createdEvent.Data, &changed))
	require.Equal(t, id, changed.Subscription.ID)
	require.Equal(t, sub["url"], changed.Subscription.URL)
	require.NotContains(t, string(createdEvent.Data), sub["secret_token"], "events carry no secrets")
	require.NotContains(t, string(createdEvent.Data), sub["signing_secret"], "events carry no secrets")

	b.ok(http.StatusOK, "PATCH", "/v1/subscriptions/"+id, `{"subscription": {"url": "http://127.0.0.1:1/changed", "delivery_attempt_delay": 7}}`)
	entry = b.bucketEntry(id)
	require.Equal(t, "http://127.0.0.1:1/changed", entry.URL)
	require.Equal(t, 7, entry.DeliveryAttemptDelay)
	updated := b.lastEvent(events.EventSubject(events.KindSubscriptionUpdated, id))
	require.NotNil(t, updated)
	require.NoError(t, events.Decode(updated.Data, &changed))
	require.Equal(t, "http://127.0.0.1:1/changed", changed.Subscription.URL)

	b.ok(http.StatusNoContent, "DELETE", "/v1/subscriptions/"+id, "")
	require.Nil(t, b.bucketEntry(id))
	deleted := b.lastEvent(events.EventSubject(events.KindSubscriptionDeleted, id))
	require.NotNil(t, deleted)
	require.NoError(t, events.Decode(deleted.Data, &changed))
	require.Equal(t, id, changed.Subscription.ID)
	require.WithinDuration(t, time.Now(), changed.At, time.Minute)

	dirty, outbox := b.srv.app.Pending()
	require.Zero(t, dirty)
	require.Zero(t, outbox)
}

// TestSubscriptionViewRetriesAfterNATSOutage checks that a change committed
// while NATS is away reaches the bucket and EVENTS once it is back.
func TestSubscriptionViewRetriesAfterNATSOutage(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.createTopic("t")
	b.createSubscription("s", "t")

	restart := stopNATS(t, b)
	changed := b.ok(http.StatusOK, "PATCH", "/v1/subscriptions/s", `{"subscription": {"name": "during outage"}}`)
	require.Equal(t, "during outage", changed["name"], "the change is committed even with NATS away")
	dirty, outbox := b.srv.app.Pending()
	require.Equal(t, 1, dirty)
	require.Equal(t, 1, outbox)

	restart()
	testkit.Eventually(t, 15*time.Second, func() bool {
		b.srv.app.Retry(b.ctx())
		d, o := b.srv.app.Pending()
		return d == 0 && o == 0
	}, "the view catches up after NATS is back")
	require.Equal(t, "during outage", b.bucketEntry("s").Name)
	require.NotNil(t, b.lastEvent(events.EventSubject(events.KindSubscriptionUpdated, "s")))
}
