package api

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/oklog/ulid/v2"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/hammer-webhooks/hammer/platform/events"
	"github.com/hammer-webhooks/hammer/platform/tracing"
)

// Publishing (DESIGN "The path of a message"): a message is accepted when
// JetStream has acknowledged it, and the answer waits for that.

const (
	defaultContentType = "application/json"
	maxBatchItems      = 1000
	headerIdempotency  = "Idempotency-Key"
)

// messageFields is the body of one message.
type messageFields struct {
	TopicID     *string         `json:"topic_id"`
	Data        json.RawMessage `json:"data"`
	ContentType *string         `json:"content_type"`
}

type messageRequest struct {
	Message *messageFields `json:"message"`
}

// batchItem is one message of a batch, which carries its own idempotency key.
type batchItem struct {
	messageFields
	IdempotencyKey *string `json:"idempotency_key"`
}

type batchRequest struct {
	Messages []json.RawMessage `json:"messages"`
}

// draft is a checked message, not yet accepted.
type draft struct {
	topicID     string
	contentType string
	data        []byte
	key         string // Idempotency-Key; empty for none
}

// hash identifies what a draft asks for, so the same Idempotency-Key with a
// different body can be told apart. Parts are length-prefixed.
func (d draft) hash() string {
	h := sha256.New()
	for _, p := range [][]byte{[]byte(d.topicID), []byte(d.contentType), d.data} {
		h.Write([]byte(strconv.Itoa(len(p))))
		h.Write([]byte{':'})
		h.Write(p)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// decodeMessage reads {"message": {...}} and checks it. body is one valid
// JSON value, as readJSON returns it.
func decodeMessage(body []byte, maxBytes int) (draft, *apiError) {
	var req messageRequest
	if err := decodeValid(body, &req); err != nil {
		return draft{}, err
	}
	if req.Message == nil {
		return draft{}, invalid("message", `the body must be {"message": {...}}`)
	}
	return checkMessage(req.Message, maxBytes)
}

// decodeBatch reads {"messages": [...]} and checks every item; the first bad
// item fails the whole batch. body is one valid JSON value, as readJSON
// returns it.
func decodeBatch(body []byte, maxBytes int) ([]draft, *apiError) {
	var req batchRequest
	if err := decodeValid(body, &req); err != nil {
		return nil, err
	}
	if len(req.Messages) == 0 || len(req.Messages) > maxBatchItems {
		return nil, invalid("messages", `the body must be {"messages": [...]} with 1 to %d messages`, maxBatchItems)
	}
	drafts := make([]draft, len(req.Messages))
	for i, raw := range req.Messages {
		var item batchItem
		if err := decodeValid(raw, &item); err != nil { // raw is part of the valid body
			if err.body.Code == "invalid_json" {
				err = invalid("message", "each message must be a JSON object")
			}
			return nil, atIndex(err, i)
		}
		d, err := checkMessage(&item.messageFields, maxBytes)
		if err != nil {
			return nil, atIndex(err, i)
		}
		if item.IdempotencyKey != nil {
			if err := checkIdempotencyKey("idempotency_key", *item.IdempotencyKey); err != nil {
				return nil, atIndex(err, i)
			}
			d.key = *item.IdempotencyKey
		}
		drafts[i] = d
	}
	return drafts, nil
}

func checkMessage(f *messageFields, maxBytes int) (draft, *apiError) {
	d := draft{contentType: defaultContentType}
	if f.TopicID == nil {
		return d, invalid("topic_id", "topic_id is required")
	}
	if err := checkID("topic_id", *f.TopicID); err != nil {
		return d, err
	}
	d.topicID = *f.TopicID
	if f.ContentType != nil {
		if err := checkContentType(*f.ContentType); err != nil {
			return d, err
		}
		d.contentType = *f.ContentType
	}
	data, err := messageData(f.Data)
	if err != nil {
		return d, err
	}
	if len(data) > maxBytes {
		return d, tooLarge("data is %d bytes; the limit is %d", len(data), maxBytes)
	}
	d.data = data
	return d, nil
}

// messageData is the bytes a message carries: a JSON string's contents, or
// an object or array as the JSON text that was sent.
func messageData(raw json.RawMessage) ([]byte, *apiError) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return nil, invalid("data", "data is required")
	}
	switch raw[0] {
	case '"':
		var s string
		if err := unquote(raw, &s); err != nil {
			return nil, invalid("data", "data is not a valid JSON string")
		}
		return []byte(s), nil
	case '{', '[':
		return bytes.Clone(raw), nil
	}
	return nil, invalid("data", "data must be a string, or a JSON object or array")
}

// publisher accepts messages into MESSAGES, honouring Idempotency-Keys
// through the hammer_idempotency bucket.
//
// A key's claim is made with a create (only one request wins it) before the
// publish, as "pending", and marked "published" after the acknowledgement.
// A later request with the same key and body gets the original message; if
// the claim is still pending (its request is in flight, or died after the
// claim), it publishes the original again, with the original ID, so
// JetStream drops it if the first publish did land within its duplicate
// window. A publish that fails releases the claim it made.
type publisher struct {
	nc       *nats.Conn
	js       jetstream.JetStream
	log      *zap.Logger
	timeout  time.Duration
	accepted prometheus.Counter
	replayed prometheus.Counter

	mu  sync.Mutex
	idb jetstream.KeyValue
}

// claim is the value of an Idempotency-Key in the bucket.
type claim struct {
	MessageID   string    `json:"message_id"`
	TopicID     string    `json:"topic_id"`
	ContentType string    `json:"content_type"`
	CreatedAt   time.Time `json:"created_at"`
	BodyHash    string    `json:"body_hash"`
	State       string    `json:"state"`
}

const (
	claimPending   = "pending"
	claimPublished = "published"
)

// idempotencyKey is the bucket key of an Idempotency-Key: a hash, since a
// header may hold characters a key may not.
func idempotencyKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

func (p *publisher) bucket(ctx context.Context) (jetstream.KeyValue, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.idb != nil {
		return p.idb, nil
	}
	kv, err := p.js.KeyValue(ctx, events.BucketIdempotency)
	if err != nil {
		return nil, fmt.Errorf("opening bucket %s: %w", events.BucketIdempotency, err)
	}
	p.idb = kv
	return kv, nil
}

// connected fails at once when NATS is away: a publish made now would sit
// in the reconnect buffer and might land after we have answered 503.
func (p *publisher) connected() error {
	if st := p.nc.Status(); st != nats.CONNECTED {
		return fmt.Errorf("nats is %s", st)
	}
	return nil
}

// item is one draft on its way: the message it became, whether it must be
// published, and the claim to settle afterwards.
type item struct {
	msg     events.Message
	publish bool
	same    int    // index of an earlier item with the same key, or -1
	claimed string // bucket key of a claim to settle; empty for none
	rev     uint64 // the claim's revision
	fresh   bool   // this request made the claim
	err     error
}

// accept publishes drafts and returns their messages in order, or an error
// after which nothing this call claimed stays claimed. In a batch, errors
// about one item name its index.
func (p *publisher) accept(ctx context.Context, drafts []draft, batch bool) ([]events.Message, *apiError) {
	if err := p.connected(); err != nil {
		return nil, unavailable(err)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.timeout+time.Duration(len(drafts))*2*time.Millisecond)
	defer cancel()
	created := now()
	// Monotonic entropy numbers a batch's IDs in its order, so lists
	// ordered by (created_at, id) show a batch as it was sent.
	ids := ulid.Monotonic(rand.Reader, 0)
	newMessage := func(d draft) events.Message {
		return events.Message{
			ID: ulid.MustNew(ulid.Timestamp(created), ids).String(), TopicID: d.topicID, ContentType: d.contentType,
			IdempotencyKey: d.key, CreatedAt: created, Data: d.data,
		}
	}
	items := make([]item, len(drafts))
	byKey := map[string]int{}
	for i, d := range drafts {
		it := &items[i]
		it.same = -1
		if d.key == "" {
			it.msg = newMessage(d)
			it.publish = true
			continue
		}
		if j, ok := byKey[d.key]; ok {
			if drafts[j].hash() != d.hash() {
				p.release(items[:i])
				return nil, indexed(reused(), i, batch)
			}
			it.msg, it.same = items[j].msg, j
			continue
		}
		byKey[d.key] = i
		if aerr := p.claim(ctx, d, newMessage(d), it); aerr != nil {
			p.release(items[:i])
			return nil, indexed(aerr, i, batch)
		}
	}

	p.publishAll(ctx, items)

	failed := 0
	var firstErr error
	out := make([]events.Message, len(items))
	for i := range items {
		it := &items[i]
		out[i] = it.msg
		if it.same >= 0 {
			it.err = items[it.same].err
		}
		if it.err != nil && it.same < 0 {
			failed++
			if firstErr == nil {
				firstErr = it.err
			}
		}
	}
	sctx, scancel := context.WithTimeout(context.WithoutCancel(ctx), p.timeout)
	defer scancel()
	p.settle(sctx, items)
	if failed > 0 {
		e := unavailable(firstErr)
		if batch {
			e.body.Message = fmt.Sprintf("%d of %d messages were not accepted; retrying the batch with idempotency keys is safe", failed, len(items))
		}
		return nil, e
	}
	return out, nil
}

func indexed(e *apiError, i int, batch bool) *apiError {
	if batch {
		return atIndex(e, i)
	}
	return e
}

func reused() *apiError {
	return newError(http.StatusConflict, "idempotency_key_reused", "this idempotency key was used with a different message within the last 24 hours")
}

// claim takes d's Idempotency-Key for msg, or finds the message an earlier
// request took it for.
func (p *publisher) claim(ctx context.Context, d draft, msg events.Message, it *item) *apiError {
	kv, err := p.bucket(ctx)
	if err != nil {
		return unavailable(err)
	}
	key := idempotencyKey(d.key)
	mine := claim{MessageID: msg.ID, TopicID: d.topicID, ContentType: d.contentType, CreatedAt: msg.CreatedAt, BodyHash: d.hash(), State: claimPending}
	val, _ := json.Marshal(mine)
	for range 3 {
		rev, err := kv.Create(ctx, key, val)
		if err == nil {
			*it = item{msg: msg, publish: true, same: -1, claimed: key, rev: rev, fresh: true}
			return nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return unavailable(fmt.Errorf("claiming idempotency key: %w", err))
		}
		entry, err := kv.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
			continue // released or expired since: claim it again
		} else if err != nil {
			return unavailable(fmt.Errorf("reading idempotency key: %w", err))
		}
		var theirs claim
		if err := json.Unmarshal(entry.Value(), &theirs); err != nil {
			return internal(fmt.Errorf("decoding idempotency claim: %w", err))
		}
		if theirs.BodyHash != mine.BodyHash {
			return reused()
		}
		p.replayed.Inc()
		original := events.Message{
			ID: theirs.MessageID, TopicID: theirs.TopicID, ContentType: theirs.ContentType,
			IdempotencyKey: d.key, CreatedAt: theirs.CreatedAt.UTC(), Data: d.data,
		}
		*it = item{msg: original, same: -1}
		if theirs.State == claimPending {
			it.publish, it.claimed, it.rev = true, key, entry.Revision()
		}
		return nil
	}
	return unavailable(errors.New("idempotency key keeps changing; try again"))
}

// publishAll publishes every item that needs it, asynchronously, and waits
// for every acknowledgement or the deadline.
func (p *publisher) publishAll(ctx context.Context, items []item) {
	futures := make([]jetstream.PubAckFuture, len(items))
	for i := range items {
		if !items[i].publish {
			continue
		}
		msg := items[i].msg.NATSMsg()
		tracing.Inject(ctx, msg.Header)
		f, err := p.js.PublishMsgAsync(msg, jetstream.WithExpectStream(events.StreamMessages))
		if err != nil {
			items[i].err = fmt.Errorf("publishing message %s: %w", items[i].msg.ID, err)
			continue
		}
		futures[i] = f
	}
	for i, f := range futures {
		if f == nil {
			continue
		}
		select {
		case <-f.Ok():
			p.accepted.Inc()
		case err := <-f.Err():
			items[i].err = fmt.Errorf("publishing message %s: %w", items[i].msg.ID, err)
		case <-ctx.Done():
			items[i].err = fmt.Errorf("publishing message %s: no acknowledgement: %w", items[i].msg.ID, ctx.Err())
		}
	}
}

// settle marks the claims of published items and releases the claims this
// request made for items that failed. Both are best effort: a claim left
// pending makes the next request with its key publish again, which is safe.
func (p *publisher) settle(ctx context.Context, items []item) {
	kv, err := p.bucket(ctx)
	if err != nil {
		return
	}
	for _, it := range items {
		if it.claimed == "" {
			continue
		}
		if it.err != nil {
			if it.fresh {
				_ = kv.Delete(ctx, it.claimed, jetstream.LastRevision(it.rev))
			}
			continue
		}
		val, _ := json.Marshal(claim{
			MessageID: it.msg.ID, TopicID: it.msg.TopicID, ContentType: it.msg.ContentType,
			CreatedAt: it.msg.CreatedAt, BodyHash: draftOf(it.msg).hash(), State: claimPublished,
		})
		if _, err := kv.Update(ctx, it.claimed, val, it.rev); err != nil {
			p.log.Debug("idempotency claim not marked published", zap.String("message_id", it.msg.ID), zap.Error(err))
		}
	}
}

// release gives up the claims made before a request failed.
func (p *publisher) release(items []item) {
	var fresh []item
	for _, it := range items {
		if it.fresh {
			fresh = append(fresh, it)
		}
	}
	if len(fresh) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), p.timeout)
	defer cancel()
	kv, err := p.bucket(ctx)
	if err != nil {
		return
	}
	for _, it := range fresh {
		_ = kv.Delete(ctx, it.claimed, jetstream.LastRevision(it.rev))
	}
}

func draftOf(m events.Message) draft {
	return draft{topicID: m.TopicID, contentType: m.ContentType, data: m.Data, key: m.IdempotencyKey}
}

// messageBodyLimit is the largest single-message body: data escaped at worst
// six bytes per byte, plus the other fields.
func (s *Server) messageBodyLimit() int64 {
	return int64(s.cfg.MaxMessageBytes)*6 + bodyOverhead
}

func (s *Server) publishMessage(c echo.Context) error {
	var body json.RawMessage
	if err := readJSON(c, s.messageBodyLimit(), &body); err != nil {
		return err
	}
	d, aerr := decodeMessage(body, s.cfg.MaxMessageBytes)
	if aerr != nil {
		return aerr
	}
	if values := c.Request().Header.Values(headerIdempotency); len(values) > 0 {
		if err := checkIdempotencyKey("idempotency_key", values[0]); err != nil {
			return err
		}
		d.key = values[0]
	}
	ctx, span := tracing.StartServer(c.Request(), "POST /v1/messages")
	defer span.End()
	exists, err := s.catalog.TopicExists(ctx, d.topicID)
	if err != nil {
		return storeError(err)
	}
	if !exists {
		return unknownTopic(d.topicID)
	}
	msgs, aerr := s.pub.accept(ctx, []draft{d}, false)
	if aerr != nil {
		return aerr
	}
	return c.JSON(http.StatusOK, publishedOut(msgs[0]))
}

func (s *Server) publishBatch(c echo.Context) error {
	var body json.RawMessage
	if err := readJSON(c, batchBodyLimit, &body); err != nil {
		return err
	}
	drafts, aerr := decodeBatch(body, s.cfg.MaxMessageBytes)
	if aerr != nil {
		return aerr
	}
	var topics []string
	seen := map[string]bool{}
	for _, d := range drafts {
		if !seen[d.topicID] {
			seen[d.topicID] = true
			topics = append(topics, d.topicID)
		}
	}
	ctx, span := tracing.StartServer(c.Request(), "POST /v1/messages:batch")
	defer span.End()
	existing, err := s.catalog.ExistingTopics(ctx, topics)
	if err != nil {
		return storeError(err)
	}
	found := make(map[string]bool, len(existing))
	for _, id := range existing {
		found[id] = true
	}
	for i, d := range drafts {
		if !found[d.topicID] {
			return atIndex(unknownTopic(d.topicID), i)
		}
	}
	msgs, aerr := s.pub.accept(ctx, drafts, true)
	if aerr != nil {
		return aerr
	}
	out := make([]Message, len(msgs))
	for i, m := range msgs {
		out[i] = publishedOut(m)
	}
	return c.JSON(http.StatusOK, map[string][]Message{"messages": out})
}
