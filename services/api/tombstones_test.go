package api

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hammer-webhooks/hammer/platform/testkit"
	"github.com/hammer-webhooks/hammer/sql/dbsqlc"
)

// Tombstones of deleted messages are kept while the streams may still hold
// events about them, and forgotten after HAMMER_STREAM_MAX_AGE.
func TestTombstonesArePrunedAfterTheStreamsForget(t *testing.T) {
	t.Parallel()
	b := setup(t)
	now := time.Now().UTC()
	old := now.Add(-b.srv.cfg.StreamMaxAge - time.Hour)
	recent := now.Add(-b.srv.cfg.StreamMaxAge + time.Hour)
	require.NoError(t, b.q.DeletedMessageInsert(b.ctx(), dbsqlc.DeletedMessageInsertParams{ID: "old", DeletedAt: old}))
	require.NoError(t, b.q.DeletedMessageInsert(b.ctx(), dbsqlc.DeletedMessageInsertParams{ID: "recent", DeletedAt: recent}))

	b.run(nil)
	ids := func() []string {
		rows, err := b.db.Pool.Query(b.ctx(), "SELECT id FROM deleted_messages ORDER BY id")
		require.NoError(t, err)
		defer rows.Close()
		var out []string
		for rows.Next() {
			var id string
			require.NoError(t, rows.Scan(&id))
			out = append(out, id)
		}
		return out
	}
	testkit.Eventually(t, 10*time.Second, func() bool { return len(ids()) == 1 }, "the old tombstone was not pruned")
	require.Equal(t, []string{"recent"}, ids())
}
