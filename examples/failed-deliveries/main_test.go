package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/hammer-webhooks/hammer/platform/events"
	"github.com/hammer-webhooks/hammer/platform/testkit"
)

// received collects what the example's handler was given, and what its
// printer wrote.
type received struct {
	mu      sync.Mutex
	out     bytes.Buffer
	outcome []events.Outcome
	fail    int // answer this many calls with an error first
}

func (r *received) handler() Handler {
	print := Printer(&r.out)
	return func(ctx context.Context, o events.Outcome) error {
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.fail > 0 {
			r.fail--
			return errors.New("the handler's own dependency is down")
		}
		r.outcome = append(r.outcome, o)
		return print(ctx, o)
	}
}

func (r *received) got() ([]events.Outcome, []Line) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var lines []Line
	for _, l := range strings.Split(strings.TrimSpace(r.out.String()), "\n") {
		if l == "" {
			continue
		}
		var line Line
		if err := json.Unmarshal([]byte(l), &line); err != nil {
			panic(err)
		}
		lines = append(lines, line)
	}
	return append([]events.Outcome(nil), r.outcome...), lines
}

// start runs the example until the returned stop is called.
func start(t *testing.T, js jetstream.JetStream, r *received) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	log := slog.New(slog.NewTextHandler(testWriter{t}, nil))
	go func() { done <- Run(ctx, js, DefaultConsumer, r.handler(), log) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				require.NoError(t, err)
			case <-time.After(10 * time.Second):
				t.Fatal("Run did not return after cancel")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func outcome(deliveryID, status, reason string) *events.Outcome {
	created := time.Date(2025, 3, 14, 9, 26, 53, 589793000, time.UTC)
	return &events.Outcome{
		DeliveryRef: events.DeliveryRef{
			DeliveryID: deliveryID, MessageID: "01JP9ZMQCNYQ9WYDYYX2AR61BD", TopicID: "orders.created",
			SubscriptionID: "billing.invoices+eu", MessageSequence: 1042,
			MessageCreatedAt: created, DeliveryCreatedAt: created.Add(4 * time.Millisecond),
		},
		Target: events.Target{URL: "https://billing.example.com/hooks/orders",
			MaxDeliveryAttempts: 2, DeliveryAttemptDelay: 60, DeliveryAttemptTimeout: 5},
		Status: status, Reason: reason, Attempts: 2, At: created.Add(time.Minute),
	}
}

// publish sends a payload on the subject hammer's deliverer would use.
func publish(t *testing.T, js jetstream.JetStream, kind, id string, payload any) {
	t.Helper()
	data, err := events.Encode(payload)
	require.NoError(t, err)
	publishRaw(t, js, events.EventSubject(kind, "billing.invoices+eu"), id, data)
}

func publishRaw(t *testing.T, js jetstream.JetStream, subject, id string, data []byte) {
	t.Helper()
	msg := nats.NewMsg(subject)
	msg.Data = data
	msg.Header.Set(events.HeaderMsgID, id)
	_, err := js.PublishMsg(context.Background(), msg)
	require.NoError(t, err)
}

// settled waits until the example's consumer has nothing left to take and
// holds ackPending events unacknowledged.
func settled(t *testing.T, js jetstream.JetStream, delivered uint64, ackPending int) {
	t.Helper()
	testkit.Eventually(t, 10*time.Second, func() bool {
		c, err := js.Consumer(context.Background(), events.StreamEvents, DefaultConsumer)
		if err != nil {
			return false
		}
		info, err := c.Info(context.Background())
		return err == nil && info.NumPending == 0 && info.Delivered.Consumer >= delivered && info.NumAckPending == ackPending
	}, "the consumer did not settle at %d delivered, %d ack pending", delivered, ackPending)
}

// The example receives a published delivery.failed through its own durable
// consumer, ignores the other kinds, and after a restart resumes with what
// came meanwhile.
func TestReceivesFailedDeliveries(t *testing.T) {
	t.Parallel()
	n := testkit.NewNATS(t)
	r := &received{}

	failed := outcome("01JP9ZMQCN10NSNWA9G6PEWM8D", events.StatusFailed, events.ReasonMaxAttempts)
	publish(t, n.JS, events.KindDeliveryFailed, failed.DeliveryID+"-failed", failed)
	completed := outcome("01JP9ZMQCN0000000000000001", events.StatusCompleted, "")
	publish(t, n.JS, events.KindDeliveryCompleted, completed.DeliveryID+"-completed", completed)
	publish(t, n.JS, events.KindAttempt, "01JP9ZMQCT0VW75NMH5X658030", &events.Attempt{
		DeliveryRef: failed.DeliveryRef, Target: failed.Target, AttemptID: "01JP9ZMQCT0VW75NMH5X658030",
		Attempt: 2, Status: events.StatusFailed,
	})

	stop := start(t, n.JS, r)
	settled(t, n.JS, 1, 0)
	got, lines := r.got()
	require.Len(t, got, 1, "only delivery.failed reaches the example")
	require.Equal(t, *failed, got[0])
	require.Equal(t, []Line{{
		DeliveryID: failed.DeliveryID, MessageID: failed.MessageID, TopicID: "orders.created",
		SubscriptionID: "billing.invoices+eu", URL: failed.URL, Reason: events.ReasonMaxAttempts,
		Attempts: 2, At: failed.At,
	}}, lines)
	stop()

	// Stopped: a failure happens meanwhile. The durable consumer keeps the
	// position, so the restarted example gets only the new one.
	second := outcome("01JP9ZMQCN0000000000000002", events.StatusFailed, events.ReasonSubscriptionDeleted)
	second.Attempts = 0
	publish(t, n.JS, events.KindDeliveryFailed, second.DeliveryID+"-failed", second)
	start(t, n.JS, r)
	settled(t, n.JS, 2, 0)
	got, _ = r.got()
	require.Len(t, got, 2)
	require.Equal(t, *second, got[1])
}

// An event of a newer payload version is handed back unacknowledged for a
// newer copy of the program; an undecodable one is terminated; unknown
// fields of version 1 are ignored.
func TestHoldsNewerVersionsAndDropsMalformed(t *testing.T) {
	t.Parallel()
	n := testkit.NewNATS(t)
	r := &received{}
	subject := events.EventSubject(events.KindDeliveryFailed, "billing.invoices+eu")

	publishRaw(t, n.JS, subject, "newer", []byte(`{"v": 3, "delivery_id": "01JP9ZMQCN0000000000000003", "status": "failed"}`))
	publishRaw(t, n.JS, subject, "garbage", []byte(`not json`))
	publishRaw(t, n.JS, subject, "wrong-status", []byte(`{"v": 1, "delivery_id": "01JP9ZMQCN0000000000000004", "status": "completed"}`))
	withExtra := outcome("01JP9ZMQCN0000000000000005", events.StatusFailed, events.ReasonMessageDeleted)
	data, err := events.Encode(withExtra)
	require.NoError(t, err)
	data = append(data[:len(data)-1], []byte(`, "field_from_the_future": {"x": 1}}`)...)
	publishRaw(t, n.JS, subject, "with-extra", data)

	start(t, n.JS, r)
	settled(t, n.JS, 4, 1) // the newer version waits, unacknowledged
	got, _ := r.got()
	require.Len(t, got, 1)
	require.Equal(t, *withExtra, got[0])
}

// A handler that fails gets the same event again, and the event is
// acknowledged only once it succeeds.
func TestRetriesWhenTheHandlerFails(t *testing.T) {
	// Not parallel: it shortens the retry delay, a package variable.
	old := retryDelay
	retryDelay = 100 * time.Millisecond
	t.Cleanup(func() { retryDelay = old })

	n := testkit.NewNATS(t)
	r := &received{fail: 2}
	failed := outcome("01JP9ZMQCN0000000000000006", events.StatusFailed, events.ReasonMaxAttempts)
	publish(t, n.JS, events.KindDeliveryFailed, failed.DeliveryID+"-failed", failed)
	stop := start(t, n.JS, r)
	settled(t, n.JS, 3, 0)
	stop()
	got, _ := r.got()
	require.Equal(t, []events.Outcome{*failed}, got)
}

// Started before hammer has created its streams, the example waits for
// them and then follows failures.
func TestWaitsForTheStream(t *testing.T) {
	// Not parallel: it shortens the wait between looks, a package variable.
	old := streamWait
	streamWait = 50 * time.Millisecond
	t.Cleanup(func() { streamWait = old })

	n := testkit.StartNATS(t, t.TempDir()) // no topology yet
	r := &received{}
	// Watch the example's requests to create its consumer: the first one
	// comes before the stream exists and must fail.
	tries, err := n.Conn.SubscribeSync("$JS.API.CONSUMER.CREATE." + events.StreamEvents + ".>")
	require.NoError(t, err)
	start(t, n.JS, r)
	for range 2 {
		_, err := tries.NextMsg(10 * time.Second)
		require.NoError(t, err, "the example did not try to create its consumer")
	}
	_, err = n.JS.CreateOrUpdateStream(context.Background(), jetstream.StreamConfig{
		Name: events.StreamEvents, Subjects: []string{events.EventsSubjects}, Storage: jetstream.MemoryStorage,
	})
	require.NoError(t, err)
	failed := outcome("01JP9ZMQCN0000000000000007", events.StatusFailed, events.ReasonMaxAttempts)
	publish(t, n.JS, events.KindDeliveryFailed, failed.DeliveryID+"-failed", failed)
	testkit.Eventually(t, 10*time.Second, func() bool {
		got, _ := r.got()
		return len(got) == 1
	}, "the example did not pick up the stream once it existed")
}
