package record

import (
	"context"
	"fmt"
	"math"

	"github.com/hammer-webhooks/hammer/sql/dbsqlc"
	"github.com/hammer-webhooks/hammer/sql/store"
)

// Batch is the rows of one write. Each table's rows must be distinct by ID
// (Postgres refuses to update a row twice in one statement) and should be
// sorted by it, so concurrent writers lock rows in the same order and never
// deadlock.
type Batch struct {
	Messages   []Message
	Deliveries []Delivery // FailureReason nil or "" for none
	Attempts   []Attempt
}

// Write records b in one transaction and one round trip, idempotently:
// replays insert nothing and deliveries only move forward (DESIGN
// "Storage"). Parents are written before children: messages, then
// deliveries, then attempts. Rows whose topic, subscription or message is
// gone are dropped. An error wrapping store.ErrRefused means the rows
// themselves were refused; any other is worth a retry.
func (r *Record) Write(ctx context.Context, b Batch) error {
	err := store.ExecBatch(ctx, r.pool, func(db *store.Queue) error {
		q := dbsqlc.New(db)
		if len(b.Messages) > 0 {
			if _, err := q.MessageInsertBatch(ctx, messageColumns(b.Messages)); err != nil {
				return err
			}
			db.Name(fmt.Sprintf("inserting %d messages", len(b.Messages)))
		}
		if len(b.Deliveries) > 0 {
			if _, err := q.DeliveryUpsertBatch(ctx, deliveryColumns(b.Deliveries)); err != nil {
				return err
			}
			db.Name(fmt.Sprintf("upserting %d deliveries", len(b.Deliveries)))
		}
		if len(b.Attempts) > 0 {
			if _, err := q.AttemptInsertBatch(ctx, attemptColumns(b.Attempts)); err != nil {
				return err
			}
			db.Name(fmt.Sprintf("inserting %d attempts", len(b.Attempts)))
		}
		return nil
	})
	return store.InterpretWrite(err)
}

func messageColumns(rows []Message) dbsqlc.MessageInsertBatchParams {
	var q dbsqlc.MessageInsertBatchParams
	for _, m := range rows {
		q.Ids = append(q.Ids, m.ID)
		q.TopicIds = append(q.TopicIds, m.TopicID)
		q.Datas = append(q.Datas, m.Data)
		q.ContentTypes = append(q.ContentTypes, m.ContentType)
		q.IdempotencyKeys = append(q.IdempotencyKeys, m.IdempotencyKey)
		q.StreamSequences = append(q.StreamSequences, m.StreamSequence)
		q.CreatedAts = append(q.CreatedAts, m.CreatedAt)
	}
	return q
}

func deliveryColumns(rows []Delivery) dbsqlc.DeliveryUpsertBatchParams {
	var q dbsqlc.DeliveryUpsertBatchParams
	for _, d := range rows {
		reason := ""
		if d.FailureReason != nil {
			reason = *d.FailureReason
		}
		q.Ids = append(q.Ids, d.ID)
		q.TopicIds = append(q.TopicIds, d.TopicID)
		q.SubscriptionIds = append(q.SubscriptionIds, d.SubscriptionID)
		q.MessageIds = append(q.MessageIds, d.MessageID)
		q.Urls = append(q.Urls, d.URL)
		q.MaxDeliveryAttempts = append(q.MaxDeliveryAttempts, int32Of(d.MaxDeliveryAttempts))
		q.DeliveryAttemptDelays = append(q.DeliveryAttemptDelays, int32Of(d.DeliveryAttemptDelay))
		q.DeliveryAttemptTimeouts = append(q.DeliveryAttemptTimeouts, int32Of(d.DeliveryAttemptTimeout))
		q.DeliveryAttempts = append(q.DeliveryAttempts, int32Of(d.DeliveryAttempts))
		q.Statuses = append(q.Statuses, d.Status)
		q.FailureReasons = append(q.FailureReasons, reason)
		q.ScheduledAts = append(q.ScheduledAts, d.ScheduledAt)
		q.CreatedAts = append(q.CreatedAts, d.CreatedAt)
		q.UpdatedAts = append(q.UpdatedAts, d.UpdatedAt)
	}
	return q
}

func attemptColumns(rows []Attempt) dbsqlc.AttemptInsertBatchParams {
	var q dbsqlc.AttemptInsertBatchParams
	for _, a := range rows {
		q.Ids = append(q.Ids, a.ID)
		q.DeliveryIds = append(q.DeliveryIds, a.DeliveryID)
		q.Attempts = append(q.Attempts, int32Of(a.Attempt))
		q.Requests = append(q.Requests, a.Request)
		q.Responses = append(q.Responses, a.Response)
		q.ResponseStatusCodes = append(q.ResponseStatusCodes, int32Of(a.ResponseStatusCode))
		q.ExecutionDurations = append(q.ExecutionDurations, int32Of(a.ExecutionDuration))
		q.Successes = append(q.Successes, a.Success)
		q.Errors = append(q.Errors, a.Error)
		q.CreatedAts = append(q.CreatedAts, a.CreatedAt)
	}
	return q
}

// int32Of clamps n into an integer column.
func int32Of(n int) int32 {
	return int32(min(max(n, math.MinInt32), math.MaxInt32))
}
