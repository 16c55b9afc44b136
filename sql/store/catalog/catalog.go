// Package catalog is the store of topics and subscriptions: the API writes
// them, fanout reads a batch's subscriptions, and the API rebuilds the
// subscriptions bucket from them.
package catalog

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/hammer-webhooks/hammer/platform/subscription"
	"github.com/hammer-webhooks/hammer/sql/dbsqlc"
	"github.com/hammer-webhooks/hammer/sql/store"
)

// Topic is a topic as stored.
type Topic struct {
	ID, Name             string
	CreatedAt, UpdatedAt time.Time
}

// Catalog reads and writes topics and subscriptions. Its errors are the
// store's: ErrNotFound, ErrConflict, ErrParentMissing, ErrUnavailable.
type Catalog struct {
	pool *pgxpool.Pool
	q    *dbsqlc.Queries
}

// New is a catalog over pool.
func New(pool *pgxpool.Pool) *Catalog {
	return &Catalog{pool: pool, q: dbsqlc.New(pool)}
}

func topicOf(t dbsqlc.Topic) Topic {
	return Topic{ID: t.ID, Name: t.Name, CreatedAt: t.CreatedAt.UTC(), UpdatedAt: t.UpdatedAt.UTC()}
}

// CreateTopic inserts t, stamped created (and updated) at t.CreatedAt.
func (c *Catalog) CreateTopic(ctx context.Context, t Topic) (Topic, error) {
	row, err := c.q.TopicInsert(ctx, dbsqlc.TopicInsertParams{ID: t.ID, Name: t.Name, CreatedAt: t.CreatedAt})
	if err != nil {
		return Topic{}, store.Interpret(err)
	}
	return topicOf(row), nil
}

// Topic reads one topic.
func (c *Catalog) Topic(ctx context.Context, id string) (Topic, error) {
	row, err := c.q.TopicGetByID(ctx, id)
	if err != nil {
		return Topic{}, store.Interpret(err)
	}
	return topicOf(row), nil
}

// RenameTopic sets the name of topic id.
func (c *Catalog) RenameTopic(ctx context.Context, id, name string, at time.Time) (Topic, error) {
	row, err := c.q.TopicUpdate(ctx, dbsqlc.TopicUpdateParams{ID: id, Name: name, UpdatedAt: at})
	if err != nil {
		return Topic{}, store.Interpret(err)
	}
	return topicOf(row), nil
}

// DeleteTopic deletes a topic and its subscriptions, which it returns so
// the caller can tell the deliverers. The topic is locked first, so a
// subscription inserted concurrently (its foreign-key check waits on the
// lock) cannot slip in between.
func (c *Catalog) DeleteTopic(ctx context.Context, id string) ([]subscription.Subscription, error) {
	var deleted []dbsqlc.Subscription
	err := store.InTx(ctx, c.pool, func(tx pgx.Tx) error {
		q := c.q.WithTx(tx)
		if _, err := q.TopicGetByIDForUpdate(ctx, id); err != nil {
			return err
		}
		var err error
		if deleted, err = q.SubscriptionDeleteByTopicID(ctx, id); err != nil {
			return err
		}
		_, err = q.TopicDelete(ctx, id)
		return err
	})
	if err != nil {
		return nil, err
	}
	return store.Map(deleted, subscriptionOf), nil
}

// ListTopics lists a page of topics.
func (c *Catalog) ListTopics(ctx context.Context, p store.Page) ([]Topic, error) {
	rows, err := store.Ordered(ctx, p, dbsqlc.TopicListAscParams{
		CreatedAtGt: p.CreatedAtGt, CreatedAtGte: p.CreatedAtGte, CreatedAtLt: p.CreatedAtLt, CreatedAtLte: p.CreatedAtLte,
		RowOffset: p.Offset, RowLimit: p.Limit,
	}, c.q.TopicListAsc, func(ctx context.Context, a dbsqlc.TopicListAscParams) ([]dbsqlc.Topic, error) {
		return c.q.TopicListDesc(ctx, dbsqlc.TopicListDescParams(a))
	})
	if err != nil {
		return nil, err
	}
	return store.Map(rows, topicOf), nil
}

// TopicExists reports whether topic id exists.
func (c *Catalog) TopicExists(ctx context.Context, id string) (bool, error) {
	ok, err := c.q.TopicExists(ctx, id)
	return ok, store.Interpret(err)
}

// ExistingTopics is which of ids exist, in one query.
func (c *Catalog) ExistingTopics(ctx context.Context, ids []string) ([]string, error) {
	found, err := c.q.TopicListExisting(ctx, ids)
	return found, store.Interpret(err)
}

// subscriptionOf is a row as hammer models it; times are UTC, as the
// bucket has always held them.
func subscriptionOf(s dbsqlc.Subscription) subscription.Subscription {
	return subscription.Subscription{
		ID: s.ID, TopicID: s.TopicID, Name: s.Name, URL: s.Url,
		SecretToken: s.SecretToken, SigningSecret: s.SigningSecret,
		MaxDeliveryAttempts:    int(s.MaxDeliveryAttempts),
		DeliveryAttemptDelay:   int(s.DeliveryAttemptDelay),
		DeliveryAttemptTimeout: int(s.DeliveryAttemptTimeout),
		MaxConcurrentRequests:  int(s.MaxConcurrentRequests),
		CreatedAt:              s.CreatedAt.UTC(), UpdatedAt: s.UpdatedAt.UTC(),
	}
}

// CreateSubscription inserts s, stamped created (and updated) at
// s.CreatedAt. ErrParentMissing: its topic does not exist.
func (c *Catalog) CreateSubscription(ctx context.Context, s subscription.Subscription) (subscription.Subscription, error) {
	row, err := c.q.SubscriptionInsert(ctx, dbsqlc.SubscriptionInsertParams{
		ID: s.ID, TopicID: s.TopicID, Name: s.Name, Url: s.URL,
		SecretToken: s.SecretToken, SigningSecret: s.SigningSecret,
		MaxDeliveryAttempts:    int32(s.MaxDeliveryAttempts),
		DeliveryAttemptDelay:   int32(s.DeliveryAttemptDelay),
		DeliveryAttemptTimeout: int32(s.DeliveryAttemptTimeout),
		MaxConcurrentRequests:  int32(s.MaxConcurrentRequests),
		CreatedAt:              s.CreatedAt,
	})
	if err != nil {
		return subscription.Subscription{}, store.Interpret(err)
	}
	return subscriptionOf(row), nil
}

// Subscription reads one subscription.
func (c *Catalog) Subscription(ctx context.Context, id string) (subscription.Subscription, error) {
	row, err := c.q.SubscriptionGetByID(ctx, id)
	if err != nil {
		return subscription.Subscription{}, store.Interpret(err)
	}
	return subscriptionOf(row), nil
}

// UpdateSubscription applies p to subscription id under a row lock, so
// concurrent updates of different fields both take effect, stamping it
// updated at at. An empty p reads the subscription and changes nothing.
func (c *Catalog) UpdateSubscription(ctx context.Context, id string, p subscription.Patch, at time.Time) (subscription.Subscription, error) {
	var out dbsqlc.Subscription
	err := store.InTx(ctx, c.pool, func(tx pgx.Tx) error {
		q := c.q.WithTx(tx)
		cur, err := q.SubscriptionGetByIDForUpdate(ctx, id)
		if err != nil {
			return err
		}
		if p.Empty() {
			out = cur
			return nil
		}
		s := subscriptionOf(cur)
		p.Apply(&s)
		out, err = q.SubscriptionUpdate(ctx, dbsqlc.SubscriptionUpdateParams{
			ID: s.ID, TopicID: s.TopicID, Name: s.Name, Url: s.URL,
			SecretToken: s.SecretToken, SigningSecret: s.SigningSecret,
			MaxDeliveryAttempts:    int32(s.MaxDeliveryAttempts),
			DeliveryAttemptDelay:   int32(s.DeliveryAttemptDelay),
			DeliveryAttemptTimeout: int32(s.DeliveryAttemptTimeout),
			MaxConcurrentRequests:  int32(s.MaxConcurrentRequests),
			UpdatedAt:              at,
		})
		return err
	})
	if err != nil {
		return subscription.Subscription{}, err
	}
	return subscriptionOf(out), nil
}

// DeleteSubscription deletes one subscription (its deliveries and attempts
// go by cascade) and returns it as it was.
func (c *Catalog) DeleteSubscription(ctx context.Context, id string) (subscription.Subscription, error) {
	row, err := c.q.SubscriptionDelete(ctx, id)
	if err != nil {
		return subscription.Subscription{}, store.Interpret(err)
	}
	return subscriptionOf(row), nil
}

// SubscriptionFilter narrows a list of subscriptions; nil fields do not.
type SubscriptionFilter struct {
	TopicID *string
}

// ListSubscriptions lists a page of subscriptions.
func (c *Catalog) ListSubscriptions(ctx context.Context, f SubscriptionFilter, p store.Page) ([]subscription.Subscription, error) {
	rows, err := store.Ordered(ctx, p, dbsqlc.SubscriptionListAscParams{
		TopicID:     f.TopicID,
		CreatedAtGt: p.CreatedAtGt, CreatedAtGte: p.CreatedAtGte, CreatedAtLt: p.CreatedAtLt, CreatedAtLte: p.CreatedAtLte,
		RowOffset: p.Offset, RowLimit: p.Limit,
	}, c.q.SubscriptionListAsc, func(ctx context.Context, a dbsqlc.SubscriptionListAscParams) ([]dbsqlc.Subscription, error) {
		return c.q.SubscriptionListDesc(ctx, dbsqlc.SubscriptionListDescParams(a))
	})
	if err != nil {
		return nil, err
	}
	return store.Map(rows, subscriptionOf), nil
}

// SubscriptionsAfter walks every subscription in ID order, limit at a time,
// starting after afterID ("" for the first page).
func (c *Catalog) SubscriptionsAfter(ctx context.Context, afterID string, limit int32) ([]subscription.Subscription, error) {
	rows, err := c.q.SubscriptionListAfterID(ctx, dbsqlc.SubscriptionListAfterIDParams{AfterID: afterID, RowLimit: limit})
	if err != nil {
		return nil, fmt.Errorf("listing subscriptions after %q: %w", afterID, store.Interpret(err))
	}
	return store.Map(rows, subscriptionOf), nil
}

// SubscriptionsOfTopics is every subscription of the given topics, in one
// query (fanout's per batch), ordered by topic and ID.
func (c *Catalog) SubscriptionsOfTopics(ctx context.Context, topicIDs []string) ([]subscription.Subscription, error) {
	rows, err := c.q.SubscriptionListByTopicIDs(ctx, topicIDs)
	if err != nil {
		return nil, store.Interpret(err)
	}
	return store.Map(rows, subscriptionOf), nil
}
