package app

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

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

// Message limits (DESIGN "The REST API").
const (
	// DefaultContentType is a message's when none is given.
	DefaultContentType = "application/json"
	// MaxBatchItems is the most messages one batch publishes.
	MaxBatchItems = 1000
)

// Payload is a message's data as a door received it. It is read only once
// the fields before it are checked, so every door reports the same first
// error for the same input.
type Payload interface {
	Bytes() ([]byte, *Error)
}

// Bytes is data received as raw bytes (gRPC).
type Bytes []byte

// Bytes returns b.
func (b Bytes) Bytes() ([]byte, *Error) { return b, nil }

// MessageInput is one message to publish; nil fields are not given.
type MessageInput struct {
	TopicID        *string
	ContentType    *string
	Data           Payload
	IdempotencyKey *string
}

// Batch is the messages of one batch publish, decoded by the door one at a
// time, in order, as the layer checks them.
type Batch interface {
	Len() int
	Item(i int) (MessageInput, *Error)
}

// Draft is a checked message, not yet accepted.
type Draft struct {
	TopicID     string
	ContentType string
	Data        []byte
	Key         string // Idempotency-Key; empty for none
}

// Hash identifies what a draft asks for, so the same Idempotency-Key with a
// different body can be told apart. Parts are length-prefixed.
func (d Draft) Hash() string {
	h := sha256.New()
	for _, p := range [][]byte{[]byte(d.TopicID), []byte(d.ContentType), d.Data} {
		h.Write([]byte(strconv.Itoa(len(p))))
		h.Write([]byte{':'})
		h.Write(p)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// CheckMessage checks one message of at most maxBytes of data.
func CheckMessage(in MessageInput, maxBytes int) (Draft, *Error) {
	d := Draft{ContentType: DefaultContentType}
	if in.TopicID == nil {
		return d, InvalidField("topic_id", "topic_id is required")
	}
	if err := CheckID("topic_id", *in.TopicID); err != nil {
		return d, err
	}
	d.TopicID = *in.TopicID
	if in.ContentType != nil {
		if err := checkContentType(*in.ContentType); err != nil {
			return d, err
		}
		d.ContentType = *in.ContentType
	}
	if in.Data == nil {
		return d, InvalidField("data", "data is required")
	}
	data, err := in.Data.Bytes()
	if err != nil {
		return d, err
	}
	if len(data) > maxBytes {
		return d, TooLargeError("data is %d bytes; the limit is %d", len(data), maxBytes)
	}
	d.Data = data
	if in.IdempotencyKey != nil {
		if err := CheckIdempotencyKey("idempotency_key", *in.IdempotencyKey); err != nil {
			return d, err
		}
		d.Key = *in.IdempotencyKey
	}
	return d, nil
}

// CheckBatch checks every message of b; the first bad one fails the whole
// batch, with its index.
func CheckBatch(b Batch, maxBytes int) ([]Draft, *Error) {
	n := b.Len()
	if n == 0 || n > MaxBatchItems {
		return nil, InvalidField("messages", `the body must be {"messages": [...]} with 1 to %d messages`, MaxBatchItems)
	}
	drafts := make([]Draft, n)
	for i := range n {
		in, err := b.Item(i)
		if err != nil {
			return nil, AtIndex(err, i)
		}
		d, err := CheckMessage(in, maxBytes)
		if err != nil {
			return nil, AtIndex(err, i)
		}
		drafts[i] = d
	}
	return drafts, nil
}

// Publish accepts one message: it answers once JetStream has acknowledged
// it, or with the original message for a known Idempotency-Key.
func (a *App) Publish(ctx context.Context, in MessageInput) (events.Message, error) {
	d, aerr := CheckMessage(in, a.maxBytes)
	if aerr != nil {
		return events.Message{}, aerr
	}
	exists, err := a.catalog.TopicExists(ctx, d.TopicID)
	if err != nil {
		return events.Message{}, storeError(err)
	}
	if !exists {
		return events.Message{}, unknownTopic(d.TopicID)
	}
	msgs, aerr := a.pub.accept(ctx, []Draft{d}, false)
	if aerr != nil {
		return events.Message{}, aerr
	}
	return msgs[0], nil
}

// PublishBatch accepts a batch: every message is checked before any is
// published, and the answer keeps the order.
func (a *App) PublishBatch(ctx context.Context, b Batch) ([]events.Message, error) {
	drafts, aerr := CheckBatch(b, a.maxBytes)
	if aerr != nil {
		return nil, aerr
	}
	var topics []string
	seen := map[string]bool{}
	for _, d := range drafts {
		if !seen[d.TopicID] {
			seen[d.TopicID] = true
			topics = append(topics, d.TopicID)
		}
	}
	existing, err := a.catalog.ExistingTopics(ctx, topics)
	if err != nil {
		return nil, storeError(err)
	}
	found := make(map[string]bool, len(existing))
	for _, id := range existing {
		found[id] = true
	}
	for i, d := range drafts {
		if !found[d.TopicID] {
			return nil, AtIndex(unknownTopic(d.TopicID), i)
		}
	}
	msgs, aerr := a.pub.accept(ctx, drafts, true)
	if aerr != nil {
		return nil, aerr
	}
	return msgs, nil
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

// Claim is the value of an Idempotency-Key in the idempotency bucket.
type Claim struct {
	MessageID   string    `json:"message_id"`
	TopicID     string    `json:"topic_id"`
	ContentType string    `json:"content_type"`
	CreatedAt   time.Time `json:"created_at"`
	BodyHash    string    `json:"body_hash"`
	State       string    `json:"state"`
}

const (
	ClaimPending   = "pending"
	ClaimPublished = "published"
)

// ClaimKey is the bucket key of an Idempotency-Key: a hash, since a
// header may hold characters a key may not.
func ClaimKey(key string) string {
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
func (p *publisher) accept(ctx context.Context, drafts []Draft, batch bool) ([]events.Message, *Error) {
	if err := p.connected(); err != nil {
		return nil, UnavailableError(err)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.timeout+time.Duration(len(drafts))*2*time.Millisecond)
	defer cancel()
	created := Now()
	// Monotonic entropy numbers a batch's IDs in its order, so lists
	// ordered by (created_at, id) show a batch as it was sent.
	ids := ulid.Monotonic(rand.Reader, 0)
	newMessage := func(d Draft) events.Message {
		return events.Message{
			ID: ulid.MustNew(ulid.Timestamp(created), ids).String(), TopicID: d.TopicID, ContentType: d.ContentType,
			IdempotencyKey: d.Key, CreatedAt: created, Data: d.Data,
		}
	}
	items := make([]item, len(drafts))
	byKey := map[string]int{}
	for i, d := range drafts {
		it := &items[i]
		it.same = -1
		if d.Key == "" {
			it.msg = newMessage(d)
			it.publish = true
			continue
		}
		if j, ok := byKey[d.Key]; ok {
			if drafts[j].Hash() != d.Hash() {
				p.release(items[:i])
				return nil, indexed(reused(), i, batch)
			}
			it.msg, it.same = items[j].msg, j
			continue
		}
		byKey[d.Key] = i
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
		e := UnavailableError(firstErr)
		if batch {
			e.Message = fmt.Sprintf("%d of %d messages were not accepted; retrying the batch with idempotency keys is safe", failed, len(items))
		}
		return nil, e
	}
	return out, nil
}

func indexed(e *Error, i int, batch bool) *Error {
	if batch {
		return AtIndex(e, i)
	}
	return e
}

// claim takes d's Idempotency-Key for msg, or finds the message an earlier
// request took it for.
func (p *publisher) claim(ctx context.Context, d Draft, msg events.Message, it *item) *Error {
	kv, err := p.bucket(ctx)
	if err != nil {
		return UnavailableError(err)
	}
	key := ClaimKey(d.Key)
	mine := Claim{MessageID: msg.ID, TopicID: d.TopicID, ContentType: d.ContentType, CreatedAt: msg.CreatedAt, BodyHash: d.Hash(), State: ClaimPending}
	val, _ := json.Marshal(mine)
	for range 3 {
		rev, err := kv.Create(ctx, key, val)
		if err == nil {
			*it = item{msg: msg, publish: true, same: -1, claimed: key, rev: rev, fresh: true}
			return nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return UnavailableError(fmt.Errorf("claiming idempotency key: %w", err))
		}
		entry, err := kv.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
			continue // released or expired since: claim it again
		} else if err != nil {
			return UnavailableError(fmt.Errorf("reading idempotency key: %w", err))
		}
		var theirs Claim
		if err := json.Unmarshal(entry.Value(), &theirs); err != nil {
			return InternalError(fmt.Errorf("decoding idempotency claim: %w", err))
		}
		if theirs.BodyHash != mine.BodyHash {
			return reused()
		}
		p.replayed.Inc()
		original := events.Message{
			ID: theirs.MessageID, TopicID: theirs.TopicID, ContentType: theirs.ContentType,
			IdempotencyKey: d.Key, CreatedAt: theirs.CreatedAt.UTC(), Data: d.Data,
		}
		*it = item{msg: original, same: -1}
		if theirs.State == ClaimPending {
			it.publish, it.claimed, it.rev = true, key, entry.Revision()
		}
		return nil
	}
	return UnavailableError(errors.New("idempotency key keeps changing; try again"))
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
		val, _ := json.Marshal(Claim{
			MessageID: it.msg.ID, TopicID: it.msg.TopicID, ContentType: it.msg.ContentType,
			CreatedAt: it.msg.CreatedAt, BodyHash: draftOf(it.msg).Hash(), State: ClaimPublished,
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

func draftOf(m events.Message) Draft {
	return Draft{TopicID: m.TopicID, ContentType: m.ContentType, Data: m.Data, Key: m.IdempotencyKey}
}
