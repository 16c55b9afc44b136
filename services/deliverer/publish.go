package deliverer

import (
	"context"
	"encoding/json"
	"errors"
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
	// eventHeadroom is what a published event needs beside its data (the
	// subject, Nats-Msg-Id and traceparent), with room to spare.
	eventHeadroom = 4 << 10
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
	p.addEncoded(subject, id, data, afterPrevious)
	return nil
}

// addEncoded is add of a payload already encoded.
func (p *plan) addEncoded(subject, id string, data []byte, afterPrevious bool) {
	msg := nats.NewMsg(subject)
	msg.Data = data
	msg.Header.Set(events.HeaderMsgID, id)
	p.steps = append(p.steps, step{msg: msg, afterPrevious: afterPrevious})
}

// maxEventBytes is the most data an event of this deliverer may have: what
// the server accepts (nats.Conn.MaxPayload) less the headroom of its
// subject and headers.
func (s *Service) maxEventBytes() int {
	return int(s.nc.MaxPayload()) - eventHeadroom
}

// encodeAttempt encodes a, cutting its recorded texts until the event fits
// in limit bytes. Each text is already bounded when the attempt is made;
// this holds whatever the server's max payload is and however much the
// receiver's bytes grow when escaped (a '<' takes six). An event that is
// too large would fail to publish on every try, so it is cut, never
// retried: the text longest once encoded first, until the event fits.
func encodeAttempt(a *events.Attempt, limit int) ([]byte, error) {
	for {
		data, err := events.Encode(a)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", errMalformed, err)
		}
		over := len(data) - limit
		if over <= 0 {
			return data, nil
		}
		text, what := longestEncoded(a)
		if len(*text) == 0 {
			return nil, fmt.Errorf("%w: an attempt event of %d bytes exceeds %d bytes without its request and response", errMalformed, len(data), limit)
		}
		encoded, err := json.Marshal(*text)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", errMalformed, err)
		}
		// Take what is over from the text, at most half of it at a time
		// (so that a second text keeps its share), in the text's own bytes,
		// with the marker's room.
		less := min(over, len(encoded)/2)
		keep := int(int64(len(*text))*int64(len(encoded)-less)/int64(len(encoded))) - len(cutMarker) - 2*len(what)
		if keep < len(cutMarker)+2*len(what) {
			*text = ""
			continue
		}
		*text = cut(*text, keep, what)
	}
}

// longestEncoded is the recorded text of a that takes the most bytes once
// encoded, and its name for the marker of a cut.
func longestEncoded(a *events.Attempt) (*string, string) {
	text, what, most := &a.Response, "response", escapedLen(a.Response)
	if n := escapedLen(a.Request); n > most {
		text, what, most = &a.Request, "request", n
	}
	if escapedLen(a.Error) > most {
		text, what = &a.Error, "error"
	}
	return text, what
}

// escapedLen is about how many bytes s takes in JSON: the six of \u003c
// for '<', '>' and '&', two for a quote, a backslash and a control.
func escapedLen(s string) int {
	n := len(s)
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '<' || c == '>' || c == '&' || c < 0x20:
			n += 5
		case c == '"' || c == '\\':
			n++
		}
	}
	return n
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
// An event over the server's max payload is never published again: it
// would fail every time.
func (s *Service) publishAgain(ctx context.Context, msg *nats.Msg, err error) error {
	for {
		if errors.Is(err, nats.ErrMaxPayload) {
			return fmt.Errorf("%w: publishing %s: %w", errMalformed, msg.Header.Get(events.HeaderMsgID), err)
		}
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
