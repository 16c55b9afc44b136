package deliverer

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"go.uber.org/zap"

	"github.com/hammer-webhooks/hammer/platform/events"
	"github.com/hammer-webhooks/hammer/platform/tracing"
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

// deliver handles one due delivery event: it decides whether an attempt is
// made and makes it. What follows (the attempt event, the outcome, the next
// attempt's event) comes back as a plan to publish; the event is done with
// once the plan is published. A hold or other error is answered by settle.
func (s *Service) deliver(ctx context.Context, ev events.Delivery, log *zap.Logger) (*plan, error) {
	sub, state, err := s.subs.get(ctx, ev.SubscriptionID)
	if err != nil {
		return nil, err
	}
	switch state {
	case subscriptionDeleted:
		return s.end(ev, ev.Target, events.StatusFailed, events.ReasonSubscriptionDeleted, ev.Attempt-1, log)
	case subscriptionUnknown:
		if time.Since(ev.DeliveryCreatedAt) < unknownSubscriptionGrace {
			return nil, hold(time.Second, holdSubscriptionUnknown)
		}
		return s.end(ev, ev.Target, events.StatusFailed, events.ReasonSubscriptionDeleted, ev.Attempt-1, log)
	}
	// The live subscription wins over the event's snapshot: a changed URL,
	// secret or limit applies from the next attempt on. The target is what
	// events say of it (no userinfo); the request goes to the whole URL.
	target := sub.Target()
	if target.MaxDeliveryAttempts < 1 {
		target.MaxDeliveryAttempts = 1
	}
	if ev.Attempt > target.MaxDeliveryAttempts {
		// The limit was lowered while this attempt waited.
		return s.end(ev, target, events.StatusFailed, events.ReasonMaxAttempts, ev.Attempt-1, log)
	}

	msg, err := s.bodies.get(ctx, ev.DeliveryRef, ev.Attempt > 1)
	if errors.Is(err, errMessageGone) {
		return s.end(ev, target, events.StatusFailed, events.ReasonMessageDeleted, ev.Attempt-1, log)
	}
	if err != nil {
		return nil, err
	}

	limit := sub.MaxConcurrentRequests
	if limit < 1 {
		limit = defaultMaxConcurrentRequests
	}
	if !s.slots.acquire(ev.SubscriptionID, limit) {
		return nil, hold(100*time.Millisecond+rand.N(400*time.Millisecond), holdConcurrency)
	}
	body, recorded, err := buildEnvelope(sub, ev.DeliveryRef, msg)
	if err != nil {
		s.slots.release(ev.SubscriptionID)
		return nil, fmt.Errorf("%w: %w", errMalformed, err)
	}
	started := time.Now()
	due := ev.NotBefore
	if ev.Attempt == 1 {
		due = ev.MessageCreatedAt
	}
	s.metrics.lag.Observe(max(started.Sub(due), 0).Seconds())
	s.metrics.inFlight.Inc()
	rctx, span := tracing.StartClient(ctx, "POST")
	resp := send(rctx, s.client, outgoing{
		URL:           sub.URL,
		DeliveryID:    ev.DeliveryID,
		SigningSecret: sub.SigningSecret,
		Timeout:       seconds(target.DeliveryAttemptTimeout, defaultAttemptTimeout),
		Body:          body,
		RecordedBody:  recorded,
	}, started)
	tracing.SetInt(span, "http.response.status_code", resp.Status)
	if resp.Error != "" {
		tracing.Fail(span, errors.New(resp.Error))
	}
	span.End()
	s.metrics.inFlight.Dec()
	s.slots.release(ev.SubscriptionID)
	if resp.Aborted {
		return nil, hold(0, holdShutdown)
	}
	s.metrics.attempts.WithLabelValues(resp.Result).Inc()
	s.metrics.duration.Observe(resp.Duration.Seconds())
	return s.record(ev, target, started, resp, log)
}

// record plans the attempt's event and what follows it: the outcome, or the
// event of the next attempt.
func (s *Service) record(ev events.Delivery, target events.Target, started time.Time, resp response, log *zap.Logger) (*plan, error) {
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
	data, err := encodeAttempt(&attempt, s.maxEventBytes())
	if err != nil {
		return nil, err
	}
	p := &plan{}
	p.addEncoded(events.EventSubject(events.KindAttempt, ev.SubscriptionID), attempt.AttemptID, data, false)
	switch attempt.Status {
	case events.StatusCompleted:
		return p, s.planEnd(p, ev, target, events.StatusCompleted, "", ev.Attempt, log)
	case events.StatusFailed:
		return p, s.planEnd(p, ev, target, events.StatusFailed, events.ReasonMaxAttempts, ev.Attempt, log)
	}
	following := events.Delivery{
		DeliveryRef: ev.DeliveryRef,
		Target:      target,
		Attempt:     ev.Attempt + 1,
		NotBefore:   next,
	}
	// The next attempt's event goes to another stream: it is published only
	// once the attempt's event is stored, so that no retry can exist without
	// the attempt that caused it.
	if err := p.add(events.DeliverySubject(ev.SubscriptionID), events.DeliveryMsgID(ev.DeliveryID, ev.Attempt+1), &following, true); err != nil {
		return nil, err
	}
	return p, nil
}

// end plans the outcome that closes a delivery without an attempt.
func (s *Service) end(ev events.Delivery, target events.Target, status, reason string, attempts int, log *zap.Logger) (*plan, error) {
	p := &plan{}
	if err := s.planEnd(p, ev, target, status, reason, attempts, log); err != nil {
		return nil, err
	}
	return p, nil
}

// planEnd adds the outcome that closes a delivery to p.
func (s *Service) planEnd(p *plan, ev events.Delivery, target events.Target, status, reason string, attempts int, log *zap.Logger) error {
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
	if err := p.add(events.EventSubject(kind, ev.SubscriptionID), ev.DeliveryID+"-"+status, &outcome, false); err != nil {
		return err
	}
	p.outcome = &outcomeLabels{status: status, reason: reason}
	return nil
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
