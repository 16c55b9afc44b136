// Package topology creates hammer's streams, durable consumers and key-value
// buckets. Every service applies it at start, whichever starts first, and
// applying it again changes nothing.
package topology

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	neturl "net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/hammer-webhooks/hammer/platform/events"
)

// Durable consumer names.
const (
	ConsumerFanout             = "fanout"
	ConsumerDeliverer          = "deliverer"
	ConsumerRecorderMessages   = "recorder-messages"
	ConsumerRecorderDeliveries = "recorder-deliveries"
	ConsumerRecorderEvents     = "recorder-events"
)

// Config sizes the topology.
type Config struct {
	// Replicas of every stream and bucket: 1 on a single server, 3 on a cluster.
	Replicas int
	// MaxAge bounds how long the streams keep anything, delivered or not.
	MaxAge time.Duration
	// MaxBytes bounds each stream's size; -1 is unlimited. A full stream
	// refuses new publishes rather than dropping accepted ones.
	MaxBytes int64
	// DelivererAckWait is how long a delivery event may stay unacknowledged
	// before JetStream hands it to another deliverer. The deliverer reports
	// progress during long requests, so it only needs to exceed the gap
	// between progress reports and a crashed deliverer's pause. Only the
	// deliverer, which reads HAMMER_DELIVERY_ACK_WAIT, sets it; zero keeps
	// what the consumer has (DefaultDelivererAckWait for a new one), so that
	// another service starting never resets the deliverer's choice.
	DelivererAckWait time.Duration
}

// DefaultConfig is the topology of a single server.
func DefaultConfig() Config {
	return Config{Replicas: 1, MaxAge: 7 * 24 * time.Hour, MaxBytes: -1}
}

// DefaultDelivererAckWait is the deliverer consumer's AckWait when no
// deliverer has set one yet.
const DefaultDelivererAckWait = time.Minute

// IdempotencyWindow is how long an Idempotency-Key is remembered.
const IdempotencyWindow = 24 * time.Hour

// DuplicateWindow is JetStream's deduplication window on Nats-Msg-Id.
const DuplicateWindow = 2 * time.Minute

// Streams returns the configuration of the three streams.
func Streams(c Config) []jetstream.StreamConfig {
	stream := func(name, subject, description string) jetstream.StreamConfig {
		return jetstream.StreamConfig{
			Name:        name,
			Description: description,
			Subjects:    []string{subject},
			Retention:   jetstream.LimitsPolicy,
			Storage:     jetstream.FileStorage,
			Replicas:    c.Replicas,
			MaxAge:      c.MaxAge,
			MaxBytes:    c.MaxBytes,
			Discard:     jetstream.DiscardNew,
			Duplicates:  DuplicateWindow,
			AllowDirect: true,
		}
	}
	return []jetstream.StreamConfig{
		stream(events.StreamMessages, events.MessagesSubjects, "hammer: accepted messages"),
		stream(events.StreamDeliveries, events.DeliveriesSubjects, "hammer: delivery attempts to make"),
		stream(events.StreamEvents, events.EventsSubjects, "hammer: attempts, outcomes and subscription changes"),
	}
}

// Consumers returns every durable consumer hammer uses, by stream.
//
// The deliverer's consumer follows DESIGN "Retries": no BackOff (it would add
// to NakWithDelay), unlimited MaxDeliver (the deliverer counts attempts
// itself) and a MaxAckPending large enough that held retries, which stay
// ack-pending while they wait, never starve fresh deliveries.
func Consumers(c Config) map[string][]jetstream.ConsumerConfig {
	durable := func(name string, ackWait time.Duration, maxAckPending int) jetstream.ConsumerConfig {
		return jetstream.ConsumerConfig{
			Durable:       name,
			AckPolicy:     jetstream.AckExplicitPolicy,
			DeliverPolicy: jetstream.DeliverAllPolicy,
			AckWait:       ackWait,
			MaxDeliver:    -1,
			MaxAckPending: maxAckPending,
			MaxWaiting:    512,
			Replicas:      c.Replicas,
		}
	}
	return map[string][]jetstream.ConsumerConfig{
		events.StreamMessages: {
			durable(ConsumerFanout, 30*time.Second, 10_000),
			durable(ConsumerRecorderMessages, 30*time.Second, 20_000),
		},
		events.StreamDeliveries: {
			durable(ConsumerDeliverer, cmp.Or(c.DelivererAckWait, DefaultDelivererAckWait), 1_000_000),
			durable(ConsumerRecorderDeliveries, 30*time.Second, 20_000),
		},
		events.StreamEvents: {
			durable(ConsumerRecorderEvents, 30*time.Second, 20_000),
		},
	}
}

// Buckets returns the key-value buckets.
func Buckets(c Config) []jetstream.KeyValueConfig {
	return []jetstream.KeyValueConfig{
		{
			Bucket:      events.BucketSubscriptions,
			Description: "hammer: live view of subscriptions",
			History:     1,
			Storage:     jetstream.FileStorage,
			Replicas:    c.Replicas,
		},
		{
			Bucket:      events.BucketIdempotency,
			Description: "hammer: Idempotency-Key claims",
			History:     1,
			TTL:         IdempotencyWindow,
			Storage:     jetstream.FileStorage,
			Replicas:    c.Replicas,
		},
	}
}

// ensureMu serializes Ensure within a process: hammer dev starts four
// services at once, and concurrent stream updates and consumer creations on
// one server are best avoided.
var ensureMu sync.Mutex

// Ensure creates what is missing and updates what differs from c, leaving
// streams and consumers that already match untouched (every service applies
// the topology at start, so the common case writes nothing). Where NATS
// permissions allow a service only to create and read (deploy/nats: only
// the api may update streams and create or update buckets), a step it may
// not take goes unanswered and is asked again until the api has done it.
func Ensure(ctx context.Context, js jetstream.JetStream, c Config) error {
	if c.Replicas < 1 {
		return fmt.Errorf("topology: replicas must be at least 1, got %d", c.Replicas)
	}
	ensureMu.Lock()
	defer ensureMu.Unlock()
	consumers := Consumers(c)
	for _, sc := range Streams(c) {
		var stream jetstream.Stream
		err := step(ctx, func(ctx context.Context) (err error) {
			stream, err = ensureStream(ctx, js, sc)
			return err
		})
		if err != nil {
			return fmt.Errorf("ensuring stream %s: %w", sc.Name, err)
		}
		for _, cc := range consumers[sc.Name] {
			keepAckWait := cc.Durable == ConsumerDeliverer && c.DelivererAckWait == 0
			err := step(ctx, func(ctx context.Context) error { return ensureConsumer(ctx, stream, cc, keepAckWait) })
			if err != nil {
				return fmt.Errorf("ensuring consumer %s on %s: %w", cc.Durable, sc.Name, err)
			}
		}
	}
	for _, kc := range Buckets(c) {
		if err := step(ctx, func(ctx context.Context) error { return ensureBucket(ctx, js, kc) }); err != nil {
			return fmt.Errorf("ensuring bucket %s: %w", kc.Bucket, err)
		}
	}
	return nil
}

func ensureBucket(ctx context.Context, js jetstream.JetStream, want jetstream.KeyValueConfig) error {
	kv, err := js.KeyValue(ctx, want.Bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		// Create, not CreateOrUpdate: see ensureStream.
		_, err = js.CreateKeyValue(ctx, want)
		return err
	}
	if err != nil {
		return err
	}
	st, err := kv.Status(ctx)
	if err != nil {
		return err
	}
	replicas := want.Replicas
	if bs, ok := st.(*jetstream.KeyValueBucketStatus); ok {
		replicas = bs.StreamInfo().Config.Replicas
	}
	if st.TTL() == want.TTL && st.History() == int64(want.History) && replicas == want.Replicas {
		return nil
	}
	_, err = js.CreateOrUpdateKeyValue(ctx, want)
	return err
}

// stepTimeout bounds one step of Ensure. A JetStream cluster that is still
// electing leaders may leave a request unanswered; a short bound lets the
// step be asked again instead of waiting out the caller's whole deadline.
const stepTimeout = 5 * time.Second

// step runs one idempotent step of Ensure, asking again after a timeout
// until ctx ends.
func step(ctx context.Context, fn func(context.Context) error) error {
	for {
		sctx, cancel := context.WithTimeout(ctx, stepTimeout)
		err := fn(sctx)
		cancel()
		if err == nil || ctx.Err() != nil || !errors.Is(err, context.DeadlineExceeded) {
			return err
		}
	}
}

func ensureStream(ctx context.Context, js jetstream.JetStream, want jetstream.StreamConfig) (jetstream.Stream, error) {
	stream, err := js.Stream(ctx, want.Name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		// Create, not CreateOrUpdate (which asks to update first): the
		// shipped NATS permissions let every service create a missing
		// stream but only the api update one (deploy/nats/README.md), since
		// an update could add sources or republishing that copy another
		// stream, e.g. the subscriptions bucket, somewhere readable.
		return js.CreateStream(ctx, want)
	}
	if err != nil {
		return nil, err
	}
	have := stream.CachedInfo().Config
	if slices.Equal(have.Subjects, want.Subjects) && have.Retention == want.Retention &&
		have.Storage == want.Storage && have.Replicas == want.Replicas && have.MaxAge == want.MaxAge &&
		have.MaxBytes == want.MaxBytes && have.Discard == want.Discard &&
		have.Duplicates == want.Duplicates && have.AllowDirect == want.AllowDirect &&
		have.Description == want.Description {
		return stream, nil
	}
	return js.CreateOrUpdateStream(ctx, want)
}

// ensureConsumer creates or updates a durable consumer; keepAckWait leaves
// an existing consumer's AckWait as it is.
func ensureConsumer(ctx context.Context, stream jetstream.Stream, want jetstream.ConsumerConfig, keepAckWait bool) error {
	consumer, err := stream.Consumer(ctx, want.Durable)
	if err == nil {
		have := consumer.CachedInfo().Config
		if keepAckWait {
			want.AckWait = have.AckWait
		}
		if have.AckPolicy == want.AckPolicy && have.DeliverPolicy == want.DeliverPolicy &&
			have.AckWait == want.AckWait && have.MaxDeliver == want.MaxDeliver &&
			have.MaxAckPending == want.MaxAckPending && have.MaxWaiting == want.MaxWaiting &&
			len(have.BackOff) == 0 && have.FilterSubject == want.FilterSubject && have.Replicas == want.Replicas {
			return nil
		}
	} else if !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return err
	}
	_, err = stream.CreateOrUpdateConsumer(ctx, want)
	return err
}

// Connect dials NATS for a long-running service: it retries the first
// connection, reconnects forever and logs every change of state.
func Connect(url, name string, log *zap.Logger, extra ...nats.Option) (*nats.Conn, error) {
	if url == "" {
		return nil, errors.New("connecting to NATS: no URL (set HAMMER_NATS_URL)")
	}
	opts := append([]nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		// No buffering while disconnected: a publish then fails at once
		// instead of being sent after the caller was told it failed (the
		// API answers 503 and must not accept the message later).
		nats.ReconnectBufSize(-1),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			log.Warn("nats disconnected", zap.Error(err))
		}),
		nats.ReconnectHandler(func(c *nats.Conn) {
			log.Info("nats reconnected", zap.String("url", c.ConnectedUrlRedacted()))
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			fields := []zap.Field{zap.Error(err)}
			if sub != nil {
				fields = append(fields, zap.String("subject", sub.Subject))
			}
			log.Warn("nats error", fields...)
		}),
	}, extra...)
	// One attempt first: a server that refuses the credentials is a
	// mistake to report at once, not a reason to wait forever.
	nc, err := nats.Connect(url, opts...)
	if err == nil {
		return nc, nil
	}
	if authError(err) {
		return nil, fmt.Errorf("connecting to NATS at %s: %w: check HAMMER_NATS_USER/HAMMER_NATS_PASSWORD, HAMMER_NATS_TOKEN, HAMMER_NATS_CREDS or HAMMER_NATS_NKEY_SEED", redactURLs(url), err)
	}
	// Not there yet (hammer may start before NATS): keep trying.
	nc, err = nats.Connect(url, append(opts, nats.RetryOnFailedConnect(true))...)
	if err != nil {
		return nil, fmt.Errorf("connecting to NATS at %s: %w", redactURLs(url), err)
	}
	return nc, nil
}

func authError(err error) bool {
	return errors.Is(err, nats.ErrAuthorization) || errors.Is(err, nats.ErrAuthExpired) ||
		errors.Is(err, nats.ErrAuthRevoked) || errors.Is(err, nats.ErrAccountAuthExpired) ||
		strings.Contains(strings.ToLower(err.Error()), "authorization violation")
}

// redactURLs hides the passwords of a comma-separated list of URLs.
func redactURLs(list string) string {
	parts := strings.Split(list, ",")
	for i, p := range parts {
		u, err := neturl.Parse(strings.TrimSpace(p))
		switch {
		case err != nil && strings.Contains(p, "@"):
			parts[i] = "(unparsable URL)"
		case err == nil:
			parts[i] = u.Redacted()
		}
	}
	return strings.Join(parts, ",")
}

// EnsureRetrying applies the topology at a service's start, asking again
// with a growing pause while NATS is away or a JetStream cluster is still
// electing leaders, and returns ctx's error only once ctx ends.
func EnsureRetrying(ctx context.Context, js jetstream.JetStream, c Config, log *zap.Logger) error {
	for wait := 250 * time.Millisecond; ; wait = min(2*wait, 10*time.Second) {
		err := Ensure(ctx, js, c)
		if err == nil || ctx.Err() != nil {
			return ctx.Err()
		}
		log.Warn("applying topology; will retry", zap.Error(err), zap.Duration("retry_in", wait))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
}
