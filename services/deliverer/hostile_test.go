package deliverer_test

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hammer-webhooks/hammer/platform/events"
	"github.com/hammer-webhooks/hammer/platform/testkit"
	"github.com/hammer-webhooks/hammer/services/deliverer"
)

// bombHeaders is a response of 1.2 MiB of headers, more than NATS's 1 MiB
// max payload once recorded.
var bombHeaders = func() []byte {
	var b strings.Builder
	b.WriteString("HTTP/1.1 200 OK\r\n")
	value := strings.Repeat("h", 60<<10)
	for i := range 20 {
		b.WriteString("X-Bomb-" + strconv.Itoa(i) + ": " + value + "\r\n")
	}
	b.WriteString("Content-Length: 0\r\n\r\n")
	return []byte(b.String())
}()

// headerBomb answers with bombHeaders, written straight to the connection
// so that the receiver costs the test machine next to nothing.
func headerBomb(_ int, w http.ResponseWriter, _ *http.Request) {
	conn, buf, err := w.(http.Hijacker).Hijack()
	if err != nil {
		return
	}
	defer conn.Close()
	_, _ = buf.Write(bombHeaders)
	_ = buf.Flush()
}

// TestHugeResponseHeadersAreAFailedAttemptRecordedEachTime: a receiver
// whose headers could not be recorded gets exactly max_delivery_attempts
// requests, and every attempt is published, not retried without end.
func TestHugeResponseHeadersAreAFailedAttemptRecordedEachTime(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rc := newReceiver(t, headerBomb)
	sub := subscription("bomb", rc.URL)
	sub.MaxDeliveryAttempts = 3
	b.putSubscription(t, sub)
	b.start(t)

	id := b.deliver(t, b.publishMessage(t, "hello"), sub)
	o, rec := b.waitOutcome(t, id, 30*time.Second)
	require.Equal(t, events.StatusFailed, o.Status)
	require.Equal(t, events.ReasonMaxAttempts, o.Reason)
	require.Equal(t, 3, o.Attempts)
	a := rec.attemptsOf(id)
	require.Len(t, a, 3)
	for i, at := range a {
		require.Equal(t, i+1, at.Attempt)
		require.False(t, at.Success)
		require.NotEmpty(t, at.Error)
		require.Less(t, len(at.Response), 1<<20)
	}
	b.waitIdle(t, 10*time.Second)
	require.Equal(t, 3, rc.count())
}

// TestLargeMessageAndEscapedResponseFitInOneEvent: a 512 KiB message whose
// receiver answers with '<' characters (six bytes each once JSON-escaped)
// still gives an attempt event within the server's max payload, with the
// cut texts marked.
func TestLargeMessageAndEscapedResponseFitInOneEvent(t *testing.T) {
	t.Parallel()
	b := setup(t)
	angles := strings.Repeat("<", 100<<10)
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("X-Angles", angles[:32<<10])
		_, _ = w.Write([]byte(angles))
	})
	sub := subscription("large", rc.URL)
	b.putSubscription(t, sub)
	b.start(t)

	id := b.deliver(t, b.publishMessage(t, strings.Repeat("d", 512<<10)), sub)
	o, rec := b.waitOutcome(t, id, 20*time.Second)
	require.Equal(t, events.StatusCompleted, o.Status)
	a := rec.attemptsOf(id)
	require.Len(t, a, 1)
	require.True(t, a[0].Success)
	require.Contains(t, a[0].Request, "[hammer: ")
	require.Contains(t, a[0].Response, "[hammer: ")
	require.True(t, strings.HasPrefix(a[0].Response, "HTTP/1.1 200 OK\r\n"), a[0].Response[:64])

	raw, err := b.events.GetLastMsgForSubject(context.Background(), events.EventSubject(events.KindAttempt, sub.ID))
	require.NoError(t, err)
	require.LessOrEqual(t, len(raw.Data), int(b.nats.Conn.MaxPayload()))
	require.Equal(t, 1, rc.count())
}

// TestHostileReceiverDoesNotDelayOthers: while 120 deliveries go to a
// receiver sending headers no event could carry, another subscription's
// deliveries arrive within seconds (a bound far above their normal time,
// far below the publish timeout that every hostile attempt used to take).
func TestHostileReceiverDoesNotDelayOthers(t *testing.T) {
	t.Parallel()
	b := setup(t)
	hostile := newReceiver(t, headerBomb)
	healthy := newReceiver(t, nil)
	hostileSub := subscription("hostile", hostile.URL)
	healthySub := subscription("healthy", healthy.URL)
	b.putSubscription(t, hostileSub)
	b.putSubscription(t, healthySub)
	b.start(t, func(o *deliverer.Options) { o.Config.DeliveryConcurrency = 16 })

	b.deliverMany(t, 120, hostileSub)
	testkit.Eventually(t, 20*time.Second, func() bool { return hostile.count() >= 60 }, "hostile requests (got %d)", hostile.count())
	start := time.Now()
	b.deliverMany(t, 20, healthySub)
	testkit.Eventually(t, 30*time.Second, func() bool { return healthy.count() == 20 }, "healthy deliveries (got %d)", healthy.count())
	took := time.Since(start)
	t.Logf("healthy deliveries took %s; hostile receiver got %d requests", took.Round(time.Millisecond), hostile.count())
	require.Less(t, took, 5*time.Second, "a hostile receiver delayed another subscription")
}
