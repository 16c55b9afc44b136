package fanout

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/hammer-webhooks/hammer/platform/config"
	"github.com/hammer-webhooks/hammer/platform/events"
	"github.com/hammer-webhooks/hammer/platform/ops"
	"github.com/hammer-webhooks/hammer/platform/testkit"
	"github.com/hammer-webhooks/hammer/platform/topology"
	"github.com/hammer-webhooks/hammer/sql/dbsqlc"
)

const waitFor = 15 * time.Second

// queryCounter counts the subscription lookups fanout makes, as Postgres
// sees them.
type queryCounter struct{ lookups atomic.Int64 }

func (c *queryCounter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	if strings.Contains(data.SQL, "name: SubscriptionListByTopicIDs") {
		c.lookups.Add(1)
	}
	return ctx
}

func (c *queryCounter) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

type bundle struct {
	db      *dbsqlc.Queries
	pool    *pgxpool.Pool
	nats    *testkit.NATS
	svc     *Service
	reg     *prometheus.Registry
	counter *queryCounter
}

func setup(t *testing.T) *bundle {
	t.Helper()
	db := testkit.NewDB(t)
	n := testkit.NewNATS(t)

	counter := &queryCounter{}
	pcfg, err := pgxpool.ParseConfig(db.URL)
	require.NoError(t, err)
	pcfg.ConnConfig.Tracer = counter
	pool, err := pgxpool.NewWithConfig(context.Background(), pcfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)

	var cfg config.Fanout
	require.NoError(t, config.LoadFrom(&cfg, map[string]string{
		"HAMMER_DATABASE_URL": db.URL,
		"HAMMER_NATS_URL":     n.URL,
	}))
	reg := prometheus.NewRegistry()
	svc, err := New(Options{Config: cfg, Pool: pool, NATS: n.Conn, Logger: testkit.Logger(t), Registry: reg})
	require.NoError(t, err)
	return &bundle{db: dbsqlc.New(db.Pool), pool: db.Pool, nats: n, svc: svc, reg: reg, counter: counter}
}

// run starts the service and stops it when the test ends, checking that it
// returns nil on cancel.
func (b *bundle) run(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.svc.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(waitFor):
			t.Error("fanout did not stop")
		}
	})
}

func (b *bundle) topic(t *testing.T, id string) {
	t.Helper()
	_, err := b.db.TopicInsert(context.Background(), dbsqlc.TopicInsertParams{ID: id, Name: id, CreatedAt: time.Now()})
	require.NoError(t, err)
}

func (b *bundle) subscription(t *testing.T, id, topicID string, createdAt time.Time) dbsqlc.Subscription {
	t.Helper()
	sub, err := b.db.SubscriptionInsert(context.Background(), dbsqlc.SubscriptionInsertParams{
		ID: id, TopicID: topicID, Name: "name of " + id, Url: "http://127.0.0.1:1/" + id,
		SecretToken: "token-" + id, SigningSecret: "whsec_c2VjcmV0",
		MaxDeliveryAttempts: 4, DeliveryAttemptDelay: 7, DeliveryAttemptTimeout: 3,
		MaxConcurrentRequests: 8, CreatedAt: createdAt,
	})
	require.NoError(t, err)
	return sub
}

func newMessage(topicID string, createdAt time.Time) events.Message {
	createdAt = createdAt.UTC().Truncate(time.Microsecond)
	return events.Message{
		ID: events.NewMessageID(createdAt), TopicID: topicID, ContentType: "application/json",
		CreatedAt: createdAt, Data: []byte(`{"hello":"world"}`),
	}
}

// publish puts m on MESSAGES as the API does and returns its sequence.
func (b *bundle) publish(t *testing.T, m events.Message) uint64 {
	t.Helper()
	ack, err := b.nats.JS.PublishMsg(context.Background(), m.NATSMsg())
	require.NoError(t, err)
	require.False(t, ack.Duplicate)
	return ack.Sequence
}

type published struct {
	subject, msgID string
	delivery       events.Delivery
}

// deliveries waits until DELIVERIES holds exactly n events and returns them.
func (b *bundle) deliveries(t *testing.T, n int) []published {
	t.Helper()
	ctx := context.Background()
	stream, err := b.nats.JS.Stream(ctx, events.StreamDeliveries)
	require.NoError(t, err)
	var count uint64
	testkit.Eventually(t, waitFor, func() bool {
		info, err := stream.Info(ctx)
		require.NoError(t, err)
		count = info.State.Msgs
		return count >= uint64(n)
	}, "waiting for %d delivery events", n)
	require.EqualValues(t, n, count, "delivery events")
	out := make([]published, 0, n)
	for seq := uint64(1); seq <= uint64(n); seq++ {
		raw, err := stream.GetMsg(ctx, seq)
		require.NoError(t, err)
		var d events.Delivery
		require.NoError(t, events.Decode(raw.Data, &d))
		out = append(out, published{subject: raw.Subject, msgID: raw.Header.Get(events.HeaderMsgID), delivery: d})
	}
	return out
}

// settled waits until fanout's consumer has nothing pending or unacked and
// has acknowledged everything up to stream sequence upTo.
func (b *bundle) settled(t *testing.T, upTo uint64) {
	t.Helper()
	ctx := context.Background()
	consumer, err := b.nats.JS.Consumer(ctx, events.StreamMessages, topology.ConsumerFanout)
	require.NoError(t, err)
	testkit.Eventually(t, waitFor, func() bool {
		info, err := consumer.Info(ctx)
		require.NoError(t, err)
		return info.NumPending == 0 && info.NumAckPending == 0 && info.AckFloor.Stream >= upTo
	}, "waiting for fanout to ack up to sequence %d", upTo)
}

func (b *bundle) messages(result string) float64 {
	return testutil.ToFloat64(b.svc.metrics.messages.WithLabelValues(result))
}

func TestFansOutToEverySubscription(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.run(t)

	// IDs with the characters that are unsafe in subjects.
	b.topic(t, "orders.v1+eu-west")
	b.topic(t, "other")
	created := time.Now().Add(-time.Minute).UTC().Truncate(time.Microsecond)
	subs := map[string]dbsqlc.Subscription{}
	for _, id := range []string{"sub.a", "sub+b", "sub-c"} {
		subs[id] = b.subscription(t, id, "orders.v1+eu-west", created)
	}
	b.subscription(t, "elsewhere", "other", created)

	m := newMessage("orders.v1+eu-west", time.Now())
	before := time.Now().UTC().Truncate(time.Microsecond)
	seq := b.publish(t, m)

	got := b.deliveries(t, 3)
	b.settled(t, seq)
	after := time.Now().UTC()
	seen := map[string]bool{}
	for _, p := range got {
		d := p.delivery
		sub, ok := subs[d.SubscriptionID]
		require.True(t, ok, "delivery for unexpected subscription %q", d.SubscriptionID)
		require.False(t, seen[d.SubscriptionID], "two deliveries for %s", d.SubscriptionID)
		seen[d.SubscriptionID] = true

		wantID := events.DeliveryID(m.ID, m.CreatedAt, sub.ID)
		require.Equal(t, wantID, d.DeliveryID)
		require.Equal(t, events.DeliverySubject(sub.ID), p.subject)
		require.Equal(t, events.DeliveryMsgID(wantID, 1), p.msgID)
		require.Equal(t, events.Version, d.V)
		require.Equal(t, 1, d.Attempt)
		require.Equal(t, m.ID, d.MessageID)
		require.Equal(t, m.TopicID, d.TopicID)
		require.Equal(t, seq, d.MessageSequence)
		require.True(t, m.CreatedAt.Equal(d.MessageCreatedAt))
		require.Equal(t, events.Target{
			URL: sub.Url, MaxDeliveryAttempts: 4,
			DeliveryAttemptDelay: 7, DeliveryAttemptTimeout: 3,
		}, d.Target)
		require.True(t, d.NotBefore.Equal(d.DeliveryCreatedAt), "attempt 1 is due when the delivery is created")
		require.False(t, d.DeliveryCreatedAt.Before(before), "created %s, before the publish at %s", d.DeliveryCreatedAt, before)
		require.False(t, d.DeliveryCreatedAt.After(after))
		require.Equal(t, d.DeliveryCreatedAt, d.DeliveryCreatedAt.Truncate(time.Microsecond), "microsecond precision")
	}
	require.Equal(t, 1.0, b.messages(resultFannedOut))
	require.Equal(t, 3.0, testutil.ToFloat64(b.svc.metrics.deliveries))
}

func TestSkipsSubscriptionsCreatedAfterTheMessage(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.run(t)

	b.topic(t, "t")
	m := newMessage("t", time.Now())
	b.subscription(t, "older", "t", m.CreatedAt.Add(-time.Second))
	b.subscription(t, "same-instant", "t", m.CreatedAt)
	b.subscription(t, "newer", "t", m.CreatedAt.Add(time.Microsecond))
	seq := b.publish(t, m)

	b.settled(t, seq)
	got := b.deliveries(t, 2)
	ids := []string{got[0].delivery.SubscriptionID, got[1].delivery.SubscriptionID}
	require.ElementsMatch(t, []string{"older", "same-instant"}, ids)
}

func TestAcksMessagesWithoutSubscriptions(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.run(t)

	b.topic(t, "lonely")
	seq := b.publish(t, newMessage("lonely", time.Now()))
	b.publish(t, newMessage("deleted-topic", time.Now())) // the API checked it; it was deleted since
	b.settled(t, seq+1)
	b.deliveries(t, 0)
	require.Equal(t, 2.0, b.messages(resultFannedOut))
	require.Equal(t, 0.0, testutil.ToFloat64(b.svc.metrics.deliveries))
}

func TestSameMessageTwiceMakesTheSameDeliveries(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.run(t)

	b.topic(t, "t")
	b.subscription(t, "s1", "t", time.Now().Add(-time.Minute))
	b.subscription(t, "s2", "t", time.Now().Add(-time.Minute))
	m := newMessage("t", time.Now())
	seq := b.publish(t, m)
	first := b.deliveries(t, 2)
	b.settled(t, seq)

	// The same message as a second stream entry, as a publisher retrying
	// after the duplicate window would make it.
	again := m.NATSMsg()
	again.Header.Set(events.HeaderMsgID, m.ID+"-retried")
	ack, err := b.nats.JS.PublishMsg(context.Background(), again)
	require.NoError(t, err)
	require.Equal(t, seq+1, ack.Sequence)
	b.settled(t, ack.Sequence)

	// fanout published both deliveries again, under the same IDs, so
	// JetStream dropped them as duplicates.
	require.Equal(t, 4.0, testutil.ToFloat64(b.svc.metrics.deliveries))
	second := b.deliveries(t, 2)
	require.Equal(t, first, second)

	// Outside the duplicate window the IDs are what keeps one delivery:
	// they do not depend on when or from which stream entry fanout ran.
	item := &accepted{message: m, sequence: seq + 1}
	sub, err := b.svc.catalog.Subscription(context.Background(), "s1")
	require.NoError(t, err)
	later := deliveryMsg(item, sub, time.Now().Add(time.Hour))
	var d events.Delivery
	require.NoError(t, events.Decode(later.Data, &d))
	require.Equal(t, events.DeliveryID(m.ID, m.CreatedAt, "s1"), d.DeliveryID)
	require.Equal(t, events.DeliveryMsgID(d.DeliveryID, 1), later.Header.Get(events.HeaderMsgID))
}

func TestOneSubscriptionQueryPerBatch(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()

	const topics, perTopic, messages = 4, 2, 40
	for i := range topics {
		topic := string(rune('a' + i))
		b.topic(t, topic)
		for j := range perTopic {
			b.subscription(t, topic+"-"+string(rune('0'+j)), topic, time.Now().Add(-time.Minute))
		}
	}
	var last uint64
	for i := range messages {
		last = b.publish(t, newMessage(string(rune('a'+i%topics)), time.Now()))
	}

	// One batch of every message, cut by hand so its size is known.
	consumer, err := b.nats.JS.Consumer(ctx, events.StreamMessages, topology.ConsumerFanout)
	require.NoError(t, err)
	var batch []jetstream.Msg
	for len(batch) < messages {
		fetched, err := consumer.Fetch(messages-len(batch), jetstream.FetchMaxWait(5*time.Second))
		require.NoError(t, err)
		for msg := range fetched.Messages() {
			batch = append(batch, msg)
		}
		require.NoError(t, fetched.Error())
	}
	b.svc.handleBatch(ctx, batch)

	require.EqualValues(t, 1, b.counter.lookups.Load(), "subscription queries for one batch")
	b.deliveries(t, messages*perTopic)
	b.settled(t, last)
	require.Equal(t, float64(messages), b.messages(resultFannedOut))
}

func TestRunBatchesUnderLoad(t *testing.T) {
	t.Parallel()
	b := setup(t)

	const messages = 300
	b.topic(t, "a")
	b.topic(t, "b")
	b.subscription(t, "sa", "a", time.Now().Add(-time.Minute))
	b.subscription(t, "sb", "b", time.Now().Add(-time.Minute))
	var last uint64
	for i := range messages {
		last = b.publish(t, newMessage([]string{"a", "b"}[i%2], time.Now()))
	}
	b.run(t)
	b.settled(t, last)
	b.deliveries(t, messages)

	batches := histogramCount(t, b.reg, "hammer_fanout_batch_size")
	require.EqualValues(t, batches, b.counter.lookups.Load(), "one subscription query per batch")
	require.Less(t, batches, uint64(messages/4), "messages waiting together are handled together")
	t.Logf("%d messages in %d batches", messages, batches)
	require.Equal(t, float64(messages), b.messages(resultFannedOut))
}

func TestTerminatesMalformedMessages(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.run(t)

	b.topic(t, "t")
	b.subscription(t, "s", "t", time.Now().Add(-time.Minute))
	bad := nats.NewMsg(events.MessageSubject("t"))
	bad.Data = []byte("no headers")
	_, err := b.nats.JS.PublishMsg(context.Background(), bad)
	require.NoError(t, err)
	seq := b.publish(t, newMessage("t", time.Now()))

	b.settled(t, seq)
	got := b.deliveries(t, 1)
	require.Equal(t, "s", got[0].delivery.SubscriptionID)
	require.Equal(t, 1.0, b.messages(resultMalformed))
	require.Equal(t, 1.0, b.messages(resultFannedOut))
}

func TestRetriesWhenSubscriptionsCannotBeLoaded(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	b.topic(t, "t")
	b.subscription(t, "s", "t", time.Now().Add(-time.Minute))
	_, err := b.pool.Exec(ctx, "ALTER TABLE subscriptions RENAME TO subscriptions_away")
	require.NoError(t, err)
	b.run(t)

	seq := b.publish(t, newMessage("t", time.Now()))
	testkit.Eventually(t, waitFor, func() bool { return b.messages(resultRetried) >= 1 }, "waiting for a retry")
	consumer, err := b.nats.JS.Consumer(ctx, events.StreamMessages, topology.ConsumerFanout)
	require.NoError(t, err)
	info, err := consumer.Info(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 1, info.NumAckPending, "the message is held for redelivery, not acked")
	b.deliveries(t, 0)

	_, err = b.pool.Exec(ctx, "ALTER TABLE subscriptions_away RENAME TO subscriptions")
	require.NoError(t, err)
	b.settled(t, seq)
	got := b.deliveries(t, 1)
	require.Equal(t, "s", got[0].delivery.SubscriptionID)
	require.Equal(t, 1.0, b.messages(resultFannedOut))
}

func TestChecks(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	status, body := ops.Ready(ctx, b.svc.Checks())
	require.Equal(t, 200, status, body)
	require.Contains(t, body["checks"], "postgres")
	require.Contains(t, body["checks"], "nats")

	b.nats.Conn.Close()
	status, body = ops.Ready(ctx, b.svc.Checks())
	require.Equal(t, 503, status)
	require.Equal(t, "ok", body["checks"].(map[string]string)["postgres"])
}

func TestRetryDelay(t *testing.T) {
	t.Parallel()
	for delivered, want := range map[uint64]time.Duration{
		0: time.Second, 1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second,
		5: 16 * time.Second, 6: 30 * time.Second, 1000: 30 * time.Second,
	} {
		require.Equal(t, want, retryDelay(delivered), "after %d deliveries", delivered)
	}
}

func histogramCount(t *testing.T, reg *prometheus.Registry, name string) uint64 {
	t.Helper()
	families, err := reg.Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() == name {
			return f.GetMetric()[0].GetHistogram().GetSampleCount()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

func TestResumesAfterTheConsumerIsDeleted(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.run(t)
	ctx := context.Background()

	b.topic(t, "t")
	b.subscription(t, "s", "t", time.Now().Add(-time.Minute))
	first := b.publish(t, newMessage("t", time.Now()))
	b.settled(t, first)
	b.deliveries(t, 1)

	require.NoError(t, b.nats.JS.DeleteConsumer(ctx, events.StreamMessages, topology.ConsumerFanout))
	second := b.publish(t, newMessage("t", time.Now()))
	// The consumer comes back from the start of the stream: the first
	// message is fanned out again under the same delivery ID and dropped
	// as a duplicate, the second one is new.
	testkit.Eventually(t, waitFor, func() bool {
		_, err := b.nats.JS.Consumer(ctx, events.StreamMessages, topology.ConsumerFanout)
		return err == nil
	}, "waiting for the consumer to be created again")
	b.settled(t, second)
	b.deliveries(t, 2)
}
