package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/hammer-webhooks/hammer/platform/testkit"
	"github.com/hammer-webhooks/hammer/sql/store"
)

const insertTopic = `INSERT INTO topics (id, name, created_at, updated_at) VALUES ($1, $1, $2, $2)`

func countTopics(t *testing.T, db *testkit.DB) int {
	t.Helper()
	var n int
	require.NoError(t, db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM topics`).Scan(&n))
	return n
}

func TestExecBatchWritesEveryStatementInOneTransaction(t *testing.T) {
	t.Parallel()
	db := testkit.NewDB(t)
	ctx := context.Background()
	now := time.Now()

	require.NoError(t, store.ExecBatch(ctx, db.Pool, func(q *store.Queue) error {
		for _, id := range []string{"a", "b", "c"} {
			_, err := q.Exec(ctx, insertTopic, id, now)
			require.NoError(t, err, "queued, not run")
		}
		return nil
	}))
	require.Equal(t, 3, countTopics(t, db))

	// The second statement fails: the first is not written either.
	err := store.ExecBatch(ctx, db.Pool, func(q *store.Queue) error {
		_, _ = q.Exec(ctx, insertTopic, "d", now)
		_, _ = q.Exec(ctx, insertTopic, "a", now)
		q.Name("inserting a again")
		_, _ = q.Exec(ctx, insertTopic, "e", now)
		return nil
	})
	var pgErr *pgconn.PgError
	require.ErrorAs(t, err, &pgErr)
	require.Equal(t, "23505", pgErr.Code)
	require.ErrorContains(t, err, "inserting a again")
	require.Equal(t, 3, countTopics(t, db), "nothing of the failed batch is written")

	// The pool's connection is usable after the failure.
	require.NoError(t, store.ExecBatch(ctx, db.Pool, func(q *store.Queue) error {
		_, _ = q.Exec(ctx, insertTopic, "d", now)
		return nil
	}))
	require.Equal(t, 4, countTopics(t, db))
}

func TestExecBatchRefusesReadsAndStopsOnTheCallersError(t *testing.T) {
	t.Parallel()
	db := testkit.NewDB(t)
	ctx := context.Background()
	stop := errors.New("stop")
	err := store.ExecBatch(ctx, db.Pool, func(q *store.Queue) error {
		_, _ = q.Exec(ctx, insertTopic, "x", time.Now())
		_, qerr := q.Query(ctx, `SELECT 1`)
		require.Error(t, qerr)
		require.Error(t, q.QueryRow(ctx, `SELECT 1`).Scan())
		return stop
	})
	require.ErrorIs(t, err, stop)
	require.Equal(t, 0, countTopics(t, db), "nothing is sent when fn fails")
	require.NoError(t, store.ExecBatch(ctx, db.Pool, func(*store.Queue) error { return nil }), "an empty batch sends nothing")
}
