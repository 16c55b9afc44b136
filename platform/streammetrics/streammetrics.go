// Package streammetrics exports, on every scrape, how far behind the durable
// JetStream consumers a process uses are. The numbers live in NATS; without
// them an operator cannot tell a slow stage from an idle one, and the NATS
// exporter is one more thing to deploy. Each service registers the
// consumers it reads; processes that run several services share one
// collector.
package streammetrics

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// Consumer names one durable consumer on a stream.
type Consumer struct {
	Stream string
	Name   string
}

// Metrics (the operations guide lists them). Declared as Opts literals so
// the guide's test finds their names.
var (
	pendingOpts = prometheus.GaugeOpts{
		Name: "hammer_jetstream_consumer_pending",
		Help: "Messages on the stream that the durable consumer has not delivered yet (its backlog).",
	}
	ackPendingOpts = prometheus.GaugeOpts{
		Name: "hammer_jetstream_consumer_ack_pending",
		Help: "Messages the durable consumer delivered and that are not acknowledged yet, including retries held for later with a delayed Nak.",
	}
	redeliveredOpts = prometheus.GaugeOpts{
		Name: "hammer_jetstream_consumer_redelivered",
		Help: "Unacknowledged messages the durable consumer has delivered more than once.",
	}
	errorsOpts = prometheus.CounterOpts{
		Name: "hammer_jetstream_consumer_info_errors_total",
		Help: "Scrapes on which the durable consumer's state could not be read from NATS (the last value read is reported meanwhile).",
	}
)

var labels = []string{"stream", "consumer"}

// DefaultTimeout bounds one scrape's reads of consumer state, so that a NATS
// outage never hangs /metrics.
const DefaultTimeout = 2 * time.Second

// minInterval is the least time between reads: scrapes closer together are
// answered from the last read.
const minInterval = time.Second

// Collector reads consumer state when scraped.
type Collector struct {
	js      jetstream.JetStream
	timeout time.Duration

	pending, ackPending, redelivered *prometheus.Desc
	errors                           *prometheus.CounterVec

	mu        sync.Mutex // held for a whole refresh: concurrent scrapes wait for one read
	consumers []Consumer
	last      map[Consumer]*jetstream.ConsumerInfo
	readAt    time.Time
}

func newCollector(js jetstream.JetStream, timeout time.Duration) *Collector {
	desc := func(o prometheus.Opts) *prometheus.Desc {
		return prometheus.NewDesc(o.Name, o.Help, labels, nil)
	}
	return &Collector{
		js:          js,
		timeout:     timeout,
		pending:     desc(prometheus.Opts(pendingOpts)),
		ackPending:  desc(prometheus.Opts(ackPendingOpts)),
		redelivered: desc(prometheus.Opts(redeliveredOpts)),
		errors:      prometheus.NewCounterVec(errorsOpts, labels),
		last:        map[Consumer]*jetstream.ConsumerInfo{},
	}
}

// Register makes reg report the state of consumers, read through nc. When
// reg already has a collector (hammer dev and hammer worker run several
// services on one registry), the consumers are added to it.
func Register(reg prometheus.Registerer, nc *nats.Conn, consumers ...Consumer) error {
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("stream metrics: %w", err)
	}
	c := newCollector(js, DefaultTimeout)
	if err := reg.Register(c); err != nil {
		var already prometheus.AlreadyRegisteredError
		if !errors.As(err, &already) {
			return fmt.Errorf("stream metrics: %w", err)
		}
		existing, ok := already.ExistingCollector.(*Collector)
		if !ok {
			return fmt.Errorf("stream metrics: %w", err)
		}
		c = existing
	}
	c.add(consumers...)
	return nil
}

func (c *Collector) add(consumers ...Consumer) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, consumer := range consumers {
		if !slices.Contains(c.consumers, consumer) {
			c.consumers = append(c.consumers, consumer)
		}
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.pending
	ch <- c.ackPending
	ch <- c.redelivered
	c.errors.Describe(ch)
}

// Collect implements prometheus.Collector: it reads every consumer's state
// (at most once a second, each read bounded by the timeout) and reports the
// last state read of each; a consumer never read yet is left out.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if time.Since(c.readAt) >= minInterval {
		c.refresh()
	}
	for _, consumer := range c.consumers {
		info := c.last[consumer]
		if info == nil {
			continue
		}
		ch <- prometheus.MustNewConstMetric(c.pending, prometheus.GaugeValue, float64(info.NumPending), consumer.Stream, consumer.Name)
		ch <- prometheus.MustNewConstMetric(c.ackPending, prometheus.GaugeValue, float64(info.NumAckPending), consumer.Stream, consumer.Name)
		ch <- prometheus.MustNewConstMetric(c.redelivered, prometheus.GaugeValue, float64(info.NumRedelivered), consumer.Stream, consumer.Name)
	}
	c.errors.Collect(ch)
}

// refresh reads every consumer at once under one deadline. c.mu is held.
func (c *Collector) refresh() {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	infos := make([]*jetstream.ConsumerInfo, len(c.consumers))
	var wg sync.WaitGroup
	for i, consumer := range c.consumers {
		wg.Go(func() {
			info, err := c.js.Consumer(ctx, consumer.Stream, consumer.Name)
			if err == nil {
				infos[i] = info.CachedInfo()
			}
		})
	}
	wg.Wait()
	for i, consumer := range c.consumers {
		if infos[i] == nil {
			c.errors.WithLabelValues(consumer.Stream, consumer.Name).Inc()
			continue
		}
		c.last[consumer] = infos[i]
	}
	c.readAt = time.Now()
}
