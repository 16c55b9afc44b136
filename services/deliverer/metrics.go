package deliverer

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Results of an attempt, the label of hammer_delivery_attempts_total. Each
// is a different thing for an operator to look at.
const (
	resultSuccess           = "success"
	resultHTTPError         = "http_error"
	resultRedirect          = "redirect"
	resultTimeout           = "timeout"
	resultConnectionRefused = "connection_refused"
	resultConnectionReset   = "connection_reset"
	resultDNSError          = "dns_error"
	resultTLSError          = "tls_error"
	resultConnectionError   = "connection_error"
	resultRefused           = "refused" // by the SSRF guard
	resultInvalid           = "invalid" // a URL or secret hammer cannot use
)

// Reasons a delivery event is held (handed back with NakWithDelay) without
// an attempt, the label of hammer_delivery_held_total.
const (
	holdNotDue              = "not_due"
	holdConcurrency         = "concurrency"
	holdSubscriptionUnknown = "subscription_unknown"
	holdUnavailable         = "unavailable"
	holdShutdown            = "shutdown"
	holdNewerVersion        = "newer_version"
)

type metrics struct {
	attempts *prometheus.CounterVec
	duration prometheus.Histogram
	lag      prometheus.Histogram
	inFlight prometheus.Gauge
	holds    *prometheus.CounterVec
	outcomes *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hammer_delivery_attempts_total",
			Help: "Delivery attempts made, by result (success, http_error, redirect, timeout, connection_refused, connection_reset, dns_error, tls_error, connection_error, refused, invalid).",
		}, []string{"result"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "hammer_delivery_request_duration_seconds",
			Help:    "Time from sending a delivery's request to having read its response (or failing).",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}),
		lag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "hammer_delivery_lag_seconds",
			Help:    "Time from when an attempt was due (the message's acceptance for a first attempt, the scheduled time for a retry) to its request.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300},
		}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hammer_deliveries_in_flight",
			Help: "Delivery requests this process is making right now.",
		}),
		holds: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hammer_delivery_held_total",
			Help: "Delivery events handed back to JetStream for later without an attempt, by reason (not_due: a retry waiting for its time; concurrency: the subscription's max_concurrent_requests reached; subscription_unknown: not in the bucket yet; unavailable: NATS could not serve; shutdown: handed back by a stopping deliverer; newer_version: left for a newer deliverer).",
		}, []string{"reason"}),
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hammer_delivery_outcomes_total",
			Help: "Deliveries ended, by status and reason.",
		}, []string{"status", "reason"}),
	}
	for _, c := range []prometheus.Collector{m.attempts, m.duration, m.lag, m.inFlight, m.holds, m.outcomes} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("registering deliverer metrics: %w", err)
		}
	}
	return m, nil
}
