package pipeline_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hammer-webhooks/hammer/platform/testkit"
	"github.com/hammer-webhooks/hammer/tests/inproc"
)

// A clean shutdown in the middle of a run hands every delivery back: the
// requests in flight finish and are recorded, what the deliverer had
// prefetched returns to JetStream at once without using an attempt, and
// after a restart everything completes long before the one-minute AckWait
// would have released anything. Nothing is received twice.
func TestCleanShutdownHandsBackWork(t *testing.T) {
	t.Parallel()
	db := testkit.NewDB(t)
	n := testkit.NewNATS(t)
	s := inproc.Start(t, db, n)

	var mu sync.Mutex
	receipts := map[string]int{}
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(200 * time.Millisecond)
		mu.Lock()
		receipts[r.Header.Get("webhook-id")]++
		mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(slow.Close)
	received := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(receipts)
	}

	const messages = 120
	s.MustCall(t, http.MethodPost, "/v1/topics", `{"topic": {"id": "slow", "name": "Slow"}}`, http.StatusOK)
	s.MustCall(t, http.MethodPost, "/v1/subscriptions", fmt.Sprintf(`{"subscription": {"id": "slow-sub", "topic_id": "slow", "name": "s", "url": %q, "max_concurrent_requests": 16}}`, slow.URL), http.StatusOK)
	body := `{"messages": [`
	for i := range messages {
		if i > 0 {
			body += ","
		}
		body += fmt.Sprintf(`{"topic_id": "slow", "data": "m%d"}`, i)
	}
	s.MustCall(t, http.MethodPost, "/v1/messages:batch", body+`]}`, http.StatusOK)

	testkit.Eventually(t, 20*time.Second, func() bool { return received() >= 20 }, "deliveries did not start")
	s.Stop()
	stoppedWith := received()
	require.Less(t, stoppedWith, messages, "the run ended before the shutdown; nothing was handed back")

	restarted := time.Now()
	inproc.Start(t, db, n)
	var completed int
	testkit.Eventually(t, 30*time.Second, func() bool {
		require.NoError(t, db.Pool.QueryRow(context.Background(),
			"SELECT count(*) FROM deliveries WHERE status = 'completed'").Scan(&completed))
		return completed == messages
	}, "deliveries did not complete after the restart")
	require.Less(t, time.Since(restarted), 30*time.Second, "work waited for AckWait (1 minute)")

	mu.Lock()
	defer mu.Unlock()
	require.Len(t, receipts, messages)
	for id, count := range receipts {
		require.Equal(t, 1, count, "delivery %s received %d times", id, count)
	}
	var maxAttempts, attempts int
	require.NoError(t, db.Pool.QueryRow(context.Background(),
		"SELECT max(delivery_attempts), (SELECT count(*) FROM delivery_attempts) FROM deliveries").Scan(&maxAttempts, &attempts))
	require.Equal(t, 1, maxAttempts, "handing work back must not use an attempt")
	require.Equal(t, messages, attempts)
	t.Logf("stopped after %d of %d receipts; the rest completed %s after the restart", stoppedWith, messages, time.Since(restarted).Round(time.Millisecond))
}
