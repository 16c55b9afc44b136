package recorder

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Values of the "stream" label: the stream an event came from.
const (
	labelMessages   = "messages"
	labelDeliveries = "deliveries"
	labelEvents     = "events"
)

type metrics struct {
	events      *prometheus.CounterVec
	batchSize   prometheus.Histogram
	flush       prometheus.Histogram
	flushErrors prometheus.Counter
	terminated  prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hammer_recorder_events_total",
			Help: "Events the recorder received, by stream: messages, deliveries or events.",
		}, []string{"stream"}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "hammer_recorder_batch_size",
			Help:    "Events per flushed batch (HAMMER_RECORDER_BATCH_SIZE at most).",
			Buckets: prometheus.ExponentialBuckets(1, 2, 14),
		}),
		flush: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "hammer_recorder_flush_duration_seconds",
			Help:    "Time to write one batch to Postgres and acknowledge it.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}),
		flushErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hammer_recorder_flush_errors_total",
			Help: "Transactions of the recorder that failed; their events are retried.",
		}),
		terminated: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hammer_recorder_events_terminated_total",
			Help: "Events the recorder gave up on: undecodable, or refused by Postgres on their own.",
		}),
	}
	for _, c := range []prometheus.Collector{m.events, m.batchSize, m.flush, m.flushErrors, m.terminated} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	for _, s := range []string{labelMessages, labelDeliveries, labelEvents} {
		m.events.WithLabelValues(s)
	}
	return m, nil
}
