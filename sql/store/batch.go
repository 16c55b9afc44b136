package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// errQueued answers a read through a Queue: only writes can wait for the
// batch's round trip.
var errQueued = errors.New("a batch queues statements without results; read outside it")

// Queue collects statements for ExecBatch. It has the methods sqlc's DBTX
// asks for, so generated queries queue themselves into it; only Exec is
// queued, and it reports no rows until the batch runs.
type Queue struct {
	batch pgx.Batch
	names []string
}

// Exec queues sql; the batch reports its error, if any.
func (q *Queue) Exec(_ context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	q.batch.Queue(sql, args...)
	q.names = append(q.names, "")
	return pgconn.CommandTag{}, nil
}

// Name labels the statement queued last, for the error that names it.
func (q *Queue) Name(name string) {
	if len(q.names) > 0 {
		q.names[len(q.names)-1] = name
	}
}

// Query refuses: a queued statement has no rows to read yet.
func (q *Queue) Query(context.Context, string, ...any) (pgx.Rows, error) {
	return nil, errQueued
}

// QueryRow refuses: a queued statement has no row to read yet.
func (q *Queue) QueryRow(context.Context, string, ...any) pgx.Row {
	return errRow{}
}

type errRow struct{}

func (errRow) Scan(...any) error { return errQueued }

// ExecBatch runs the statements fn queues in one round trip and one
// (implicit) transaction: all of them are written or none. It saves a
// writer that needs no answers between its statements the round trips of
// BEGIN, each statement and COMMIT. The first statement's error is
// returned, wrapped with its name, so that errors.As finds the
// *pgconn.PgError; nothing is retried.
func ExecBatch(ctx context.Context, pool *pgxpool.Pool, fn func(q *Queue) error) error {
	var q Queue
	if err := fn(&q); err != nil {
		return err
	}
	if q.batch.Len() == 0 {
		return nil
	}
	results := pool.SendBatch(ctx, &q.batch)
	var first error
	for _, name := range q.names {
		if _, err := results.Exec(); err != nil && first == nil {
			first = fmt.Errorf("%s: %w", name, err)
		}
	}
	if err := results.Close(); err != nil && first == nil {
		first = err
	}
	return first
}
