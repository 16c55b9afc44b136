package retry

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestDelayAddsUpToTenPercent(t *testing.T) {
	t.Parallel()
	base := 60 * time.Second
	seen := map[time.Duration]bool{}
	for range 1000 {
		d := Delay(base)
		require.GreaterOrEqual(t, d, base)
		require.LessOrEqual(t, d, base+6*time.Second)
		seen[d] = true
	}
	require.Greater(t, len(seen), 100, "jitter should spread retries")
	require.Zero(t, Delay(0))
}

func TestNextHonoursRetryAfterWithinBounds(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	delay := 10 * time.Second

	require.Equal(t, 2*time.Minute, Next(delay, http.StatusTooManyRequests, "120", now))
	require.Equal(t, 2*time.Minute, Next(delay, http.StatusServiceUnavailable, now.Add(2*time.Minute).Format(http.TimeFormat), now))
	// Shorter than the subscription's delay: the delay wins.
	require.Equal(t, delay, Next(delay, http.StatusTooManyRequests, "1", now))
	require.Equal(t, delay, Next(delay, http.StatusTooManyRequests, now.Add(-time.Hour).Format(http.TimeFormat), now))
	// Longer than an hour: an hour.
	require.Equal(t, time.Hour, Next(delay, http.StatusServiceUnavailable, "86400", now))
	require.Equal(t, time.Hour, Next(delay, http.StatusServiceUnavailable, "99999999999999999", now))
	require.Equal(t, time.Hour, Next(delay, http.StatusServiceUnavailable, now.Add(48*time.Hour).Format(http.TimeFormat), now))
	// A delay already above an hour is kept.
	require.Equal(t, 2*time.Hour, Next(2*time.Hour, http.StatusServiceUnavailable, "60", now))
	// Only 429 and 503 are asked; garbage is ignored.
	require.Equal(t, delay, Next(delay, http.StatusInternalServerError, "120", now))
	require.Equal(t, delay, Next(delay, http.StatusTooManyRequests, "soon", now))
	require.Equal(t, delay, Next(delay, http.StatusTooManyRequests, "-5", now))
	require.Equal(t, delay, Next(delay, http.StatusTooManyRequests, "", now))
}
