package deliverer_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hammer-webhooks/hammer/platform/events"
	"github.com/hammer-webhooks/hammer/platform/testkit"
)

func TestChangedURLAppliesToTheNextAttempt(t *testing.T) {
	t.Parallel()
	b := setup(t)
	old := newReceiver(t, status(http.StatusInternalServerError))
	moved := newReceiver(t, nil)
	sub := subscription("moving", old.URL+"/old")
	sub.DeliveryAttemptDelay = 2
	b.putSubscription(t, sub)
	b.start(t)

	id := b.deliver(t, b.publishMessage(t, "hello"), sub)
	testkit.Eventually(t, 10*time.Second, func() bool { return len(b.recorded(t).attemptsOf(id)) == 1 }, "first attempt")
	sub.URL = moved.URL + "/new"
	sub.SecretToken = "rotated"
	b.putSubscription(t, sub)

	o, rec := b.waitOutcome(t, id, 20*time.Second)
	require.Equal(t, events.StatusCompleted, o.Status)
	require.Equal(t, 1, old.count())
	require.Equal(t, 1, moved.count())
	require.Equal(t, "/new", moved.got()[0].path)
	require.Contains(t, string(moved.got()[0].body), `"secret_token":"rotated"`)
	a := rec.attemptsOf(id)
	require.Len(t, a, 2)
	require.Equal(t, old.URL+"/old", a[0].URL)
	require.Equal(t, moved.URL+"/new", a[1].URL)
	require.Equal(t, moved.URL+"/new", o.URL)
}

func TestDeletedSubscriptionEndsPendingDeliveryWithoutRequest(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rc := newReceiver(t, status(http.StatusInternalServerError))
	sub := subscription("leaving", rc.URL)
	sub.DeliveryAttemptDelay = 2
	b.putSubscription(t, sub)
	b.start(t)

	id := b.deliver(t, b.publishMessage(t, "hello"), sub)
	testkit.Eventually(t, 10*time.Second, func() bool { return len(b.recorded(t).attemptsOf(id)) == 1 }, "first attempt")
	b.deleteSubscription(t, sub.ID)

	o, rec := b.waitOutcome(t, id, 20*time.Second)
	require.Equal(t, events.StatusFailed, o.Status)
	require.Equal(t, events.ReasonSubscriptionDeleted, o.Reason)
	require.Equal(t, 1, o.Attempts)
	require.Equal(t, events.EventSubject(events.KindDeliveryFailed, sub.ID), rec.subjects[id])
	require.Len(t, rec.attemptsOf(id), 1)
	b.waitIdle(t, 10*time.Second)
	require.Equal(t, 1, rc.count(), "a request after the subscription was deleted")
}

func TestDeletedMessageEndsPendingDelivery(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rc := newReceiver(t, status(http.StatusInternalServerError))
	sub := subscription("orphaned", rc.URL)
	sub.DeliveryAttemptDelay = 2
	b.putSubscription(t, sub)
	b.start(t)

	m := b.publishMessage(t, "hello")
	id := b.deliver(t, m, sub)
	testkit.Eventually(t, 10*time.Second, func() bool { return len(b.recorded(t).attemptsOf(id)) == 1 }, "first attempt")
	require.NoError(t, b.messages.DeleteMsg(context.Background(), m.seq))

	o, _ := b.waitOutcome(t, id, 20*time.Second)
	require.Equal(t, events.StatusFailed, o.Status)
	require.Equal(t, events.ReasonMessageDeleted, o.Reason)
	require.Equal(t, 1, o.Attempts)
	b.waitIdle(t, 10*time.Second)
	require.Equal(t, 1, rc.count())
}

func TestSubscriptionNeverWrittenWaitsThenFails(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rc := newReceiver(t, nil)
	dl := b.start(t)

	// A delivery for a subscription the bucket never held, created long
	// enough ago that the API would have written it: it is deleted.
	sub := subscription("ghost", rc.URL)
	d := deliveryFor(b.publishMessage(t, "hello"), sub)
	d.DeliveryCreatedAt = d.DeliveryCreatedAt.Add(-2 * time.Minute)
	_, err := b.js.PublishMsg(context.Background(), deliveryMsg(t, d))
	require.NoError(t, err)
	o, _ := b.waitOutcome(t, d.DeliveryID, 10*time.Second)
	require.Equal(t, events.ReasonSubscriptionDeleted, o.Reason)

	// A fresh one waits for the API to write the subscription.
	late := subscription("late", rc.URL)
	id := b.deliver(t, b.publishMessage(t, "hello"), late)
	testkit.Eventually(t, 10*time.Second, func() bool {
		return dl.metric(t, "hammer_delivery_held_total", "subscription_unknown") > 0
	}, "the delivery was not held")
	b.putSubscription(t, late)
	o, _ = b.waitOutcome(t, id, 10*time.Second)
	require.Equal(t, events.StatusCompleted, o.Status)
	require.Equal(t, 1, rc.count())
}
