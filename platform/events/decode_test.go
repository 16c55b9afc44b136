package events_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hammer-webhooks/hammer/platform/events"
)

func TestDecodeReadsTheVersionOfEachEvent(t *testing.T) {
	t.Parallel()
	var d events.Delivery
	require.NoError(t, events.Decode([]byte(`{"v":1,"delivery_id":"d1","attempt":2}`), &d))
	require.Equal(t, "d1", d.DeliveryID)
	require.Equal(t, 2, d.Attempt)

	// A reused payload keeps its old "v": an event without one is refused all the same.
	require.ErrorContains(t, events.Decode([]byte(`{"delivery_id":"d2"}`), &d), "version 0")
	// A newer event whose fields do not fit is refused for its version, not its shape.
	require.ErrorContains(t, events.Decode([]byte(`{"v":3,"attempt":"second"}`), &d), "version 3")
	// A payload of this version that does not fit is refused for its shape.
	err := events.Decode([]byte(`{"v":1,"attempt":"second"}`), &d)
	require.Error(t, err)
	require.NotContains(t, err.Error(), "version")
	require.ErrorContains(t, events.Decode([]byte(`not json`), &d), "decoding event")

	// Other types are decoded too, their version checked first.
	var m map[string]any
	require.NoError(t, events.Decode([]byte(`{"v":1,"x":"y"}`), &m))
	require.Equal(t, "y", m["x"])
	require.ErrorContains(t, events.Decode([]byte(`{"v":3}`), &m), "version 3")
}

// A version 1 event, as the streams hold it from before an upgrade, is read
// as version 2 without its secret_token; version 2 is what Encode writes.
func TestDecodeReadsVersionOneEvents(t *testing.T) {
	t.Parallel()
	v1 := `{"v":1,"delivery_id":"d1","subscription_id":"s","url":"https://example.com/hook","secret_token":"tok",` +
		`"max_delivery_attempts":5,"delivery_attempt_delay":60,"delivery_attempt_timeout":5,"attempt":1,"not_before":"2026-12-01T10:00:00Z"}`
	var d events.Delivery
	require.NoError(t, events.Decode([]byte(v1), &d))
	require.Equal(t, 1, d.V)
	require.Equal(t, events.Target{URL: "https://example.com/hook", MaxDeliveryAttempts: 5, DeliveryAttemptDelay: 60, DeliveryAttemptTimeout: 5}, d.Target)

	b, err := events.Encode(&d)
	require.NoError(t, err)
	require.Contains(t, string(b), `"v":2`)
	require.NotContains(t, string(b), "secret_token")
	require.NotContains(t, string(b), "tok")
}

func TestPublicURLDropsUserinfo(t *testing.T) {
	t.Parallel()
	for raw, want := range map[string]string{
		"https://example.com/hook?x=1":            "https://example.com/hook?x=1",
		"https://user:pa55@example.com:8443/hook": "https://example.com:8443/hook",
		"http://only-user@example.com/":           "http://example.com/",
		"http://bad host@x/%zz":                   "",
		"not a url":                               "not a url",
	} {
		require.Equal(t, want, events.PublicURL(raw), raw)
	}
}
