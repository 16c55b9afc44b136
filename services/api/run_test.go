package api

import (
	"github.com/hammer-webhooks/hammer/services/api/app"

	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hammer-webhooks/hammer/platform/events"
	"github.com/hammer-webhooks/hammer/sql/dbsqlc"
)

// run starts b's server on a loopback listener (or ln), waits until it has
// prepared JetStream and the bucket, and stops it when the test ends,
// checking that Run returns nil on cancel.
func (b *bundle) run(ln net.Listener) string {
	b.t.Helper()
	base, done := b.start(ln)
	select {
	case <-b.srv.prepared:
	case err := <-done:
		b.t.Fatalf("Run returned early: %v", err)
	case <-time.After(15 * time.Second):
		b.t.Fatal("Run did not prepare JetStream and the bucket in time")
	}
	return base
}

// start starts b's server without waiting for anything.
func (b *bundle) start(ln net.Listener) (string, <-chan error) {
	b.t.Helper()
	if ln == nil {
		var err error
		ln, err = net.Listen("tcp", "127.0.0.1:0")
		require.NoError(b.t, err)
	}
	b.srv.listener = ln
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 2)
	go func() {
		err := b.srv.Run(ctx)
		done <- err
		done <- err // once for an early return, once for the cleanup
	}()
	b.t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			require.NoError(b.t, err)
		case <-time.After(15 * time.Second):
			b.t.Error("Run did not return after cancel")
		}
	})
	return "http://" + ln.Addr().String(), done
}

// TestRebuildAtStart checks that Run makes the bucket match Postgres: a
// subscription written while the API was down appears, a stale value is
// replaced, and keys of subscriptions Postgres no longer has are deleted.
func TestRebuildAtStart(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.srv.app.SetRebuildPage(2) // walk several pages
	ctx := b.ctx()
	_, err := b.q.TopicInsert(ctx, dbsqlc.TopicInsertParams{ID: "t", Name: "t", CreatedAt: now()})
	require.NoError(t, err)
	var ids []string
	for i := range 5 {
		id := fmt.Sprintf("sub-%d", i)
		ids = append(ids, id)
		_, err := b.q.SubscriptionInsert(ctx, dbsqlc.SubscriptionInsertParams{
			ID: id, TopicID: "t", Name: id, Url: "http://127.0.0.1:9/" + id, SecretToken: "tok", SigningSecret: app.NewSigningSecret(),
			MaxDeliveryAttempts: 3, DeliveryAttemptDelay: 2, DeliveryAttemptTimeout: 1, MaxConcurrentRequests: 4, CreatedAt: now()})
		require.NoError(t, err)
	}
	kv, err := b.nats.JS.KeyValue(ctx, events.BucketSubscriptions)
	require.NoError(t, err)
	put := func(s events.Subscription) {
		v, err := json.Marshal(s)
		require.NoError(t, err)
		_, err = kv.Put(ctx, events.EncodeID(s.ID), v)
		require.NoError(t, err)
	}
	put(events.Subscription{ID: "gone", URL: "http://127.0.0.1:9/gone", UpdatedAt: now()})
	put(events.Subscription{ID: "sub-1", URL: "http://127.0.0.1:9/stale", UpdatedAt: now().Add(-time.Hour)})
	_, err = kv.Put(ctx, "not=an=id", []byte("{}"))
	require.NoError(t, err)

	base := b.run(nil)

	for _, id := range ids {
		e := b.bucketEntry(id)
		require.NotNil(t, e, id)
		require.Equal(t, "http://127.0.0.1:9/"+id, e.URL)
		require.Equal(t, 3, e.MaxDeliveryAttempts)
		require.Equal(t, 4, e.MaxConcurrentRequests)
	}
	require.Nil(t, b.bucketEntry("gone"))
	_, err = kv.Get(ctx, "not=an=id")
	require.Error(t, err)
	keys, err := kv.Keys(ctx)
	require.NoError(t, err)
	require.Len(t, keys, len(ids))

	// The listener serves the API, with its health endpoints.
	res, err := http.Get(base + "/healthz")
	require.NoError(t, err)
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", body)
	res, err = http.Get(base + "/v1/subscriptions?limit=50")
	require.NoError(t, err)
	var list struct{ Subscriptions []map[string]any }
	require.NoError(t, json.NewDecoder(res.Body).Decode(&list))
	res.Body.Close()
	require.Len(t, list.Subscriptions, len(ids))
}

// wideListener is a loopback listener that says it listens on every
// interface, to see the warning without listening beyond loopback.
type wideListener struct{ net.Listener }

func (w wideListener) Addr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4zero, Port: w.Listener.Addr().(*net.TCPAddr).Port}
}

func TestWarnsWhenOpenBeyondLoopback(t *testing.T) {
	t.Parallel()
	t.Run("open on every interface", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		b.run(wideListener{ln})
		require.Equal(t, 1, b.logs.FilterMessageSnippet("the API is open").Len())
	})
	t.Run("tokens set", func(t *testing.T) {
		t.Parallel()
		b := setup(t, withTokens("secret"))
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		b.run(wideListener{ln})
		require.Zero(t, b.logs.FilterMessageSnippet("the API is open").Len())
	})
	t.Run("open on loopback", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.run(nil)
		require.Zero(t, b.logs.FilterMessageSnippet("the API is open").Len())
	})
}

// TestRunStartsWithoutNATS checks that the API serves while NATS is away at
// start and rebuilds the bucket once NATS is back.
func TestRunStartsWithoutNATS(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := b.ctx()
	_, err := b.q.TopicInsert(ctx, dbsqlc.TopicInsertParams{ID: "t", Name: "t", CreatedAt: now()})
	require.NoError(t, err)
	_, err = b.q.SubscriptionInsert(ctx, dbsqlc.SubscriptionInsertParams{
		ID: "early", TopicID: "t", Name: "n", Url: "http://127.0.0.1:9/", SecretToken: "tok", SigningSecret: app.NewSigningSecret(),
		MaxDeliveryAttempts: 1, DeliveryAttemptDelay: 1, DeliveryAttemptTimeout: 1, MaxConcurrentRequests: 1, CreatedAt: now()})
	require.NoError(t, err)

	restart := stopNATS(t, b)
	base, _ := b.start(nil)
	res, err := http.Get(base + "/v1/topics/t")
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode, "Postgres-backed calls work without NATS")
	select {
	case <-b.srv.prepared:
		t.Fatal("prepared without NATS")
	default:
	}

	restart()
	select {
	case <-b.srv.prepared:
	case <-time.After(20 * time.Second):
		t.Fatal("the bucket was not rebuilt after NATS came back")
	}
	require.NotNil(t, b.bucketEntry("early"))
}
