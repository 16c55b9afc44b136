package api

import (
	"github.com/hammer-webhooks/hammer/services/api/app"

	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/hammer-webhooks/hammer/platform/events"
	"github.com/hammer-webhooks/hammer/platform/testkit"
	"github.com/hammer-webhooks/hammer/sql/dbsqlc"
)

// streamMessage is the last message on topic's subject in MESSAGES.
func (b *bundle) streamMessage(topic string) (events.Message, uint64) {
	b.t.Helper()
	s, err := b.nats.JS.Stream(b.ctx(), events.StreamMessages)
	require.NoError(b.t, err)
	raw, err := s.GetLastMsgForSubject(b.ctx(), events.MessageSubject(topic))
	require.NoError(b.t, err)
	m, err := events.MessageFromHeaders(raw.Header, raw.Data)
	require.NoError(b.t, err)
	require.Equal(b.t, m.ID, raw.Header.Get(events.HeaderMsgID))
	return m, raw.Sequence
}

// claimOf is the idempotency bucket's claim for key, or nil.
func (b *bundle) claimOf(key string) *app.Claim {
	b.t.Helper()
	kv, err := b.nats.JS.KeyValue(b.ctx(), events.BucketIdempotency)
	require.NoError(b.t, err)
	e, err := kv.Get(b.ctx(), app.ClaimKey(key))
	if err != nil {
		return nil
	}
	var c app.Claim
	require.NoError(b.t, json.Unmarshal(e.Value(), &c))
	return &c
}

func TestPublish(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.createTopic("t")

	m := b.ok(http.StatusOK, "POST", "/v1/messages", `{"message": {"topic_id": "t", "data": "héllo \u0000 world"}}`)
	sent, seq := b.streamMessage("t")
	require.EqualValues(t, 1, seq)
	require.Equal(t, m["id"], sent.ID)
	require.Equal(t, "t", sent.TopicID)
	require.Equal(t, "application/json", sent.ContentType)
	require.Equal(t, "héllo \x00 world", string(sent.Data))
	require.Equal(t, m["created_at"], sent.CreatedAt.Format(timestampLayout))
	require.Empty(t, sent.IdempotencyKey)
	require.Equal(t, base64.StdEncoding.EncodeToString(sent.Data), m["data"])

	// An object or array is kept as the JSON text sent.
	for _, data := range []string{`{"a": [1, 2],  "b": {"c": null}}`, `[ 1, "two" ]`, `{}`, `[]`} {
		m = b.ok(http.StatusOK, "POST", "/v1/messages", `{"message": {"topic_id": "t", "content_type": "application/vnd.x+json; charset=utf-8", "data": `+data+`}}`)
		sent, _ = b.streamMessage("t")
		require.Equal(t, data, string(sent.Data))
		require.Equal(t, "application/vnd.x+json; charset=utf-8", sent.ContentType)
		require.Equal(t, "application/vnd.x+json; charset=utf-8", m["content_type"])
	}
	b.ok(http.StatusOK, "POST", "/v1/messages", `{"message": {"topic_id": "t", "data": ""}}`)
	require.EqualValues(t, 6, b.streamMsgs(events.StreamMessages))

	for _, tc := range []struct {
		status int
		code   string
		body   string
		header []string
	}{
		{400, "invalid_data", `{"message": {"topic_id": "t"}}`, nil},
		{400, "invalid_data", `{"message": {"topic_id": "t", "data": null}}`, nil},
		{400, "invalid_data", `{"message": {"topic_id": "t", "data": 12}}`, nil},
		{400, "invalid_data", `{"message": {"topic_id": "t", "data": true}}`, nil},
		{400, "invalid_topic_id", `{"message": {"data": "x"}}`, nil},
		{400, "invalid_topic_id", `{"message": {"topic_id": "", "data": "x"}}`, nil},
		{400, "invalid_topic_id", `{"message": {"topic_id": 7, "data": "x"}}`, nil},
		{400, "invalid_content_type", `{"message": {"topic_id": "t", "data": "x", "content_type": ""}}`, nil},
		{400, "invalid_content_type", `{"message": {"topic_id": "t", "data": "x", "content_type": "not a type"}}`, nil},
		{400, "unknown_field", `{"message": {"topic_id": "t", "data": "x", "id": "mine"}}`, nil},
		{400, "invalid_message", `{"message": null}`, nil},
		{400, "invalid_message", `{}`, nil},
		{400, "invalid_idempotency_key", `{"message": {"topic_id": "t", "data": "x"}}`, []string{"Idempotency-Key", strings.Repeat("k", 256)}},
		{400, "invalid_idempotency_key", `{"message": {"topic_id": "t", "data": "x"}}`, []string{"Idempotency-Key", "tab\there"}},
		{422, "topic_does_not_exists", `{"message": {"topic_id": "ghost", "data": "x"}}`, nil},
	} {
		b.fails(tc.status, tc.code, "POST", "/v1/messages", tc.body, tc.header...)
	}
	require.EqualValues(t, 6, b.streamMsgs(events.StreamMessages), "refused messages publish nothing")
}

func TestPublishSizeLimits(t *testing.T) {
	t.Parallel()
	b := setup(t, withMaxMessageBytes(10))
	b.createTopic("t")
	b.ok(http.StatusOK, "POST", "/v1/messages", `{"message": {"topic_id": "t", "data": "0123456789"}}`)
	b.ok(http.StatusOK, "POST", "/v1/messages", `{"message": {"topic_id": "t", "data": "\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000"}}`)
	b.fails(http.StatusRequestEntityTooLarge, "payload_too_large", "POST", "/v1/messages", `{"message": {"topic_id": "t", "data": "0123456789a"}}`)
	b.fails(http.StatusRequestEntityTooLarge, "payload_too_large", "POST", "/v1/messages", `{"message": {"topic_id": "t", "data": {"k": "0123456"}}}`)
	huge := `{"message": {"topic_id": "t", "data": "` + strings.Repeat(" ", 6*10+bodyOverhead) + `"}}`
	b.fails(http.StatusRequestEntityTooLarge, "payload_too_large", "POST", "/v1/messages", huge)
	require.EqualValues(t, 2, b.streamMsgs(events.StreamMessages))
}

// TestPublishNATSDown checks that with NATS away a publish answers 503 at
// once and that nothing is accepted later behind the client's back.
func TestPublishNATSDown(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.run(nil)
	b.createTopic("t")
	b.ok(http.StatusOK, "POST", "/v1/messages", `{"message": {"topic_id": "t", "data": "before"}}`)

	restart := stopNATS(t, b)
	for _, header := range [][]string{nil, {"Idempotency-Key", "while-down"}} {
		start := time.Now()
		r := b.fails(http.StatusServiceUnavailable, "unavailable", "POST", "/v1/messages", `{"message": {"topic_id": "t", "data": "during"}}`, header...)
		require.Less(t, time.Since(start), time.Second, "503 comes quickly")
		require.Equal(t, "1", r.Header.Get("Retry-After"))
	}
	start := time.Now()
	b.fails(http.StatusServiceUnavailable, "unavailable", "POST", "/v1/messages:batch", `{"messages": [{"topic_id": "t", "data": "during"}]}`)
	require.Less(t, time.Since(start), time.Second)
	require.Equal(t, http.StatusServiceUnavailable, b.do("GET", "/readyz", "").Code)

	restart()
	require.EqualValues(t, 1, b.streamMsgs(events.StreamMessages), "nothing published while NATS was away")
	require.Nil(t, b.claimOf("while-down"))
	b.ok(http.StatusOK, "GET", "/readyz", "")
	b.ok(http.StatusOK, "POST", "/v1/messages", `{"message": {"topic_id": "t", "data": "after"}}`, "Idempotency-Key", "while-down")
	require.EqualValues(t, 2, b.streamMsgs(events.StreamMessages))
}

// TestPublishWithoutAck checks a publish that JetStream never acknowledges
// (NATS is up but MESSAGES is gone): 503 within the timeout, and an
// Idempotency-Key claim is released so a retry can publish.
func TestPublishWithoutAck(t *testing.T) {
	t.Parallel()
	b := setup(t, func(o *Options) { o.PublishTimeout = 300 * time.Millisecond })
	b.createTopic("t")
	require.NoError(t, b.nats.JS.DeleteStream(b.ctx(), events.StreamMessages))

	start := time.Now()
	b.fails(http.StatusServiceUnavailable, "unavailable", "POST", "/v1/messages", `{"message": {"topic_id": "t", "data": "x"}}`, "Idempotency-Key", "k")
	require.Less(t, time.Since(start), 2*time.Second)
	require.Nil(t, b.claimOf("k"), "a failed publish releases its claim")
	b.fails(http.StatusServiceUnavailable, "unavailable", "POST", "/v1/messages:batch",
		`{"messages": [{"topic_id": "t", "data": "x", "idempotency_key": "b1"}, {"topic_id": "t", "data": "y"}]}`)
	require.Nil(t, b.claimOf("b1"))
}

func TestIdempotencyKey(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.createTopic("t")
	b.createTopic("u")
	body := `{"message": {"topic_id": "t", "data": "once"}}`

	first := b.ok(http.StatusOK, "POST", "/v1/messages", body, "Idempotency-Key", "order-42")
	sent, _ := b.streamMessage("t")
	require.Equal(t, "order-42", sent.IdempotencyKey)
	again := b.ok(http.StatusOK, "POST", "/v1/messages", body, "Idempotency-Key", "order-42")
	require.Equal(t, first, again, "the same key and body answer the original message")
	require.EqualValues(t, 1, b.streamMsgs(events.StreamMessages))
	require.Equal(t, app.ClaimPublished, b.claimOf("order-42").State)

	// The body's JSON layout does not matter, its meaning does.
	require.Equal(t, first, b.ok(http.StatusOK, "POST", "/v1/messages", `{"message":{"data":"once","topic_id":"t","content_type":"application/json"}}`, "Idempotency-Key", "order-42"))

	for _, other := range []string{
		`{"message": {"topic_id": "t", "data": "twice"}}`,
		`{"message": {"topic_id": "u", "data": "once"}}`,
		`{"message": {"topic_id": "t", "data": "once", "content_type": "text/plain"}}`,
	} {
		b.fails(http.StatusConflict, "idempotency_key_reused", "POST", "/v1/messages", other, "Idempotency-Key", "order-42")
	}
	require.EqualValues(t, 1, b.streamMsgs(events.StreamMessages))

	other := b.ok(http.StatusOK, "POST", "/v1/messages", body, "Idempotency-Key", "order-43")
	require.NotEqual(t, first["id"], other["id"])
	require.EqualValues(t, 2, b.streamMsgs(events.StreamMessages))
}

// TestIdempotencyAfterDuplicateWindow shows that the key's claim, not
// JetStream's Nats-Msg-Id deduplication, answers a repeat that comes after
// JetStream's duplicate window. The window is shortened to 100 ms (the
// smallest JetStream allows) so the test need not wait two minutes; it then
// proves the window has passed by publishing the original message directly,
// which JetStream now stores again.
func TestIdempotencyAfterDuplicateWindow(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.createTopic("t")
	ctx := b.ctx()
	stream, err := b.nats.JS.Stream(ctx, events.StreamMessages)
	require.NoError(t, err)
	cfg := stream.CachedInfo().Config
	cfg.Duplicates = 100 * time.Millisecond
	_, err = b.nats.JS.UpdateStream(ctx, cfg)
	require.NoError(t, err)

	body := `{"message": {"topic_id": "t", "data": "late"}}`
	first := b.ok(http.StatusOK, "POST", "/v1/messages", body, "Idempotency-Key", "late-key")
	original, _ := b.streamMessage("t")

	// Wait until the window has surely passed for the original: a probe
	// published after it stops being a duplicate only once its own window,
	// and so the original's, is over.
	probe := events.Message{ID: "probe", TopicID: "probe", ContentType: "text/plain", CreatedAt: now(), Data: []byte("p")}
	_, err = b.nats.JS.PublishMsg(ctx, probe.NATSMsg())
	require.NoError(t, err)
	testkit.Eventually(t, 10*time.Second, func() bool {
		ack, err := b.nats.JS.PublishMsg(ctx, probe.NATSMsg())
		return err == nil && !ack.Duplicate
	}, "the duplicate window passes")
	before := b.streamMsgs(events.StreamMessages)

	again := b.ok(http.StatusOK, "POST", "/v1/messages", body, "Idempotency-Key", "late-key")
	require.Equal(t, first, again)
	require.Equal(t, before, b.streamMsgs(events.StreamMessages), "the repeat published nothing")

	// Without the claim, JetStream alone would have taken it again.
	ack, err := b.nats.JS.PublishMsg(ctx, original.NATSMsg())
	require.NoError(t, err)
	require.False(t, ack.Duplicate, "JetStream's window is over: only the claim deduplicated")
}

// TestIdempotencyPendingClaim covers a request that claimed its key and
// died before publishing: the next request with that key publishes the
// original message (same ID and time) and marks the claim published.
func TestIdempotencyPendingClaim(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.createTopic("t")
	d := draft{TopicID: "t", ContentType: defaultContentType, Data: []byte("pending"), Key: "crashed"}
	created := now().Add(-time.Minute)
	pending := app.Claim{MessageID: events.NewMessageID(created), TopicID: "t", ContentType: defaultContentType,
		CreatedAt: created, BodyHash: d.Hash(), State: app.ClaimPending}
	val, err := json.Marshal(pending)
	require.NoError(t, err)
	kv, err := b.nats.JS.KeyValue(b.ctx(), events.BucketIdempotency)
	require.NoError(t, err)
	_, err = kv.Create(b.ctx(), app.ClaimKey("crashed"), val)
	require.NoError(t, err)

	m := b.ok(http.StatusOK, "POST", "/v1/messages", `{"message": {"topic_id": "t", "data": "pending"}}`, "Idempotency-Key", "crashed")
	require.Equal(t, pending.MessageID, m["id"])
	require.Equal(t, created.Format(timestampLayout), m["created_at"])
	sent, _ := b.streamMessage("t")
	require.Equal(t, pending.MessageID, sent.ID)
	require.True(t, sent.CreatedAt.Equal(created))
	require.Equal(t, app.ClaimPublished, b.claimOf("crashed").State)

	require.Equal(t, m, b.ok(http.StatusOK, "POST", "/v1/messages", `{"message": {"topic_id": "t", "data": "pending"}}`, "Idempotency-Key", "crashed"))
	require.EqualValues(t, 1, b.streamMsgs(events.StreamMessages))
}

func messageBatch(m events.Message, seq uint64) dbsqlc.MessageInsertBatchParams {
	return dbsqlc.MessageInsertBatchParams{
		Ids: []string{m.ID}, TopicIds: []string{m.TopicID}, Datas: [][]byte{m.Data}, ContentTypes: []string{m.ContentType},
		IdempotencyKeys: []string{m.IdempotencyKey}, StreamSequences: []int64{int64(seq)}, CreatedAts: []time.Time{m.CreatedAt}}
}

func batchOf(items ...string) string {
	return `{"messages": [` + strings.Join(items, ", ") + `]}`
}

func TestBatch(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.createTopic("t")
	b.createTopic("u")

	res := b.ok(http.StatusOK, "POST", "/v1/messages:batch", batchOf(
		`{"topic_id": "t", "data": "one"}`,
		`{"topic_id": "u", "data": {"two": 2}, "content_type": "application/x+json"}`,
		`{"topic_id": "t", "data": [3]}`))
	msgs := res["messages"].([]any)
	require.Len(t, msgs, 3)
	for i, want := range []struct{ topic, data, ct string }{
		{"t", "one", "application/json"}, {"u", `{"two": 2}`, "application/x+json"}, {"t", "[3]", "application/json"},
	} {
		m := msgs[i].(map[string]any)
		require.Equal(t, want.topic, m["topic_id"], i)
		require.Equal(t, base64.StdEncoding.EncodeToString([]byte(want.data)), m["data"], i)
		require.Equal(t, want.ct, m["content_type"], i)
	}
	require.EqualValues(t, 3, b.streamMsgs(events.StreamMessages))
	last, _ := b.streamMessage("t")
	require.Equal(t, msgs[2].(map[string]any)["id"], last.ID)

	// One bad item: 400 naming it, nothing published.
	for _, tc := range []struct {
		status     int
		code, body string
		index      int
	}{
		{400, "invalid_data", batchOf(`{"topic_id": "t", "data": "ok"}`, `{"topic_id": "t", "data": 1}`), 1},
		{400, "invalid_topic_id", batchOf(`{"topic_id": "t", "data": "ok"}`, `{"topic_id": "t", "data": "ok"}`, `{"data": "x"}`), 2},
		{400, "unknown_field", batchOf(`{"topic_id": "t", "data": "ok", "extra": 1}`), 0},
		{400, "invalid_message", batchOf(`{"topic_id": "t", "data": "ok"}`, `"just a string"`), 1},
		{400, "invalid_idempotency_key", batchOf(`{"topic_id": "t", "data": "ok", "idempotency_key": ""}`), 0},
		{422, "topic_does_not_exists", batchOf(`{"topic_id": "t", "data": "ok"}`, `{"topic_id": "u", "data": "ok"}`, `{"topic_id": "ghost", "data": "ok"}`), 2},
	} {
		r := b.fails(tc.status, tc.code, "POST", "/v1/messages:batch", tc.body)
		require.EqualValues(t, tc.index, r.json(t)["index"], "%s", r.Body)
		require.Contains(t, r.json(t)["message"], fmt.Sprintf("messages[%d]", tc.index))
	}
	for _, body := range []string{`{"messages": []}`, `{}`, `{"messages": null}`, `{"messages": {}}`, `{"message": {"topic_id": "t", "data": "x"}}`} {
		r := b.do("POST", "/v1/messages:batch", body)
		require.Equal(t, http.StatusBadRequest, r.Code, "%s: %s", body, r.Body)
	}
	require.EqualValues(t, 3, b.streamMsgs(events.StreamMessages), "refused batches publish nothing")
	b.fails(http.StatusMethodNotAllowed, "method_not_allowed", "GET", "/v1/messages:batch", "")
}

func TestBatchLimits(t *testing.T) {
	t.Parallel()
	b := setup(t, withMaxMessageBytes(100))
	b.createTopic("t")
	item := `{"topic_id": "t", "data": "x"}`
	many := func(n int) string { return batchOf(strings.Split(strings.Repeat(item+"\n", n), "\n")[:n]...) }

	b.fails(http.StatusBadRequest, "invalid_messages", "POST", "/v1/messages:batch", many(maxBatchItems+1))
	res := b.ok(http.StatusOK, "POST", "/v1/messages:batch", many(maxBatchItems))
	require.Len(t, res["messages"], maxBatchItems)
	prev := ""
	for _, m := range res["messages"].([]any) {
		id := m.(map[string]any)["id"].(string)
		require.Less(t, prev, id, "a batch's IDs follow its order")
		prev = id
	}
	require.EqualValues(t, maxBatchItems, b.streamMsgs(events.StreamMessages))

	r := b.fails(http.StatusRequestEntityTooLarge, "payload_too_large", "POST", "/v1/messages:batch",
		batchOf(item, `{"topic_id": "t", "data": "`+strings.Repeat("y", 101)+`"}`))
	require.EqualValues(t, 1, r.json(t)["index"])
	b.fails(http.StatusRequestEntityTooLarge, "payload_too_large", "POST", "/v1/messages:batch",
		batchOf(item, `{"topic_id": "t", "data": "`+strings.Repeat(" ", batchBodyLimit)+`"}`))
	require.EqualValues(t, maxBatchItems, b.streamMsgs(events.StreamMessages))
}

func TestBatchIdempotency(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.createTopic("t")
	batch := batchOf(
		`{"topic_id": "t", "data": "a", "idempotency_key": "k1"}`,
		`{"topic_id": "t", "data": "b"}`,
		`{"topic_id": "t", "data": "c", "idempotency_key": "k2"}`,
		`{"topic_id": "t", "data": "a", "idempotency_key": "k1"}`)
	first := b.ok(http.StatusOK, "POST", "/v1/messages:batch", batch)["messages"].([]any)
	require.Equal(t, first[0], first[3], "the same key twice in a batch is one message")
	require.EqualValues(t, 3, b.streamMsgs(events.StreamMessages))

	again := b.ok(http.StatusOK, "POST", "/v1/messages:batch", batch)["messages"].([]any)
	require.Equal(t, first[0], again[0])
	require.Equal(t, first[2], again[2])
	require.NotEqual(t, first[1], again[1], "an item without a key is a new message")
	require.EqualValues(t, 4, b.streamMsgs(events.StreamMessages))

	// A key reused with another body fails the batch, publishes nothing and
	// leaves no claim behind for the items before it.
	r := b.fails(http.StatusConflict, "idempotency_key_reused", "POST", "/v1/messages:batch", batchOf(
		`{"topic_id": "t", "data": "new", "idempotency_key": "k3"}`,
		`{"topic_id": "t", "data": "changed", "idempotency_key": "k2"}`))
	require.EqualValues(t, 1, r.json(t)["index"])
	require.Nil(t, b.claimOf("k3"))
	r = b.fails(http.StatusConflict, "idempotency_key_reused", "POST", "/v1/messages:batch", batchOf(
		`{"topic_id": "t", "data": "x", "idempotency_key": "k4"}`,
		`{"topic_id": "t", "data": "y", "idempotency_key": "k4"}`))
	require.EqualValues(t, 1, r.json(t)["index"])
	require.Nil(t, b.claimOf("k4"))
	require.EqualValues(t, 4, b.streamMsgs(events.StreamMessages))

	// Keys are shared with the single publish.
	single := b.ok(http.StatusOK, "POST", "/v1/messages", `{"message": {"topic_id": "t", "data": "c"}}`, "Idempotency-Key", "k2")
	require.Equal(t, first[2], any(single))
}

func TestDeleteMessage(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.createTopic("t")
	b.createSubscription("s", "t")
	keep := b.ok(http.StatusOK, "POST", "/v1/messages", `{"message": {"topic_id": "t", "data": "keep"}}`)
	keepMsg, keepSeq := b.streamMessage("t")
	gone := b.ok(http.StatusOK, "POST", "/v1/messages", `{"message": {"topic_id": "t", "data": "gone"}}`)
	goneMsg, goneSeq := b.streamMessage("t")
	require.Equal(t, gone["id"], goneMsg.ID)

	record := func(m events.Message, seq uint64, delivery string) {
		_, err := b.q.MessageInsertBatch(b.ctx(), messageBatch(m, seq))
		require.NoError(t, err)
		b.recordDelivery(delivery, "t", "s", m.ID, "pending", "", 1, m.CreatedAt)
		b.recordAttempt(delivery+"-a1", delivery, 1, false, "boom", m.CreatedAt)
	}
	record(keepMsg, keepSeq, "d-keep")
	record(goneMsg, goneSeq, "d-gone")

	b.ok(http.StatusNoContent, "DELETE", "/v1/messages/"+goneMsg.ID, "")
	b.fails(http.StatusNotFound, "message_does_not_exists", "GET", "/v1/messages/"+goneMsg.ID, "")
	b.fails(http.StatusNotFound, "delivery_does_not_exists", "GET", "/v1/deliveries/d-gone", "")
	b.fails(http.StatusNotFound, "delivery_attempt_does_not_exists", "GET", "/v1/delivery-attempts/d-gone-a1", "")
	stream, err := b.nats.JS.Stream(b.ctx(), events.StreamMessages)
	require.NoError(t, err)
	_, err = stream.GetMsg(b.ctx(), goneSeq)
	require.ErrorIs(t, err, jetstream.ErrMsgNotFound)

	b.ok(http.StatusOK, "GET", "/v1/messages/"+keep["id"].(string), "")
	b.ok(http.StatusOK, "GET", "/v1/deliveries/d-keep", "")
	b.ok(http.StatusOK, "GET", "/v1/delivery-attempts/d-keep-a1", "")
	_, err = stream.GetMsg(b.ctx(), keepSeq)
	require.NoError(t, err)

	b.fails(http.StatusNotFound, "message_does_not_exists", "DELETE", "/v1/messages/"+goneMsg.ID, "")
	b.fails(http.StatusNotFound, "message_does_not_exists", "DELETE", "/v1/messages/%20", "")

	// A row whose sequence holds another message (a recreated stream)
	// deletes the row but not the other message.
	mixed := events.Message{ID: events.NewMessageID(now()), TopicID: "t", ContentType: "text/plain", CreatedAt: now(), Data: []byte("m")}
	_, err = b.q.MessageInsertBatch(b.ctx(), messageBatch(mixed, keepSeq))
	require.NoError(t, err)
	b.ok(http.StatusNoContent, "DELETE", "/v1/messages/"+mixed.ID, "")
	_, err = stream.GetMsg(context.Background(), keepSeq)
	require.NoError(t, err)
}
