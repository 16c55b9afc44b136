package pipeline_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hammer-webhooks/hammer/platform/events"
	"github.com/hammer-webhooks/hammer/platform/testkit"
	"github.com/hammer-webhooks/hammer/tests/inproc"
)

// No event on DELIVERIES or EVENTS carries a secret: not the secret_token,
// not the signing secret, not the URL's password. The test makes every kind
// of event happen (attempts failed and succeeded, a delivery completed and
// one failed, a subscription created, updated and deleted) and reads every
// event of both streams, headers and payloads.
func TestNoSecretOnTheStreams(t *testing.T) {
	t.Parallel()
	db, n := testkit.NewDB(t), testkit.NewNATS(t)
	s := inproc.Start(t, db, n)
	flaky := newReceiver(t, http.StatusInternalServerError) // fails once, then 200
	dead := newReceiver(t, http.StatusInternalServerError)  // its one attempt fails

	const (
		token    = "tok-3f9a1c"
		password = "pw-77b2e0"
		signing  = "whsec_c2VjcmV0LXNpZ25pbmcta2V5LTQ4ZTFkMGFhYmI5OQ=="
	)
	withPassword := func(raw string) string {
		u, err := url.Parse(raw)
		require.NoError(t, err)
		u.User = url.UserPassword("hooks", password)
		return u.String()
	}
	s.MustCall(t, http.MethodPost, "/v1/topics", `{"topic": {"id": "orders", "name": "Orders"}}`, http.StatusOK)
	for id, rcv := range map[string]*receiver{"flaky": flaky, "dead": dead} {
		attempts := map[string]int{"flaky": 3, "dead": 1}[id]
		s.MustCall(t, http.MethodPost, "/v1/subscriptions", fmt.Sprintf(
			`{"subscription": {"id": %q, "topic_id": "orders", "name": "n", "url": %q, "secret_token": %q, "signing_secret": %q, "max_delivery_attempts": %d, "delivery_attempt_delay": 1}}`,
			id, withPassword(rcv.URL), token, signing, attempts), http.StatusOK)
	}
	s.MustCall(t, http.MethodPost, "/v1/messages", `{"message": {"topic_id": "orders", "data": "order 1"}}`, http.StatusOK)

	ended := func(status string) bool {
		list := s.MustCall(t, http.MethodGet, "/v1/deliveries?status="+status, "", http.StatusOK)
		return len(list["deliveries"].([]any)) == 1
	}
	testkit.Eventually(t, 30*time.Second, func() bool { return ended("completed") && ended("failed") },
		"one delivery did not complete and the other did not fail")
	require.Len(t, flaky.got(), 2)
	require.Equal(t, "hooks", userOf(t, flaky.got()[0]), "the receiver still gets the URL's credentials")
	d := s.MustCall(t, http.MethodGet, "/v1/deliveries?status=completed", "", http.StatusOK)["deliveries"].([]any)[0].(map[string]any)
	require.Equal(t, token, d["secret_token"], "the API still shows the delivery's secret_token, from PostgreSQL")

	s.MustCall(t, http.MethodPatch, "/v1/subscriptions/flaky", `{"subscription": {"name": "renamed"}}`, http.StatusOK)
	s.MustCall(t, http.MethodDelete, "/v1/subscriptions/flaky", "", http.StatusNoContent)

	kinds := map[string]bool{}
	testkit.Eventually(t, 10*time.Second, func() bool {
		clear(kinds)
		for _, stream := range []string{events.StreamDeliveries, events.StreamEvents} {
			for _, ev := range streamEvents(t, n, stream) {
				for _, secret := range []string{token, password, strings.TrimPrefix(signing, "whsec_")} {
					require.NotContains(t, ev, secret, "an event on %s carries a secret", stream)
				}
				kind := stream
				if stream == events.StreamEvents {
					kind, _, _ = events.ParseEventSubject(strings.SplitN(ev, "\n", 2)[0])
				}
				kinds[kind] = true
			}
		}
		return len(kinds) == 1+len(events.Kinds)
	}, "not every kind of event was published")
	for _, kind := range events.Kinds {
		require.True(t, kinds[kind], "no %s event was scanned", kind)
	}
}

// streamEvents is every message of stream as text: subject, headers, body.
func streamEvents(t *testing.T, n *testkit.NATS, stream string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := n.JS.Stream(ctx, stream)
	require.NoError(t, err)
	info, err := st.Info(ctx)
	require.NoError(t, err)
	var out []string
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := st.GetMsg(ctx, seq)
		require.NoError(t, err)
		var b strings.Builder
		fmt.Fprintf(&b, "%s\n", m.Subject)
		for name, values := range m.Header {
			fmt.Fprintf(&b, "%s: %s\n", name, strings.Join(values, ", "))
		}
		b.Write(m.Data)
		out = append(out, b.String())
	}
	return out
}

func userOf(t *testing.T, r received) string {
	t.Helper()
	req := http.Request{Header: r.header}
	user, _, ok := req.BasicAuth()
	require.True(t, ok, "no basic auth in the request")
	return user
}
