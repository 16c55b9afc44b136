package deliverer_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hammer-webhooks/hammer/platform/events"
	"github.com/hammer-webhooks/hammer/platform/testkit"
	"github.com/hammer-webhooks/hammer/services/deliverer"
)

// HAMMER_DELIVERY_STOP_GRACE bounds how long a stopping deliverer lets
// requests in flight finish: one that ends within it is recorded, one still
// running after it is abandoned without an attempt (another deliverer makes
// it again once JetStream redelivers it).
func TestStopGraceComesFromTheConfiguration(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			select {
			case <-r.Context().Done():
			case <-time.After(30 * time.Second):
			}
			return
		}
		time.Sleep(1500 * time.Millisecond)
		w.WriteHeader(http.StatusNoContent)
	})
	slow := subscription("slow", rc.URL+"/slow")
	slow.DeliveryAttemptTimeout = 30
	quick := subscription("quick", rc.URL+"/quick")
	b.putSubscription(t, slow)
	b.putSubscription(t, quick)
	const grace = 3 * time.Second
	d := b.start(t, func(o *deliverer.Options) { o.Config.StopGrace = grace })
	require.Equal(t, 5*time.Second+grace+10*time.Second, d.svc.StopTimeout(), "the process waits for drain, grace and room")

	m := b.publishMessage(t, `{"n": 1}`)
	slowID := b.deliver(t, m, slow)
	quickID := b.deliver(t, m, quick)
	testkit.Eventually(t, 10*time.Second, func() bool { return len(rc.got()) == 2 }, "both requests under way")

	began := time.Now()
	d.stop()
	took := time.Since(began)
	require.GreaterOrEqual(t, took, grace, "the slow request was given the grace")
	// The fetches under way end first (within 5 s), then the grace runs;
	// the request's own 30 s timeout is not waited for.
	require.Less(t, took, 5*time.Second+grace+2*time.Second, "and no more")

	rec := b.recorded(t)
	o, ok := rec.outcomeOf(quickID)
	require.True(t, ok, "the request that ended within the grace is recorded")
	require.Equal(t, events.StatusCompleted, o.Status)
	require.Empty(t, rec.attemptsOf(slowID), "the abandoned request uses no attempt")
}
