package recorder

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hammer-webhooks/hammer/platform/events"
)

func TestMergeFollowsTheUpsertRule(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	row := func(status string, attempts int, updated time.Duration) *deliveryRow {
		return &deliveryRow{
			ID: "d", Status: status, Attempts: attempts,
			ScheduledAt: t0.Add(updated), CreatedAt: t0.Add(updated), UpdatedAt: t0.Add(updated),
		}
	}
	pending, completed, failed := events.StatusPending, events.StatusCompleted, events.StatusFailed
	for _, tc := range []struct {
		name          string
		held, in      *deliveryRow
		want          *deliveryRow
		wantAttempts  int
		wantUpdatedAt time.Duration
	}{
		{name: "more attempts win", held: row(pending, 1, 2), in: row(pending, 2, 1), wantAttempts: 2, wantUpdatedAt: 2},
		{name: "fewer attempts lose", held: row(pending, 2, 1), in: row(pending, 1, 5), wantAttempts: 2, wantUpdatedAt: 1},
		{name: "same attempts, newer wins", held: row(pending, 1, 1), in: row(pending, 1, 2), wantAttempts: 1, wantUpdatedAt: 2},
		{name: "same attempts, older loses", held: row(pending, 1, 2), in: row(pending, 1, 1), wantAttempts: 1, wantUpdatedAt: 2},
		{name: "final wins over more attempts", held: row(pending, 3, 9), in: row(failed, 2, 1), wantAttempts: 3, wantUpdatedAt: 9},
		{name: "final is final", held: row(completed, 1, 1), in: row(pending, 5, 9), wantAttempts: 1, wantUpdatedAt: 1},
		{name: "first final stays", held: row(completed, 1, 1), in: row(failed, 2, 2), wantAttempts: 1, wantUpdatedAt: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := merge(tc.held, tc.in)
			require.Equal(t, tc.wantAttempts, got.Attempts)
			require.Equal(t, t0.Add(tc.wantUpdatedAt), got.UpdatedAt)
			require.Equal(t, tc.held.CreatedAt, got.CreatedAt, "the first event's creation time stays")
			wantStatus := tc.held.Status
			if !tc.held.final() && (tc.in.final() || tc.in.Attempts > tc.held.Attempts ||
				(tc.in.Attempts == tc.held.Attempts && tc.in.UpdatedAt.After(tc.held.UpdatedAt))) {
				wantStatus = tc.in.Status
				require.Equal(t, tc.in.ScheduledAt, got.ScheduledAt, "the winner's schedule")
			} else {
				require.Same(t, tc.held, got)
			}
			require.Equal(t, wantStatus, got.Status)
		})
	}
}

func TestStoredText(t *testing.T) {
	t.Parallel()
	require.Equal(t, "a\uFFFDb\uFFFDc", storedText("a\x00b\xffc"))
	require.Equal(t, "plain", storedText("plain"))
}
