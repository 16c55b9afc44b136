package app

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/hammer-webhooks/hammer/platform/events"
	"github.com/hammer-webhooks/hammer/platform/subscription"
	"github.com/hammer-webhooks/hammer/sql/store"
	"github.com/hammer-webhooks/hammer/sql/store/catalog"
)

// view keeps the subscriptions bucket (DESIGN "Retries") in step with
// Postgres and tells EVENTS about every change.
//
// Every write goes the same way, whoever asks: read the row as committed now
// and write that, never the value a request happened to hold. Two API
// replicas changing one subscription may interleave, so a put only replaces
// an older updated_at, and after a put the row is read again in case a
// delete committed meanwhile. Whatever fails (NATS away) is remembered and
// retried by Run; the rebuild at start heals the rest.
type view struct {
	nc      *nats.Conn
	js      jetstream.JetStream
	catalog *catalog.Catalog
	log     *zap.Logger
	timeout time.Duration
	errors  prometheus.Counter
	page    int32 // subscriptions read per query by rebuild

	mu     sync.Mutex
	kv     jetstream.KeyValue
	dirty  map[string]struct{} // subscription IDs to sync again
	outbox []*nats.Msg         // events to publish again
}

// maxOutbox bounds the events kept for retry while NATS is away; the bucket
// itself needs no bound (it is rebuilt), the event log is best effort beyond.
const maxOutbox = 10_000

const rebuildPage = 500

func (v *view) bucket(ctx context.Context) (jetstream.KeyValue, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.kv != nil {
		return v.kv, nil
	}
	kv, err := v.js.KeyValue(ctx, events.BucketSubscriptions)
	if err != nil {
		return nil, fmt.Errorf("opening bucket %s: %w", events.BucketSubscriptions, err)
	}
	v.kv = kv
	return kv, nil
}

// detached gives a post-commit step its own deadline: the change is made,
// so the client hanging up must not stop the deliverers from learning of it.
func (v *view) detached(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), v.timeout)
}

// changed records that sub was created or updated (kind) and committed.
func (v *view) changed(ctx context.Context, kind string, sub subscription.Subscription) {
	ctx, cancel := v.detached(ctx)
	defer cancel()
	v.syncOrRemember(ctx, sub.ID)
	v.publish(ctx, changeEvent(kind, sub, sub.UpdatedAt))
}

// deleted records that sub was deleted and committed.
func (v *view) deleted(ctx context.Context, sub subscription.Subscription) {
	ctx, cancel := v.detached(ctx)
	defer cancel()
	v.syncOrRemember(ctx, sub.ID)
	v.publish(ctx, changeEvent(events.KindSubscriptionDeleted, sub, Now()))
}

func (v *view) syncOrRemember(ctx context.Context, id string) {
	if err := v.sync(ctx, id); err != nil {
		v.errors.Inc()
		v.log.Warn("subscription view not updated; will retry", zap.String("subscription_id", id), zap.Error(err))
		v.mu.Lock()
		v.dirty[id] = struct{}{}
		v.mu.Unlock()
	}
}

// changeEvent builds the subscription.* event. Its Nats-Msg-Id names the
// change, so a retried publish is dropped as a duplicate.
func changeEvent(kind string, sub subscription.Subscription, at time.Time) *nats.Msg {
	payload := &events.SubscriptionChanged{Subscription: subscriptionView(sub).Info(), At: at.UTC()}
	data, _ := events.Encode(payload) // a plain struct always marshals
	msg := nats.NewMsg(events.EventSubject(kind, sub.ID))
	msg.Data = data
	msg.Header.Set(events.HeaderMsgID, kind+"-"+events.EncodeID(sub.ID)+"-"+strconv.FormatInt(at.UnixMicro(), 10))
	return msg
}

func (v *view) publish(ctx context.Context, msg *nats.Msg) {
	err := v.connected()
	if err == nil {
		_, err = v.js.PublishMsg(ctx, msg, jetstream.WithExpectStream(events.StreamEvents))
	}
	if err != nil {
		v.errors.Inc()
		v.log.Warn("subscription event not published; will retry", zap.String("subject", msg.Subject), zap.Error(err))
		v.mu.Lock()
		if len(v.outbox) < maxOutbox {
			v.outbox = append(v.outbox, msg)
		}
		v.mu.Unlock()
	}
}

// connected fails at once when NATS is away, instead of letting a publish
// wait in the reconnect buffer.
func (v *view) connected() error {
	if st := v.nc.Status(); st != nats.CONNECTED {
		return fmt.Errorf("nats is %s", st)
	}
	return nil
}

// sync makes the bucket's entry for id what Postgres holds now.
func (v *view) sync(ctx context.Context, id string) error {
	if err := v.connected(); err != nil {
		return err
	}
	kv, err := v.bucket(ctx)
	if err != nil {
		return err
	}
	key := events.EncodeID(id)
	sub, err := v.catalog.Subscription(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return v.remove(ctx, kv, key)
	} else if err != nil {
		return fmt.Errorf("reading subscription %s: %w", id, err)
	}
	if err := v.put(ctx, kv, subscriptionView(sub)); err != nil {
		return err
	}
	// A delete may have committed (and removed the key) between the read
	// and the put: look again.
	if _, err = v.catalog.Subscription(ctx, id); errors.Is(err, store.ErrNotFound) {
		return v.remove(ctx, kv, key)
	} else if err != nil {
		return fmt.Errorf("reading subscription %s: %w", id, err)
	}
	return nil
}

func (v *view) remove(ctx context.Context, kv jetstream.KeyValue, key string) error {
	if err := kv.Delete(ctx, key); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("deleting %s from %s: %w", key, events.BucketSubscriptions, err)
	}
	return nil
}

// put writes sub unless the bucket holds a newer version, with
// compare-and-set so a concurrent writer is never overwritten blindly.
func (v *view) put(ctx context.Context, kv jetstream.KeyValue, sub events.Subscription) error {
	key := events.EncodeID(sub.ID)
	val, err := json.Marshal(sub)
	if err != nil {
		return fmt.Errorf("encoding subscription %s: %w", sub.ID, err)
	}
	for range 10 {
		entry, err := kv.Get(ctx, key)
		switch {
		case err == nil:
			var cur events.Subscription
			if json.Unmarshal(entry.Value(), &cur) == nil && cur.UpdatedAt.After(sub.UpdatedAt) {
				return nil
			}
			if bytes.Equal(entry.Value(), val) {
				return nil
			}
			_, err = kv.Update(ctx, key, val, entry.Revision())
		case errors.Is(err, jetstream.ErrKeyNotFound), errors.Is(err, jetstream.ErrKeyDeleted):
			_, err = kv.Create(ctx, key, val)
		}
		switch {
		case err == nil:
			return nil
		case errors.Is(err, jetstream.ErrKeyRevisionMismatch), errors.Is(err, jetstream.ErrKeyExists):
			continue // someone wrote in between: look again
		default:
			return fmt.Errorf("writing %s to %s: %w", sub.ID, events.BucketSubscriptions, err)
		}
	}
	return fmt.Errorf("writing %s to %s: too many concurrent writers", sub.ID, events.BucketSubscriptions)
}

// rebuild makes the bucket match Postgres: every subscription is written
// and every key of a subscription Postgres no longer has is deleted.
func (v *view) rebuild(ctx context.Context) (int, error) {
	kv, err := v.bucket(ctx)
	if err != nil {
		return 0, err
	}
	seen := map[string]bool{}
	after := ""
	for {
		page, err := v.catalog.SubscriptionsAfter(ctx, after, v.page)
		if err != nil {
			return 0, err
		}
		for _, sub := range page {
			if err := v.put(ctx, kv, subscriptionView(sub)); err != nil {
				return 0, err
			}
			seen[events.EncodeID(sub.ID)] = true
		}
		if len(page) < int(v.page) {
			break
		}
		after = page[len(page)-1].ID
	}
	keys, err := kv.ListKeys(ctx)
	if err != nil {
		return 0, fmt.Errorf("listing keys of %s: %w", events.BucketSubscriptions, err)
	}
	var stale []string
	for key := range keys.Keys() {
		if !seen[key] {
			stale = append(stale, key)
		}
	}
	for _, key := range stale {
		id, err := events.DecodeID(key)
		if err != nil {
			err = v.remove(ctx, kv, key) // not a key hammer writes
		} else {
			// It may have been created since the listing: sync, don't delete.
			err = v.sync(ctx, id)
		}
		if err != nil {
			return 0, err
		}
	}
	return len(seen), nil
}

// retry syncs what failed before and publishes the events that did not go.
func (v *view) retry(ctx context.Context) {
	if v.connected() != nil {
		return
	}
	v.mu.Lock()
	dirty, outbox := v.dirty, v.outbox
	v.dirty, v.outbox = map[string]struct{}{}, nil
	v.mu.Unlock()
	for id := range dirty {
		if err := v.sync(ctx, id); err != nil {
			v.mu.Lock()
			v.dirty[id] = struct{}{}
			v.mu.Unlock()
		}
	}
	for i, msg := range outbox {
		if _, err := v.js.PublishMsg(ctx, msg, jetstream.WithExpectStream(events.StreamEvents)); err != nil {
			v.mu.Lock()
			v.outbox = append(outbox[i:], v.outbox...)
			v.mu.Unlock()
			return
		}
	}
}

// Rebuild makes the subscriptions bucket match Postgres (the API does it at
// start) and returns how many subscriptions it holds.
func (a *App) Rebuild(ctx context.Context) (int, error) { return a.view.rebuild(ctx) }

// Retry writes again the bucket entries and publishes again the events that
// failed before (NATS was away).
func (a *App) Retry(ctx context.Context) { a.view.retry(ctx) }

// Pending reports how much is waiting for Retry: subscriptions whose bucket
// entry is stale, and events not yet published.
func (a *App) Pending() (dirty, outbox int) { return a.view.pending() }

// SetRebuildPage sets how many subscriptions Rebuild reads per query (tests
// walk several pages with a small one).
func (a *App) SetRebuildPage(n int32) { a.view.page = n }

func (v *view) pending() (dirty, outbox int) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return len(v.dirty), len(v.outbox)
}

// subscriptionView is the subscription as the deliverers see it in the
// key-value bucket.
func subscriptionView(s subscription.Subscription) events.Subscription {
	return events.Subscription(s)
}
