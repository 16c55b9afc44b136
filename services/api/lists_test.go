package api

import (
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hammer-webhooks/hammer/sql/dbsqlc"
)

var listBase = time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)

// at is the i-th second after listBase: every row of these tests gets its
// own creation time, so orders are exact.
func at(i int) time.Time { return listBase.Add(time.Duration(i) * time.Second) }

func (b *bundle) recordMessage(id, topic string, data string, created time.Time) {
	b.t.Helper()
	n, err := b.q.MessageInsertBatch(b.ctx(), dbsqlc.MessageInsertBatchParams{
		Ids: []string{id}, TopicIds: []string{topic}, Datas: [][]byte{[]byte(data)}, ContentTypes: []string{"text/plain"},
		IdempotencyKeys: []string{""}, StreamSequences: []int64{1}, CreatedAts: []time.Time{created}})
	require.NoError(b.t, err)
	require.EqualValues(b.t, 1, n)
}

func (b *bundle) recordDelivery(id, topic, sub, msg, status, reason string, attempts int, created time.Time) {
	b.t.Helper()
	n, err := b.q.DeliveryUpsertBatch(b.ctx(), dbsqlc.DeliveryUpsertBatchParams{
		Ids: []string{id}, TopicIds: []string{topic}, SubscriptionIds: []string{sub}, MessageIds: []string{msg},
		Urls: []string{"http://127.0.0.1:9/hook"}, MaxDeliveryAttempts: []int32{3},
		DeliveryAttemptDelays: []int32{1}, DeliveryAttemptTimeouts: []int32{1}, DeliveryAttempts: []int32{int32(attempts)},
		Statuses: []string{status}, FailureReasons: []string{reason}, ScheduledAts: []time.Time{created},
		CreatedAts: []time.Time{created}, UpdatedAts: []time.Time{created}})
	require.NoError(b.t, err)
	require.EqualValues(b.t, 1, n)
}

func (b *bundle) recordAttempt(id, delivery string, attempt int, success bool, errText string, created time.Time) {
	b.t.Helper()
	status := int32(500)
	if success {
		status = 200
	}
	n, err := b.q.AttemptInsertBatch(b.ctx(), dbsqlc.AttemptInsertBatchParams{
		Ids: []string{id}, DeliveryIds: []string{delivery}, Attempts: []int32{int32(attempt)},
		Requests: []string{"POST / HTTP/1.1\r\n\r\n"}, Responses: []string{"HTTP/1.1 200 OK\r\n\r\n"},
		ResponseStatusCodes: []int32{status}, ExecutionDurations: []int32{12}, Successes: []bool{success},
		Errors: []string{errText}, CreatedAts: []time.Time{created}})
	require.NoError(b.t, err)
	require.EqualValues(b.t, 1, n)
}

// ids lists the "id" of every item of a list answer.
func ids(t *testing.T, m map[string]any, key string) []string {
	t.Helper()
	items, ok := m[key].([]any)
	require.True(t, ok, "%q is not a list in %v", key, m)
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = it.(map[string]any)["id"].(string)
	}
	return out
}

func topicID(i int) string { return fmt.Sprintf("topic-%02d", i) }

func TestListPaging(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for i := range 60 {
		_, err := b.q.TopicInsert(b.ctx(), dbsqlc.TopicInsertParams{ID: topicID(i), Name: "n", CreatedAt: at(i)})
		require.NoError(t, err)
	}
	list := func(query string) []string {
		t.Helper()
		return ids(t, b.ok(http.StatusOK, "GET", "/v1/topics?"+query, ""), "topics")
	}
	span := func(from, to int) []string { // inclusive, either direction
		var out []string
		for i := from; ; {
			out = append(out, topicID(i))
			if i == to {
				return out
			}
			if from < to {
				i++
			} else {
				i--
			}
		}
	}

	require.Equal(t, span(59, 35), list(""), "default: 25, newest first")
	require.Equal(t, span(59, 10), list("limit=50"))
	require.Equal(t, span(59, 10), list("limit=51"), "capped at 50")
	require.Equal(t, span(59, 10), list("limit=1000000"))
	require.Equal(t, span(59, 59), list("limit=1"))
	require.Equal(t, span(4, 0), list("offset=55"))
	require.Equal(t, []string{}, list("offset=60"))
	require.Equal(t, []string{}, list("offset=2147483647"))
	require.Equal(t, span(0, 24), list("order=asc"))
	require.Equal(t, span(59, 35), list("order=desc"))
	require.Equal(t, span(3, 5), list("order=asc&offset=3&limit=3"))

	ts := func(i int) string { return url.QueryEscape(at(i).Format(time.RFC3339)) }
	require.Equal(t, span(11, 13), list("order=asc&limit=3&created_at_gt="+ts(10)))
	require.Equal(t, span(10, 12), list("order=asc&limit=3&created_at_gte="+ts(10)))
	require.Equal(t, span(4, 0), list("created_at_lt="+ts(5)))
	require.Equal(t, span(5, 0), list("created_at_lte="+ts(5)))
	require.Equal(t, span(20, 11), list("created_at_gt="+ts(10)+"&created_at_lte="+ts(20)))
	require.Equal(t, []string{}, list("created_at_gt="+ts(20)+"&created_at_lt="+ts(10)))
	// Another zone, encoded or with its '+' left unencoded (read as a space).
	plusOne := at(10).In(time.FixedZone("", 3600)).Format(time.RFC3339)
	require.Equal(t, span(11, 12), list("order=asc&limit=2&created_at_gt="+url.QueryEscape(plusOne)))
	require.Equal(t, span(11, 12), list("order=asc&limit=2&created_at_gt="+plusOne))
	require.Equal(t, span(11, 12), list("order=asc&limit=2&created_at_gt=2024-03-01T12:00:10.000000Z"))
}

// TestListParameterErrors checks every list's parameter errors.
func TestListParameterErrors(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, path := range []string{"/v1/topics", "/v1/subscriptions", "/v1/messages", "/v1/deliveries", "/v1/delivery-attempts"} {
		for _, tc := range []struct{ query, code string }{
			{"limit=0", "invalid_limit"},
			{"limit=-1", "invalid_limit"},
			{"limit=ten", "invalid_limit"},
			{"limit=1.5", "invalid_limit"},
			{"limit=99999999999999999999", "invalid_limit"},
			{"offset=-1", "invalid_offset"},
			{"offset=x", "invalid_offset"},
			{"offset=2147483648", "invalid_offset"},
			{"order=up", "invalid_order"},
			{"order=ASC", "invalid_order"},
			{"created_at_gt=yesterday", "invalid_created_at_gt"},
			{"created_at_gte=2024-01-01", "invalid_created_at_gte"},
			{"created_at_lt=1700000000", "invalid_created_at_lt"},
			{"created_at_lte=2024-13-01T00:00:00Z", "invalid_created_at_lte"},
		} {
			b.fails(http.StatusBadRequest, tc.code, "GET", path+"?"+tc.query, "")
		}
		// Empty values are absent values; unknown parameters are ignored.
		b.ok(http.StatusOK, "GET", path+"?limit=&offset=&order=&created_at_gt=&cache=1", "")
	}
	b.fails(http.StatusBadRequest, "invalid_topic_id", "GET", "/v1/subscriptions?topic_id=a%20b", "")
	b.fails(http.StatusBadRequest, "invalid_topic_id", "GET", "/v1/messages?topic_id=%FF", "")
	b.fails(http.StatusBadRequest, "invalid_topic_id", "GET", "/v1/deliveries?topic_id=a/b", "")
	b.fails(http.StatusBadRequest, "invalid_subscription_id", "GET", "/v1/deliveries?subscription_id=a%00", "")
	b.fails(http.StatusBadRequest, "invalid_message_id", "GET", "/v1/deliveries?message_id=a*", "")
	b.fails(http.StatusBadRequest, "invalid_status", "GET", "/v1/deliveries?status=done", "")
	b.fails(http.StatusBadRequest, "invalid_delivery_id", "GET", "/v1/delivery-attempts?delivery_id=%20", "")
}

func TestSubscriptionListFilter(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.createTopic("a")
	b.createTopic("b")
	b.createSubscription("a1", "a")
	b.createSubscription("b1", "b")
	b.createSubscription("a2", "a")
	require.Equal(t, []string{"a2", "a1"}, ids(t, b.ok(http.StatusOK, "GET", "/v1/subscriptions?topic_id=a", ""), "subscriptions"))
	require.Equal(t, []string{"a1", "a2"}, ids(t, b.ok(http.StatusOK, "GET", "/v1/subscriptions?topic_id=a&order=asc", ""), "subscriptions"))
	require.Equal(t, []string{"b1"}, ids(t, b.ok(http.StatusOK, "GET", "/v1/subscriptions?topic_id=b", ""), "subscriptions"))
	require.Equal(t, []string{}, ids(t, b.ok(http.StatusOK, "GET", "/v1/subscriptions?topic_id=none", ""), "subscriptions"))
	require.Equal(t, []string{"a2", "b1", "a1"}, ids(t, b.ok(http.StatusOK, "GET", "/v1/subscriptions", ""), "subscriptions"))
}

// TestReadSide reads messages, deliveries and attempts as the recorder
// writes them, with every filter.
func TestReadSide(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.createTopic("ta")
	b.createTopic("tb")
	b.createSubscription("sa", "ta")
	b.createSubscription("sb", "tb")
	b.recordMessage("m1", "ta", `{"n":1}`, at(1))
	b.recordMessage("m2", "tb", "two", at(2))
	b.recordMessage("m3", "ta", "", at(3))
	b.recordDelivery("d1", "ta", "sa", "m1", "completed", "", 1, at(4))
	b.recordDelivery("d2", "tb", "sb", "m2", "failed", "max_attempts", 3, at(5))
	b.recordDelivery("d3", "ta", "sa", "m3", "pending", "", 0, at(6))
	b.recordDelivery("d4", "ta", "sa", "m-not-recorded-yet", "pending", "", 0, at(7))
	b.recordAttempt("a1", "d1", 1, true, "", at(8))
	b.recordAttempt("a2", "d2", 1, false, "", at(9))
	b.recordAttempt("a3", "d2", 2, false, "dial tcp: connection refused", at(10))

	// Messages.
	m := b.ok(http.StatusOK, "GET", "/v1/messages/m1", "")
	require.Equal(t, map[string]any{"id": "m1", "topic_id": "ta", "data": "eyJuIjoxfQ==", "content_type": "text/plain",
		"created_at": "2024-03-01T12:00:01.000000Z"}, m)
	require.Equal(t, "", b.ok(http.StatusOK, "GET", "/v1/messages/m3", "")["data"])
	b.fails(http.StatusNotFound, "message_does_not_exists", "GET", "/v1/messages/nope", "")
	require.Equal(t, []string{"m3", "m2", "m1"}, ids(t, b.ok(http.StatusOK, "GET", "/v1/messages", ""), "messages"))
	require.Equal(t, []string{"m1", "m3"}, ids(t, b.ok(http.StatusOK, "GET", "/v1/messages?topic_id=ta&order=asc", ""), "messages"))
	require.Equal(t, []string{"m2"}, ids(t, b.ok(http.StatusOK, "GET", "/v1/messages?topic_id=tb", ""), "messages"))
	require.Equal(t, []string{"m2", "m1"}, ids(t, b.ok(http.StatusOK, "GET", "/v1/messages?created_at_lt=2024-03-01T12:00:03Z", ""), "messages"))

	// Deliveries.
	d := b.ok(http.StatusOK, "GET", "/v1/deliveries/d2", "")
	require.Equal(t, "failed", d["status"])
	require.Equal(t, "max_attempts", d["failure_reason"])
	require.EqualValues(t, 3, d["delivery_attempts"])
	require.Equal(t, "dHdv", d["data"])
	d = b.ok(http.StatusOK, "GET", "/v1/deliveries/d1", "")
	require.NotContains(t, d, "failure_reason")
	require.Equal(t, "eyJuIjoxfQ==", d["data"])
	require.Equal(t, "", b.ok(http.StatusOK, "GET", "/v1/deliveries/d4", "")["data"], "the message is not recorded yet")
	b.fails(http.StatusNotFound, "delivery_does_not_exists", "GET", "/v1/deliveries/nope", "")
	for query, want := range map[string][]string{
		"":                                   {"d4", "d3", "d2", "d1"},
		"order=asc":                          {"d1", "d2", "d3", "d4"},
		"topic_id=ta":                        {"d4", "d3", "d1"},
		"topic_id=tb":                        {"d2"},
		"subscription_id=sa&order=asc":       {"d1", "d3", "d4"},
		"message_id=m2":                      {"d2"},
		"status=pending":                     {"d4", "d3"},
		"status=completed":                   {"d1"},
		"status=failed":                      {"d2"},
		"topic_id=ta&status=pending&limit=1": {"d4"},
		"subscription_id=sb&status=pending":  {},
		"created_at_gte=2024-03-01T12:00:05Z&created_at_lte=2024-03-01T12:00:06Z": {"d3", "d2"},
	} {
		require.Equal(t, want, ids(t, b.ok(http.StatusOK, "GET", "/v1/deliveries?"+query, ""), "deliveries"), query)
	}

	// Attempts.
	a := b.ok(http.StatusOK, "GET", "/v1/delivery-attempts/a3", "")
	require.EqualValues(t, 2, a["attempt"])
	require.Equal(t, "dial tcp: connection refused", a["error"])
	require.Equal(t, false, a["success"])
	require.EqualValues(t, 500, a["response_status_code"])
	require.EqualValues(t, 12, a["execution_duration"])
	b.fails(http.StatusNotFound, "delivery_attempt_does_not_exists", "GET", "/v1/delivery-attempts/nope", "")
	for query, want := range map[string][]string{
		"":                                   {"a3", "a2", "a1"},
		"order=asc":                          {"a1", "a2", "a3"},
		"delivery_id=d2":                     {"a3", "a2"},
		"delivery_id=d2&order=asc&offset=1":  {"a3"},
		"delivery_id=d3":                     {},
		"created_at_gt=2024-03-01T12:00:08Z": {"a3", "a2"},
	} {
		require.Equal(t, want, ids(t, b.ok(http.StatusOK, "GET", "/v1/delivery-attempts?"+query, ""), "delivery_attempts"), query)
	}
}
