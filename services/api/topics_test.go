package api

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hammer-webhooks/hammer/platform/events"
)

func TestTopics(t *testing.T) {
	t.Parallel()
	b := setup(t)

	created := b.ok(http.StatusOK, "POST", "/v1/topics", `{"topic": {"id": "a.b+c-d_1", "name": "First"}}`)
	require.Equal(t, "a.b+c-d_1", created["id"])

	got := b.ok(http.StatusOK, "GET", "/v1/topics/a.b+c-d_1", "")
	require.Equal(t, created, got)
	// The path may arrive percent-encoded.
	require.Equal(t, created, b.ok(http.StatusOK, "GET", "/v1/topics/a.b%2Bc-d_1", ""))

	b.fails(http.StatusConflict, "topic_already_exists", "POST", "/v1/topics", `{"topic": {"id": "a.b+c-d_1", "name": "Again"}}`)
	b.fails(http.StatusNotFound, "topic_does_not_exists", "GET", "/v1/topics/nope", "")
	b.fails(http.StatusNotFound, "topic_does_not_exists", "GET", "/v1/topics/%FF%FE", "")
	b.fails(http.StatusNotFound, "topic_does_not_exists", "GET", "/v1/topics/"+strings.Repeat("x", 201), "")

	list := b.ok(http.StatusOK, "GET", "/v1/topics", "")
	require.Len(t, list["topics"], 1)
	require.Equal(t, created, list["topics"].([]any)[0])

	// PATCH changes the name only; timestamps in the body are ignored and
	// updated_at moves.
	patched := b.ok(http.StatusOK, "PATCH", "/v1/topics/a.b+c-d_1",
		`{"topic": {"id": "a.b+c-d_1", "name": "Renamed", "created_at": "1999-01-01T00:00:00Z", "updated_at": 7}}`)
	require.Equal(t, "Renamed", patched["name"])
	require.Equal(t, created["created_at"], patched["created_at"])
	require.Greater(t, patched["updated_at"], created["updated_at"])
	require.Equal(t, patched, b.ok(http.StatusOK, "GET", "/v1/topics/a.b+c-d_1", ""))

	// A PATCH naming nothing changes nothing.
	require.Equal(t, patched, b.ok(http.StatusOK, "PATCH", "/v1/topics/a.b+c-d_1", `{"topic": {}}`))
	b.fails(http.StatusBadRequest, "invalid_id", "PATCH", "/v1/topics/a.b+c-d_1", `{"topic": {"id": "other"}}`)
	b.fails(http.StatusBadRequest, "invalid_name", "PATCH", "/v1/topics/a.b+c-d_1", `{"topic": {"name": ""}}`)
	b.fails(http.StatusNotFound, "topic_does_not_exists", "PATCH", "/v1/topics/nope", `{"topic": {"name": "x"}}`)

	b.ok(http.StatusNoContent, "DELETE", "/v1/topics/a.b+c-d_1", "")
	b.fails(http.StatusNotFound, "topic_does_not_exists", "DELETE", "/v1/topics/a.b+c-d_1", "")
	b.fails(http.StatusNotFound, "topic_does_not_exists", "GET", "/v1/topics/a.b+c-d_1", "")
}

func TestTopicValidation(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, tc := range []struct {
		body, code string
	}{
		{`{"topic": {"name": "x"}}`, "invalid_id"},
		{`{"topic": {"id": "", "name": "x"}}`, "invalid_id"},
		{`{"topic": {"id": "has space", "name": "x"}}`, "invalid_id"},
		{`{"topic": {"id": "slash/no", "name": "x"}}`, "invalid_id"},
		{`{"topic": {"id": "é", "name": "x"}}`, "invalid_id"},
		{`{"topic": {"id": "` + strings.Repeat("a", 201) + `", "name": "x"}}`, "invalid_id"},
		{`{"topic": {"id": "ok"}}`, "invalid_name"},
		{`{"topic": {"id": "ok", "name": ""}}`, "invalid_name"},
		{`{"topic": {"id": "ok", "name": "nul\u0000"}}`, "invalid_name"},
		{`{"topic": {"id": 1, "name": "x"}}`, "invalid_id"},
		{`{"topic": {"id": "ok", "name": ["x"]}}`, "invalid_name"},
		{`{"topic": "ok"}`, "invalid_topic"},
		{`{"topic": null}`, "invalid_topic"},
		{`{}`, "invalid_topic"},
		{`{"id": "ok", "name": "x"}`, "unknown_field"},
		{`{"topic": {"id": "ok", "name": "x", "colour": "red"}}`, "unknown_field"},
		{`{"topic": {"id": "ok", "name": "x"}} {}`, "invalid_json"},
		{`{"topic": {"id": "ok", "name": "x"}`, "invalid_json"},
		{`{"topic": {"id": "ok", name: "x"}}`, "invalid_json"},
		{`[]`, "invalid_json"},
		{`"topic"`, "invalid_json"},
		{` `, "invalid_json"},
	} {
		b.fails(http.StatusBadRequest, tc.code, "POST", "/v1/topics", tc.body)
	}
	// The longest ID is fine.
	b.createTopic(strings.Repeat("a", 200))
	require.Len(t, b.ok(http.StatusOK, "GET", "/v1/topics", "")["topics"], 1)
}

// TestDeleteTopicDeletesSubscriptions checks that deleting a topic deletes
// its subscriptions, removes them from the bucket and tells EVENTS.
func TestDeleteTopicDeletesSubscriptions(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.createTopic("t1")
	b.createTopic("t2")
	b.createSubscription("s1", "t1")
	b.createSubscription("s2", "t1")
	b.createSubscription("other", "t2")
	require.NotNil(t, b.bucketEntry("s1"))

	b.ok(http.StatusNoContent, "DELETE", "/v1/topics/t1", "")
	for _, id := range []string{"s1", "s2"} {
		b.fails(http.StatusNotFound, "subscription_does_not_exists", "GET", "/v1/subscriptions/"+id, "")
		require.Nil(t, b.bucketEntry(id), id)
		require.NotNil(t, b.lastEvent(events.EventSubject(events.KindSubscriptionDeleted, id)), id)
	}
	b.ok(http.StatusOK, "GET", "/v1/subscriptions/other", "")
	require.NotNil(t, b.bucketEntry("other"))
	require.Nil(t, b.lastEvent(events.EventSubject(events.KindSubscriptionDeleted, "other")))
}
