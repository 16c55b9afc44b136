package fanout

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Results of handling one message, the values of the "result" label of
// hammer_fanout_messages_total.
const (
	resultFannedOut = "fanned_out" // every delivery event acknowledged, message acked
	resultRetried   = "retried"    // something failed, message nakked with a delay
	resultMalformed = "malformed"  // unreadable headers, message terminated
)

type metrics struct {
	messages   *prometheus.CounterVec
	deliveries prometheus.Counter
	batch      prometheus.Histogram
	batchSize  prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hammer_fanout_messages_total",
			Help: "Messages fanout handled, by result: fanned_out, retried or malformed.",
		}, []string{"result"}),
		deliveries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hammer_fanout_deliveries_published_total",
			Help: "Delivery events fanout published and JetStream acknowledged (duplicates included).",
		}),
		batch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "hammer_fanout_batch_duration_seconds",
			Help:    "Time to handle one batch of messages, from the first decode to the last ack.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "hammer_fanout_batch_size",
			Help:    "Messages per batch; each batch costs one subscriptions query.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 10),
		}),
	}
	for _, c := range []prometheus.Collector{m.messages, m.deliveries, m.batch, m.batchSize} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	for _, r := range []string{resultFannedOut, resultRetried, resultMalformed} {
		m.messages.WithLabelValues(r)
	}
	return m, nil
}
