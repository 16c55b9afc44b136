package deliverer_test

import (
	"bytes"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hammer-webhooks/hammer/platform/events"
	"github.com/hammer-webhooks/hammer/services/deliverer"
)

func TestRetryAfterIsHonoured(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rc := newReceiver(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		if n == 1 {
			w.Header().Set("Retry-After", "3")
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	sub := subscription("busy", rc.URL)
	b.putSubscription(t, sub)
	b.start(t)

	id := b.deliver(t, b.publishMessage(t, "hello"), sub)
	o, rec := b.waitOutcome(t, id, 20*time.Second)
	require.Equal(t, events.StatusCompleted, o.Status)
	a := rec.attemptsOf(id)
	require.Len(t, a, 2)
	wait := a[0].NextAttemptAt.Sub(a[0].CreatedAt) - time.Duration(a[0].ExecutionDuration)*time.Millisecond
	require.GreaterOrEqual(t, wait, 3*time.Second-time.Millisecond, "Retry-After above the delay wins")
	require.Less(t, wait, 4*time.Second, "Retry-After is not jittered further")
	reqs := rc.got()
	require.GreaterOrEqual(t, reqs[1].at.Sub(reqs[0].at), 3*time.Second)
}

func TestRedirectIsAFailedAttemptAndNotFollowed(t *testing.T) {
	t.Parallel()
	b := setup(t)
	elsewhere := newReceiver(t, nil)
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, elsewhere.URL+"/moved", http.StatusTemporaryRedirect)
	})
	sub := subscription("redirecting", rc.URL)
	sub.MaxDeliveryAttempts = 1
	b.putSubscription(t, sub)
	b.start(t)

	id := b.deliver(t, b.publishMessage(t, "hello"), sub)
	o, rec := b.waitOutcome(t, id, 10*time.Second)
	require.Equal(t, events.StatusFailed, o.Status)
	a := rec.attemptsOf(id)[0]
	require.False(t, a.Success)
	require.Equal(t, http.StatusTemporaryRedirect, a.ResponseStatusCode)
	require.Contains(t, a.Error, "redirect not followed")
	require.Contains(t, a.Error, elsewhere.URL+"/moved")
	require.Zero(t, elsewhere.count(), "the redirect was followed")
}

func TestResponseBodyIsCutAt64KiB(t *testing.T) {
	t.Parallel()
	b := setup(t)
	big := bytes.Repeat([]byte("x"), 100<<10)
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(len(big)))
		_, _ = w.Write(big)
	})
	sub := subscription("chatty", rc.URL)
	b.putSubscription(t, sub)
	b.start(t)

	id := b.deliver(t, b.publishMessage(t, "hello"), sub)
	o, rec := b.waitOutcome(t, id, 10*time.Second)
	require.Equal(t, events.StatusCompleted, o.Status)
	a := rec.attemptsOf(id)[0]
	head, body, ok := strings.Cut(a.Response, "\r\n\r\n")
	require.True(t, ok)
	require.Contains(t, head, "Content-Length: 102400")
	require.Len(t, body, deliverer.MaxRecordedResponseBody)
}

// TestConnectionFailuresHaveTheirOwnErrors checks that each way of not
// getting a response is told apart.
func TestConnectionFailuresHaveTheirOwnErrors(t *testing.T) {
	t.Parallel()
	b := setup(t)

	// A port nobody listens on.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closedAddr := ln.Addr().String()
	require.NoError(t, ln.Close())

	// A receiver that resets the connection instead of answering.
	reset := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err != nil {
			return
		}
		_ = conn.(*net.TCPConn).SetLinger(0)
		_ = conn.Close()
	})

	// A TLS receiver whose certificate nobody trusts.
	tlsSrv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	t.Cleanup(tlsSrv.Close)

	b.names["receiver.test"] = []string{"127.0.0.1"}
	cases := []struct {
		id, url, want string
	}{
		{"refused", "http://" + closedAddr + "/", "connection refused"},
		{"dns", "http://nowhere.test/", "dns failure"},
		{"reset", reset.URL, "connection reset"},
		{"tls", tlsSrv.URL, "tls failure"},
		{"invalid", "ftp://receiver.test/", "invalid url"},
	}
	b.start(t)
	ids := map[string]string{}
	for _, c := range cases {
		sub := subscription(c.id, c.url)
		sub.MaxDeliveryAttempts = 1
		b.putSubscription(t, sub)
		ids[c.id] = b.deliver(t, b.publishMessage(t, "hello"), sub)
	}
	for _, c := range cases {
		_, rec := b.waitOutcome(t, ids[c.id], 10*time.Second)
		a := rec.attemptsOf(ids[c.id])
		require.Len(t, a, 1, c.id)
		require.False(t, a[0].Success, c.id)
		require.True(t, strings.HasPrefix(a[0].Error, c.want), "%s: %q", c.id, a[0].Error)
		require.Zero(t, a[0].ResponseStatusCode, c.id)
		t.Logf("%s: %s", c.id, a[0].Error)
	}
	require.Equal(t, 1, reset.count())
}

func TestSSRFGuardRefusesBeforeAnyConnection(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rc := newReceiver(t, nil)
	_, port, err := net.SplitHostPort(strings.TrimPrefix(rc.URL, "http://"))
	require.NoError(t, err)
	b.names["intranet.test"] = []string{"10.0.0.5"}
	b.names["receiver.test"] = []string{"127.0.0.1"}

	// The default policy (no allow list): loopback is refused too, so the
	// real receiver on 127.0.0.1 must not be reached.
	b.start(t, func(o *deliverer.Options) { o.Config.AllowedCIDRs = nil })
	cases := []struct{ id, url string }{
		{"private-name", "http://intranet.test/"},
		{"metadata", "http://169.254.169.254/latest/meta-data/"},
		{"loopback", "http://receiver.test:" + port + "/"},
		{"ipv6-link-local", "http://[fe80::1]/"},
	}
	ids := map[string]string{}
	for _, c := range cases {
		sub := subscription(c.id, c.url)
		sub.MaxDeliveryAttempts = 1
		b.putSubscription(t, sub)
		ids[c.id] = b.deliver(t, b.publishMessage(t, "hello"), sub)
	}
	for _, c := range cases {
		_, rec := b.waitOutcome(t, ids[c.id], 10*time.Second)
		a := rec.attemptsOf(ids[c.id])
		require.Len(t, a, 1, c.id)
		// The attempt names no address; the log does (ssrf.Config.Log).
		require.Equal(t, deliverer.ErrorDestinationNotAllowed, a[0].Error, c.id)
		require.Empty(t, a[0].Response, c.id)
	}
	require.Zero(t, rc.count(), "a refused target got a request")
}

func TestAllowedCIDRIsReached(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rc := newReceiver(t, nil)
	_, port, err := net.SplitHostPort(strings.TrimPrefix(rc.URL, "http://"))
	require.NoError(t, err)
	b.names["receiver.test"] = []string{"127.0.0.1"}
	b.start(t, func(o *deliverer.Options) { o.Config.AllowedCIDRs = []string{"127.0.0.0/8"} })

	sub := subscription("allowed", "http://receiver.test:"+port+"/in")
	b.putSubscription(t, sub)
	id := b.deliver(t, b.publishMessage(t, "hello"), sub)
	o, _ := b.waitOutcome(t, id, 10*time.Second)
	require.Equal(t, events.StatusCompleted, o.Status)
	require.Equal(t, 1, rc.count())
	require.Equal(t, "receiver.test:"+port, rc.got()[0].host, "the Host header names the URL's host, not the dialled address")
}
