package recorder

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/hammer-webhooks/hammer/platform/config"
	"github.com/hammer-webhooks/hammer/platform/events"
	"github.com/hammer-webhooks/hammer/platform/ops"
	"github.com/hammer-webhooks/hammer/platform/streammetrics"
	"github.com/hammer-webhooks/hammer/platform/topology"
)

const (
	// flushTimeout bounds one batch's transaction, retries of its halves
	// included. It stays below the consumers' AckWait (30 s) so a batch is
	// acked or nakked before JetStream hands its events out again.
	flushTimeout = 20 * time.Second
	// drainTimeout bounds how long shutdown waits for prefetched events.
	drainTimeout = 10 * time.Second
	// pullMaxBytes bounds one pull request; it is far above the largest
	// message NATS accepts (1 MiB by default).
	pullMaxBytes = 16 << 20
	// maxBatchBytes flushes a batch early when its message bodies, requests
	// and responses add up to this much, keeping one statement's size sane
	// whatever HAMMER_RECORDER_BATCH_SIZE says.
	maxBatchBytes = 16 << 20
	// restartDelay spaces attempts to consume again after JetStream ended
	// the consumption.
	restartDelay = time.Second
)

// Options is what the recorder needs from the process that runs it.
type Options struct {
	Config   config.Recorder
	Pool     *pgxpool.Pool
	NATS     *nats.Conn
	Logger   *zap.Logger
	Registry *prometheus.Registry
}

// Service projects hammer's streams into Postgres. Its writes are
// idempotent, so replicas may share its consumers.
type Service struct {
	cfg     config.Recorder
	pool    *pgxpool.Pool
	nc      *nats.Conn
	js      jetstream.JetStream
	log     *zap.Logger
	metrics *metrics

	// maxBatchBytes is a field so that tests can lower it.
	maxBatchBytes int
}

// source is one stream the recorder reads, through its durable consumer.
type source struct {
	stream, consumer, label string
}

var sources = []source{
	{events.StreamMessages, topology.ConsumerRecorderMessages, labelMessages},
	{events.StreamDeliveries, topology.ConsumerRecorderDeliveries, labelDeliveries},
	{events.StreamEvents, topology.ConsumerRecorderEvents, labelEvents},
}

// New checks opts and builds the recorder without touching the network, so
// that a process can wire every service before any of them starts.
func New(opts Options) (*Service, error) {
	switch {
	case opts.Pool == nil:
		return nil, errors.New("recorder: Options.Pool is nil")
	case opts.NATS == nil:
		return nil, errors.New("recorder: Options.NATS is nil")
	case opts.Registry == nil:
		return nil, errors.New("recorder: Options.Registry is nil")
	case opts.Config.BatchSize < 1:
		return nil, fmt.Errorf("recorder: batch size %d: want at least 1 (HAMMER_RECORDER_BATCH_SIZE)", opts.Config.BatchSize)
	case opts.Config.FlushInterval <= 0:
		return nil, fmt.Errorf("recorder: flush interval %s: want above 0 (HAMMER_RECORDER_FLUSH_INTERVAL)", opts.Config.FlushInterval)
	}
	log := opts.Logger
	if log == nil {
		log = zap.NewNop()
	}
	js, err := jetstream.New(opts.NATS)
	if err != nil {
		return nil, fmt.Errorf("recorder: creating JetStream context: %w", err)
	}
	m, err := newMetrics(opts.Registry)
	if err != nil {
		return nil, fmt.Errorf("recorder: registering metrics: %w", err)
	}
	if err := streammetrics.Register(opts.Registry, opts.NATS,
		streammetrics.Consumer{Stream: events.StreamMessages, Name: topology.ConsumerRecorderMessages},
		streammetrics.Consumer{Stream: events.StreamDeliveries, Name: topology.ConsumerRecorderDeliveries},
		streammetrics.Consumer{Stream: events.StreamEvents, Name: topology.ConsumerRecorderEvents}); err != nil {
		return nil, fmt.Errorf("recorder: %w", err)
	}
	return &Service{
		cfg:           opts.Config,
		pool:          opts.Pool,
		nc:            opts.NATS,
		js:            js,
		log:           log,
		metrics:       m,
		maxBatchBytes: maxBatchBytes,
	}, nil
}

// Checks are what /readyz asks of the recorder: it reads NATS and writes
// Postgres.
func (s *Service) Checks() map[string]ops.Check {
	return map[string]ops.Check{"postgres": ops.Ping(s.pool), "nats": ops.NATSConnected(s.nc)}
}

// Run applies the topology and records events until ctx is cancelled. On
// cancel it stops pulling, writes what it holds and what was prefetched,
// and returns nil. Should JetStream end a consumption (a consumer was
// deleted, say), Run applies the topology again and resumes.
func (s *Service) Run(ctx context.Context) error {
	// A JetStream cluster still electing leaders, or a NATS restarting,
	// times the topology out for a while: retry rather than exit.
	if topology.EnsureRetrying(ctx, s.js, s.cfg.Topology(), s.log) != nil {
		return nil // cancelled
	}
	s.log.Info("recorder started", zap.Int("batch_size", s.cfg.BatchSize), zap.Duration("flush_interval", s.cfg.FlushInterval))
	for {
		err := s.consume(ctx)
		if ctx.Err() != nil {
			s.log.Info("recorder stopped")
			return nil
		}
		s.log.Error("recorder stopped consuming; starting again", zap.Error(err))
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(restartDelay):
		}
		if err := topology.Ensure(ctx, s.js, s.cfg.Topology()); err != nil && ctx.Err() == nil {
			s.log.Error("applying topology", zap.Error(err))
		}
	}
}

// consume reads the three streams into batches until ctx is cancelled (then
// it drains, flushes and returns nil) or a consumption ends on its own (an
// error, after flushing what it holds).
func (s *Service) consume(ctx context.Context) error {
	in := make(chan jetstream.Msg, s.cfg.BatchSize)
	quit := make(chan struct{})
	defer close(quit)
	handOver := func(msg jetstream.Msg) {
		select {
		case in <- msg:
		case <-quit:
			_ = msg.Nak() // nobody takes it any more: let another replica have it now
		}
	}

	var consuming []jetstream.ConsumeContext
	stopAll := func() {
		for _, c := range consuming {
			c.Stop()
		}
	}
	closed := make(chan string, len(sources))
	for _, src := range sources {
		consumer, err := s.js.Consumer(ctx, src.stream, src.consumer)
		if err != nil {
			stopAll()
			return fmt.Errorf("opening consumer %s: %w", src.consumer, err)
		}
		c, err := consumer.Consume(handOver,
			// Each pull asks for at most a batch and at most pullMaxBytes,
			// so large messages and attempts cannot pile up in memory.
			jetstream.PullMaxMessagesWithBytesLimit(s.cfg.BatchSize, pullMaxBytes),
			jetstream.PullHeartbeat(topology.PullHeartbeat),
			jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
				s.log.Warn("consuming events", zap.String("consumer", src.consumer), zap.Error(err))
			}),
		)
		if err != nil {
			stopAll()
			return fmt.Errorf("consuming %s: %w", src.consumer, err)
		}
		consuming = append(consuming, c)
		go func() {
			<-c.Closed()
			closed <- src.consumer
		}()
	}

	// Events are decoded here and written by lanes, each batching on its
	// own and committing one batch at a time, in order: messages in one,
	// deliveries and their events in the other. Only the events of one
	// delivery depend on their order (the first final one wins), and they
	// all travel in the second lane, as they did in one batch stream.
	inputs := make([]chan *record, lanes)
	var running sync.WaitGroup
	for i := range inputs {
		inputs[i] = make(chan *record, s.cfg.BatchSize)
		running.Go(func() { s.runLane(ctx, inputs[i]) })
	}
	finish := func() {
		for _, c := range inputs {
			close(c)
		}
		running.Wait()
	}
	take := func(msg jetstream.Msg) {
		if rec := s.decodeRecord(msg); rec != nil {
			inputs[rec.lane()] <- rec
		}
	}

	stopping := ctx.Done()
	var drainDeadline <-chan time.Time
	open := len(consuming)
	for {
		select {
		case msg := <-in:
			take(msg)
		case <-stopping:
			// Drain hands the prefetched events to the callback; they are
			// recorded now instead of waiting for AckWait after a restart.
			stopping = nil
			for _, c := range consuming {
				c.Drain()
			}
			drainDeadline = time.After(drainTimeout)
		case name := <-closed:
			open--
			if open > 0 && ctx.Err() != nil {
				continue
			}
			for len(in) > 0 {
				take(<-in)
			}
			finish()
			stopAll()
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("the consumption of %s ended (was the consumer deleted?)", name)
		case <-drainDeadline:
			stopAll()
			for len(in) > 0 {
				take(<-in)
			}
			finish()
			s.log.Warn("stopped before the prefetched events were drained; JetStream redelivers them after AckWait")
			return nil
		}
	}
}

// Lanes of records, written independently of each other.
const (
	laneMessages   = iota // messages
	laneDeliveries        // deliveries and attempts
	lanes
)

func (r *record) lane() int {
	if r.message != nil {
		return laneMessages
	}
	return laneDeliveries
}

// runLane batches the records of one lane until in is closed, then writes
// what it holds and returns. A batch goes to the lane's writer when it is
// full (waiting for the writer if need be), or when it is due and the
// writer is free: while the writer commits, the next batch fills, up to
// its bounds.
func (s *Service) runLane(ctx context.Context, in <-chan *record) {
	writes := make(chan []*record)
	var writer sync.WaitGroup
	writer.Go(func() {
		for records := range writes {
			s.flush(context.WithoutCancel(ctx), records)
		}
	})
	defer func() {
		close(writes)
		writer.Wait()
	}()

	b := &batch{}
	due := false
	var flushTimer *time.Timer
	var flushDue <-chan time.Time
	handedOver := func() {
		if flushTimer != nil {
			flushTimer.Stop()
			flushTimer, flushDue = nil, nil
		}
		b, due = &batch{}, false
	}
	flush := func() {
		if len(b.records) > 0 {
			writes <- b.records
		}
		handedOver()
	}
	for {
		var ready chan<- []*record // the writer's hand, once the batch is due
		if due {
			ready = writes
		}
		select {
		case rec, ok := <-in:
			if !ok {
				flush()
				return
			}
			b.records = append(b.records, rec)
			b.bytes += rec.size()
			if len(b.records) == 1 {
				flushTimer = time.NewTimer(s.cfg.FlushInterval)
				flushDue = flushTimer.C
			}
			if len(b.records) >= s.cfg.BatchSize || b.bytes >= s.maxBatchBytes {
				flush()
			}
		case <-flushDue:
			flushTimer, flushDue = nil, nil
			due = true
		case ready <- b.records:
			handedOver()
		}
	}
}
