// Package app is the API's application layer: every rule of hammer's API
// (validation, defaults, error codes, publishing to JetStream, the
// subscriptions bucket, Idempotency-Keys) written once, for every door.
// The REST handlers decode HTTP, call it and encode its answer; a gRPC
// server calls the same methods. Errors are *Error, whose Kind each door
// translates and whose Code both show.
package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/hammer-webhooks/hammer/platform/events"
	"github.com/hammer-webhooks/hammer/platform/subscription"
	"github.com/hammer-webhooks/hammer/sql/store"
	"github.com/hammer-webhooks/hammer/sql/store/catalog"
	"github.com/hammer-webhooks/hammer/sql/store/record"
)

// List paging (DESIGN "The REST API").
const (
	DefaultLimit = 25
	MaxLimit     = 50
)

// Options is what New needs; every field is required.
type Options struct {
	Catalog *catalog.Catalog
	Record  *record.Record
	NATS    *nats.Conn
	JS      jetstream.JetStream
	Logger  *zap.Logger
	// PublishTimeout bounds each wait for JetStream.
	PublishTimeout time.Duration
	// MaxMessageBytes is the largest message data accepted.
	MaxMessageBytes int
}

// App is the application layer of one API process.
type App struct {
	catalog  *catalog.Catalog
	record   *record.Record
	view     *view
	pub      *publisher
	maxBytes int
}

// New builds the layer; it does no I/O.
func New(opts Options) *App {
	viewErrors := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "hammer_api_subscription_view_errors_total",
		Help: "Writes of the subscriptions bucket or subscription events that failed and were queued for retry.",
	})
	return &App{
		catalog:  opts.Catalog,
		record:   opts.Record,
		maxBytes: opts.MaxMessageBytes,
		view: &view{nc: opts.NATS, js: opts.JS, catalog: opts.Catalog, log: opts.Logger, timeout: opts.PublishTimeout,
			errors: viewErrors, page: rebuildPage, dirty: map[string]struct{}{}},
		pub: &publisher{
			nc: opts.NATS, js: opts.JS, log: opts.Logger, timeout: opts.PublishTimeout,
			accepted: prometheus.NewCounter(prometheus.CounterOpts{
				Name: "hammer_api_messages_accepted_total",
				Help: "Messages JetStream acknowledged for the API.",
			}),
			replayed: prometheus.NewCounter(prometheus.CounterOpts{
				Name: "hammer_api_idempotent_replays_total",
				Help: "Publishes answered with an earlier message because of their Idempotency-Key.",
			}),
		},
	}
}

// Collectors are the layer's hammer_* metrics, for the caller's registry.
func (a *App) Collectors() []prometheus.Collector {
	return []prometheus.Collector{a.view.errors, a.pub.accepted, a.pub.replayed}
}

// Now is the time a change is stamped with, at the precision Postgres keeps.
func Now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

// page holds a list's page to the paging rules.
func page(p store.Page) store.Page {
	if p.Limit < 1 {
		p.Limit = DefaultLimit
	}
	p.Limit = min(p.Limit, MaxLimit)
	return p
}

// TopicInput is a topic create or change; nil fields are not given.
type TopicInput struct {
	ID, Name *string
}

// CheckTopic checks a topic input. On create (pathID empty) every field is
// required; on a change of topic pathID only the named fields are checked.
func CheckTopic(in TopicInput, pathID string) *Error {
	switch {
	case in.ID == nil && pathID == "":
		return InvalidField("id", "id is required")
	case in.ID != nil && pathID != "" && *in.ID != pathID:
		return InvalidField("id", "id %q differs from the path's %q; an id cannot be changed", *in.ID, pathID)
	case in.ID != nil:
		if err := CheckID("id", *in.ID); err != nil {
			return err
		}
	}
	if in.Name == nil && pathID == "" {
		return InvalidField("name", "name is required")
	}
	if in.Name != nil {
		if err := checkText("name", *in.Name, MaxNameBytes); err != nil {
			return err
		}
	}
	return nil
}

// CreateTopic creates a topic.
func (a *App) CreateTopic(ctx context.Context, in TopicInput) (catalog.Topic, error) {
	if err := CheckTopic(in, ""); err != nil {
		return catalog.Topic{}, err
	}
	t, err := a.catalog.CreateTopic(ctx, catalog.Topic{ID: *in.ID, Name: *in.Name, CreatedAt: Now()})
	if err != nil {
		if errors.Is(err, store.ErrConflict) {
			return catalog.Topic{}, alreadyExists("topic")
		}
		return catalog.Topic{}, storeError(err)
	}
	return t, nil
}

// Topic reads a topic.
func (a *App) Topic(ctx context.Context, id string) (catalog.Topic, error) {
	if !ValidID(id) {
		return catalog.Topic{}, notFound("topic")
	}
	t, err := a.catalog.Topic(ctx, id)
	if err != nil {
		return catalog.Topic{}, lookupError("topic", err)
	}
	return t, nil
}

// ListTopics lists a page of topics.
func (a *App) ListTopics(ctx context.Context, p store.Page) ([]catalog.Topic, error) {
	rows, err := a.catalog.ListTopics(ctx, page(p))
	if err != nil {
		return nil, storeError(err)
	}
	return rows, nil
}

// UpdateTopic changes the fields in names of topic id.
func (a *App) UpdateTopic(ctx context.Context, id string, in TopicInput) (catalog.Topic, error) {
	if !ValidID(id) {
		return catalog.Topic{}, notFound("topic")
	}
	if err := CheckTopic(in, id); err != nil {
		return catalog.Topic{}, err
	}
	var t catalog.Topic
	var err error
	if in.Name != nil {
		t, err = a.catalog.RenameTopic(ctx, id, *in.Name, Now())
	} else {
		t, err = a.catalog.Topic(ctx, id)
	}
	if err != nil {
		return catalog.Topic{}, lookupError("topic", err)
	}
	return t, nil
}

// DeleteTopic deletes a topic and its subscriptions, then tells the
// deliverers each subscription is gone.
func (a *App) DeleteTopic(ctx context.Context, id string) error {
	if !ValidID(id) {
		return notFound("topic")
	}
	deleted, err := a.catalog.DeleteTopic(ctx, id)
	if err != nil {
		return lookupError("topic", err)
	}
	for _, sub := range deleted {
		a.view.deleted(ctx, sub)
	}
	return nil
}

// SubscriptionInput is a subscription create or change: its ID and the
// fields it names.
type SubscriptionInput struct {
	ID *string
	subscription.Patch
}

// CheckSubscription checks a subscription input. On create (pathID empty)
// id, topic_id, name and url are required; on a change of subscription
// pathID only the named fields are checked.
func CheckSubscription(in SubscriptionInput, pathID string) *Error {
	creating := pathID == ""
	switch {
	case in.ID == nil && creating:
		return InvalidField("id", "id is required")
	case in.ID != nil && !creating && *in.ID != pathID:
		return InvalidField("id", "id %q differs from the path's %q; an id cannot be changed", *in.ID, pathID)
	case in.ID != nil:
		if err := CheckID("id", *in.ID); err != nil {
			return err
		}
	}
	required := []struct {
		name  string
		value *string
	}{{"topic_id", in.TopicID}, {"name", in.Name}, {"url", in.URL}}
	for _, r := range required {
		if r.value == nil && creating {
			return InvalidField(r.name, "%s is required", r.name)
		}
	}
	if in.TopicID != nil {
		if err := CheckID("topic_id", *in.TopicID); err != nil {
			return err
		}
	}
	if in.Name != nil {
		if err := checkText("name", *in.Name, MaxNameBytes); err != nil {
			return err
		}
	}
	if in.URL != nil {
		if err := checkURL(*in.URL); err != nil {
			return err
		}
	}
	if in.SecretToken != nil {
		if err := checkText("secret_token", *in.SecretToken, maxSecretBytes); err != nil {
			return err
		}
	}
	if in.SigningSecret != nil {
		if err := checkSigningSecret(*in.SigningSecret); err != nil {
			return err
		}
	}
	for _, l := range in.Limits() {
		if l.Value != nil {
			if err := checkLimit(l.Limit, *l.Value); err != nil {
				return err
			}
		}
	}
	return nil
}

// CreateSubscription creates a subscription: omitted limits get their
// defaults, omitted secrets are generated.
func (a *App) CreateSubscription(ctx context.Context, in SubscriptionInput) (subscription.Subscription, error) {
	if err := CheckSubscription(in, ""); err != nil {
		return subscription.Subscription{}, err
	}
	sub := subscription.Subscription{ID: *in.ID, CreatedAt: Now()}
	in.Apply(&sub)
	sub = sub.WithDefaults()
	if in.SecretToken == nil {
		sub.SecretToken = newSecretToken()
	}
	if in.SigningSecret == nil {
		sub.SigningSecret = NewSigningSecret()
	}
	created, err := a.catalog.CreateSubscription(ctx, sub)
	if err != nil {
		switch {
		case errors.Is(err, store.ErrConflict):
			return subscription.Subscription{}, alreadyExists("subscription")
		case errors.Is(err, store.ErrParentMissing):
			return subscription.Subscription{}, unknownTopic(sub.TopicID)
		}
		return subscription.Subscription{}, storeError(err)
	}
	a.view.changed(ctx, events.KindSubscriptionCreated, created)
	return created, nil
}

// Subscription reads a subscription.
func (a *App) Subscription(ctx context.Context, id string) (subscription.Subscription, error) {
	if !ValidID(id) {
		return subscription.Subscription{}, notFound("subscription")
	}
	sub, err := a.catalog.Subscription(ctx, id)
	if err != nil {
		return subscription.Subscription{}, lookupError("subscription", err)
	}
	return sub, nil
}

// ListSubscriptions lists a page of subscriptions.
func (a *App) ListSubscriptions(ctx context.Context, f catalog.SubscriptionFilter, p store.Page) ([]subscription.Subscription, error) {
	rows, err := a.catalog.ListSubscriptions(ctx, f, page(p))
	if err != nil {
		return nil, storeError(err)
	}
	return rows, nil
}

// UpdateSubscription changes only the fields in names, under a row lock so
// concurrent changes of different fields both take effect.
func (a *App) UpdateSubscription(ctx context.Context, id string, in SubscriptionInput) (subscription.Subscription, error) {
	if !ValidID(id) {
		return subscription.Subscription{}, notFound("subscription")
	}
	if err := CheckSubscription(in, id); err != nil {
		return subscription.Subscription{}, err
	}
	sub, err := a.catalog.UpdateSubscription(ctx, id, in.Patch, Now())
	if err != nil {
		if errors.Is(err, store.ErrParentMissing) {
			return subscription.Subscription{}, unknownTopic(*in.TopicID)
		}
		return subscription.Subscription{}, lookupError("subscription", err)
	}
	if !in.Patch.Empty() {
		a.view.changed(ctx, events.KindSubscriptionUpdated, sub)
	}
	return sub, nil
}

// DeleteSubscription deletes a subscription and its deliveries, then tells
// the deliverers.
func (a *App) DeleteSubscription(ctx context.Context, id string) error {
	if !ValidID(id) {
		return notFound("subscription")
	}
	sub, err := a.catalog.DeleteSubscription(ctx, id)
	if err != nil {
		return lookupError("subscription", err)
	}
	a.view.deleted(ctx, sub)
	return nil
}

// The record (messages, deliveries, attempts) is read as the recorder has
// written it, a moment behind the publish.

// Message reads a message.
func (a *App) Message(ctx context.Context, id string) (record.Message, error) {
	if !ValidID(id) {
		return record.Message{}, notFound("message")
	}
	m, err := a.record.Message(ctx, id)
	if err != nil {
		return record.Message{}, lookupError("message", err)
	}
	return m, nil
}

// ListMessages lists a page of messages.
func (a *App) ListMessages(ctx context.Context, f record.MessageFilter, p store.Page) ([]record.Message, error) {
	rows, err := a.record.ListMessages(ctx, f, page(p))
	if err != nil {
		return nil, storeError(err)
	}
	return rows, nil
}

// DeleteMessage removes a message from the MESSAGES stream first (so no
// deliverer can read its body any more and its pending deliveries end
// message_deleted), then its row and its deliveries. A retry after a
// failure in between finds the stream message gone and finishes the rows.
func (a *App) DeleteMessage(ctx context.Context, id string) error {
	m, err := a.Message(ctx, id)
	if err != nil {
		return err
	}
	if err := a.pub.connected(); err != nil {
		return UnavailableError(err)
	}
	sctx, cancel := context.WithTimeout(ctx, a.pub.timeout)
	defer cancel()
	if err := a.deleteFromStream(sctx, m); err != nil {
		return UnavailableError(err)
	}
	if err := a.record.DeleteMessage(ctx, id, time.Now().UTC()); err != nil {
		return storeError(err)
	}
	return nil
}

// deleteFromStream deletes m's stream message, after checking that the
// sequence still holds m (a stream that was recreated numbers anew).
func (a *App) deleteFromStream(ctx context.Context, m record.Message) error {
	stream, err := a.pub.js.Stream(ctx, events.StreamMessages)
	if err != nil {
		return fmt.Errorf("opening stream %s: %w", events.StreamMessages, err)
	}
	seq := uint64(m.StreamSequence)
	raw, err := stream.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil // expired or deleted already
	} else if err != nil {
		return fmt.Errorf("reading message %s at sequence %d: %w", m.ID, seq, err)
	}
	if raw.Header.Get(events.HeaderMessageID) != m.ID {
		return nil
	}
	if err := stream.DeleteMsg(ctx, seq); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		return fmt.Errorf("deleting message %s at sequence %d: %w", m.ID, seq, err)
	}
	return nil
}

// Delivery reads a delivery.
func (a *App) Delivery(ctx context.Context, id string) (record.Delivery, error) {
	if !ValidID(id) {
		return record.Delivery{}, notFound("delivery")
	}
	d, err := a.record.Delivery(ctx, id)
	if err != nil {
		return record.Delivery{}, lookupError("delivery", err)
	}
	return d, nil
}

// ListDeliveries lists a page of deliveries.
func (a *App) ListDeliveries(ctx context.Context, f record.DeliveryFilter, p store.Page) ([]record.Delivery, error) {
	if f.Status != nil {
		switch *f.Status {
		case events.StatusPending, events.StatusCompleted, events.StatusFailed:
		default:
			return nil, InvalidField("status", "status must be pending, completed or failed")
		}
	}
	rows, err := a.record.ListDeliveries(ctx, f, page(p))
	if err != nil {
		return nil, storeError(err)
	}
	return rows, nil
}

// Attempt reads a delivery attempt.
func (a *App) Attempt(ctx context.Context, id string) (record.Attempt, error) {
	if !ValidID(id) {
		return record.Attempt{}, notFound("delivery_attempt")
	}
	at, err := a.record.Attempt(ctx, id)
	if err != nil {
		return record.Attempt{}, lookupError("delivery_attempt", err)
	}
	return at, nil
}

// ListAttempts lists a page of delivery attempts.
func (a *App) ListAttempts(ctx context.Context, f record.AttemptFilter, p store.Page) ([]record.Attempt, error) {
	rows, err := a.record.ListAttempts(ctx, f, page(p))
	if err != nil {
		return nil, storeError(err)
	}
	return rows, nil
}

// PruneTombstones forgets deleted messages older than before: no event
// about them can arrive any more.
func (a *App) PruneTombstones(ctx context.Context, before time.Time) (int64, error) {
	return a.record.PruneTombstones(ctx, before)
}
