package api

import (
	"encoding/base64"
	"net/http"
	"regexp"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hammer-webhooks/hammer/platform/events"
	"github.com/hammer-webhooks/hammer/sql/dbsqlc"
)

// timePattern is how the seed writes times: UTC with six fractional digits.
var timePattern = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$`)

func keys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// httpie is what the seed README's httpie commands send besides the body.
var httpie = []string{"Content-Type", "application/json", "Accept", "application/json, */*;q=0.5", "User-Agent", "HTTPie/3.2.2"}

// TestSeedReadme sends the seed README's requests byte for byte, as httpie
// serialises them, and checks every field of every answer, down to the
// base64 of the message's data.
func TestSeedReadme(t *testing.T) {
	t.Parallel()
	b := setup(t)

	topic := b.ok(http.StatusOK, "POST", "/v1/topics", `{"topic": {"id": "person", "name": "Person"}}`, httpie...)
	require.Equal(t, []string{"created_at", "id", "name", "updated_at"}, keys(topic))
	require.Equal(t, "person", topic["id"])
	require.Equal(t, "Person", topic["name"])
	require.Regexp(t, timePattern, topic["created_at"])
	require.Equal(t, topic["created_at"], topic["updated_at"])

	sub := b.ok(http.StatusOK, "POST", "/v1/subscriptions",
		`{"subscription": {"id": "httpbin-post", "topic_id": "person", "name": "Httpbin Post", "url": "https://httpbin.org/post", "secret_token": "my-super-secret-token", "max_delivery_attempts": 5, "delivery_attempt_delay": 60, "delivery_attempt_timeout": 5}}`,
		httpie...)
	require.Equal(t, []string{"created_at", "delivery_attempt_delay", "delivery_attempt_timeout", "id",
		"max_concurrent_requests", "max_delivery_attempts", "name", "secret_token", "signing_secret",
		"topic_id", "updated_at", "url"}, keys(sub))
	require.Regexp(t, timePattern, sub["created_at"])
	require.Equal(t, sub["created_at"], sub["updated_at"])
	require.EqualValues(t, 60, sub["delivery_attempt_delay"])
	require.EqualValues(t, 5, sub["delivery_attempt_timeout"])
	require.Equal(t, "httpbin-post", sub["id"])
	require.EqualValues(t, 5, sub["max_delivery_attempts"])
	require.EqualValues(t, 8, sub["max_concurrent_requests"])
	require.Equal(t, "Httpbin Post", sub["name"])
	require.Equal(t, "my-super-secret-token", sub["secret_token"])
	require.Regexp(t, `^whsec_[A-Za-z0-9+/]{43}=$`, sub["signing_secret"])
	require.Equal(t, "person", sub["topic_id"])
	require.Equal(t, "https://httpbin.org/post", sub["url"])

	msg := b.ok(http.StatusOK, "POST", "/v1/messages", `{"message": {"topic_id": "person", "data": "{\"name\": \"Allisson\"}"}}`, httpie...)
	require.Equal(t, []string{"content_type", "created_at", "data", "id", "topic_id"}, keys(msg))
	require.Equal(t, "eyJuYW1lIjogIkFsbGlzc29uIn0=", msg["data"], "the seed's base64 of the data")
	require.Regexp(t, `^[0-9A-HJKMNP-TV-Z]{26}$`, msg["id"])
	require.Equal(t, "person", msg["topic_id"])
	require.Equal(t, "application/json", msg["content_type"])
	require.Regexp(t, timePattern, msg["created_at"])
	require.EqualValues(t, 1, b.streamMsgs(events.StreamMessages))

	// What the recorder would write for that message, its delivery and one
	// successful attempt, with the recorder's own queries.
	messageID := msg["id"].(string)
	created, err := time.Parse(time.RFC3339Nano, msg["created_at"].(string))
	require.NoError(t, err)
	deliveryID := events.DeliveryID(messageID, created, "httpbin-post")
	attemptAt := created.Add(44 * time.Second)
	attemptID := events.AttemptID(deliveryID, 1, created)
	ctx := b.ctx()
	_, err = b.q.MessageInsertBatch(ctx, dbsqlc.MessageInsertBatchParams{
		Ids: []string{messageID}, TopicIds: []string{"person"}, Datas: [][]byte{[]byte(`{"name": "Allisson"}`)},
		ContentTypes: []string{"application/json"}, IdempotencyKeys: []string{""}, StreamSequences: []int64{1},
		CreatedAts: []time.Time{created}})
	require.NoError(t, err)
	_, err = b.q.DeliveryUpsertBatch(ctx, dbsqlc.DeliveryUpsertBatchParams{
		Ids: []string{deliveryID}, TopicIds: []string{"person"}, SubscriptionIds: []string{"httpbin-post"},
		MessageIds: []string{messageID}, Urls: []string{"https://httpbin.org/post"},
		MaxDeliveryAttempts: []int32{5}, DeliveryAttemptDelays: []int32{60}, DeliveryAttemptTimeouts: []int32{5},
		DeliveryAttempts: []int32{1}, Statuses: []string{"completed"}, FailureReasons: []string{""},
		ScheduledAts: []time.Time{created}, CreatedAts: []time.Time{created}, UpdatedAts: []time.Time{attemptAt}})
	require.NoError(t, err)
	request := "POST /post HTTP/1.1\r\nHost: httpbin.org\r\nContent-Type: application/json\r\n\r\n{}"
	answer := "HTTP/2.0 200 OK\r\nContent-Type: application/json\r\n\r\n{}"
	_, err = b.q.AttemptInsertBatch(ctx, dbsqlc.AttemptInsertBatchParams{
		Ids: []string{attemptID}, DeliveryIds: []string{deliveryID}, Attempts: []int32{1},
		Requests: []string{request}, Responses: []string{answer}, ResponseStatusCodes: []int32{200},
		ExecutionDurations: []int32{566}, Successes: []bool{true}, Errors: []string{""}, CreatedAts: []time.Time{attemptAt}})
	require.NoError(t, err)

	d := b.ok(http.StatusOK, "GET", "/v1/deliveries/"+deliveryID, "", httpie[2:]...)
	require.Equal(t, []string{"created_at", "data", "delivery_attempt_delay", "delivery_attempt_timeout",
		"delivery_attempts", "id", "max_delivery_attempts", "message_id", "scheduled_at", "secret_token",
		"status", "subscription_id", "topic_id", "updated_at", "url"}, keys(d))
	require.Equal(t, msg["created_at"], d["created_at"])
	require.Equal(t, "eyJuYW1lIjogIkFsbGlzc29uIn0=", d["data"])
	require.EqualValues(t, 60, d["delivery_attempt_delay"])
	require.EqualValues(t, 5, d["delivery_attempt_timeout"])
	require.EqualValues(t, 1, d["delivery_attempts"])
	require.Equal(t, deliveryID, d["id"])
	require.EqualValues(t, 5, d["max_delivery_attempts"])
	require.Equal(t, messageID, d["message_id"])
	require.Equal(t, msg["created_at"], d["scheduled_at"])
	require.Equal(t, "my-super-secret-token", d["secret_token"])
	require.Equal(t, "completed", d["status"])
	require.Equal(t, "httpbin-post", d["subscription_id"])
	require.Equal(t, "person", d["topic_id"])
	require.Equal(t, attemptAt.Format(timestampLayout), d["updated_at"])
	require.Equal(t, "https://httpbin.org/post", d["url"])

	list := b.ok(http.StatusOK, "GET", "/v1/delivery-attempts?delivery_id="+deliveryID, "", httpie[2:]...)
	attempts := list["delivery_attempts"].([]any)
	require.Len(t, attempts, 1)
	a := attempts[0].(map[string]any)
	require.Equal(t, []string{"attempt", "created_at", "delivery_id", "error", "execution_duration", "id",
		"request", "response", "response_status_code", "success"}, keys(a))
	require.EqualValues(t, 1, a["attempt"])
	require.Equal(t, attemptAt.Format(timestampLayout), a["created_at"])
	require.Equal(t, deliveryID, a["delivery_id"])
	require.Equal(t, "", a["error"])
	require.EqualValues(t, 566, a["execution_duration"])
	require.Equal(t, attemptID, a["id"])
	require.Equal(t, request, a["request"])
	require.Equal(t, answer, a["response"])
	require.EqualValues(t, 200, a["response_status_code"])
	require.Equal(t, true, a["success"])

	data, err := base64.StdEncoding.DecodeString(d["data"].(string))
	require.NoError(t, err)
	require.Equal(t, `{"name": "Allisson"}`, string(data))
}
