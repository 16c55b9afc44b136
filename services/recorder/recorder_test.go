package recorder

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
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

type bundle struct {
	db   *testkit.DB
	q    *dbsqlc.Queries
	nats *testkit.NATS
	cfg  config.Recorder
	svc  *Service
	reg  *prometheus.Registry
}

// setup gives a test its own Postgres and JetStream and a recorder over
// them, not yet running; batch size and flush interval are the test's.
func setup(t *testing.T, batchSize int, interval time.Duration) *bundle {
	t.Helper()
	b := &bundle{db: testkit.NewDB(t), nats: testkit.NewNATS(t)}
	b.q = dbsqlc.New(b.db.Pool)
	require.NoError(t, config.LoadFrom(&b.cfg, map[string]string{
		"HAMMER_DATABASE_URL":            b.db.URL,
		"HAMMER_NATS_URL":                b.nats.URL,
		"HAMMER_RECORDER_BATCH_SIZE":     fmt.Sprint(batchSize),
		"HAMMER_RECORDER_FLUSH_INTERVAL": interval.String(),
	}))
	b.svc, b.reg = b.newService(t)
	return b
}

func (b *bundle) newService(t *testing.T) (*Service, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	svc, err := New(Options{Config: b.cfg, Pool: b.db.Pool, NATS: b.nats.Conn, Logger: testkit.Logger(t), Registry: reg})
	require.NoError(t, err)
	return svc, reg
}

// run starts svc; the returned function stops it and checks it returned nil
// (it also runs at the end of the test).
func run(t *testing.T, svc *Service) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(waitFor):
			t.Error("recorder did not stop")
		}
	}
	t.Cleanup(stop)
	return stop
}

func (b *bundle) topic(t *testing.T, id string) {
	t.Helper()
	_, err := b.q.TopicInsert(context.Background(), dbsqlc.TopicInsertParams{ID: id, Name: id, CreatedAt: time.Now()})
	require.NoError(t, err)
}

func (b *bundle) subscription(t *testing.T, id, topicID string) {
	t.Helper()
	_, err := b.q.SubscriptionInsert(context.Background(), dbsqlc.SubscriptionInsertParams{
		ID: id, TopicID: topicID, Name: id, Url: "http://127.0.0.1:1/" + id, SecretToken: "token",
		SigningSecret: "whsec_c2VjcmV0", MaxDeliveryAttempts: 3, DeliveryAttemptDelay: 1,
		DeliveryAttemptTimeout: 1, MaxConcurrentRequests: 8, CreatedAt: time.Now().Add(-time.Hour),
	})
	require.NoError(t, err)
}

func (b *bundle) publish(t *testing.T, msg *nats.Msg) uint64 {
	t.Helper()
	ack, err := b.nats.JS.PublishMsg(context.Background(), msg)
	require.NoError(t, err)
	return ack.Sequence
}

func eventMsg(t *testing.T, subject, msgID string, payload any) *nats.Msg {
	t.Helper()
	data, err := events.Encode(payload)
	require.NoError(t, err)
	msg := nats.NewMsg(subject)
	msg.Data = data
	msg.Header.Set(events.HeaderMsgID, msgID)
	return msg
}

func (b *bundle) message(t *testing.T, m events.Message) uint64 {
	t.Helper()
	return b.publish(t, m.NATSMsg())
}

func (b *bundle) delivery(t *testing.T, d events.Delivery) {
	t.Helper()
	b.publish(t, eventMsg(t, events.DeliverySubject(d.SubscriptionID), events.DeliveryMsgID(d.DeliveryID, d.Attempt), &d))
}

func (b *bundle) attempt(t *testing.T, a events.Attempt) {
	t.Helper()
	b.publish(t, eventMsg(t, events.EventSubject(events.KindAttempt, a.SubscriptionID), a.AttemptID, &a))
}

func (b *bundle) outcome(t *testing.T, o events.Outcome) {
	t.Helper()
	kind := events.KindDeliveryCompleted
	if o.Status == events.StatusFailed {
		kind = events.KindDeliveryFailed
	}
	b.publish(t, eventMsg(t, events.EventSubject(kind, o.SubscriptionID), o.DeliveryID+"-"+o.Status, &o))
}

// settled waits until the three consumers have nothing pending or unacked.
func (b *bundle) settled(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	for _, src := range sources {
		testkit.Eventually(t, waitFor, func() bool {
			c, err := b.nats.JS.Consumer(ctx, src.stream, src.consumer)
			if err != nil {
				return false
			}
			info, err := c.Info(ctx)
			require.NoError(t, err)
			return info.NumPending == 0 && info.NumAckPending == 0
		}, "waiting for %s to settle", src.consumer)
	}
}

func (b *bundle) count(t *testing.T, table string) int {
	t.Helper()
	var n int
	require.NoError(t, b.db.Pool.QueryRow(context.Background(), "SELECT count(*) FROM "+table).Scan(&n))
	return n
}

// rows is every row of table as JSON text, in ID order.
func (b *bundle) rows(t *testing.T, table string) []string {
	t.Helper()
	rows, err := b.db.Pool.Query(context.Background(), "SELECT row_to_json(x)::text FROM "+table+" x ORDER BY id")
	require.NoError(t, err)
	var out []string
	for rows.Next() {
		var s string
		require.NoError(t, rows.Scan(&s))
		out = append(out, s)
	}
	require.NoError(t, rows.Err())
	return out
}

func (b *bundle) deliveryRow(t *testing.T, id string) dbsqlc.DeliveryGetByIDRow {
	t.Helper()
	d, err := b.q.DeliveryGetByID(context.Background(), id)
	require.NoError(t, err)
	return d
}

func (b *bundle) waitDelivery(t *testing.T, id string, cond func(dbsqlc.DeliveryGetByIDRow) bool, what string) dbsqlc.DeliveryGetByIDRow {
	t.Helper()
	var row dbsqlc.DeliveryGetByIDRow
	testkit.Eventually(t, waitFor, func() bool {
		var err error
		row, err = b.q.DeliveryGetByID(context.Background(), id)
		return err == nil && cond(row)
	}, "waiting for delivery %s: %s", id, what)
	return row
}

func us(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// story is the life of one delivery that fails once and then succeeds, as
// the API, fanout and deliverer publish it.
type story struct {
	message                events.Message
	first, second          events.Delivery
	failedTry, successfull events.Attempt
	completed              events.Outcome
}

func newStory(topicID, subscriptionID string, at time.Time) story {
	at = us(at)
	m := events.Message{
		// Derived, not random: the same story told twice is the same.
		ID: events.DeliveryID(topicID, at, subscriptionID), TopicID: topicID, ContentType: "text/plain",
		IdempotencyKey: "key-" + subscriptionID, CreatedAt: at, Data: []byte("hello " + subscriptionID),
	}
	ref := events.DeliveryRef{
		DeliveryID: events.DeliveryID(m.ID, m.CreatedAt, subscriptionID), MessageID: m.ID, TopicID: topicID,
		SubscriptionID: subscriptionID, MessageSequence: 1, MessageCreatedAt: m.CreatedAt,
		DeliveryCreatedAt: at.Add(time.Millisecond),
	}
	target := events.Target{URL: "http://127.0.0.1:1/" + subscriptionID, MaxDeliveryAttempts: 3, DeliveryAttemptDelay: 1, DeliveryAttemptTimeout: 1}
	s := story{message: m}
	s.first = events.Delivery{DeliveryRef: ref, Target: target, Attempt: 1, NotBefore: ref.DeliveryCreatedAt}
	retryAt := at.Add(2 * time.Second)
	s.failedTry = events.Attempt{
		DeliveryRef: ref, Target: target, AttemptID: events.AttemptID(ref.DeliveryID, 1, s.first.NotBefore),
		Attempt: 1, ScheduledAt: s.first.NotBefore, Request: "POST / HTTP/1.1\r\n\r\n{}",
		Response: "HTTP/1.1 500 Internal Server Error\r\n\r\noops", ResponseStatusCode: 500,
		ExecutionDuration: 12, Error: "unexpected status 500", CreatedAt: at.Add(10 * time.Millisecond),
		Status: events.StatusPending, NextAttemptAt: &retryAt,
	}
	s.second = events.Delivery{DeliveryRef: ref, Target: target, Attempt: 2, NotBefore: retryAt}
	s.successfull = events.Attempt{
		DeliveryRef: ref, Target: target, AttemptID: events.AttemptID(ref.DeliveryID, 2, retryAt),
		Attempt: 2, ScheduledAt: retryAt, Request: "POST / HTTP/1.1\r\n\r\n{}",
		Response: "HTTP/1.1 200 OK\r\n\r\n", ResponseStatusCode: 200, ExecutionDuration: 7, Success: true,
		CreatedAt: retryAt.Add(time.Millisecond), Status: events.StatusCompleted,
	}
	s.completed = events.Outcome{DeliveryRef: ref, Target: target, Status: events.StatusCompleted, Attempts: 2, At: retryAt.Add(20 * time.Millisecond)}
	return s
}

func (b *bundle) tell(t *testing.T, s story) {
	t.Helper()
	b.message(t, s.message)
	b.delivery(t, s.first)
	b.attempt(t, s.failedTry)
	b.delivery(t, s.second)
	b.attempt(t, s.successfull)
	b.outcome(t, s.completed)
}

func TestRecordsMessagesDeliveriesAndAttempts(t *testing.T) {
	t.Parallel()
	b := setup(t, 500, 20*time.Millisecond)
	ctx := context.Background()
	b.topic(t, "orders.v1+eu")
	b.subscription(t, "hook-1", "orders.v1+eu")
	run(t, b.svc)

	s := newStory("orders.v1+eu", "hook-1", time.Now())
	b.tell(t, s)
	// Subscription changes are the API's to write: acked, not recorded.
	b.publish(t, eventMsg(t, events.EventSubject(events.KindSubscriptionCreated, "hook-1"), "sub-created",
		&events.SubscriptionChanged{Subscription: events.SubscriptionInfo{ID: "hook-1", TopicID: "orders.v1+eu"}, At: time.Now()}))
	b.settled(t)

	m, err := b.q.MessageGetByID(ctx, s.message.ID)
	require.NoError(t, err)
	require.Equal(t, s.message.TopicID, m.TopicID)
	require.Equal(t, s.message.Data, m.Data)
	require.Equal(t, "text/plain", m.ContentType)
	require.Equal(t, "key-hook-1", *m.IdempotencyKey)
	require.EqualValues(t, 1, m.StreamSequence)
	require.True(t, s.message.CreatedAt.Equal(m.CreatedAt))

	d := b.deliveryRow(t, s.first.DeliveryID)
	require.Equal(t, dbsqlc.DeliveryStatusCompleted, d.Status)
	require.EqualValues(t, 2, d.DeliveryAttempts)
	require.Nil(t, d.FailureReason)
	require.Equal(t, "hook-1", d.SubscriptionID)
	require.Equal(t, s.message.ID, d.MessageID)
	require.Equal(t, "orders.v1+eu", d.TopicID)
	require.Equal(t, "http://127.0.0.1:1/hook-1", d.Url)
	require.EqualValues(t, 3, d.MaxDeliveryAttempts)
	require.True(t, s.first.DeliveryCreatedAt.Equal(d.CreatedAt), "created_at %s", d.CreatedAt)
	require.True(t, s.successfull.ScheduledAt.Equal(d.ScheduledAt), "a final delivery is scheduled at its last attempt")
	require.False(t, d.UpdatedAt.Before(s.successfull.CreatedAt.Add(7*time.Millisecond)))
	require.Equal(t, s.message.Data, d.Data, "the delivery reads its message's data")

	attempts, err := b.q.AttemptListAsc(ctx, dbsqlc.AttemptListAscParams{DeliveryID: &d.ID, RowLimit: 10})
	require.NoError(t, err)
	require.Len(t, attempts, 2)
	a := attempts[0]
	require.Equal(t, s.failedTry.AttemptID, a.ID)
	require.EqualValues(t, 1, a.Attempt)
	require.Equal(t, s.failedTry.Request, a.Request)
	require.Equal(t, s.failedTry.Response, a.Response)
	require.EqualValues(t, 500, a.ResponseStatusCode)
	require.EqualValues(t, 12, a.ExecutionDuration)
	require.False(t, a.Success)
	require.Equal(t, "unexpected status 500", a.Error)
	require.True(t, s.failedTry.CreatedAt.Equal(a.CreatedAt))
	require.Equal(t, s.successfull.AttemptID, attempts[1].ID)
	require.True(t, attempts[1].Success)

	require.Equal(t, 1.0, testutil.ToFloat64(b.svc.metrics.events.WithLabelValues(labelMessages)))
	require.Equal(t, 2.0, testutil.ToFloat64(b.svc.metrics.events.WithLabelValues(labelDeliveries)))
	require.Equal(t, 4.0, testutil.ToFloat64(b.svc.metrics.events.WithLabelValues(labelEvents)))
	require.Equal(t, 0.0, testutil.ToFloat64(b.svc.metrics.flushErrors))
}

func TestReplayingTheStreamsChangesNothing(t *testing.T) {
	t.Parallel()
	b := setup(t, 7, 20*time.Millisecond) // small batches: the replay cuts them differently
	ctx := context.Background()
	b.topic(t, "t")
	b.subscription(t, "s1", "t")
	b.subscription(t, "s2", "t")
	stop := run(t, b.svc)
	for i := range 5 {
		for _, sub := range []string{"s1", "s2"} {
			b.tell(t, newStory("t", sub, time.Now().Add(time.Duration(i)*time.Second)))
		}
	}
	b.settled(t)
	require.Equal(t, 10, b.count(t, "messages"))
	require.Equal(t, 10, b.count(t, "deliveries"))
	require.Equal(t, 20, b.count(t, "delivery_attempts"))
	before := map[string][]string{}
	for _, table := range []string{"messages", "deliveries", "delivery_attempts"} {
		before[table] = b.rows(t, table)
	}
	stop()

	// Start over from the first event of every stream.
	for _, src := range sources {
		require.NoError(t, b.nats.JS.DeleteConsumer(ctx, src.stream, src.consumer))
	}
	require.NoError(t, topology.Ensure(ctx, b.nats.JS, b.cfg.Topology()))
	again, _ := b.newService(t)
	run(t, again)
	testkit.Eventually(t, waitFor, func() bool {
		return testutil.ToFloat64(again.metrics.events.WithLabelValues(labelEvents)) == 30
	}, "waiting for the replay")
	b.settled(t)
	for table, rows := range before {
		require.Equal(t, rows, b.rows(t, table), "%s after the replay", table)
	}
	require.Equal(t, 0.0, testutil.ToFloat64(again.metrics.flushErrors))
}

func TestResumesWhenTheConsumersAreDeleted(t *testing.T) {
	t.Parallel()
	b := setup(t, 500, 20*time.Millisecond)
	ctx := context.Background()
	b.topic(t, "t")
	b.subscription(t, "s", "t")
	run(t, b.svc)
	b.tell(t, newStory("t", "s", time.Now()))
	b.settled(t)

	for _, src := range sources {
		require.NoError(t, b.nats.JS.DeleteConsumer(ctx, src.stream, src.consumer))
	}
	later := newStory("t", "s", time.Now().Add(time.Second))
	b.tell(t, later)
	b.waitDelivery(t, later.first.DeliveryID, func(d dbsqlc.DeliveryGetByIDRow) bool {
		return d.Status == dbsqlc.DeliveryStatusCompleted
	}, "recorded after the consumers came back")
	b.settled(t)
	require.Equal(t, 2, b.count(t, "messages"))
	require.Equal(t, 2, b.count(t, "deliveries"))
	require.Equal(t, 4, b.count(t, "delivery_attempts"))
}

func TestDeliveryRowsOnlyMoveForward(t *testing.T) {
	t.Parallel()
	b := setup(t, 500, 10*time.Millisecond)
	b.topic(t, "t")
	b.subscription(t, "s", "t")
	run(t, b.svc)

	s := newStory("t", "s", time.Now())
	id := s.first.DeliveryID
	// marker publishes an unrelated delivery on stream and waits for it:
	// everything published before it on that stream is then committed.
	marks := 0
	marker := func(onEvents bool) {
		marks++
		m := newStory("t", "s", time.Now().Add(time.Duration(marks)*time.Hour))
		if onEvents {
			b.attempt(t, m.failedTry)
		} else {
			b.delivery(t, m.first)
		}
		b.waitDelivery(t, m.first.DeliveryID, func(dbsqlc.DeliveryGetByIDRow) bool { return true }, "marker")
	}

	b.delivery(t, s.second) // attempt 2 is scheduled: one attempt made
	row := b.waitDelivery(t, id, func(d dbsqlc.DeliveryGetByIDRow) bool { return d.DeliveryAttempts == 1 }, "one attempt")
	require.True(t, s.second.NotBefore.Equal(row.ScheduledAt))

	b.delivery(t, s.first) // older: attempt 1 was scheduled before
	marker(false)
	row = b.deliveryRow(t, id)
	require.EqualValues(t, 1, row.DeliveryAttempts, "an older event does not lower the count")
	require.True(t, s.second.NotBefore.Equal(row.ScheduledAt), "nor move the schedule back")

	b.attempt(t, s.failedTry) // the same count, older than the attempt-2 event: loses
	marker(true)
	row = b.deliveryRow(t, id)
	require.EqualValues(t, 1, row.DeliveryAttempts)

	failed := s.completed
	failed.Status, failed.Reason, failed.Attempts = events.StatusFailed, events.ReasonSubscriptionDeleted, 1
	b.outcome(t, failed)
	row = b.waitDelivery(t, id, func(d dbsqlc.DeliveryGetByIDRow) bool { return d.Status == dbsqlc.DeliveryStatusFailed }, "failed")
	require.Equal(t, events.ReasonSubscriptionDeleted, *row.FailureReason)

	b.attempt(t, s.successfull) // a final row stays as it is
	b.outcome(t, s.completed)
	marker(true)
	row = b.deliveryRow(t, id)
	require.Equal(t, dbsqlc.DeliveryStatusFailed, row.Status)
	require.EqualValues(t, 1, row.DeliveryAttempts)
	attempts, err := b.q.AttemptListAsc(context.Background(), dbsqlc.AttemptListAscParams{DeliveryID: &id, RowLimit: 10})
	require.NoError(t, err)
	require.Len(t, attempts, 2, "the attempts themselves are still recorded")
}

func TestOneBatchMergesAsSeparateWritesWould(t *testing.T) {
	t.Parallel()
	// The same events on EVENTS, out of order and with duplicates, written
	// one per transaction and all in one transaction, give the same rows.
	publish := func(b *bundle) {
		base := us(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
		one := newStory("t", "s", base)
		two := newStory("t", "s", base.Add(time.Minute))
		three := newStory("t", "s", base.Add(2*time.Minute))
		lastTry := one.successfull
		lastTry.Attempt, lastTry.AttemptID, lastTry.Status, lastTry.Success = 3, "third", events.StatusFailed, false
		maxed := one.completed
		maxed.Status, maxed.Reason, maxed.Attempts = events.StatusFailed, events.ReasonMaxAttempts, 3
		gone := three.completed
		gone.Status, gone.Reason, gone.Attempts = events.StatusFailed, events.ReasonSubscriptionDeleted, 0
		for _, e := range []any{
			one.successfull, one.failedTry, lastTry, maxed, again{one.failedTry}, // newer first, a final, a duplicate
			two.failedTry, again{two.failedTry}, // the same attempt twice
			gone, three.failedTry, // failed before its attempt event arrived
		} {
			switch e := e.(type) {
			case again:
				// Republished after JetStream's duplicate window.
				b.publish(t, eventMsg(t, events.EventSubject(events.KindAttempt, e.SubscriptionID), e.AttemptID+"-again", &e.Attempt))
			case events.Attempt:
				e.Success = e.Success && e.Status == events.StatusCompleted
				if e.Attempt == 2 {
					e.Status = events.StatusPending
					next := e.ScheduledAt.Add(time.Second)
					e.NextAttemptAt = &next
				}
				b.attempt(t, e)
			case events.Outcome:
				b.outcome(t, e)
			}
		}
	}
	var results [2][]string
	for i, size := range []int{1, 500} {
		b := setup(t, size, time.Second)
		b.topic(t, "t")
		b.subscription(t, "s", "t")
		publish(b)
		run(t, b.svc)
		b.settled(t)
		batches, events := histogram(t, b.reg, "hammer_recorder_batch_size")
		if size == 1 {
			require.EqualValues(t, 9, batches)
		} else {
			require.EqualValues(t, 1, batches, "all in one batch")
			require.EqualValues(t, 9, events)
		}
		results[i] = b.rows(t, "deliveries")
		require.Len(t, results[i], 3)
		require.Equal(t, 5, b.count(t, "delivery_attempts"), "attempts 1, 2 and 3 of the first, 1 of each other")
	}
	require.Equal(t, results[0], results[1])
	require.Contains(t, results[1][0]+results[1][1]+results[1][2], `"status":"failed","failure_reason":"max_attempts"`)
}

type again struct{ events.Attempt }

func TestDropsEventsWhoseParentsAreGone(t *testing.T) {
	t.Parallel()
	b := setup(t, 500, 500*time.Millisecond)
	b.topic(t, "t")
	b.subscription(t, "s", "t")
	kept := newStory("t", "s", time.Now())
	orphan := newStory("deleted-topic", "deleted-sub", time.Now())
	// In one batch: the late events of a deleted topic and subscription
	// beside the events of a live one.
	b.tell(t, orphan)
	b.tell(t, kept)
	run(t, b.svc)
	b.settled(t)

	_, err := b.q.MessageGetByID(context.Background(), kept.message.ID)
	require.NoError(t, err)
	require.Equal(t, 1, b.count(t, "messages"))
	require.Equal(t, 1, b.count(t, "deliveries"))
	require.Equal(t, 2, b.count(t, "delivery_attempts"))
	require.Equal(t, 0.0, testutil.ToFloat64(b.svc.metrics.flushErrors))

	// A subscription deleted after its deliveries were recorded: their
	// rows go with it and its late events are dropped too.
	_, err = b.q.SubscriptionDelete(context.Background(), "s")
	require.NoError(t, err)
	late := newStory("t", "s", time.Now().Add(time.Minute))
	b.delivery(t, late.first)
	b.attempt(t, late.failedTry)
	b.settled(t)
	require.Equal(t, 0, b.count(t, "deliveries"))
	require.Equal(t, 0, b.count(t, "delivery_attempts"))
	require.Equal(t, 0.0, testutil.ToFloat64(b.svc.metrics.flushErrors))
}

func TestBatchesAreBoundedBySize(t *testing.T) {
	t.Parallel()
	b := setup(t, 5, 10*time.Second)
	b.topic(t, "t")
	for i := range 10 {
		b.message(t, newStory("t", "s", time.Now().Add(time.Duration(i)*time.Millisecond)).message)
	}
	start := time.Now()
	run(t, b.svc)
	testkit.Eventually(t, 5*time.Second, func() bool { return b.count(t, "messages") == 10 },
		"full batches are written without waiting for the flush interval")
	require.Less(t, time.Since(start), 5*time.Second)
	batches, events := histogram(t, b.reg, "hammer_recorder_batch_size")
	require.EqualValues(t, 2, batches)
	require.EqualValues(t, 10, events)
}

func TestBatchesAreBoundedByBytes(t *testing.T) {
	t.Parallel()
	b := setup(t, 500, 10*time.Second)
	b.svc.maxBatchBytes = 1000
	b.topic(t, "t")
	for i := range 6 {
		m := newStory("t", "s", time.Now().Add(time.Duration(i)*time.Millisecond)).message
		m.Data = make([]byte, 400)
		b.message(t, m)
	}
	run(t, b.svc)
	testkit.Eventually(t, 5*time.Second, func() bool { return b.count(t, "messages") == 6 },
		"batches that reach the byte bound are written without waiting for the flush interval")
	batches, events := histogram(t, b.reg, "hammer_recorder_batch_size")
	require.EqualValues(t, 2, batches, "3 messages of 400 bytes reach 1000")
	require.EqualValues(t, 6, events)
}

func TestBatchesAreBoundedByLatency(t *testing.T) {
	t.Parallel()
	const interval = 300 * time.Millisecond
	b := setup(t, 500, interval)
	b.topic(t, "t")
	run(t, b.svc)
	b.settled(t) // running and idle

	start := time.Now()
	b.message(t, newStory("t", "s", time.Now()).message)
	testkit.Eventually(t, 5*time.Second, func() bool { return b.count(t, "messages") == 1 }, "the lone message is written")
	elapsed := time.Since(start)
	require.GreaterOrEqual(t, elapsed, interval, "the batch waited for company")
	require.Less(t, elapsed, interval+3*time.Second)
	batches, events := histogram(t, b.reg, "hammer_recorder_batch_size")
	require.EqualValues(t, 1, batches)
	require.EqualValues(t, 1, events)
}

func TestStoppingWritesWhatItHolds(t *testing.T) {
	t.Parallel()
	b := setup(t, 500, 10*time.Second)
	b.topic(t, "t")
	stop := run(t, b.svc)
	b.message(t, newStory("t", "s", time.Now()).message)
	testkit.Eventually(t, waitFor, func() bool {
		return testutil.ToFloat64(b.svc.metrics.events.WithLabelValues(labelMessages)) == 1
	}, "waiting for the recorder to hold the message")
	require.Equal(t, 0, b.count(t, "messages"), "held for the flush interval")
	stop()
	require.Equal(t, 1, b.count(t, "messages"), "written on the way out")
	b.settled(t)
}

func TestRetriesBatchesPostgresCannotWrite(t *testing.T) {
	t.Parallel()
	b := setup(t, 500, 10*time.Millisecond)
	ctx := context.Background()
	b.topic(t, "t")
	_, err := b.db.Pool.Exec(ctx, "ALTER TABLE messages RENAME TO messages_away")
	require.NoError(t, err)
	run(t, b.svc)

	m := newStory("t", "s", time.Now()).message
	b.message(t, m)
	testkit.Eventually(t, waitFor, func() bool { return testutil.ToFloat64(b.svc.metrics.flushErrors) >= 1 }, "a failed flush")
	c, err := b.nats.JS.Consumer(ctx, events.StreamMessages, topology.ConsumerRecorderMessages)
	require.NoError(t, err)
	info, err := c.Info(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 1, info.NumAckPending, "not acked before it is written")

	_, err = b.db.Pool.Exec(ctx, "ALTER TABLE messages_away RENAME TO messages")
	require.NoError(t, err)
	b.settled(t)
	_, err = b.q.MessageGetByID(ctx, m.ID)
	require.NoError(t, err)
	require.Equal(t, 0.0, testutil.ToFloat64(b.svc.metrics.terminated))
}

func TestIsolatesTheEventPostgresRefuses(t *testing.T) {
	t.Parallel()
	b := setup(t, 500, 500*time.Millisecond)
	ctx := context.Background()
	b.topic(t, "t")
	// A rule of the database that one event breaks.
	_, err := b.db.Pool.Exec(ctx, "ALTER TABLE messages ADD CONSTRAINT no_poison CHECK (content_type <> 'poison')")
	require.NoError(t, err)
	for i := range 9 {
		m := newStory("t", "s", time.Now().Add(time.Duration(i)*time.Millisecond)).message
		if i == 4 {
			m.ContentType = "poison"
		}
		b.message(t, m)
	}
	run(t, b.svc)
	b.settled(t)
	require.Equal(t, 8, b.count(t, "messages"))
	require.Equal(t, 1.0, testutil.ToFloat64(b.svc.metrics.terminated))
	batches, _ := histogram(t, b.reg, "hammer_recorder_batch_size")
	require.EqualValues(t, 1, batches, "one batch, written in parts")
}

func TestTerminatesUndecodableEvents(t *testing.T) {
	t.Parallel()
	b := setup(t, 500, 10*time.Millisecond)
	b.topic(t, "t")
	b.subscription(t, "s", "t")
	run(t, b.svc)

	bad := func(subject string, data string) {
		msg := nats.NewMsg(subject)
		msg.Data = []byte(data)
		b.publish(t, msg)
	}
	bad(events.MessageSubject("t"), "no headers")
	bad(events.DeliverySubject("s"), "not json")
	bad(events.EventSubject(events.KindAttempt, "s"), `{"v":3,"attempt_id":"x"}`)
	bad(events.EventSubject(events.KindDeliveryFailed, "s"), `{"v":1,"delivery_id":"d","subscription_id":"s","message_id":"m","status":"pending"}`)
	s := newStory("t", "s", time.Now())
	b.tell(t, s)
	b.settled(t)
	require.Equal(t, 4.0, testutil.ToFloat64(b.svc.metrics.terminated))
	require.Equal(t, 1, b.count(t, "messages"))
	require.Equal(t, 1, b.count(t, "deliveries"))
}

func TestChecks(t *testing.T) {
	t.Parallel()
	b := setup(t, 500, time.Second)
	status, body := ops.Ready(context.Background(), b.svc.Checks())
	require.Equal(t, 200, status, body)
	b.nats.Conn.Close()
	status, body = ops.Ready(context.Background(), b.svc.Checks())
	require.Equal(t, 503, status)
	require.Equal(t, "ok", body["checks"].(map[string]string)["postgres"])
	require.NotEqual(t, "ok", body["checks"].(map[string]string)["nats"])
}

// histogram returns the sample count and sum of a histogram in reg.
func histogram(t *testing.T, reg *prometheus.Registry, name string) (count uint64, sum float64) {
	t.Helper()
	families, err := reg.Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() == name {
			h := f.GetMetric()[0].GetHistogram()
			return h.GetSampleCount(), h.GetSampleSum()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0, 0
}
