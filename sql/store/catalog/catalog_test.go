package catalog_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hammer-webhooks/hammer/platform/subscription"
	"github.com/hammer-webhooks/hammer/platform/testkit"
	"github.com/hammer-webhooks/hammer/sql/store"
	"github.com/hammer-webhooks/hammer/sql/store/catalog"
)

func ptr[T any](v T) *T { return &v }

func TestCatalogSpeaksInDomainErrors(t *testing.T) {
	t.Parallel()
	c := catalog.New(testkit.NewDB(t).Pool)
	ctx := context.Background()
	t0 := time.Now().UTC().Truncate(time.Microsecond)

	_, err := c.Topic(ctx, "t")
	require.ErrorIs(t, err, store.ErrNotFound)
	_, err = c.CreateTopic(ctx, catalog.Topic{ID: "t", Name: "n", CreatedAt: t0})
	require.NoError(t, err)
	_, err = c.CreateTopic(ctx, catalog.Topic{ID: "t", Name: "n", CreatedAt: t0})
	require.ErrorIs(t, err, store.ErrConflict)

	sub := subscription.Subscription{ID: "s", TopicID: "t", Name: "n", URL: "https://example.com/",
		SecretToken: "tok", SigningSecret: "whsec_x", CreatedAt: t0}.WithDefaults()
	_, err = c.CreateSubscription(ctx, subscription.Subscription{ID: "orphan", TopicID: "nope", Name: "n", URL: "u",
		SecretToken: "tok", SigningSecret: "x", CreatedAt: t0}.WithDefaults())
	require.ErrorIs(t, err, store.ErrParentMissing)
	created, err := c.CreateSubscription(ctx, sub)
	require.NoError(t, err)
	require.Equal(t, t0, created.UpdatedAt, "created and updated at once")

	later := t0.Add(time.Second)
	updated, err := c.UpdateSubscription(ctx, "s", subscription.Patch{MaxDeliveryAttempts: ptr(2)}, later)
	require.NoError(t, err)
	require.Equal(t, 2, updated.MaxDeliveryAttempts)
	require.Equal(t, sub.URL, updated.URL, "fields not named stay")
	require.Equal(t, later, updated.UpdatedAt)
	same, err := c.UpdateSubscription(ctx, "s", subscription.Patch{}, later.Add(time.Hour))
	require.NoError(t, err)
	require.Equal(t, updated, same, "an empty patch changes nothing")
	_, err = c.UpdateSubscription(ctx, "s", subscription.Patch{TopicID: ptr("nope")}, later)
	require.ErrorIs(t, err, store.ErrParentMissing)
	_, err = c.UpdateSubscription(ctx, "missing", subscription.Patch{Name: ptr("x")}, later)
	require.ErrorIs(t, err, store.ErrNotFound)

	deleted, err := c.DeleteTopic(ctx, "t")
	require.NoError(t, err)
	require.Len(t, deleted, 1)
	require.Equal(t, "s", deleted[0].ID)
	_, err = c.DeleteTopic(ctx, "t")
	require.ErrorIs(t, err, store.ErrNotFound)
}

func TestListsPageInEitherOrder(t *testing.T) {
	t.Parallel()
	c := catalog.New(testkit.NewDB(t).Pool)
	ctx := context.Background()
	t0 := time.Now().UTC().Truncate(time.Microsecond)
	for i, id := range []string{"a", "b", "c"} {
		_, err := c.CreateTopic(ctx, catalog.Topic{ID: id, Name: id, CreatedAt: t0.Add(time.Duration(i) * time.Second)})
		require.NoError(t, err)
	}
	ids := func(p store.Page) []string {
		topics, err := c.ListTopics(ctx, p)
		require.NoError(t, err)
		return store.Map(topics, func(t catalog.Topic) string { return t.ID })
	}
	require.Equal(t, []string{"c", "b", "a"}, ids(store.Page{Limit: 10}))
	require.Equal(t, []string{"a", "b", "c"}, ids(store.Page{Limit: 10, Asc: true}))
	require.Equal(t, []string{"b"}, ids(store.Page{Limit: 1, Offset: 1, Asc: true}))
	require.Equal(t, []string{"b", "c"}, ids(store.Page{Limit: 10, Asc: true, CreatedAtGt: &t0}))
}
