package deliverer_test

import (
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hammer-webhooks/hammer/platform/events"
	"github.com/hammer-webhooks/hammer/platform/testkit"
	"github.com/hammer-webhooks/hammer/services/deliverer"
)

// TestTwoDeliverersShareTheConsumer stops one of two deliverers in the
// middle of a run: nothing is lost (what it had fetched but not started is
// handed back at once, long before AckWait) and no attempt is made twice.
func TestTwoDeliverersShareTheConsumer(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const n = 300
	var mu sync.Mutex
	perDelivery := map[string]int{}
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		perDelivery[r.Header.Get("webhook-id")]++
		first := perDelivery[r.Header.Get("webhook-id")] == 1
		mu.Unlock()
		time.Sleep(20 * time.Millisecond) // keep the run long enough to stop one in it
		if first {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	sub := subscription("shared", rc.URL)
	sub.MaxConcurrentRequests = 100
	b.putSubscription(t, sub)
	small := func(o *deliverer.Options) { o.Config.DeliveryConcurrency = 8 }
	first := b.start(t, small)
	second := b.start(t, small)

	ids := b.deliverMany(t, n, sub)
	testkit.Eventually(t, 30*time.Second, func() bool { return rc.count() >= n/2 }, "half the requests")
	require.Less(t, rc.count(), 2*n, "the run ended before a deliverer was stopped")
	first.stop()

	// Well under the consumer's AckWait (1 minute): nothing waits for it.
	testkit.Eventually(t, 30*time.Second, func() bool { return len(b.recorded(t).outcomes) == n }, "every delivery completed")
	rec := b.recorded(t)
	mu.Lock()
	defer mu.Unlock()
	for _, id := range ids {
		o, ok := rec.outcomeOf(id)
		require.True(t, ok)
		require.Equal(t, events.StatusCompleted, o.Status)
		require.Equal(t, 2, o.Attempts, id)
		a := rec.attemptsOf(id)
		require.Len(t, a, 2, id)
		require.Equal(t, 1, a[0].Attempt)
		require.Equal(t, 2, a[1].Attempt)
		require.Equal(t, 2, perDelivery[id], "delivery %s: an attempt was made twice, or lost", id)
	}
	require.Positive(t, first.metric(t, "hammer_delivery_held_total", "shutdown"), "what was fetched but not started was not handed back")
	require.Positive(t, first.metric(t, "hammer_delivery_attempts_total", ""))
	require.Positive(t, second.metric(t, "hammer_delivery_attempts_total", ""))
}

// TestDeadAndSlowReceiversDoNotHoldUpHealthyOnes is DESIGN's fairness
// promise: 2,000 deliveries to a dead receiver are held for their retry,
// a receiver slower than its timeout gets only its 8 concurrent requests,
// and meanwhile every delivery to a healthy receiver arrives, before the
// first held retry comes due.
func TestDeadAndSlowReceiversDoNotHoldUpHealthyOnes(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("load test")
	}
	b := setup(t)
	dead := newReceiver(t, status(http.StatusInternalServerError))
	release := make(chan struct{})
	var inSlow, maxSlow atomic.Int64
	slow := newReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		now := inSlow.Add(1)
		for {
			m := maxSlow.Load()
			if now <= m || maxSlow.CompareAndSwap(m, now) {
				break
			}
		}
		defer inSlow.Add(-1)
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	t.Cleanup(func() { close(release) })
	healthy := newReceiver(t, nil)

	deadSub := subscription("dead", dead.URL)
	deadSub.DeliveryAttemptDelay = 60
	slowSub := subscription("slow", slow.URL)
	slowSub.DeliveryAttemptTimeout = 1
	slowSub.DeliveryAttemptDelay = 60
	healthySub := subscription("healthy", healthy.URL)
	for _, s := range []events.Subscription{deadSub, slowSub, healthySub} {
		b.putSubscription(t, s)
	}
	dl := b.start(t, func(o *deliverer.Options) { o.Config.DeliveryConcurrency = 32 })

	start := time.Now()
	b.deliverMany(t, 2000, deadSub)
	b.deliverMany(t, 40, slowSub)
	b.deliverMany(t, 200, healthySub)

	testkit.Eventually(t, 50*time.Second, func() bool { return healthy.count() == 200 }, "healthy deliveries (got %d)", healthy.count())
	healthyDone := time.Now()
	firstDead := dead.got()[0].at
	require.Less(t, healthyDone.Sub(firstDead), 60*time.Second, "healthy deliveries waited for held retries")
	t.Logf("healthy deliveries done %s after start; dead receiver got %d requests, slow at most %d at once",
		healthyDone.Sub(start).Round(time.Millisecond), dead.count(), maxSlow.Load())

	testkit.Eventually(t, 50*time.Second, func() bool { return dead.count() == 2000 }, "first attempts to the dead receiver (got %d)", dead.count())
	require.Less(t, time.Since(firstDead), 60*time.Second, "the check ran past the first retry")
	require.Equal(t, 2000, dead.count(), "a held retry was made early")
	require.Positive(t, dl.metric(t, "hammer_delivery_held_total", "not_due"), "retries were not held")
	require.Positive(t, dl.metric(t, "hammer_delivery_held_total", "concurrency"), "the per-subscription cap never held anything")
	require.Equal(t, int64(8), maxSlow.Load(), "the slow receiver should get exactly its 8 concurrent requests")
}
