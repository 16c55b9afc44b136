package deliverer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/hammer-webhooks/hammer/platform/events"
)

// subscriptionState is what the live view knows of a subscription.
type subscriptionState int

const (
	subscriptionFound subscriptionState = iota
	// subscriptionDeleted: the bucket holds a delete marker for it.
	subscriptionDeleted
	// subscriptionUnknown: the bucket has never held it. The API writes the
	// bucket just after its commit, so a delivery can (rarely) arrive first.
	subscriptionUnknown
)

// subscriptions is the deliverer's live view of hammer_subscriptions: a map
// kept current by a watch, so that a changed URL, secret or limit applies to
// the next attempt, with a direct read of the bucket's stream on a miss.
type subscriptions struct {
	log    *zap.Logger
	kv     jetstream.KeyValue
	stream jetstream.Stream // the bucket's stream, for reads that see delete markers

	mu     sync.RWMutex
	byKey  map[string]events.Subscription
	loaded bool // the watch has delivered every initial value
}

func newSubscriptions(ctx context.Context, js jetstream.JetStream, log *zap.Logger) (*subscriptions, error) {
	kv, err := js.KeyValue(ctx, events.BucketSubscriptions)
	if err != nil {
		return nil, fmt.Errorf("opening bucket %s: %w", events.BucketSubscriptions, err)
	}
	stream, err := js.Stream(ctx, "KV_"+events.BucketSubscriptions)
	if err != nil {
		return nil, fmt.Errorf("opening the stream of bucket %s: %w", events.BucketSubscriptions, err)
	}
	return &subscriptions{log: log, kv: kv, stream: stream, byKey: map[string]events.Subscription{}}, nil
}

// run keeps the map current until ctx is cancelled, watching again if a
// watch ends early.
func (s *subscriptions) run(ctx context.Context) {
	for ctx.Err() == nil {
		if err := s.watch(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("watching subscriptions; retrying", zap.Error(err))
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

func (s *subscriptions) watch(ctx context.Context) error {
	w, err := s.kv.WatchAll(ctx)
	if err != nil {
		return fmt.Errorf("watching bucket %s: %w", events.BucketSubscriptions, err)
	}
	defer func() { _ = w.Stop() }()
	// The initial values go to a fresh map that replaces the old one once
	// complete, so that a key deleted while no watch ran does not linger.
	initial := map[string]events.Subscription{}
	loading := true
	for {
		select {
		case <-ctx.Done():
			return nil
		case e, ok := <-w.Updates():
			if !ok {
				return errors.New("watch closed")
			}
			if e == nil {
				s.mu.Lock()
				s.byKey, s.loaded = initial, true
				s.mu.Unlock()
				loading = false
				s.log.Info("subscriptions loaded", zap.Int("count", len(initial)))
				continue
			}
			if loading {
				s.apply(initial, e)
				continue
			}
			s.mu.Lock()
			s.apply(s.byKey, e)
			s.mu.Unlock()
		}
	}
}

func (s *subscriptions) apply(m map[string]events.Subscription, e jetstream.KeyValueEntry) {
	if e.Operation() != jetstream.KeyValuePut {
		delete(m, e.Key())
		return
	}
	var sub events.Subscription
	if err := json.Unmarshal(e.Value(), &sub); err != nil {
		s.log.Error("unreadable subscription in bucket", zap.String("key", e.Key()), zap.Error(err))
		delete(m, e.Key())
		return
	}
	m[e.Key()] = sub
}

// get returns the subscription as it is now. A miss in the map (not loaded
// yet, or written a moment ago) reads the bucket's latest entry for the key.
func (s *subscriptions) get(ctx context.Context, id string) (events.Subscription, subscriptionState, error) {
	key := events.EncodeID(id)
	s.mu.RLock()
	sub, ok := s.byKey[key]
	s.mu.RUnlock()
	if ok {
		return sub, subscriptionFound, nil
	}
	msg, err := s.stream.GetLastMsgForSubject(ctx, "$KV."+events.BucketSubscriptions+"."+key)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return events.Subscription{}, subscriptionUnknown, nil
	}
	if err != nil {
		return events.Subscription{}, 0, fmt.Errorf("reading subscription %s: %w", id, err)
	}
	if op := msg.Header.Get("KV-Operation"); op != "" || len(msg.Data) == 0 {
		return events.Subscription{}, subscriptionDeleted, nil
	}
	if err := json.Unmarshal(msg.Data, &sub); err != nil {
		return events.Subscription{}, 0, fmt.Errorf("reading subscription %s: %w", id, err)
	}
	return sub, subscriptionFound, nil
}
