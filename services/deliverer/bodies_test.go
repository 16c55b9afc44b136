package deliverer

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hammer-webhooks/hammer/platform/events"
	"github.com/hammer-webhooks/hammer/platform/testkit"
)

func publishMessage(t *testing.T, n *testkit.NATS, data string) (events.Message, uint64) {
	t.Helper()
	now := time.Now().UTC().Truncate(time.Microsecond)
	m := events.Message{ID: events.NewMessageID(now), TopicID: "topic", ContentType: "application/json", CreatedAt: now, Data: []byte(data)}
	ack, err := n.JS.PublishMsg(context.Background(), m.NATSMsg())
	require.NoError(t, err)
	return m, ack.Sequence
}

func TestPrefetchCachesMessagesAsTheyAreAccepted(t *testing.T) {
	t.Parallel()
	n := testkit.NewNATS(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stream, err := n.JS.Stream(ctx, events.StreamMessages)
	require.NoError(t, err)
	b := newBodies(stream, 1000)
	before, beforeSeq := publishMessage(t, n, "published before the deliverer started")

	done := make(chan struct{})
	go func() { defer close(done); b.prefetch(ctx, n.JS, testkit.Logger(t)) }()
	// The ordered consumer starts with new messages: publish until one is
	// seen, so the test does not depend on when it was created.
	published := map[uint64]events.Message{}
	var seq uint64
	testkit.Eventually(t, 10*time.Second, func() bool {
		for s := range published {
			if _, ok := b.cached(s); ok {
				seq = s
				return true
			}
		}
		m, s := publishMessage(t, n, "hello")
		published[s] = m
		return false
	}, "a message accepted after the start is cached")
	got, ok := b.cached(seq)
	require.True(t, ok)
	require.Equal(t, published[seq], got)
	_, ok = b.cached(beforeSeq)
	require.False(t, ok, "older messages are read when a delivery needs them")
	read, err := b.get(ctx, events.DeliveryRef{MessageID: before.ID, MessageSequence: beforeSeq}, false)
	require.NoError(t, err)
	require.Equal(t, before.ID, read.ID)

	// Prefetching fills its share of the cache and never evicts for it.
	for i := range 20 {
		publishMessage(t, n, fmt.Sprintf("%0100d", i))
	}
	last, lastSeq := publishMessage(t, n, "the last")
	testkit.Eventually(t, 10*time.Second, func() bool { return b.prefetched.Load() == lastSeq }, "every message prefetched")
	b.mu.Lock()
	held := b.bytes
	b.mu.Unlock()
	require.LessOrEqual(t, held, int(prefetchShare*1000))
	_, ok = b.cached(seq)
	require.True(t, ok, "a body cached earlier stays")
	_, ok = b.cached(lastSeq)
	require.False(t, ok, "a body beyond the share is not prefetched")
	read, err = b.get(ctx, events.DeliveryRef{MessageID: last.ID, MessageSequence: lastSeq}, false)
	require.NoError(t, err, "and is read when needed")
	require.Equal(t, "the last", string(read.Data))

	prefetching := func() (found bool) {
		names := stream.ConsumerNames(context.Background())
		for name := range names.Name() {
			found = found || strings.HasPrefix(name, prefetchName)
		}
		require.NoError(t, names.Err())
		return found
	}
	require.True(t, prefetching(), "a consumer named for prefetching reads MESSAGES")
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("prefetch did not stop")
	}
	require.False(t, prefetching(), "the prefetching consumer outlived prefetch")
}
