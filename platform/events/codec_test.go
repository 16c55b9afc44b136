package events_test

import (
	stdjson "encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hammer-webhooks/hammer/platform/events"
)

// Events are encoded with a faster JSON codec than encoding/json; what goes
// on the wire must stay what encoding/json writes and reads, byte for byte,
// for any consumer of EVENTS written with the standard library.
func TestEventsEncodeAndDecodeAsTheStandardLibraryDoes(t *testing.T) {
	t.Parallel()
	for _, s := range []string{
		"plain", "invalid UTF-8 \xff\xfe", "<html>&amp;", "separators \u2028 \u2029",
		"controls \x00\x01\x1f \t\r\n", "emoji 😀", `"quoted \" and \\ backslash"`, "lone surrogate \xed\xa0\x80",
	} {
		a := attemptEvent()
		a.Request, a.Response, a.Error = s, s, s
		got, err := events.Encode(a)
		require.NoError(t, err)
		want, err := stdjson.Marshal(a)
		require.NoError(t, err)
		require.Equal(t, string(want), string(got), "encoding %q", s)

		var decoded, stdDecoded events.Attempt
		require.NoError(t, events.Decode(got, &decoded))
		require.NoError(t, stdjson.Unmarshal(got, &stdDecoded))
		require.Equal(t, stdDecoded, decoded, "decoding %q", s)
	}
}
