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
	require.ErrorContains(t, events.Decode([]byte(`{"v":2,"attempt":"second"}`), &d), "version 2")
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
