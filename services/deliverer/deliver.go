package deliverer

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/zap"

	"github.com/hammer-webhooks/hammer/platform/events"
	"github.com/hammer-webhooks/hammer/services/deliverer/retry"
)

// Defaults for limits a subscription in the bucket lacks (the API always
// sets them; these keep a malformed entry from looping or hanging).
const (
	defaultMaxConcurrentRequests = 8
	defaultAttemptDelay          = 60 * time.Second
	defaultAttemptTimeout        = 5 * time.Second
)

// unknownSubscriptionGrace is how long a delivery waits for a subscription
// that the bucket has never held (the API writes it just after its commit)
// before it is taken as deleted.
const unknownSubscriptionGrace = time.Minute

// publishTimeout bounds the retries of one publish while NATS recovers.
const publishTimeout = 10 * time.Second

// deliver handles one due delivery event: it decides whether an attempt is
// made, makes it and publishes what follows. A nil result means the event is
// done with; a hold or other error is answered by settle.
func (s *Service) deliver(ctx context.Context, ev events.Delivery, log *zap.Logger) error {
	sub, state, err := s.subs.get(ctx, ev.SubscriptionID)
	if err != nil {
		return err
	}
	switch state {
	case subscriptionDeleted:
		return s.end(ctx, ev, ev.Target, events.StatusFailed, events.ReasonSubscriptionDeleted, ev.Attempt-1, log)
	case subscriptionUnknown:
		if time.Since(ev.DeliveryCreatedAt) < unknownSubscriptionGrace {
			return hold(time.Second, holdSubscriptionUnknown)
		}
		return s.end(ctx, ev, ev.Target, events.StatusFailed, events.ReasonSubscriptionDeleted, ev.Attempt-1, log)
	}
	// The live subscription wins over the event's snapshot: a changed URL,
	// secret or limit applies from the next attempt on.
	target := sub.Target()
	if target.MaxDeliveryAttempts < 1 {
		target.MaxDeliveryAttempts = 1
	}
	if ev.Attempt > target.MaxDeliveryAttempts {
		// The limit was lowered while this attempt waited.
		return s.end(ctx, ev, target, events.StatusFailed, events.ReasonMaxAttempts, ev.Attempt-1, log)
	}

	msg, err := s.bodies.get(ctx, ev.DeliveryRef, ev.Attempt > 1)
	if errors.Is(err, errMessageGone) {
		return s.end(ctx, ev, target, events.StatusFailed, events.ReasonMessageDeleted, ev.Attempt-1, log)
	}
	if err != nil {
		return err
	}

	limit := sub.MaxConcurrentRequests
	if limit < 1 {
		limit = defaultMaxConcurrentRequests
	}
	if !s.slots.acquire(ev.SubscriptionID, limit) {
		return hold(100*time.Millisecond+rand.N(400*time.Millisecond), holdConcurrency)
	}
	body, err := buildEnvelope(sub, ev.DeliveryRef, msg)
	if err != nil {
		s.slots.release(ev.SubscriptionID)
		return fmt.Errorf("%w: %w", errMalformed, err)
	}
	started := time.Now()
	due := ev.NotBefore
	if ev.Attempt == 1 {
		due = ev.MessageCreatedAt
	}
	s.metrics.lag.Observe(max(started.Sub(due), 0).Seconds())
	s.metrics.inFlight.Inc()
	resp := send(ctx, s.client, outgoing{
		URL:           target.URL,
		DeliveryID:    ev.DeliveryID,
		SigningSecret: sub.SigningSecret,
		Timeout:       seconds(target.DeliveryAttemptTimeout, defaultAttemptTimeout),
		Body:          body,
	}, started)
	s.metrics.inFlight.Dec()
	s.slots.release(ev.SubscriptionID)
	if resp.Aborted {
		return hold(0, holdShutdown)
	}
	s.metrics.attempts.WithLabelValues(resp.Result).Inc()
	s.metrics.duration.Observe(resp.Duration.Seconds())
	return s.record(ctx, ev, target, started, resp, log)
}

// record publishes the attempt and what follows it: the outcome, or the
// event of the next attempt.
func (s *Service) record(ctx context.Context, ev events.Delivery, target events.Target, started time.Time, resp response, log *zap.Logger) error {
	now := time.Now()
	attempt := events.Attempt{
		DeliveryRef:        ev.DeliveryRef,
		Target:             target,
		AttemptID:          events.AttemptID(ev.DeliveryID, ev.Attempt, ev.NotBefore),
		Attempt:            ev.Attempt,
		ScheduledAt:        micro(ev.NotBefore),
		Request:            resp.Request,
		Response:           resp.Response,
		ResponseStatusCode: resp.Status,
		ExecutionDuration:  resp.Duration.Milliseconds(),
		Success:            resp.Success,
		Error:              resp.Error,
		CreatedAt:          micro(started),
	}
	var next time.Time
	switch {
	case resp.Success:
		attempt.Status = events.StatusCompleted
	case ev.Attempt >= target.MaxDeliveryAttempts:
		attempt.Status = events.StatusFailed
	default:
		attempt.Status = events.StatusPending
		delay := retry.Next(retry.Delay(seconds(target.DeliveryAttemptDelay, defaultAttemptDelay)), resp.Status, resp.RetryAfter, now)
		next = micro(now.Add(delay))
		attempt.NextAttemptAt = &next
	}
	log.Debug("attempt made", zap.String("result", resp.Result), zap.Int("status", resp.Status),
		zap.Duration("duration", resp.Duration), zap.String("delivery_status", attempt.Status))
	if err := s.publish(ctx, events.EventSubject(events.KindAttempt, ev.SubscriptionID), attempt.AttemptID, &attempt); err != nil {
		return err
	}
	switch attempt.Status {
	case events.StatusCompleted:
		return s.end(ctx, ev, target, events.StatusCompleted, "", ev.Attempt, log)
	case events.StatusFailed:
		return s.end(ctx, ev, target, events.StatusFailed, events.ReasonMaxAttempts, ev.Attempt, log)
	}
	following := events.Delivery{
		DeliveryRef: ev.DeliveryRef,
		Target:      target,
		Attempt:     ev.Attempt + 1,
		NotBefore:   next,
	}
	return s.publish(ctx, events.DeliverySubject(ev.SubscriptionID), events.DeliveryMsgID(ev.DeliveryID, ev.Attempt+1), &following)
}

// end publishes the outcome that closes a delivery.
func (s *Service) end(ctx context.Context, ev events.Delivery, target events.Target, status, reason string, attempts int, log *zap.Logger) error {
	kind := events.KindDeliveryCompleted
	if status == events.StatusFailed {
		kind = events.KindDeliveryFailed
		log.Info("delivery failed", zap.String("reason", reason), zap.Int("attempts", attempts))
	}
	outcome := events.Outcome{
		DeliveryRef: ev.DeliveryRef,
		Target:      target,
		Status:      status,
		Reason:      reason,
		Attempts:    attempts,
		At:          micro(time.Now()),
	}
	if err := s.publish(ctx, events.EventSubject(kind, ev.SubscriptionID), ev.DeliveryID+"-"+status, &outcome); err != nil {
		return err
	}
	s.metrics.outcomes.WithLabelValues(status, reason).Inc()
	return nil
}

// publish sends one event and waits for JetStream's acknowledgement,
// retrying for a while if NATS is briefly away. id deduplicates it.
func (s *Service) publish(ctx context.Context, subject, id string, payload any) error {
	data, err := events.Encode(payload)
	if err != nil {
		return fmt.Errorf("%w: %w", errMalformed, err)
	}
	msg := nats.NewMsg(subject)
	msg.Data = data
	msg.Header.Set(events.HeaderMsgID, id)
	ctx, cancel := context.WithTimeout(ctx, publishTimeout)
	defer cancel()
	for {
		_, err := s.js.PublishMsg(ctx, msg)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("publishing %s: %w", id, err)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func seconds(n int, fallback time.Duration) time.Duration {
	if n < 1 {
		return fallback
	}
	return time.Duration(n) * time.Second
}

func micro(t time.Time) time.Time {
	return t.UTC().Truncate(time.Microsecond)
}
