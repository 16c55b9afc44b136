package deliverer

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/hammer-webhooks/hammer/platform/events"
)

// errMessageGone reports a message that is no longer in MESSAGES (deleted,
// or aged out): its delivery ends failed with message_deleted.
var errMessageGone = errors.New("message is no longer in the MESSAGES stream")

// Sizes of the message cache.
const (
	bodyCacheBytes   = 64 << 20
	bodyCacheEntries = 100_000
	// bodyCacheTTL bounds how long a cached message is trusted: long enough
	// for the deliveries of one fanout, short enough that a deleted message
	// is noticed by the next attempt.
	bodyCacheTTL = 30 * time.Second
)

// bodies reads messages from MESSAGES by sequence (a direct get) through an
// LRU cache bounded in bytes: a message to many subscriptions is read once
// for all their first attempts. Retries read the stream again, so that a
// message deleted since is noticed. prefetch fills the cache as messages
// are accepted, so that first attempts need no read at all.
type bodies struct {
	stream jetstream.Stream

	mu    sync.Mutex
	lru   *simplelru.LRU[uint64, cachedMessage]
	bytes int
	max   int
	ttl   time.Duration

	// prefetched is the stream sequence prefetch saw last.
	prefetched atomic.Uint64
}

type cachedMessage struct {
	msg     events.Message
	fetched time.Time
}

func newBodies(stream jetstream.Stream, maxBytes int) *bodies {
	b := &bodies{stream: stream, max: maxBytes, ttl: bodyCacheTTL}
	lru, err := simplelru.NewLRU[uint64, cachedMessage](bodyCacheEntries, func(_ uint64, v cachedMessage) {
		b.bytes -= len(v.msg.Data)
	})
	if err != nil {
		panic(err) // only for a size below 1
	}
	b.lru = lru
	return b
}

// get returns the message ref names, or errMessageGone.
func (b *bodies) get(ctx context.Context, ref events.DeliveryRef, fresh bool) (events.Message, error) {
	if !fresh {
		if m, ok := b.cached(ref.MessageSequence); ok && m.ID == ref.MessageID {
			return m, nil
		}
	}
	raw, err := b.stream.GetMsg(ctx, ref.MessageSequence)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		b.forget(ref.MessageSequence)
		return events.Message{}, errMessageGone
	}
	if err != nil {
		return events.Message{}, fmt.Errorf("reading message %s (sequence %d): %w", ref.MessageID, ref.MessageSequence, err)
	}
	m, err := events.MessageFromHeaders(raw.Header, raw.Data)
	if err != nil || m.ID != ref.MessageID {
		// Another message at that sequence: the stream was recreated and
		// ours is gone.
		b.forget(ref.MessageSequence)
		return events.Message{}, errMessageGone
	}
	b.add(ref.MessageSequence, m)
	return m, nil
}

func (b *bodies) cached(seq uint64) (events.Message, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	c, ok := b.lru.Get(seq)
	if !ok {
		return events.Message{}, false
	}
	if time.Since(c.fetched) > b.ttl {
		b.lru.Remove(seq)
		return events.Message{}, false
	}
	return c.msg, true
}

func (b *bodies) add(seq uint64, m events.Message) {
	if len(m.Data) > b.max/4 {
		return // one message must not flush the cache
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.lru.Remove(seq) // keeps the byte count right when replacing
	b.lru.Add(seq, cachedMessage{msg: m, fetched: time.Now()})
	b.bytes += len(m.Data)
	for b.bytes > b.max {
		if _, _, ok := b.lru.RemoveOldest(); !ok {
			break
		}
	}
}

// The prefetching consumer: named for what it is, and gone soon after the
// deliverer that read it.
const (
	prefetchName     = "deliverer-bodies"
	prefetchInactive = 10 * time.Second
)

// prefetchShare is the part of the cache prefetching may fill: it never
// evicts, so bodies that waiting deliveries were given stay, and beyond it
// deliveries read their bodies one by one as before.
const prefetchShare = 0.75

// prefetch reads MESSAGES from now on into the cache until ctx ends. A
// direct get costs a round trip through the stream's single loop, which
// also stores every message accepted: while the API takes messages fast,
// deliveries waiting each on its own body stall. Reading them in bulk as
// they arrive costs one delivery of an unacknowledged ordered consumer per
// message instead.
func (b *bodies) prefetch(ctx context.Context, js jetstream.JetStream, log *zap.Logger) {
	for ctx.Err() == nil {
		if err := b.consume(ctx, js); err != nil && ctx.Err() == nil {
			log.Warn("prefetching message bodies; deliveries read them one by one meanwhile", zap.Error(err))
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

func (b *bodies) consume(ctx context.Context, js jetstream.JetStream) error {
	cons, err := js.OrderedConsumer(ctx, events.StreamMessages, jetstream.OrderedConsumerConfig{
		NamePrefix:    prefetchName,
		DeliverPolicy: jetstream.DeliverNewPolicy,
		// The server drops it this long after its deliverer went away.
		InactiveThreshold: prefetchInactive,
	})
	if err != nil {
		return fmt.Errorf("creating an ordered consumer of %s: %w", events.StreamMessages, err)
	}
	defer func() {
		// Stopping leaves the consumer on the server: remove it now rather
		// than when it has been inactive long enough.
		if info := cons.CachedInfo(); info != nil {
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			_ = js.DeleteConsumer(dctx, events.StreamMessages, info.Name)
			cancel()
		}
	}()
	cc, err := cons.Consume(func(msg jetstream.Msg) {
		meta, err := msg.Metadata()
		if err != nil {
			return
		}
		defer b.prefetched.Store(meta.Sequence.Stream)
		if m, err := events.MessageFromHeaders(msg.Headers(), msg.Data()); err == nil {
			b.offer(meta.Sequence.Stream, m)
		}
	}, jetstream.PullMaxMessagesWithBytesLimit(1024, 16<<20))
	if err != nil {
		return fmt.Errorf("consuming %s: %w", events.StreamMessages, err)
	}
	defer cc.Stop()
	select {
	case <-ctx.Done():
		return nil
	case <-cc.Closed():
		return errors.New("the ordered consumer stopped")
	}
}

// offer caches a prefetched message if it fits in the prefetch share.
func (b *bodies) offer(seq uint64, m events.Message) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if float64(b.bytes+len(m.Data)) > prefetchShare*float64(b.max) ||
		float64(b.lru.Len()) >= prefetchShare*bodyCacheEntries || b.lru.Contains(seq) {
		return
	}
	b.lru.Add(seq, cachedMessage{msg: m, fetched: time.Now()})
	b.bytes += len(m.Data)
}

func (b *bodies) forget(seq uint64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.lru.Remove(seq)
}
