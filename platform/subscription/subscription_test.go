package subscription_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hammer-webhooks/hammer/platform/subscription"
)

// TestBucketJSON holds the bucket's value to the shape deliverers of every
// version read: the same keys, in the same order.
func TestBucketJSON(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)
	b, err := json.Marshal(subscription.Subscription{
		ID: "s", TopicID: "t", Name: "n", URL: "https://example.com/", SecretToken: "tok", SigningSecret: "whsec_x",
		MaxDeliveryAttempts: 5, DeliveryAttemptDelay: 60, DeliveryAttemptTimeout: 5, MaxConcurrentRequests: 8,
		CreatedAt: at, UpdatedAt: at,
	})
	require.NoError(t, err)
	require.JSONEq(t, `{"id":"s","topic_id":"t","name":"n","url":"https://example.com/","secret_token":"tok",
		"signing_secret":"whsec_x","max_delivery_attempts":5,"delivery_attempt_delay":60,"delivery_attempt_timeout":5,
		"max_concurrent_requests":8,"created_at":"2026-01-02T03:04:05.000006Z","updated_at":"2026-01-02T03:04:05.000006Z"}`, string(b))
	require.Equal(t, `{"id":"s","topic_id":"t","name":"n","url":"https://example.com/","secret_token":"tok",`+
		`"signing_secret":"whsec_x","max_delivery_attempts":5,"delivery_attempt_delay":60,"delivery_attempt_timeout":5,`+
		`"max_concurrent_requests":8,"created_at":"2026-01-02T03:04:05.000006Z","updated_at":"2026-01-02T03:04:05.000006Z"}`, string(b))
}

func TestDefaultsAndLimits(t *testing.T) {
	t.Parallel()
	s := subscription.Subscription{DeliveryAttemptDelay: 7}.WithDefaults()
	require.Equal(t, 5, s.MaxDeliveryAttempts)
	require.Equal(t, 7, s.DeliveryAttemptDelay, "a given setting stays")
	require.Equal(t, 5, s.DeliveryAttemptTimeout)
	require.Equal(t, 8, s.MaxConcurrentRequests)
	for _, l := range []subscription.Limit{subscription.MaxDeliveryAttempts, subscription.DeliveryAttemptDelay,
		subscription.DeliveryAttemptTimeout, subscription.MaxConcurrentRequests} {
		require.False(t, l.Allows(0), l.Field)
		require.False(t, l.Allows(-1), l.Field)
		require.True(t, l.Allows(l.Def), l.Field)
		require.False(t, l.Allows(l.Max+1), l.Field)
	}
}

func TestPatchAppliesOnlyWhatItNames(t *testing.T) {
	t.Parallel()
	url, attempts := "https://example.com/new", 3
	s := subscription.Subscription{ID: "s", URL: "https://example.com/old", Name: "n", MaxDeliveryAttempts: 5}
	p := subscription.Patch{URL: &url, MaxDeliveryAttempts: &attempts}
	require.False(t, p.Empty())
	require.True(t, subscription.Patch{}.Empty())
	p.Apply(&s)
	require.Equal(t, subscription.Subscription{ID: "s", URL: url, Name: "n", MaxDeliveryAttempts: 3}, s)
}
