package topology_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/hammer-webhooks/hammer/platform/events"
	"github.com/hammer-webhooks/hammer/platform/testkit"
	"github.com/hammer-webhooks/hammer/platform/topology"
)

func TestEnsureIsIdempotentAndUpdates(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	n := testkit.StartNATS(t, t.TempDir())
	cfg := topology.DefaultConfig()

	require.NoError(t, topology.Ensure(ctx, n.JS, cfg))
	require.NoError(t, topology.Ensure(ctx, n.JS, cfg), "applying twice changes nothing")
	c0, err := n.JS.Consumer(ctx, events.StreamDeliveries, topology.ConsumerDeliverer)
	require.NoError(t, err)
	require.Equal(t, topology.DefaultDelivererAckWait, c0.CachedInfo().Config.AckWait, "a new deliverer consumer gets the default")

	for _, name := range []string{events.StreamMessages, events.StreamDeliveries, events.StreamEvents} {
		s, err := n.JS.Stream(ctx, name)
		require.NoError(t, err)
		info, err := s.Info(ctx)
		require.NoError(t, err)
		require.Equal(t, 7*24*time.Hour, info.Config.MaxAge)
		require.Equal(t, jetstream.FileStorage, info.Config.Storage)
		require.Equal(t, jetstream.LimitsPolicy, info.Config.Retention)
	}

	s, err := n.JS.Stream(ctx, events.StreamDeliveries)
	require.NoError(t, err)
	c, err := s.Consumer(ctx, topology.ConsumerDeliverer)
	require.NoError(t, err)
	info, err := c.Info(ctx)
	require.NoError(t, err)
	require.Empty(t, info.Config.BackOff, "BackOff would add to NakWithDelay")
	require.Equal(t, -1, info.Config.MaxDeliver, "the deliverer counts attempts itself")
	require.GreaterOrEqual(t, info.Config.MaxAckPending, 100_000, "held retries must not starve fresh work")
	require.Equal(t, jetstream.AckExplicitPolicy, info.Config.AckPolicy)

	for stream, consumers := range topology.Consumers(cfg) {
		s, err := n.JS.Stream(ctx, stream)
		require.NoError(t, err)
		for _, cc := range consumers {
			_, err := s.Consumer(ctx, cc.Durable)
			require.NoError(t, err, "consumer %s on %s", cc.Durable, stream)
		}
	}

	// A changed setting is applied to the existing streams and consumers.
	cfg.MaxAge = 48 * time.Hour
	cfg.DelivererAckWait = 2 * time.Minute
	require.NoError(t, topology.Ensure(ctx, n.JS, cfg))
	sinfo, err := s.Info(ctx)
	require.NoError(t, err)
	require.Equal(t, 48*time.Hour, sinfo.Config.MaxAge)
	info, err = c.Info(ctx)
	require.NoError(t, err)
	require.Equal(t, 2*time.Minute, info.Config.AckWait)

	// Another service (which does not read HAMMER_DELIVERY_ACK_WAIT) applying
	// the topology keeps the deliverer's AckWait.
	cfg.DelivererAckWait = 0
	require.NoError(t, topology.Ensure(ctx, n.JS, cfg))
	info, err = c.Info(ctx)
	require.NoError(t, err)
	require.Equal(t, 2*time.Minute, info.Config.AckWait, "another service reset the deliverer's AckWait")

	kv, err := n.JS.KeyValue(ctx, events.BucketIdempotency)
	require.NoError(t, err)
	st, err := kv.Status(ctx)
	require.NoError(t, err)
	require.Equal(t, topology.IdempotencyWindow, st.TTL())
	_, err = n.JS.KeyValue(ctx, events.BucketSubscriptions)
	require.NoError(t, err)
}

func TestEnsureRefusesBadReplicas(t *testing.T) {
	t.Parallel()
	n := testkit.StartNATS(t, t.TempDir())
	cfg := topology.DefaultConfig()
	cfg.Replicas = 0
	require.ErrorContains(t, topology.Ensure(context.Background(), n.JS, cfg), "replicas")
}

func TestStreamsHaveSubjectsWithoutOverlap(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	n := testkit.NewNATS(t)
	// Each hammer subject lands in exactly the stream meant for it.
	for subject, stream := range map[string]string{
		events.MessageSubject("a.b"):                        events.StreamMessages,
		events.DeliverySubject("a.b"):                       events.StreamDeliveries,
		events.EventSubject(events.KindDeliveryFailed, "x"): events.StreamEvents,
	} {
		ack, err := n.JS.Publish(ctx, subject, []byte("{}"))
		require.NoError(t, err, subject)
		require.Equal(t, stream, ack.Stream, subject)
	}
}
