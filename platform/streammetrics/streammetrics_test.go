package streammetrics

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/hammer-webhooks/hammer/platform/events"
	"github.com/hammer-webhooks/hammer/platform/testkit"
	"github.com/hammer-webhooks/hammer/platform/topology"
)

var (
	fanout   = Consumer{Stream: events.StreamMessages, Name: topology.ConsumerFanout}
	recorder = Consumer{Stream: events.StreamMessages, Name: topology.ConsumerRecorderMessages}
)

// series renders the three gauges of consumers as the exposition format.
func series(values map[Consumer][3]int) string {
	var b strings.Builder
	for i, o := range []prometheus.GaugeOpts{pendingOpts, ackPendingOpts, redeliveredOpts} {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s gauge\n", o.Name, o.Help, o.Name)
		for c, v := range values {
			fmt.Fprintf(&b, "%s{consumer=%q,stream=%q} %d\n", o.Name, c.Name, c.Stream, v[i])
		}
	}
	return b.String()
}

func gauges() []string {
	return []string{pendingOpts.Name, ackPendingOpts.Name, redeliveredOpts.Name}
}

// The gauges follow the consumer: messages waiting, delivered and not
// acknowledged, delivered again.
func TestReportsConsumerState(t *testing.T) {
	t.Parallel()
	n := testkit.NewNATS(t)
	ctx := context.Background()
	reg := prometheus.NewRegistry()
	require.NoError(t, Register(reg, n.Conn, fanout))
	c := collectorOf(t, reg)

	for i := range 3 {
		_, err := n.JS.Publish(ctx, events.MessageSubject("orders"), fmt.Appendf(nil, "m%d", i))
		require.NoError(t, err)
	}
	// The consumer counts a stored message a moment after its PubAck.
	testkit.Eventually(t, 5*time.Second, func() bool {
		return testutil.GatherAndCompare(reg, strings.NewReader(series(map[Consumer][3]int{fanout: {3, 0, 0}})), gauges()...) == nil
	}, "the consumer never counted the 3 messages")
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(series(map[Consumer][3]int{fanout: {3, 0, 0}})), gauges()...))

	consumer, err := n.JS.Consumer(ctx, fanout.Stream, fanout.Name)
	require.NoError(t, err)
	batch, err := consumer.FetchNoWait(2)
	require.NoError(t, err)
	var first jetstream.Msg
	for m := range batch.Messages() {
		if first == nil {
			first = m
		}
	}
	require.NoError(t, first.Nak())
	again, err := consumer.Fetch(2, jetstream.FetchMaxWait(5*time.Second))
	require.NoError(t, err)
	var delivered []uint64
	for m := range again.Messages() {
		meta, err := m.Metadata()
		require.NoError(t, err)
		delivered = append(delivered, meta.NumDelivered)
	}
	require.ElementsMatch(t, []uint64{1, 2}, delivered, "the third message, and the nakked one again")

	c.mu.Lock()
	c.readAt = time.Time{} // a scrape inside minInterval would reuse the last read
	c.mu.Unlock()
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(series(map[Consumer][3]int{fanout: {0, 3, 1}})), gauges()...))
}

// hammer dev runs every service on one registry: a second Register adds its
// consumers to the collector already there instead of failing.
func TestSharedRegistry(t *testing.T) {
	t.Parallel()
	n := testkit.NewNATS(t)
	reg := prometheus.NewRegistry()
	require.NoError(t, Register(reg, n.Conn, fanout))
	require.NoError(t, Register(reg, n.Conn, recorder, fanout))
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(series(map[Consumer][3]int{fanout: {0, 0, 0}, recorder: {0, 0, 0}})), gauges()...))
	require.Len(t, collectorOf(t, reg).consumers, 2)
}

// With NATS gone a scrape still answers within the timeout, with the last
// values read and a count of the failed reads.
func TestNATSDown(t *testing.T) {
	t.Parallel()
	n := testkit.NewNATS(t)
	_, err := n.JS.Publish(context.Background(), events.MessageSubject("orders"), []byte("m"))
	require.NoError(t, err)
	reg := prometheus.NewRegistry()
	require.NoError(t, Register(reg, n.Conn, fanout))
	c := collectorOf(t, reg)
	c.timeout = 300 * time.Millisecond
	want := series(map[Consumer][3]int{fanout: {1, 0, 0}})
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(want), gauges()...))

	n.Server.Shutdown()
	n.Server.WaitForShutdown()
	c.mu.Lock()
	c.readAt = time.Time{}
	c.mu.Unlock()
	start := time.Now()
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(want), gauges()...))
	require.Less(t, time.Since(start), 2*time.Second, "the scrape waited past its timeout")
	require.Equal(t, 1.0, testutil.ToFloat64(c.errors.WithLabelValues(fanout.Stream, fanout.Name)))
}

// A consumer that does not exist yet is left out (and counted as an error)
// until it does.
func TestMissingConsumer(t *testing.T) {
	t.Parallel()
	n := testkit.StartNATS(t, t.TempDir())
	reg := prometheus.NewRegistry()
	require.NoError(t, Register(reg, n.Conn, fanout))
	c := collectorOf(t, reg)
	count, err := testutil.GatherAndCount(reg, gauges()...)
	require.NoError(t, err)
	require.Zero(t, count)
	require.Equal(t, 1.0, testutil.ToFloat64(c.errors.WithLabelValues(fanout.Stream, fanout.Name)))

	require.NoError(t, topology.Ensure(context.Background(), n.JS, topology.DefaultConfig()))
	c.mu.Lock()
	c.readAt = time.Time{}
	c.mu.Unlock()
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(series(map[Consumer][3]int{fanout: {0, 0, 0}})), gauges()...))
}

func collectorOf(t *testing.T, reg *prometheus.Registry) *Collector {
	t.Helper()
	err := reg.Register(newCollector(nil, 0))
	var already prometheus.AlreadyRegisteredError
	require.ErrorAs(t, err, &already)
	c, ok := already.ExistingCollector.(*Collector)
	require.True(t, ok)
	return c
}
