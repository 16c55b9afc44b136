// Package record is the store of what happened: messages, deliveries and
// attempts. The recorder writes them from the streams in batches; the API
// reads them back and deletes messages.
package record

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/hammer-webhooks/hammer/sql/dbsqlc"
	"github.com/hammer-webhooks/hammer/sql/store"
)

// Message is a message as recorded.
type Message struct {
	ID, TopicID, ContentType string
	IdempotencyKey           string // empty for none
	Data                     []byte
	StreamSequence           int64 // in MESSAGES
	CreatedAt                time.Time
}

// Delivery is a delivery as recorded, with its message's data (nil once the
// message is deleted). URL and limits are as of its latest attempt.
type Delivery struct {
	ID, TopicID, SubscriptionID, MessageID string
	URL, SecretToken                       string
	MaxDeliveryAttempts                    int
	DeliveryAttemptDelay                   int
	DeliveryAttemptTimeout                 int
	DeliveryAttempts                       int
	Status                                 string  // events.Status*
	FailureReason                          *string // set when it failed
	ScheduledAt, CreatedAt, UpdatedAt      time.Time
	Data                                   []byte
}

// Attempt is one delivery attempt as recorded.
type Attempt struct {
	ID, DeliveryID           string
	Attempt                  int
	Request, Response, Error string
	ResponseStatusCode       int
	ExecutionDuration        int // milliseconds
	Success                  bool
	CreatedAt                time.Time
}

// Record reads and writes messages, deliveries and attempts. Its errors are
// the store's.
type Record struct {
	pool *pgxpool.Pool
	q    *dbsqlc.Queries
}

// New is a record over pool.
func New(pool *pgxpool.Pool) *Record {
	return &Record{pool: pool, q: dbsqlc.New(pool)}
}

func messageOf(m dbsqlc.Message) Message {
	out := Message{
		ID: m.ID, TopicID: m.TopicID, ContentType: m.ContentType, Data: m.Data,
		StreamSequence: m.StreamSequence, CreatedAt: m.CreatedAt,
	}
	if m.IdempotencyKey != nil {
		out.IdempotencyKey = *m.IdempotencyKey
	}
	return out
}

// Message reads one message.
func (r *Record) Message(ctx context.Context, id string) (Message, error) {
	row, err := r.q.MessageGetByID(ctx, id)
	if err != nil {
		return Message{}, store.Interpret(err)
	}
	return messageOf(row), nil
}

// MessageFilter narrows a list of messages; nil fields do not.
type MessageFilter struct {
	TopicID *string
}

// ListMessages lists a page of messages.
func (r *Record) ListMessages(ctx context.Context, f MessageFilter, p store.Page) ([]Message, error) {
	rows, err := store.Ordered(ctx, p, dbsqlc.MessageListAscParams{
		TopicID:     f.TopicID,
		CreatedAtGt: p.CreatedAtGt, CreatedAtGte: p.CreatedAtGte, CreatedAtLt: p.CreatedAtLt, CreatedAtLte: p.CreatedAtLte,
		RowOffset: p.Offset, RowLimit: p.Limit,
	}, r.q.MessageListAsc, func(ctx context.Context, a dbsqlc.MessageListAscParams) ([]dbsqlc.Message, error) {
		return r.q.MessageListDesc(ctx, dbsqlc.MessageListDescParams(a))
	})
	if err != nil {
		return nil, err
	}
	return store.Map(rows, messageOf), nil
}

// DeleteMessage deletes a message's row and its deliveries, and writes the
// tombstone that keeps the recorder from recreating them from events still
// in the streams. A message already gone is no error.
func (r *Record) DeleteMessage(ctx context.Context, id string, at time.Time) error {
	err := store.InTx(ctx, r.pool, func(tx pgx.Tx) error {
		q := r.q.WithTx(tx)
		if err := q.DeletedMessageInsert(ctx, dbsqlc.DeletedMessageInsertParams{ID: id, DeletedAt: at}); err != nil {
			return err
		}
		if _, err := q.DeliveryDeleteByMessageID(ctx, id); err != nil {
			return err
		}
		_, err := q.MessageDelete(ctx, id)
		return err
	})
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	return nil
}

// PruneTombstones forgets deletions older than before, when no event about
// them can arrive any more; it returns how many it forgot.
func (r *Record) PruneTombstones(ctx context.Context, before time.Time) (int64, error) {
	n, err := r.q.DeletedMessagePruneBefore(ctx, before)
	return n, store.Interpret(err)
}

func deliveryOf(d dbsqlc.DeliveryGetByIDRow) Delivery {
	return Delivery{
		ID: d.ID, TopicID: d.TopicID, SubscriptionID: d.SubscriptionID, MessageID: d.MessageID,
		URL: d.Url, SecretToken: d.SecretToken,
		MaxDeliveryAttempts:    int(d.MaxDeliveryAttempts),
		DeliveryAttemptDelay:   int(d.DeliveryAttemptDelay),
		DeliveryAttemptTimeout: int(d.DeliveryAttemptTimeout),
		DeliveryAttempts:       int(d.DeliveryAttempts),
		Status:                 string(d.Status),
		FailureReason:          d.FailureReason,
		ScheduledAt:            d.ScheduledAt, CreatedAt: d.CreatedAt, UpdatedAt: d.UpdatedAt,
		Data: d.Data,
	}
}

// Delivery reads one delivery.
func (r *Record) Delivery(ctx context.Context, id string) (Delivery, error) {
	row, err := r.q.DeliveryGetByID(ctx, id)
	if err != nil {
		return Delivery{}, store.Interpret(err)
	}
	return deliveryOf(row), nil
}

// DeliveryFilter narrows a list of deliveries; nil fields do not.
type DeliveryFilter struct {
	TopicID, SubscriptionID, MessageID *string
	Status                             *string
}

// ListDeliveries lists a page of deliveries.
func (r *Record) ListDeliveries(ctx context.Context, f DeliveryFilter, p store.Page) ([]Delivery, error) {
	rows, err := store.Ordered(ctx, p, dbsqlc.DeliveryListAscParams{
		TopicID: f.TopicID, SubscriptionID: f.SubscriptionID, MessageID: f.MessageID, Status: f.Status,
		CreatedAtGt: p.CreatedAtGt, CreatedAtGte: p.CreatedAtGte, CreatedAtLt: p.CreatedAtLt, CreatedAtLte: p.CreatedAtLte,
		RowOffset: p.Offset, RowLimit: p.Limit,
	}, func(ctx context.Context, a dbsqlc.DeliveryListAscParams) ([]dbsqlc.DeliveryGetByIDRow, error) {
		rows, err := r.q.DeliveryListAsc(ctx, a)
		return store.Map(rows, func(d dbsqlc.DeliveryListAscRow) dbsqlc.DeliveryGetByIDRow { return dbsqlc.DeliveryGetByIDRow(d) }), err
	}, func(ctx context.Context, a dbsqlc.DeliveryListAscParams) ([]dbsqlc.DeliveryGetByIDRow, error) {
		rows, err := r.q.DeliveryListDesc(ctx, dbsqlc.DeliveryListDescParams(a))
		return store.Map(rows, func(d dbsqlc.DeliveryListDescRow) dbsqlc.DeliveryGetByIDRow { return dbsqlc.DeliveryGetByIDRow(d) }), err
	})
	if err != nil {
		return nil, err
	}
	return store.Map(rows, deliveryOf), nil
}

func attemptOf(a dbsqlc.DeliveryAttempt) Attempt {
	return Attempt{
		ID: a.ID, DeliveryID: a.DeliveryID, Attempt: int(a.Attempt), Request: a.Request, Response: a.Response,
		ResponseStatusCode: int(a.ResponseStatusCode), ExecutionDuration: int(a.ExecutionDuration),
		Success: a.Success, Error: a.Error, CreatedAt: a.CreatedAt,
	}
}

// Attempt reads one attempt.
func (r *Record) Attempt(ctx context.Context, id string) (Attempt, error) {
	row, err := r.q.AttemptGetByID(ctx, id)
	if err != nil {
		return Attempt{}, store.Interpret(err)
	}
	return attemptOf(row), nil
}

// AttemptFilter narrows a list of attempts; nil fields do not.
type AttemptFilter struct {
	DeliveryID *string
}

// ListAttempts lists a page of attempts.
func (r *Record) ListAttempts(ctx context.Context, f AttemptFilter, p store.Page) ([]Attempt, error) {
	rows, err := store.Ordered(ctx, p, dbsqlc.AttemptListAscParams{
		DeliveryID:  f.DeliveryID,
		CreatedAtGt: p.CreatedAtGt, CreatedAtGte: p.CreatedAtGte, CreatedAtLt: p.CreatedAtLt, CreatedAtLte: p.CreatedAtLte,
		RowOffset: p.Offset, RowLimit: p.Limit,
	}, r.q.AttemptListAsc, func(ctx context.Context, a dbsqlc.AttemptListAscParams) ([]dbsqlc.DeliveryAttempt, error) {
		return r.q.AttemptListDesc(ctx, dbsqlc.AttemptListDescParams(a))
	})
	if err != nil {
		return nil, err
	}
	return store.Map(rows, attemptOf), nil
}
