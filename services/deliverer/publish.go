package deliverer

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hammer-webhooks/hammer/platform/events"
	"github.com/hammer-webhooks/hammer/platform/tracing"
)

const (
	// publishTimeout bounds the publishing of one plan, retries included,
	// while NATS recovers.
	publishTimeout = 10 * time.Second
	// maxPendingPublishes bounds the events published and not yet
	// acknowledged by JetStream; beyond it a publish waits (stallWait).
	maxPendingPublishes = 4096
	stallWait           = 5 * time.Second
)

// plan is what an attempt (or a decision to end a delivery without one)
// leaves to publish, in order, before its delivery event is acknowledged.
type plan struct {
	steps []step
	// outcome labels hammer_delivery_outcomes_total once the plan is out.
	outcome *outcomeLabels
}

type step struct {
	msg *nats.Msg
	// afterPrevious: publish only once every earlier step is acknowledged.
	// Steps to the same stream need not wait: they go out over one
	// connection and JetStream stores them in the order published.
	afterPrevious bool
}

type outcomeLabels struct{ status, reason string }

// add encodes payload as the next step, with id as its Nats-Msg-Id.
func (p *plan) add(subject, id string, payload any, afterPrevious bool) error {
	data, err := events.Encode(payload)
	if err != nil {
		return fmt.Errorf("%w: %w", errMalformed, err)
	}
	msg := nats.NewMsg(subject)
	msg.Data = data
	msg.Header.Set(events.HeaderMsgID, id)
	p.steps = append(p.steps, step{msg: msg, afterPrevious: afterPrevious})
	return nil
}

// publish sends the plan's events and waits for JetStream to acknowledge
// every one. They go out asynchronously, so the attempt and its outcome
// cost one round trip together; one that fails is published again (same
// Nats-Msg-Id, so JetStream keeps one) until publishTimeout.
func (s *Service) publish(ctx context.Context, p *plan) error {
	ctx, cancel := context.WithTimeout(ctx, publishTimeout)
	defer cancel()
	var pending []inFlight
	for _, st := range p.steps {
		if st.afterPrevious {
			if err := s.await(ctx, pending); err != nil {
				return err
			}
			pending = pending[:0]
		}
		tracing.Inject(ctx, st.msg.Header)
		future, err := s.js.PublishMsgAsync(st.msg, jetstream.WithStallWait(stallWait))
		pending = append(pending, inFlight{msg: st.msg, future: future, err: err})
	}
	if err := s.await(ctx, pending); err != nil {
		return err
	}
	if o := p.outcome; o != nil {
		s.metrics.outcomes.WithLabelValues(o.status, o.reason).Inc()
	}
	return nil
}

type inFlight struct {
	msg    *nats.Msg
	future jetstream.PubAckFuture
	err    error // the publish could not even be sent
}

// await waits for the acknowledgement of each publish, publishing again,
// synchronously and in order, those that failed.
func (s *Service) await(ctx context.Context, pending []inFlight) error {
	for _, f := range pending {
		err := f.err
		if err == nil {
			select {
			case <-f.future.Ok():
				continue
			case err = <-f.future.Err():
			case <-ctx.Done():
				return fmt.Errorf("publishing %s: %w", f.msg.Header.Get(events.HeaderMsgID), ctx.Err())
			}
		}
		if err := s.publishAgain(ctx, f.msg, err); err != nil {
			return err
		}
	}
	return nil
}

// publishAgain retries one publish until it is acknowledged or ctx ends.
func (s *Service) publishAgain(ctx context.Context, msg *nats.Msg, err error) error {
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("publishing %s: %w", msg.Header.Get(events.HeaderMsgID), err)
		case <-time.After(250 * time.Millisecond):
		}
		if _, err = s.js.PublishMsg(ctx, msg); err == nil {
			return nil
		}
	}
}
