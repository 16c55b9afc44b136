package deliverer

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hammer-webhooks/hammer/platform/events"
)

func TestEncodeAttemptCutsToFit(t *testing.T) {
	t.Parallel()
	a := events.Attempt{
		AttemptID: "a",
		Request:   "POST / HTTP/1.1\r\n\r\n" + strings.Repeat("r", 200<<10),
		Response:  "HTTP/1.1 500 Internal Server Error\r\n\r\n" + strings.Repeat("<", 300<<10),
		Error:     "unexpected status",
	}
	const limit = 100 << 10
	data, err := encodeAttempt(&a, limit)
	require.NoError(t, err)
	require.LessOrEqual(t, len(data), limit)
	var got events.Attempt
	require.NoError(t, events.Decode(data, &got))
	require.True(t, strings.HasPrefix(got.Response, "HTTP/1.1 500 Internal Server Error\r\n"))
	require.Contains(t, got.Response, "[hammer: response cut here")
	require.Equal(t, "unexpected status", got.Error)

	small := events.Attempt{AttemptID: "b", Request: "POST / HTTP/1.1\r\n\r\n{}"}
	data, err = encodeAttempt(&small, limit)
	require.NoError(t, err)
	require.NoError(t, events.Decode(data, &got))
	require.Equal(t, small.Request, got.Request, "an event that fits is not cut")
}

func TestCutKeepsTheLimitAndMarksTheCut(t *testing.T) {
	t.Parallel()
	require.Equal(t, "short", cut("short", 100, "body"))
	long := strings.Repeat("é", 1000) // two bytes each: a cut must not split one
	got := cut(long, 501, "body")
	require.LessOrEqual(t, len(got), 501)
	require.Contains(t, got, "[hammer: body cut here")
	require.True(t, strings.HasPrefix(got, "é"))
	require.NotContains(t, got, "\uFFFD")
	require.True(t, strings.ToValidUTF8(got, "?") == got)
}
