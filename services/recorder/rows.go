package recorder

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hammer-webhooks/hammer/platform/events"
	stored "github.com/hammer-webhooks/hammer/sql/store/record"
)

// record is what one event contributes to a batch: a message row, or a
// delivery row and perhaps an attempt row. An event the recorder does not
// write (a subscription change) has none and is acknowledged at once.
type record struct {
	msg      jetstream.Msg
	message  *messageRow
	delivery *deliveryRow
	attempt  *attemptRow
}

// size is roughly how many bytes r adds to a statement.
func (r *record) size() int {
	n := 0
	if r.message != nil {
		n += len(r.message.Data)
	}
	if r.attempt != nil {
		n += len(r.attempt.Request) + len(r.attempt.Response)
	}
	return n
}

type messageRow struct {
	ID, TopicID, ContentType, IdempotencyKey string
	Data                                     []byte
	StreamSequence                           int64
	CreatedAt                                time.Time
}

type deliveryRow struct {
	ID, TopicID, SubscriptionID, MessageID string
	Target                                 events.Target
	Attempts                               int
	Status, FailureReason                  string
	ScheduledAt, CreatedAt, UpdatedAt      time.Time
}

type attemptRow struct {
	ID, DeliveryID           string
	Attempt                  int
	Request, Response, Error string
	ResponseStatusCode       int
	ExecutionDuration        int64
	Success                  bool
	CreatedAt                time.Time
}

// errSkip marks an event the recorder acknowledges without writing.
var errSkip = errors.New("not recorded")

// decode turns one event into the rows it contributes. An error other than
// errSkip means the event can never be recorded.
func decode(msg jetstream.Msg, meta *jetstream.MsgMetadata) (*record, error) {
	rec := &record{msg: msg}
	switch meta.Stream {
	case events.StreamMessages:
		m, err := events.MessageFromHeaders(msg.Headers(), msg.Data())
		if err != nil {
			return nil, err
		}
		rec.message = &messageRow{
			ID: m.ID, TopicID: m.TopicID, ContentType: m.ContentType, IdempotencyKey: m.IdempotencyKey,
			Data: m.Data, StreamSequence: int64(meta.Sequence.Stream), CreatedAt: m.CreatedAt,
		}
		if rec.message.Data == nil {
			rec.message.Data = []byte{} // data is NOT NULL; an empty body is a valid message
		}
	case events.StreamDeliveries:
		var d events.Delivery
		if err := events.Decode(msg.Data(), &d); err != nil {
			return nil, err
		}
		if d.Attempt < 1 {
			return nil, fmt.Errorf("delivery %s: attempt %d", d.DeliveryID, d.Attempt)
		}
		rec.delivery = &deliveryRow{
			Attempts: d.Attempt - 1, Status: events.StatusPending, ScheduledAt: d.NotBefore,
			UpdatedAt: meta.Timestamp,
		}
		rec.delivery.describe(d.DeliveryRef, d.Target)
	case events.StreamEvents:
		kind, _, err := events.ParseEventSubject(msg.Subject())
		if err != nil {
			return nil, err
		}
		switch kind {
		case events.KindAttempt:
			if err := decodeAttempt(msg.Data(), rec); err != nil {
				return nil, err
			}
		case events.KindDeliveryCompleted, events.KindDeliveryFailed:
			if err := decodeOutcome(msg.Data(), rec); err != nil {
				return nil, err
			}
		default:
			// Subscription changes belong to the API, which wrote them to
			// Postgres before it published them.
			return nil, errSkip
		}
	default:
		return nil, fmt.Errorf("event from unexpected stream %q", meta.Stream)
	}
	if d := rec.delivery; d != nil {
		if d.ID == "" || d.SubscriptionID == "" || d.MessageID == "" {
			return nil, errors.New("delivery event without delivery_id, subscription_id or message_id")
		}
		if !slices.Contains([]string{events.StatusPending, events.StatusCompleted, events.StatusFailed}, d.Status) {
			return nil, fmt.Errorf("delivery %s: unknown status %q", d.ID, d.Status)
		}
		d.normalise()
	}
	if rec.attempt != nil {
		rec.attempt.normalise()
	}
	return rec, nil
}

func decodeAttempt(data []byte, rec *record) error {
	var a events.Attempt
	if err := events.Decode(data, &a); err != nil {
		return err
	}
	if a.AttemptID == "" || a.Attempt < 1 {
		return fmt.Errorf("attempt of delivery %s: attempt_id %q, attempt %d", a.DeliveryID, a.AttemptID, a.Attempt)
	}
	status := a.Status
	if status == "" {
		status = events.StatusPending
	}
	scheduled := a.ScheduledAt
	if a.NextAttemptAt != nil {
		scheduled = *a.NextAttemptAt
	}
	rec.delivery = &deliveryRow{
		Attempts: a.Attempt, Status: status, ScheduledAt: scheduled,
		UpdatedAt: a.CreatedAt.Add(time.Duration(a.ExecutionDuration) * time.Millisecond),
	}
	if status == events.StatusFailed {
		// Only the last allowed attempt fails a delivery (the other
		// reasons end it without an attempt). The outcome event saying so
		// comes next, but a final row keeps the first final event's
		// fields, so the reason is recorded from here.
		rec.delivery.FailureReason = events.ReasonMaxAttempts
	}
	rec.delivery.describe(a.DeliveryRef, a.Target)
	rec.attempt = &attemptRow{
		ID: a.AttemptID, DeliveryID: a.DeliveryID, Attempt: a.Attempt,
		Request: a.Request, Response: a.Response, Error: a.Error,
		ResponseStatusCode: a.ResponseStatusCode, ExecutionDuration: a.ExecutionDuration,
		Success: a.Success, CreatedAt: a.CreatedAt,
	}
	return nil
}

func decodeOutcome(data []byte, rec *record) error {
	var o events.Outcome
	if err := events.Decode(data, &o); err != nil {
		return err
	}
	if o.Status != events.StatusCompleted && o.Status != events.StatusFailed {
		return fmt.Errorf("outcome of delivery %s: status %q is not final", o.DeliveryID, o.Status)
	}
	rec.delivery = &deliveryRow{
		Attempts: o.Attempts, Status: o.Status, FailureReason: o.Reason,
		ScheduledAt: o.At, UpdatedAt: o.At,
	}
	rec.delivery.describe(o.DeliveryRef, o.Target)
	return nil
}

// describe fills what every event of a delivery says alike.
func (d *deliveryRow) describe(ref events.DeliveryRef, target events.Target) {
	d.ID, d.TopicID, d.SubscriptionID, d.MessageID = ref.DeliveryID, ref.TopicID, ref.SubscriptionID, ref.MessageID
	d.Target = target
	d.CreatedAt = ref.DeliveryCreatedAt
}

func (d *deliveryRow) normalise() {
	if d.CreatedAt.IsZero() {
		d.CreatedAt = d.UpdatedAt
	}
	d.ScheduledAt = storedTime(d.ScheduledAt)
	d.CreatedAt = storedTime(d.CreatedAt)
	d.UpdatedAt = storedTime(d.UpdatedAt)
	d.FailureReason = storedText(d.FailureReason)
	d.Target.URL = storedText(d.Target.URL)
}

func (a *attemptRow) normalise() {
	a.Request = storedText(a.Request)
	a.Response = storedText(a.Response)
	a.Error = storedText(a.Error)
	a.CreatedAt = storedTime(a.CreatedAt)
	a.ExecutionDuration = min(max(a.ExecutionDuration, 0), math.MaxInt32)
}

// storedTime is t as Postgres keeps it.
func storedTime(t time.Time) time.Time {
	return t.UTC().Truncate(time.Microsecond)
}

// storedText makes s acceptable to a Postgres text column, which refuses
// NUL bytes and invalid UTF-8 (a receiver may answer with anything).
func storedText(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	return strings.ReplaceAll(s, "\x00", "\uFFFD")
}

func (d *deliveryRow) final() bool { return d.Status != events.StatusPending }

// merge folds a later event's row into the row a batch holds for the same
// delivery, by the rule DeliveryUpsertBatch applies to the stored row: a
// final row never changes; otherwise the incoming row wins when it is final,
// counts more attempts, or counts as many and is newer; the attempt count
// and updated_at never go back. Within one batch events keep their stream's
// order, and final rows come only from EVENTS, so the first final one wins
// here exactly as it would in Postgres.
func merge(held, incoming *deliveryRow) *deliveryRow {
	if held.final() {
		return held
	}
	wins := incoming.final() ||
		incoming.Attempts > held.Attempts ||
		(incoming.Attempts == held.Attempts && incoming.UpdatedAt.After(held.UpdatedAt))
	if !wins {
		return held
	}
	out := *incoming
	out.Attempts = max(held.Attempts, incoming.Attempts)
	if held.UpdatedAt.After(out.UpdatedAt) {
		out.UpdatedAt = held.UpdatedAt
	}
	out.CreatedAt = held.CreatedAt // the first event inserts; updates keep it
	return &out
}

// build is one batch's rows as the store writes them. Each table's rows are
// deduplicated and sorted by ID, so concurrent recorders lock rows in the
// same order and never deadlock.
func build(records []*record) stored.Batch {
	messages := map[string]*messageRow{}
	deliveries := map[string]*deliveryRow{}
	attempts := map[string]*attemptRow{}
	for _, r := range records {
		if m := r.message; m != nil {
			if _, ok := messages[m.ID]; !ok {
				messages[m.ID] = m
			}
		}
		if d := r.delivery; d != nil {
			if held, ok := deliveries[d.ID]; ok {
				deliveries[d.ID] = merge(held, d)
			} else {
				deliveries[d.ID] = d
			}
		}
		if a := r.attempt; a != nil {
			if _, ok := attempts[a.ID]; !ok {
				attempts[a.ID] = a
			}
		}
	}

	var b stored.Batch
	for _, id := range sortedKeys(messages) {
		m := messages[id]
		b.Messages = append(b.Messages, stored.Message{
			ID: m.ID, TopicID: m.TopicID, ContentType: m.ContentType, IdempotencyKey: m.IdempotencyKey,
			Data: m.Data, StreamSequence: m.StreamSequence, CreatedAt: m.CreatedAt,
		})
	}
	for _, id := range sortedKeys(deliveries) {
		d := deliveries[id]
		b.Deliveries = append(b.Deliveries, stored.Delivery{
			ID: d.ID, TopicID: d.TopicID, SubscriptionID: d.SubscriptionID, MessageID: d.MessageID,
			URL:                    d.Target.URL,
			MaxDeliveryAttempts:    d.Target.MaxDeliveryAttempts,
			DeliveryAttemptDelay:   d.Target.DeliveryAttemptDelay,
			DeliveryAttemptTimeout: d.Target.DeliveryAttemptTimeout,
			DeliveryAttempts:       d.Attempts,
			Status:                 d.Status,
			FailureReason:          &d.FailureReason,
			ScheduledAt:            d.ScheduledAt, CreatedAt: d.CreatedAt, UpdatedAt: d.UpdatedAt,
		})
	}
	for _, id := range sortedKeys(attempts) {
		a := attempts[id]
		b.Attempts = append(b.Attempts, stored.Attempt{
			ID: a.ID, DeliveryID: a.DeliveryID, Attempt: a.Attempt,
			Request: a.Request, Response: a.Response, Error: a.Error,
			ResponseStatusCode: a.ResponseStatusCode, ExecutionDuration: int(a.ExecutionDuration),
			Success: a.Success, CreatedAt: a.CreatedAt,
		})
	}
	return b
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
