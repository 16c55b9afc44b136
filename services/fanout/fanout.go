package fanout

import (
	"context"
	"errors"
	"fmt"
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
	"github.com/hammer-webhooks/hammer/sql/store/catalog"
)

const (
	// maxBatch is the most messages handled together, and so the most
	// topics one subscriptions query asks for.
	maxBatch = 256
	// maxInFlight bounds the delivery events published and not yet
	// acknowledged by JetStream; a publish beyond it waits up to stallWait.
	maxInFlight = 4096
	stallWait   = 10 * time.Second
	// publishTimeout is how long one delivery event may wait for its PubAck.
	publishTimeout = 10 * time.Second
	// batchTimeout bounds one batch, query and publishes included. It stays
	// below the consumer's AckWait (30 s) so that a batch ends, acked or
	// nakked, before JetStream hands its messages to another replica.
	batchTimeout = 20 * time.Second
	// drainTimeout bounds how long shutdown waits for prefetched messages.
	drainTimeout = 10 * time.Second
	// pullMaxBytes bounds one pull request; it is far above the largest
	// message NATS accepts (1 MiB by default).
	pullMaxBytes = 16 << 20
	// restartDelay spaces attempts to consume again after JetStream ended
	// the consumption.
	restartDelay = time.Second
)

// Options is what fanout needs from the process that runs it.
type Options struct {
	Config   config.Fanout
	Pool     *pgxpool.Pool
	NATS     *nats.Conn
	Logger   *zap.Logger
	Registry *prometheus.Registry
}

// Service turns accepted messages into delivery events. It keeps no state
// between batches, so any number of replicas can share its consumer.
type Service struct {
	cfg     config.Fanout
	pool    *pgxpool.Pool
	catalog *catalog.Catalog
	nc      *nats.Conn
	js      jetstream.JetStream
	log     *zap.Logger
	metrics *metrics

	// batchSize is a field so that tests can vary it.
	batchSize int
}

// New checks opts and builds the service without touching the network, so
// that a process can wire every service before any of them starts.
func New(opts Options) (*Service, error) {
	switch {
	case opts.Pool == nil:
		return nil, errors.New("fanout: Options.Pool is nil")
	case opts.NATS == nil:
		return nil, errors.New("fanout: Options.NATS is nil")
	case opts.Registry == nil:
		return nil, errors.New("fanout: Options.Registry is nil")
	}
	log := opts.Logger
	if log == nil {
		log = zap.NewNop()
	}
	js, err := jetstream.New(opts.NATS,
		jetstream.WithPublishAsyncMaxPending(maxInFlight),
		jetstream.WithPublishAsyncTimeout(publishTimeout),
	)
	if err != nil {
		return nil, fmt.Errorf("fanout: creating JetStream context: %w", err)
	}
	m, err := newMetrics(opts.Registry)
	if err != nil {
		return nil, fmt.Errorf("fanout: registering metrics: %w", err)
	}
	if err := streammetrics.Register(opts.Registry, opts.NATS, streammetrics.Consumer{Stream: events.StreamMessages, Name: topology.ConsumerFanout}); err != nil {
		return nil, fmt.Errorf("fanout: %w", err)
	}
	return &Service{
		cfg:       opts.Config,
		pool:      opts.Pool,
		catalog:   catalog.New(opts.Pool),
		nc:        opts.NATS,
		js:        js,
		log:       log,
		metrics:   m,
		batchSize: maxBatch,
	}, nil
}

// Checks are what /readyz asks of fanout: it reads subscriptions from
// Postgres and moves events through NATS.
func (s *Service) Checks() map[string]ops.Check {
	return map[string]ops.Check{"postgres": ops.Ping(s.pool), "nats": ops.NATSConnected(s.nc)}
}

// Run applies the topology and fans out messages until ctx is cancelled.
// On cancel it stops pulling, finishes the batch in hand and the messages
// already prefetched, and returns nil. Should JetStream end the consumption
// (the durable consumer was deleted, say), Run applies the topology again
// and resumes.
func (s *Service) Run(ctx context.Context) error {
	// A JetStream cluster still electing leaders, or a NATS restarting,
	// times the topology out for a while: retry rather than exit.
	if topology.EnsureRetrying(ctx, s.js, s.cfg.Topology(), s.log) != nil {
		return nil // cancelled
	}
	s.log.Info("fanout started", zap.Int("batch_size", s.batchSize))
	for {
		err := s.consume(ctx)
		if ctx.Err() != nil {
			s.log.Info("fanout stopped")
			return nil
		}
		s.log.Error("fanout stopped consuming; starting again", zap.Error(err))
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

// consume fans out batches until ctx is cancelled (then it drains and
// returns nil) or the consumption ends on its own (an error).
func (s *Service) consume(ctx context.Context) error {
	consumer, err := s.js.Consumer(ctx, events.StreamMessages, topology.ConsumerFanout)
	if err != nil {
		return fmt.Errorf("opening consumer %s: %w", topology.ConsumerFanout, err)
	}

	// The callback runs serially and only hands messages over; batches are
	// cut in the loop below from whatever is ready, so an idle fanout adds
	// no latency and a busy one amortises the query over many messages.
	in := make(chan jetstream.Msg, s.batchSize)
	quit := make(chan struct{})
	defer close(quit)
	handOver := func(msg jetstream.Msg) {
		select {
		case in <- msg:
		case <-quit:
			// Nobody takes it any more: let another replica have it now.
			_ = msg.Nak()
		}
	}
	consuming, err := consumer.Consume(handOver,
		// Each pull asks for at most a batch and at most pullMaxBytes, so
		// large messages cannot pile up in memory.
		jetstream.PullMaxMessagesWithBytesLimit(s.batchSize, pullMaxBytes),
		jetstream.PullHeartbeat(topology.PullHeartbeat),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			s.log.Warn("consuming messages", zap.Error(err))
		}),
	)
	if err != nil {
		return fmt.Errorf("consuming %s: %w", topology.ConsumerFanout, err)
	}

	closed := consuming.Closed()
	stopping := ctx.Done()
	var drainDeadline <-chan time.Time
	for {
		select {
		case msg := <-in:
			s.handleBatch(context.WithoutCancel(ctx), s.collect(msg, in))
		case <-stopping:
			// Drain hands the prefetched messages to the callback; they
			// are fanned out like any others instead of waiting for AckWait.
			stopping = nil
			consuming.Drain()
			drainDeadline = time.After(drainTimeout)
		case <-closed:
			for len(in) > 0 {
				s.handleBatch(context.WithoutCancel(ctx), s.collect(<-in, in))
			}
			if ctx.Err() != nil {
				return nil
			}
			return errors.New("the consumption ended (was the consumer deleted?)")
		case <-drainDeadline:
			consuming.Stop()
			s.log.Warn("stopped before the prefetched messages were drained; JetStream redelivers them after AckWait")
			return nil
		}
	}
}

// collect cuts a batch: first plus every message already waiting, up to the
// batch size.
func (s *Service) collect(first jetstream.Msg, in <-chan jetstream.Msg) []jetstream.Msg {
	batch := []jetstream.Msg{first}
	for len(batch) < s.batchSize {
		select {
		case msg := <-in:
			batch = append(batch, msg)
		default:
			return batch
		}
	}
	return batch
}
