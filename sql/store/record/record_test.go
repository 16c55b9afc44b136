package record_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hammer-webhooks/hammer/platform/subscription"
	"github.com/hammer-webhooks/hammer/platform/testkit"
	"github.com/hammer-webhooks/hammer/sql/store"
	"github.com/hammer-webhooks/hammer/sql/store/catalog"
	"github.com/hammer-webhooks/hammer/sql/store/record"
)

func TestWriteIsIdempotentAndRefusesBadRows(t *testing.T) {
	t.Parallel()
	db := testkit.NewDB(t)
	ctx := context.Background()
	c, r := catalog.New(db.Pool), record.New(db.Pool)
	t0 := time.Now().UTC().Truncate(time.Microsecond)
	_, err := c.CreateTopic(ctx, catalog.Topic{ID: "t", Name: "t", CreatedAt: t0})
	require.NoError(t, err)
	_, err = c.CreateSubscription(ctx, subscription.Subscription{ID: "s", TopicID: "t", Name: "s", URL: "https://example.com/",
		SecretToken: "tok", SigningSecret: "x", CreatedAt: t0}.WithDefaults())
	require.NoError(t, err)

	m := record.Message{ID: "m", TopicID: "t", ContentType: "text/plain", Data: []byte("hi"), StreamSequence: 7, CreatedAt: t0}
	d := record.Delivery{ID: "d", TopicID: "t", SubscriptionID: "s", MessageID: "m", URL: "https://example.com/",
		MaxDeliveryAttempts: 5, DeliveryAttemptDelay: 60, DeliveryAttemptTimeout: 5, Status: "pending",
		ScheduledAt: t0, CreatedAt: t0, UpdatedAt: t0}
	a := record.Attempt{ID: "a", DeliveryID: "d", Attempt: 1, Request: "req", Response: "resp", ResponseStatusCode: 200, CreatedAt: t0}
	batch := record.Batch{Messages: []record.Message{m}, Deliveries: []record.Delivery{d}, Attempts: []record.Attempt{a}}
	require.NoError(t, r.Write(ctx, batch))
	require.NoError(t, r.Write(ctx, batch), "a replay writes nothing new")

	got, err := r.Delivery(ctx, "d")
	require.NoError(t, err)
	require.Equal(t, []byte("hi"), got.Data)
	require.Nil(t, got.FailureReason)
	attempts, err := r.ListAttempts(ctx, record.AttemptFilter{DeliveryID: &d.ID}, store.Page{Limit: 10})
	require.NoError(t, err)
	require.Len(t, attempts, 1)

	bad := d
	bad.ID, bad.Status = "d2", "bogus"
	err = r.Write(ctx, record.Batch{Deliveries: []record.Delivery{bad}})
	require.ErrorIs(t, err, store.ErrRefused)

	require.NoError(t, r.DeleteMessage(ctx, "m", t0))
	_, err = r.Message(ctx, "m")
	require.ErrorIs(t, err, store.ErrNotFound)
	_, err = r.Delivery(ctx, "d")
	require.ErrorIs(t, err, store.ErrNotFound)
	require.NoError(t, r.DeleteMessage(ctx, "m", t0), "deleting again is no error")
	require.NoError(t, r.Write(ctx, batch))
	_, err = r.Message(ctx, "m")
	require.ErrorIs(t, err, store.ErrNotFound, "the tombstone keeps a replay out")
	n, err := r.PruneTombstones(ctx, t0.Add(time.Second))
	require.NoError(t, err)
	require.EqualValues(t, 1, n)
}
