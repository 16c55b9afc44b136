package deliverer_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/hammer-webhooks/hammer/platform/events"
	"github.com/hammer-webhooks/hammer/platform/testkit"
)

func TestUnreadableEventsAreDroppedAndNewerOnesLeftForNewerDeliverers(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rc := newReceiver(t, nil)
	sub := subscription("mixed", rc.URL)
	b.putSubscription(t, sub)
	dl := b.start(t)
	ctx := context.Background()

	garbage := nats.NewMsg(events.DeliverySubject(sub.ID))
	garbage.Data = []byte("not json")
	_, err := b.js.PublishMsg(ctx, garbage)
	require.NoError(t, err)

	newer := nats.NewMsg(events.DeliverySubject(sub.ID))
	newer.Data = []byte(`{"v":3,"delivery_id":"x"}`)
	_, err = b.js.PublishMsg(ctx, newer)
	require.NoError(t, err)

	id := b.deliver(t, b.publishMessage(t, "hello"), sub)
	o, _ := b.waitOutcome(t, id, 10*time.Second)
	require.Equal(t, events.StatusCompleted, o.Status)
	testkit.Eventually(t, 5*time.Second, func() bool {
		return dl.metric(t, "hammer_delivery_held_total", "newer_version") == 1
	}, "the newer event was not held")
	require.Equal(t, 1, rc.count())
}

func TestLoweredAttemptLimitEndsAWaitingRetry(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rc := newReceiver(t, status(http.StatusBadGateway))
	sub := subscription("shrinking", rc.URL)
	sub.DeliveryAttemptDelay = 2
	b.putSubscription(t, sub)
	b.start(t)

	id := b.deliver(t, b.publishMessage(t, "hello"), sub)
	testkit.Eventually(t, 10*time.Second, func() bool { return len(b.recorded(t).attemptsOf(id)) == 1 }, "first attempt")
	sub.MaxDeliveryAttempts = 1
	b.putSubscription(t, sub)

	o, _ := b.waitOutcome(t, id, 10*time.Second)
	require.Equal(t, events.StatusFailed, o.Status)
	require.Equal(t, events.ReasonMaxAttempts, o.Reason)
	require.Equal(t, 1, o.Attempts)
	b.waitIdle(t, 10*time.Second)
	require.Equal(t, 1, rc.count())
}

func TestMetricsCountAttempts(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ok := newReceiver(t, nil)
	failing := newReceiver(t, status(http.StatusInternalServerError))
	okSub, failSub := subscription("ok", ok.URL), subscription("failing", failing.URL)
	failSub.MaxDeliveryAttempts = 1
	b.putSubscription(t, okSub)
	b.putSubscription(t, failSub)
	dl := b.start(t)

	first := b.deliver(t, b.publishMessage(t, "a"), okSub)
	second := b.deliver(t, b.publishMessage(t, "b"), failSub)
	b.waitOutcome(t, first, 10*time.Second)
	b.waitOutcome(t, second, 10*time.Second)

	require.Equal(t, 1.0, dl.metric(t, "hammer_delivery_attempts_total", "success"))
	require.Equal(t, 1.0, dl.metric(t, "hammer_delivery_attempts_total", "http_error"))
	require.Equal(t, 2.0, dl.metric(t, "hammer_delivery_request_duration_seconds", ""))
	require.Equal(t, 2.0, dl.metric(t, "hammer_delivery_lag_seconds", ""))
	require.Equal(t, 0.0, dl.metric(t, "hammer_deliveries_in_flight", ""))
	require.Equal(t, 1.0, dl.metric(t, "hammer_delivery_outcomes_total", "completed"))
	require.Equal(t, 1.0, dl.metric(t, "hammer_delivery_outcomes_total", "failed"))
}
