// Package deliverer is hammer's deliverer service. Any number of replicas
// share one durable pull consumer of DELIVERIES; each delivery event asks for
// one attempt, which the deliverer makes (an HTTP POST signed the Standard
// Webhooks way, through the SSRF guard), records as an event on EVENTS and,
// on failure, schedules by publishing the next attempt's event — all
// acknowledged by JetStream before the event that asked is acknowledged. It
// needs no database. Run starts it.
package deliverer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/hammer-webhooks/hammer/platform/config"
	"github.com/hammer-webhooks/hammer/platform/events"
	"github.com/hammer-webhooks/hammer/platform/ops"
	"github.com/hammer-webhooks/hammer/platform/streammetrics"
	"github.com/hammer-webhooks/hammer/platform/topology"
	"github.com/hammer-webhooks/hammer/platform/tracing"
	"github.com/hammer-webhooks/hammer/services/deliverer/ssrf"
)

// DefaultStopGrace is how long requests in flight may finish when the
// deliverer stops before they are abandoned (and made again by another),
// when the configuration does not say (HAMMER_DELIVERY_STOP_GRACE).
const DefaultStopGrace = 15 * time.Second

// drainWait bounds how long a stopping deliverer waits for its fetches
// under way to end (they end within pullWait).
const drainWait = 5 * time.Second

// Options are what New needs.
type Options struct {
	Config   config.Deliverer
	NATS     *nats.Conn
	Logger   *zap.Logger
	Registry *prometheus.Registry // hammer_delivery_* metrics are registered here
	// Resolver replaces DNS for the SSRF guard; tests map names to loopback
	// or to forbidden addresses so that nothing leaves the machine.
	Resolver ssrf.Resolver
	// Dial replaces the network dial of checked addresses (tests watch it).
	Dial ssrf.DialFunc
}

// Service is one deliverer process.
type Service struct {
	cfg       config.Deliverer
	nc        *nats.Conn
	log       *zap.Logger
	metrics   *metrics
	client    *http.Client
	slots     *slots
	stopGrace time.Duration
	policy    string

	// Set by Run.
	js     jetstream.JetStream
	subs   *subscriptions
	bodies *bodies
}

// New validates opts and builds the service; it does no I/O.
func New(opts Options) (*Service, error) {
	if err := opts.Config.Validate(); err != nil {
		return nil, fmt.Errorf("deliverer configuration: %w", err)
	}
	if opts.NATS == nil {
		return nil, errors.New("deliverer: no NATS connection")
	}
	log := opts.Logger
	if log == nil {
		log = zap.NewNop()
	}
	reg := opts.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	if err := streammetrics.Register(reg, opts.NATS, streammetrics.Consumer{Stream: events.StreamDeliveries, Name: topology.ConsumerDeliverer}); err != nil {
		return nil, fmt.Errorf("deliverer: %w", err)
	}
	allowed, err := ssrf.ParsePrefixes(opts.Config.AllowedCIDRs)
	if err != nil {
		return nil, fmt.Errorf("HAMMER_DELIVERY_ALLOWED_CIDRS: %w", err)
	}
	also, err := ssrf.ParsePrefixes(opts.Config.AlsoAllowedCIDRs)
	if err != nil {
		return nil, fmt.Errorf("HAMMER_DELIVERY_ALSO_ALLOWED_CIDRS: %w", err)
	}
	policy := "default: public addresses only"
	if len(also) > 0 && len(allowed) == 0 {
		parts := make([]string, len(also))
		for i, p := range also {
			parts[i] = p.String()
		}
		policy = "default, and also " + strings.Join(parts, ", ")
	}
	if len(allowed) > 0 {
		parts := make([]string, len(allowed))
		for i, p := range allowed {
			parts[i] = p.String()
		}
		policy = "only " + strings.Join(parts, ", ")
	}
	grace := opts.Config.StopGrace
	if grace <= 0 {
		grace = DefaultStopGrace
	}
	guard := ssrf.New(ssrf.Config{Allowed: allowed, AlsoAllowed: also, Resolver: opts.Resolver, Dial: opts.Dial, Log: log})
	return &Service{
		cfg:       opts.Config,
		nc:        opts.NATS,
		log:       log.Named("deliverer"),
		metrics:   m,
		client:    newClient(guard, opts.Config.DeliveryConcurrency),
		slots:     &slots{inUse: map[string]int{}},
		stopGrace: grace,
		policy:    policy,
	}, nil
}

// StopTimeout is how long the deliverer may take to stop once asked: the
// end of its fetches, the grace of the requests in flight, and room to
// finish. A process running it must wait at least this long.
func (s *Service) StopTimeout() time.Duration {
	return drainWait + s.stopGrace + 10*time.Second
}

// Checks is what /readyz asks of the deliverer: NATS only.
func (s *Service) Checks() map[string]ops.Check {
	return map[string]ops.Check{"nats": ops.NATSConnected(s.nc)}
}

// job is a delivery event handed to a worker.
type job struct {
	msg jetstream.Msg
	ev  events.Delivery
}

// Run applies the topology, then delivers until ctx is cancelled. On cancel
// it stops pulling, hands back what was fetched but not started, lets
// requests in flight finish (up to the stop grace) and returns nil.
func (s *Service) Run(ctx context.Context) error {
	js, err := jetstream.New(s.nc,
		jetstream.WithPublishAsyncMaxPending(maxPendingPublishes),
		jetstream.WithPublishAsyncTimeout(publishTimeout))
	if err != nil {
		return fmt.Errorf("deliverer: %w", err)
	}
	s.js = js
	topo := s.cfg.Topology()
	topo.DelivererAckWait = s.cfg.AckWait
	if topology.EnsureRetrying(ctx, js, topo, s.log) != nil {
		return nil // cancelled
	}
	if s.subs, err = newSubscriptions(ctx, js, s.log); err != nil {
		return fmt.Errorf("deliverer: %w", err)
	}
	messages, err := js.Stream(ctx, events.StreamMessages)
	if err != nil {
		return fmt.Errorf("deliverer: opening stream %s: %w", events.StreamMessages, err)
	}
	s.bodies = newBodies(messages, bodyCacheBytes)
	consumer, err := js.Consumer(ctx, events.StreamDeliveries, topology.ConsumerDeliverer)
	if err != nil {
		return fmt.Errorf("deliverer: opening consumer %s: %w", topology.ConsumerDeliverer, err)
	}

	// Requests and their publishes run under work, which outlives ctx by
	// the stop grace so that what is in flight can finish.
	work, abandon := context.WithCancel(context.WithoutCancel(ctx))
	defer abandon()
	watchCtx, stopWatch := context.WithCancel(ctx)
	var watching sync.WaitGroup
	watching.Go(func() { s.subs.run(watchCtx) })
	watching.Go(func() { s.bodies.prefetch(watchCtx, js, s.log) })
	defer func() { stopWatch(); watching.Wait() }()

	jobs := make(chan job)
	stopping := make(chan struct{})
	var workers sync.WaitGroup
	fin := &finishing{slots: make(chan struct{}, maxFinishing(s.cfg.DeliveryConcurrency))}
	for range s.cfg.DeliveryConcurrency {
		workers.Go(func() { s.worker(work, jobs, stopping, fin) })
	}

	var pulling sync.WaitGroup
	loops := min(pullers, s.cfg.DeliveryConcurrency)
	share := s.cfg.DeliveryConcurrency / loops // what is fetched never exceeds the workers
	for range loops {
		pulling.Go(func() {
			s.pull(consumer, share, func(msg jetstream.Msg) { s.dispatch(msg, jobs, stopping) }, stopping)
		})
	}
	s.log.Info("deliverer started",
		zap.Int("concurrency", s.cfg.DeliveryConcurrency),
		zap.String("ssrf_policy", s.policy))

	<-ctx.Done()
	s.log.Info("deliverer stopping")
	close(stopping)
	// The fetches under way end within pullWait; what they bring reaches
	// dispatch, which hands it back.
	pulled := make(chan struct{})
	go func() { pulling.Wait(); close(pulled) }()
	select {
	case <-pulled:
	case <-time.After(drainWait):
		s.log.Warn("fetches did not end in time")
	}
	done := make(chan struct{})
	go func() { workers.Wait(); fin.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(s.stopGrace):
		s.log.Warn("abandoning requests in flight", zap.Duration("grace", s.stopGrace))
		abandon()
		<-done
	}
	s.log.Info("deliverer stopped")
	return nil
}

// pullers is how many fetch loops feed the workers, each asking for its
// share of HAMMER_DELIVERY_CONCURRENCY: while one loop's request is on its
// way, the other's delivery events are being handed out.
const pullers = 2

// pullWait is how long a fetch waits for delivery events when there are
// none. It bounds how long a stopping deliverer waits for its fetches.
const pullWait = 2 * time.Second

// pull feeds dispatch from the consumer, one fetch after another, until
// stopping is closed. A fetch asks for share delivery events and ends once
// they have come or after pullWait; every event it brings reaches dispatch,
// even after stopping (dispatch then hands it back at once). Handing over
// waits for a free worker, so a fetch is asked for only when there is room.
//
// Fetches rather than Consume: Consume keeps a count of the events its pull
// requests still owe and pulls again when the count runs low, but a count
// that runs low while its previous pull is still being sent is not acted
// on. When the events owed then all arrive before that send returns, nothing
// pulls again until two heartbeats are missed, and the deliverer stops with
// deliveries waiting (2 s with topology.PullHeartbeat; about one run in
// three of make bench). Each fetch is complete in itself.
func (s *Service) pull(consumer jetstream.Consumer, share int, dispatch func(jetstream.Msg), stopping <-chan struct{}) {
	var pause time.Duration // after a failure, growing to pullWait
	for {
		select {
		case <-stopping:
			return
		default:
		}
		if pause > 0 {
			select {
			case <-stopping:
				return
			case <-time.After(pause):
			}
		}
		batch, err := consumer.Fetch(share, jetstream.FetchMaxWait(pullWait))
		if err == nil {
			for msg := range batch.Messages() {
				dispatch(msg)
			}
			err = batch.Error()
		}
		if err == nil || errors.Is(err, nats.ErrTimeout) {
			pause = 0
			continue
		}
		pause = min(max(2*pause, 100*time.Millisecond), pullWait)
		s.log.Warn("fetching deliveries", zap.Error(err), zap.Duration("retry_in", pause))
	}
}

// dispatch hands one delivery event on. It answers what needs no worker (a
// retry that is not due yet) at once, so that held retries never queue
// behind slow requests, and hands the rest to a worker, waiting for one to
// be free: that wait is what bounds the number of requests in flight.
func (s *Service) dispatch(msg jetstream.Msg, jobs chan<- job, stopping <-chan struct{}) {
	select {
	case <-stopping:
		s.settle(msg, hold(0, holdShutdown), s.log)
		return
	default:
	}
	ev, err := triage(msg, time.Now())
	if err != nil {
		s.settle(msg, err, s.log)
		return
	}
	select {
	case jobs <- job{msg: msg, ev: ev}:
	case <-stopping:
		s.settle(msg, hold(0, holdShutdown), s.log)
	}
}

// finishing bounds the delivery events whose request is made and whose
// events are being published: a worker hands that wait over and takes the
// next request, so publishing costs no request slot.
type finishing struct {
	slots chan struct{}
	wg    sync.WaitGroup
}

// maxFinishing is how many delivery events may be publishing at once.
func maxFinishing(concurrency int) int { return 4 * concurrency }

func (s *Service) worker(ctx context.Context, jobs <-chan job, stopping <-chan struct{}, fin *finishing) {
	for {
		select {
		case <-stopping:
			return
		case j := <-jobs:
			select {
			case <-stopping:
				s.settle(j.msg, hold(0, holdShutdown), s.log)
				continue
			default:
			}
			// Encoded only if something is logged: most deliveries log nothing.
			log := s.log.WithLazy(
				zap.String("delivery_id", j.ev.DeliveryID),
				zap.String("subscription_id", j.ev.SubscriptionID),
				zap.String("message_id", j.ev.MessageID),
				zap.Int("attempt", j.ev.Attempt))
			stopProgress := s.reportProgress(j.msg)
			// The message's trace goes on from the delivery event, through
			// the request, into the events that follow.
			tctx, span := tracing.StartConsumer(ctx, j.msg.Headers(), "deliver")
			tracing.SetString(span, "hammer.delivery_id", j.ev.DeliveryID)
			tracing.SetInt(span, "hammer.attempt", j.ev.Attempt)
			p, err := s.deliver(tctx, j.ev, log)
			if err != nil {
				stopProgress()
				s.settle(j.msg, err, log)
				span.End()
				continue
			}
			fin.slots <- struct{}{}
			fin.wg.Go(func() {
				defer func() { <-fin.slots }()
				err := s.publish(tctx, p)
				stopProgress()
				s.settle(j.msg, err, log)
				tracing.Fail(span, err)
				span.End()
			})
		}
	}
}

// reportProgress tells JetStream the event is being worked on, often enough
// that AckWait never hands it to another deliverer mid-request.
func (s *Service) reportProgress(msg jetstream.Msg) (stop func()) {
	every := s.cfg.AckWait / 3
	var mu sync.Mutex
	stopped := false
	mu.Lock()
	defer mu.Unlock()
	var t *time.Timer
	t = time.AfterFunc(every, func() {
		_ = msg.InProgress()
		mu.Lock()
		defer mu.Unlock()
		if !stopped {
			t.Reset(every)
		}
	})
	return func() {
		mu.Lock()
		defer mu.Unlock()
		stopped = true
		t.Stop()
	}
}

// holdError hands a delivery event back to JetStream for later, without an
// attempt: JetStream redelivers it after delay.
type holdError struct {
	delay  time.Duration
	reason string
}

func (h *holdError) Error() string {
	return fmt.Sprintf("held for %s (%s)", h.delay, h.reason)
}

func hold(delay time.Duration, reason string) error {
	return &holdError{delay: delay, reason: reason}
}

// errMalformed marks an event that no deliverer can ever handle.
var errMalformed = errors.New("malformed delivery event")

// unavailableRetry is how soon an event that met a transient failure (NATS
// could not serve a read or a publish) comes back.
const unavailableRetry = 2 * time.Second

// settle is the one place that answers JetStream for a delivery event:
// nil → Ack (waiting for the server to confirm, so that a lost ack does not
// make the attempt again); hold → Nak, delayed as asked; malformed → Term;
// anything else is transient → NakWithDelay.
func (s *Service) settle(msg jetstream.Msg, err error, log *zap.Logger) {
	var h *holdError
	var ackErr error
	switch {
	case err == nil:
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		ackErr = msg.DoubleAck(ctx)
		cancel()
	case errors.As(err, &h):
		s.metrics.holds.WithLabelValues(h.reason).Inc()
		if h.delay <= 0 {
			ackErr = msg.Nak()
		} else {
			ackErr = msg.NakWithDelay(h.delay)
		}
	case errors.Is(err, errMalformed):
		log.Error("dropping delivery event", zap.Error(err))
		ackErr = msg.TermWithReason(err.Error())
	default:
		s.metrics.holds.WithLabelValues(holdUnavailable).Inc()
		log.Warn("delivery event will be retried", zap.Error(err), zap.Duration("in", unavailableRetry))
		ackErr = msg.NakWithDelay(unavailableRetry)
	}
	if ackErr != nil {
		log.Warn("answering JetStream for a delivery event", zap.Error(ackErr))
	}
}

// newerVersionRetry is how soon an event of a payload version this
// deliverer does not know comes back: during a rolling upgrade a newer
// deliverer takes it meanwhile.
const newerVersionRetry = 30 * time.Second

// triage decodes an event and holds it when it is not due yet.
func triage(msg jetstream.Msg, now time.Time) (events.Delivery, error) {
	var ev events.Delivery
	if err := events.Decode(msg.Data(), &ev); err != nil {
		var head struct {
			V int `json:"v"`
		}
		if json.Unmarshal(msg.Data(), &head) == nil && head.V > events.Version {
			return ev, hold(newerVersionRetry, holdNewerVersion)
		}
		return ev, fmt.Errorf("%w: %w", errMalformed, err)
	}
	if ev.DeliveryID == "" || ev.SubscriptionID == "" || ev.MessageID == "" || ev.Attempt < 1 || ev.MessageSequence == 0 {
		return ev, fmt.Errorf("%w: missing delivery_id, subscription_id, message_id, message_sequence or attempt", errMalformed)
	}
	if wait := ev.NotBefore.Sub(now); wait > time.Millisecond {
		return ev, hold(wait, holdNotDue)
	}
	return ev, nil
}

// slots counts the requests in flight per subscription in this process, for
// max_concurrent_requests.
type slots struct {
	mu    sync.Mutex
	inUse map[string]int
}

func (s *slots) acquire(id string, limit int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.inUse[id] >= limit {
		return false
	}
	s.inUse[id]++
	return true
}

func (s *slots) release(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.inUse[id]--; s.inUse[id] <= 0 {
		delete(s.inUse, id)
	}
}
