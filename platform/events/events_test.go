package events_test

import (
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/oklog/ulid/v2"
	"github.com/stretchr/testify/require"

	"github.com/hammer-webhooks/hammer/platform/events"
)

var awkwardIDs = []string{"a.b", "a+b", "-x", "..", "person", "a.b.c+d-e", "_", strings.Repeat("z.", 100)}

func TestEncodeIDRoundTripsIntoOneToken(t *testing.T) {
	t.Parallel()
	seen := map[string]string{}
	for _, id := range awkwardIDs {
		tok := events.EncodeID(id)
		require.NotEmpty(t, tok)
		require.NotContains(t, tok, ".", "token of %q", id)
		require.NotContains(t, tok, "*")
		require.NotContains(t, tok, ">")
		require.Regexp(t, `^[A-Za-z0-9_-]+$`, tok, "token of %q must also be a valid key-value key", id)
		back, err := events.DecodeID(tok)
		require.NoError(t, err)
		require.Equal(t, id, back)
		if other, dup := seen[tok]; dup {
			t.Fatalf("%q and %q encode alike", id, other)
		}
		seen[tok] = id

		for _, subject := range []string{events.MessageSubject(id), events.DeliverySubject(id)} {
			require.Len(t, strings.Split(subject, "."), 3, "subject %q", subject)
		}
		for _, kind := range events.Kinds {
			subject := events.EventSubject(kind, id)
			require.Equal(t, 3+strings.Count(kind, "."), strings.Count(subject, "."), "subject %q", subject)
			gotKind, gotID, err := events.ParseEventSubject(subject)
			require.NoError(t, err)
			require.Equal(t, kind, gotKind)
			require.Equal(t, id, gotID)
		}
	}
}

func TestParseEventSubjectRejectsForeignSubjects(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"hammer.messages.abc", "other.events.attempt.abc", "hammer.events.attempt"} {
		_, _, err := events.ParseEventSubject(s)
		require.Error(t, err, s)
	}
}

func TestDerivedIDsAreDeterministic(t *testing.T) {
	t.Parallel()
	at := time.Date(2020, 5, 12, 18, 56, 2, 175614000, time.UTC)
	msg := events.NewMessageID(at)
	d1 := events.DeliveryID(msg, at, "httpbin-post")
	require.Equal(t, d1, events.DeliveryID(msg, at, "httpbin-post"))
	require.NotEqual(t, d1, events.DeliveryID(msg, at, "httpbin-get"))
	require.NotEqual(t, d1, events.DeliveryID(events.NewMessageID(at), at, "httpbin-post"))
	// Length-prefixed parts: shifting a character between parts changes the ID.
	require.NotEqual(t, events.DeliveryID("ab", at, "c"), events.DeliveryID("a", at, "bc"))

	parsed, err := ulid.ParseStrict(d1)
	require.NoError(t, err)
	require.Equal(t, ulid.Timestamp(at), parsed.Time(), "a delivery ID carries its message's time")

	sched := at.Add(time.Minute)
	a1 := events.AttemptID(d1, 1, sched)
	require.Equal(t, a1, events.AttemptID(d1, 1, sched))
	require.NotEqual(t, a1, events.AttemptID(d1, 2, sched))
	parsed, err = ulid.ParseStrict(a1)
	require.NoError(t, err)
	require.Equal(t, ulid.Timestamp(sched), parsed.Time())

	require.NotEqual(t, events.NewMessageID(at), events.NewMessageID(at), "message IDs are random")
}

func TestMessageHeadersRoundTrip(t *testing.T) {
	t.Parallel()
	in := events.Message{
		ID: events.NewMessageID(time.Now()), TopicID: "a.b+c", ContentType: "application/json",
		IdempotencyKey: "key-1", CreatedAt: time.Now().UTC().Truncate(time.Microsecond), Data: []byte(`{"name":"x"}`),
	}
	msg := in.NATSMsg()
	require.Equal(t, events.MessageSubject("a.b+c"), msg.Subject)
	require.Equal(t, in.ID, msg.Header.Get(nats.MsgIdHdr))
	out, err := events.MessageFromHeaders(msg.Header, msg.Data)
	require.NoError(t, err)
	require.Equal(t, in, out)

	_, err = events.MessageFromHeaders(nats.Header{}, nil)
	require.Error(t, err)
}

func TestPayloadsCarryVersion(t *testing.T) {
	t.Parallel()
	b, err := events.Encode(&events.Outcome{Status: events.StatusFailed, Reason: events.ReasonMaxAttempts})
	require.NoError(t, err)
	require.Contains(t, string(b), `"v":2`)

	var out events.Outcome
	require.NoError(t, events.Decode(b, &out))
	require.Equal(t, events.ReasonMaxAttempts, out.Reason)

	require.ErrorContains(t, events.Decode([]byte(`{"v":3}`), &out), "version 3")
	_, err = events.Encode(events.Outcome{})
	require.Error(t, err, "a value, not a pointer, cannot get its version set")
}

func TestTimeAlwaysHasSixFractionalDigits(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 11, 28, 13, 13, 33, 643570999, time.FixedZone("x", 3600))
	require.Equal(t, "2026-11-28T12:13:33.643570Z", events.Time(at), "trailing zeros are kept, the zone is UTC")
	require.Equal(t, "2026-11-28T12:13:33.000000Z", events.Time(at.Truncate(time.Second)))
	back, err := events.ParseTime(events.Time(at))
	require.NoError(t, err)
	require.Equal(t, at.Truncate(time.Microsecond).UTC(), back)
}
