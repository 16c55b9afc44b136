package deliverer

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hammer-webhooks/hammer/platform/events"
)

// The body keeps the secret_token; its recorded form has it redacted and is
// otherwise the same JSON, whatever the token holds.
func TestEnvelopeRecordsTheSecretTokenRedacted(t *testing.T) {
	t.Parallel()
	m := events.Message{ID: "01JP9ZMQCNYQ9WYDYYX2AR61BD", TopicID: "orders.created", CreatedAt: time.Now(), Data: []byte(`{"secret_token":""}`)}
	ref := events.DeliveryRef{DeliveryID: "d", SubscriptionID: "billing+eu"}
	for _, token := range []string{"plain", `q"uo\te` + "\u2028<&>", ""} {
		body, recorded, err := buildEnvelope(events.Subscription{SecretToken: token}, ref, m)
		require.NoError(t, err)
		var sent, kept map[string]any
		require.NoError(t, json.Unmarshal(body, &sent))
		require.NoError(t, json.Unmarshal(recorded, &kept))
		require.Equal(t, token, sent["secret_token"])
		if token == "" {
			require.Equal(t, body, recorded, "nothing to redact")
			continue
		}
		require.Equal(t, redacted, kept["secret_token"])
		kept["secret_token"] = token
		require.Equal(t, sent, kept, "only the token differs")
	}
}
