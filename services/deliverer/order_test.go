package deliverer_test

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hammer-webhooks/hammer/platform/events"
	"github.com/hammer-webhooks/hammer/platform/testkit"
)

// The deliverer publishes an attempt's events asynchronously; under load,
// each delivery's events must still be stored in the documented order:
// the attempt before the outcome (one stream, so by sequence) and before
// the next attempt's delivery event (another stream, so by the time
// JetStream stored each).
func TestEventsOfADeliveryKeepTheirOrderUnderLoad(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var mu sync.Mutex
	seen := map[string]bool{}
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("webhook-id")
		mu.Lock()
		first := !seen[id]
		seen[id] = true
		mu.Unlock()
		if first {
			w.WriteHeader(http.StatusServiceUnavailable) // the first attempt of each fails
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	sub := subscription("ordered", rc.URL)
	b.putSubscription(t, sub)
	b.start(t)

	const n = 200
	ids := b.deliverMany(t, n, sub)
	var rec recorded
	testkit.Eventually(t, 60*time.Second, func() bool {
		rec = b.recorded(t)
		return len(rec.outcomes) == n
	}, "every delivery ends")

	ctx := context.Background()
	type stored struct {
		seq uint64
		at  time.Time
	}
	attempts := map[string]map[int]stored{} // by delivery ID, then attempt
	outcomes := map[string]stored{}
	info, err := b.events.Info(ctx)
	require.NoError(t, err)
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		raw, err := b.events.GetMsg(ctx, seq)
		require.NoError(t, err)
		kind, _, err := events.ParseEventSubject(raw.Subject)
		require.NoError(t, err)
		switch kind {
		case events.KindAttempt:
			var a events.Attempt
			require.NoError(t, events.Decode(raw.Data, &a))
			if attempts[a.DeliveryID] == nil {
				attempts[a.DeliveryID] = map[int]stored{}
			}
			attempts[a.DeliveryID][a.Attempt] = stored{raw.Sequence, raw.Time}
		case events.KindDeliveryCompleted:
			var o events.Outcome
			require.NoError(t, events.Decode(raw.Data, &o))
			outcomes[o.DeliveryID] = stored{raw.Sequence, raw.Time}
		}
	}
	deliveries, err := b.js.Stream(ctx, events.StreamDeliveries)
	require.NoError(t, err)
	retries := map[string]stored{}
	dinfo, err := deliveries.Info(ctx)
	require.NoError(t, err)
	for seq := dinfo.State.FirstSeq; seq <= dinfo.State.LastSeq; seq++ {
		raw, err := deliveries.GetMsg(ctx, seq)
		require.NoError(t, err)
		var d events.Delivery
		require.NoError(t, events.Decode(raw.Data, &d))
		if d.Attempt == 2 {
			retries[d.DeliveryID] = stored{raw.Sequence, raw.Time}
		}
	}

	for _, id := range ids {
		first, ok := attempts[id][1]
		require.True(t, ok, "attempt 1 of %s", id)
		second, ok := attempts[id][2]
		require.True(t, ok, "attempt 2 of %s", id)
		retry, ok := retries[id]
		require.True(t, ok, "the delivery event of attempt 2 of %s", id)
		outcome, ok := outcomes[id]
		require.True(t, ok, "the outcome of %s", id)
		require.False(t, retry.at.Before(first.at), "attempt 2 of %s was scheduled before attempt 1 was stored", id)
		require.Less(t, first.seq, second.seq, id)
		require.Less(t, second.seq, outcome.seq, "the outcome of %s came before its attempt", id)
	}
}
