package deploy

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hammer-webhooks/hammer/platform/events"
	"github.com/hammer-webhooks/hammer/platform/topology"
)

// natsConfig is the NATS configuration docker-compose.yml mounts; it
// includes hammer-auth.conf, the users and permissions.
const natsConfig = "deploy/nats/nats.conf"

// natsUsers are the users of hammer-auth.conf and the environment variable
// each one's password comes from.
var natsUsers = map[string]string{
	"api":           "HAMMER_NATS_API_PASSWORD",
	"fanout":        "HAMMER_NATS_FANOUT_PASSWORD",
	"deliverer":     "HAMMER_NATS_DELIVERER_PASSWORD",
	"recorder":      "HAMMER_NATS_RECORDER_PASSWORD",
	"events-reader": "HAMMER_NATS_EVENTS_READER_PASSWORD",
}

// readerInbox is the inbox prefix the events-reader must connect with.
const readerInbox = "_INBOX_events_reader"

// startAuthNATS runs the shipped NATS configuration in a real nats-server,
// changed only where a test must: a random loopback port, no monitoring
// port, storage in a temporary directory. Passwords come from the
// environment, as in the containers.
func startAuthNATS(t *testing.T) string {
	t.Helper()
	for user, env := range natsUsers {
		t.Setenv(env, "pw-"+user)
	}
	opts, err := server.ProcessConfigFile(filepath.Join(root, natsConfig))
	if err != nil {
		t.Fatalf("loading %s: %v", natsConfig, err)
	}
	opts.Host, opts.Port = "127.0.0.1", -1
	opts.HTTPPort = 0
	opts.StoreDir = t.TempDir()
	opts.NoLog, opts.NoSigs = true, true
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatalf("starting nats-server with %s: %v", natsConfig, err)
	}
	go s.Start()
	t.Cleanup(s.Shutdown)
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server did not start")
	}
	return s.ClientURL()
}

// natsUser is one connection made as one user, with the permission errors
// the server reported to it.
type natsUser struct {
	name string
	nc   *nats.Conn
	js   jetstream.JetStream

	mu         sync.Mutex
	violations []string
}

func connectAs(t *testing.T, url, user string, opts ...nats.Option) *natsUser {
	t.Helper()
	u := &natsUser{name: user}
	opts = append(opts, nats.UserInfo(user, "pw-"+user), nats.Name(user),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			if errors.Is(err, nats.ErrPermissionViolation) {
				u.mu.Lock()
				u.violations = append(u.violations, err.Error())
				u.mu.Unlock()
			}
		}))
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		t.Fatalf("connecting as %s: %v", user, err)
	}
	t.Cleanup(nc.Close)
	u.nc = nc
	u.js, err = jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// ok runs a step that user must be allowed to take.
func (u *natsUser) ok(t *testing.T, what string, fn func(ctx context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := fn(ctx)
	u.mu.Lock()
	defer u.mu.Unlock()
	if err != nil {
		t.Fatalf("%s: %s: %v (permission violations: %v)", u.name, what, err, u.violations)
	}
	if len(u.violations) > 0 {
		t.Fatalf("%s: %s: permission violations: %v", u.name, what, u.violations)
	}
}

// denied runs a step that user must not be allowed to take: it fails, and
// the server says that subject was refused.
func (u *natsUser) denied(t *testing.T, what, subject string, fn func(ctx context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if err := fn(ctx); err == nil {
		t.Fatalf("%s: %s: allowed, want refused", u.name, what)
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		u.mu.Lock()
		for i, v := range u.violations {
			if strings.Contains(v, subject) {
				u.violations = append(u.violations[:i], u.violations[i+1:]...)
				u.mu.Unlock()
				return
			}
		}
		seen := append([]string(nil), u.violations...)
		u.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s: no permission violation for %q (saw %v)", u.name, what, subject, seen)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// fetchOne pulls one message from a durable consumer and acks it.
func fetchOne(ctx context.Context, js jetstream.JetStream, stream, consumer string) (jetstream.Msg, error) {
	c, err := js.Consumer(ctx, stream, consumer)
	if err != nil {
		return nil, err
	}
	batch, err := c.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		return nil, err
	}
	for msg := range batch.Messages() {
		return msg, msg.DoubleAck(ctx)
	}
	if batch.Error() != nil {
		return nil, batch.Error()
	}
	return nil, errors.New("no message")
}

const subscriptionID = "sub.one+1"

// TestNATSPermissions runs each service's NATS operations as its user
// against the shipped configuration: what it needs works, and what belongs
// to another service is refused.
func TestNATSPermissions(t *testing.T) {
	url := startAuthNATS(t)
	cfg := topology.DefaultConfig()

	// Nobody gets in without a password, or with a wrong one.
	if nc, err := nats.Connect(url); err == nil {
		nc.Close()
		t.Fatal("an anonymous client connected")
	}
	if nc, err := nats.Connect(url, nats.UserInfo("api", "wrong")); err == nil {
		nc.Close()
		t.Fatal("a wrong password connected")
	}

	api := connectAs(t, url, "api")
	fanout := connectAs(t, url, "fanout")
	deliverer := connectAs(t, url, "deliverer")
	recorder := connectAs(t, url, "recorder")
	reader := connectAs(t, url, "events-reader", nats.CustomInboxPrefix(readerInbox))

	// The api: topology, both buckets, messages, subscription events,
	// reading and deleting a message.
	api.ok(t, "topology", func(ctx context.Context) error { return topology.Ensure(ctx, api.js, cfg) })
	var seq uint64
	api.ok(t, "publish a message", func(ctx context.Context) error {
		msg := nats.NewMsg(events.MessageSubject("topic.a"))
		msg.Data = []byte("hello")
		msg.Header.Set(events.HeaderMessageID, "m1")
		ack, err := api.js.PublishMsg(ctx, msg, jetstream.WithExpectStream(events.StreamMessages))
		if err == nil {
			seq = ack.Sequence
		}
		return err
	})
	api.ok(t, "write the subscriptions bucket", func(ctx context.Context) error {
		kv, err := api.js.KeyValue(ctx, events.BucketSubscriptions)
		if err != nil {
			return err
		}
		if _, err := kv.Create(ctx, events.EncodeID(subscriptionID), []byte(`{"id":"sub.one+1","signing_secret":"whsec_x"}`)); err != nil {
			return err
		}
		if _, err := kv.Get(ctx, events.EncodeID(subscriptionID)); err != nil {
			return err
		}
		keys, err := kv.ListKeys(ctx)
		if err != nil {
			return err
		}
		n := 0
		for range keys.Keys() {
			n++
		}
		if n != 1 {
			return errors.New("ListKeys did not list the key")
		}
		return nil
	})
	api.ok(t, "claim an idempotency key", func(ctx context.Context) error {
		kv, err := api.js.KeyValue(ctx, events.BucketIdempotency)
		if err != nil {
			return err
		}
		rev, err := kv.Create(ctx, "key1", []byte("m1"))
		if err != nil {
			return err
		}
		if _, err := kv.Get(ctx, "key1"); err != nil {
			return err
		}
		_, err = kv.Update(ctx, "key1", []byte("m1 done"), rev)
		return err
	})
	api.ok(t, "publish a subscription event", func(ctx context.Context) error {
		_, err := api.js.Publish(ctx, events.EventSubject(events.KindSubscriptionCreated, subscriptionID), []byte(`{"v":1}`),
			jetstream.WithExpectStream(events.StreamEvents))
		return err
	})
	api.ok(t, "read a message of MESSAGES", func(ctx context.Context) error {
		stream, err := api.js.Stream(ctx, events.StreamMessages)
		if err != nil {
			return err
		}
		_, err = stream.GetMsg(ctx, seq)
		return err
	})
	api.denied(t, "publish a delivery", "hammer.deliveries.", func(ctx context.Context) error {
		_, err := api.js.Publish(ctx, events.DeliverySubject(subscriptionID), []byte("x"))
		return err
	})
	api.denied(t, "pull DELIVERIES", "$JS.API.CONSUMER.MSG.NEXT.DELIVERIES.deliverer", func(ctx context.Context) error {
		_, err := fetchOne(ctx, api.js, events.StreamDeliveries, topology.ConsumerDeliverer)
		return err
	})

	// fanout: topology (everything exists now), its consumer, deliveries.
	fanout.ok(t, "topology", func(ctx context.Context) error { return topology.Ensure(ctx, fanout.js, cfg) })
	fanout.ok(t, "consume MESSAGES", func(ctx context.Context) error {
		_, err := fetchOne(ctx, fanout.js, events.StreamMessages, topology.ConsumerFanout)
		return err
	})
	fanout.ok(t, "publish a delivery", func(ctx context.Context) error {
		_, err := fanout.js.Publish(ctx, events.DeliverySubject(subscriptionID), []byte(`{"v":1}`),
			jetstream.WithExpectStream(events.StreamDeliveries))
		return err
	})
	deniedBucket(t, fanout)
	deniedBucketWrite(t, fanout)
	fanout.denied(t, "publish a message", "hammer.messages.", func(ctx context.Context) error {
		_, err := fanout.js.Publish(ctx, events.MessageSubject("topic.a"), []byte("forged"))
		return err
	})
	fanout.denied(t, "publish an event", "hammer.events.", func(ctx context.Context) error {
		_, err := fanout.js.Publish(ctx, events.EventSubject(events.KindDeliveryCompleted, subscriptionID), []byte("forged"))
		return err
	})
	fanout.denied(t, "update a stream", "$JS.API.STREAM.UPDATE.MESSAGES", func(ctx context.Context) error {
		_, err := fanout.js.UpdateStream(ctx, topology.Streams(cfg)[0])
		return err
	})
	fanout.denied(t, "subscribe to hammer's subjects", "hammer.>", func(context.Context) error {
		_, err := fanout.nc.SubscribeSync("hammer.>")
		if err == nil {
			err = fanout.nc.Flush()
		}
		if err == nil {
			err = errors.New("subscribed") // refused asynchronously; denied waits for the violation
		}
		return err
	})

	// deliverer: its consumer, bodies by direct get and the prefetching
	// ordered consumer, the bucket read and watched, retries and events.
	deliverer.ok(t, "topology", func(ctx context.Context) error { return topology.Ensure(ctx, deliverer.js, cfg) })
	deliverer.ok(t, "consume DELIVERIES", func(ctx context.Context) error {
		_, err := fetchOne(ctx, deliverer.js, events.StreamDeliveries, topology.ConsumerDeliverer)
		return err
	})
	deliverer.ok(t, "direct get of MESSAGES", func(ctx context.Context) error {
		stream, err := deliverer.js.Stream(ctx, events.StreamMessages)
		if err != nil {
			return err
		}
		_, err = stream.GetMsg(ctx, seq)
		return err
	})
	deliverer.ok(t, "prefetch MESSAGES with an ordered consumer", func(ctx context.Context) error {
		cons, err := deliverer.js.OrderedConsumer(ctx, events.StreamMessages, jetstream.OrderedConsumerConfig{
			NamePrefix: "deliverer-bodies", DeliverPolicy: jetstream.DeliverAllPolicy,
		})
		if err != nil {
			return err
		}
		if _, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second)); err != nil {
			return err
		}
		return deliverer.js.DeleteConsumer(ctx, events.StreamMessages, cons.CachedInfo().Name)
	})
	deliverer.ok(t, "read and watch the subscriptions bucket", func(ctx context.Context) error {
		kv, err := deliverer.js.KeyValue(ctx, events.BucketSubscriptions)
		if err != nil {
			return err
		}
		if _, err := kv.Get(ctx, events.EncodeID(subscriptionID)); err != nil {
			return err
		}
		stream, err := deliverer.js.Stream(ctx, "KV_"+events.BucketSubscriptions)
		if err != nil {
			return err
		}
		if _, err := stream.GetLastMsgForSubject(ctx, "$KV."+events.BucketSubscriptions+"."+events.EncodeID(subscriptionID)); err != nil {
			return err
		}
		w, err := kv.WatchAll(ctx)
		if err != nil {
			return err
		}
		defer func() { _ = w.Stop() }()
		select {
		case e := <-w.Updates():
			if e == nil {
				return errors.New("the watch saw no subscription")
			}
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	deliverer.ok(t, "publish a retry and events", func(ctx context.Context) error {
		if _, err := deliverer.js.Publish(ctx, events.DeliverySubject(subscriptionID), []byte(`{"v":1}`)); err != nil {
			return err
		}
		for _, kind := range []string{events.KindAttempt, events.KindDeliveryCompleted, events.KindDeliveryFailed} {
			if _, err := deliverer.js.Publish(ctx, events.EventSubject(kind, subscriptionID), []byte(`{"v":1}`)); err != nil {
				return err
			}
		}
		return nil
	})
	deniedBucketWrite(t, deliverer)
	deliverer.denied(t, "read the idempotency bucket", "$JS.API.DIRECT.GET.KV_hammer_idempotency", func(ctx context.Context) error {
		kv, err := deliverer.js.KeyValue(ctx, events.BucketIdempotency)
		if err != nil {
			return err
		}
		_, err = kv.Get(ctx, "key1")
		return err
	})
	deliverer.denied(t, "publish a message", "hammer.messages.", func(ctx context.Context) error {
		_, err := deliverer.js.Publish(ctx, events.MessageSubject("topic.a"), []byte("forged"))
		return err
	})
	deliverer.denied(t, "publish a subscription event", "hammer.events.subscription.created", func(ctx context.Context) error {
		_, err := deliverer.js.Publish(ctx, events.EventSubject(events.KindSubscriptionCreated, subscriptionID), []byte("forged"))
		return err
	})
	deliverer.denied(t, "pull the fanout's consumer", "$JS.API.CONSUMER.MSG.NEXT.MESSAGES.fanout", func(ctx context.Context) error {
		_, err := fetchOne(ctx, deliverer.js, events.StreamMessages, topology.ConsumerFanout)
		return err
	})

	// recorder: its three consumers; it publishes nothing.
	recorder.ok(t, "topology", func(ctx context.Context) error { return topology.Ensure(ctx, recorder.js, cfg) })
	for _, c := range [][2]string{
		{events.StreamMessages, topology.ConsumerRecorderMessages},
		{events.StreamDeliveries, topology.ConsumerRecorderDeliveries},
		{events.StreamEvents, topology.ConsumerRecorderEvents},
	} {
		recorder.ok(t, "consume "+c[0], func(ctx context.Context) error {
			_, err := fetchOne(ctx, recorder.js, c[0], c[1])
			return err
		})
	}
	deniedBucket(t, recorder)
	deniedBucketWrite(t, recorder)
	recorder.denied(t, "publish an event", "hammer.events.", func(ctx context.Context) error {
		_, err := recorder.js.Publish(ctx, events.EventSubject(events.KindDeliveryCompleted, subscriptionID), []byte("forged"))
		return err
	})

	// events-reader: its own durable consumer of EVENTS, nothing else.
	reader.ok(t, "consume EVENTS with its own durable consumer", func(ctx context.Context) error {
		if _, err := reader.js.CreateOrUpdateConsumer(ctx, events.StreamEvents, jetstream.ConsumerConfig{
			Durable: "events-reader", AckPolicy: jetstream.AckExplicitPolicy,
		}); err != nil {
			return err
		}
		_, err := fetchOne(ctx, reader.js, events.StreamEvents, "events-reader")
		return err
	})
	reader.ok(t, "a filtered consumer (delivery.failed only)", func(ctx context.Context) error {
		_, err := reader.js.CreateOrUpdateConsumer(ctx, events.StreamEvents, jetstream.ConsumerConfig{
			Durable: "events-reader", AckPolicy: jetstream.AckExplicitPolicy,
			FilterSubject: events.EventFilter(events.KindDeliveryFailed),
		})
		return err
	})
	deniedBucket(t, reader)
	reader.denied(t, "read DELIVERIES", "$JS.API.CONSUMER.CREATE.DELIVERIES", func(ctx context.Context) error {
		_, err := reader.js.CreateOrUpdateConsumer(ctx, events.StreamDeliveries, jetstream.ConsumerConfig{
			Durable: "events-reader", AckPolicy: jetstream.AckExplicitPolicy,
		})
		return err
	})
	reader.denied(t, "read MESSAGES", "$JS.API.DIRECT.GET.MESSAGES", func(context.Context) error {
		_, err := reader.nc.Request("$JS.API.DIRECT.GET.MESSAGES", []byte(`{"seq":1}`), 300*time.Millisecond)
		return err
	})
	reader.denied(t, "read MESSAGES", "$JS.API.STREAM.MSG.GET.MESSAGES", func(context.Context) error {
		_, err := reader.nc.Request("$JS.API.STREAM.MSG.GET.MESSAGES", []byte(`{"seq":1}`), 300*time.Millisecond)
		return err
	})
	reader.denied(t, "snoop on hammer's replies", "_INBOX.>", func(context.Context) error {
		_, err := reader.nc.SubscribeSync("_INBOX.>")
		if err == nil {
			err = reader.nc.Flush()
		}
		if err == nil {
			err = errors.New("subscribed") // refused asynchronously
		}
		return err
	})
	reader.denied(t, "take over a hammer consumer", "$JS.API.CONSUMER.CREATE.EVENTS.recorder-events", func(ctx context.Context) error {
		_, err := reader.js.CreateOrUpdateConsumer(ctx, events.StreamEvents, jetstream.ConsumerConfig{
			Durable: topology.ConsumerRecorderEvents, AckPolicy: jetstream.AckExplicitPolicy,
		})
		return err
	})

	// Nothing refused above changed the bucket: the api reads what it wrote.
	api.ok(t, "the bucket is as the api wrote it", func(ctx context.Context) error {
		kv, err := api.js.KeyValue(ctx, events.BucketSubscriptions)
		if err != nil {
			return err
		}
		e, err := kv.Get(ctx, events.EncodeID(subscriptionID))
		if err != nil {
			return err
		}
		if e.Revision() != 1 {
			return errors.New("the subscription was rewritten")
		}
		return nil
	})
}

// deniedBucket: u cannot read the subscriptions bucket, by get or watch.
func deniedBucket(t *testing.T, u *natsUser) {
	t.Helper()
	u.denied(t, "read the subscriptions bucket", "$JS.API.DIRECT.GET.KV_hammer_subscriptions", func(ctx context.Context) error {
		_, err := u.nc.Request("$JS.API.DIRECT.GET.KV_hammer_subscriptions.$KV.hammer_subscriptions."+events.EncodeID(subscriptionID), nil, 300*time.Millisecond)
		return err
	})
	u.denied(t, "watch the subscriptions bucket", "$JS.API.CONSUMER.CREATE.KV_hammer_subscriptions", func(ctx context.Context) error {
		_, err := u.js.CreateConsumer(ctx, "KV_"+events.BucketSubscriptions, jetstream.ConsumerConfig{
			Name: "snoop", FilterSubject: "$KV.hammer_subscriptions.>",
		})
		return err
	})
}

// deniedBucketWrite: u cannot write the subscriptions bucket.
func deniedBucketWrite(t *testing.T, u *natsUser) {
	t.Helper()
	u.denied(t, "write the subscriptions bucket", "$KV.hammer_subscriptions.", func(ctx context.Context) error {
		_, err := u.js.Publish(ctx, "$KV.hammer_subscriptions."+events.EncodeID(subscriptionID), []byte(`{"url":"https://evil.example"}`))
		return err
	})
}

// TestNATSTopologyWhicheverStartsFirst: a service other than the api may
// start first on an empty server. It creates the streams and consumers,
// waits for the api to create the buckets (only the api may), and then
// completes.
func TestNATSTopologyWhicheverStartsFirst(t *testing.T) {
	url := startAuthNATS(t)
	cfg := topology.DefaultConfig()
	deliverer := connectAs(t, url, "deliverer")
	api := connectAs(t, url, "api")

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- topology.Ensure(ctx, deliverer.js, cfg) }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := api.js.Stream(ctx, events.StreamEvents); err == nil {
			if _, err := api.js.Consumer(ctx, events.StreamEvents, topology.ConsumerRecorderEvents); err == nil {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the deliverer did not create the streams and consumers")
		}
		time.Sleep(50 * time.Millisecond)
	}
	select {
	case err := <-done:
		t.Fatalf("the deliverer finished the topology without the buckets: %v", err)
	default:
	}
	// What the api's topology does next, in its own process (Ensure holds a
	// lock within one process, so the api's Ensure would wait here for the
	// deliverer's).
	for _, kc := range topology.Buckets(cfg) {
		if _, err := api.js.CreateKeyValue(ctx, kc); err != nil {
			t.Fatalf("api: creating bucket %s: %v", kc.Bucket, err)
		}
	}
	if err := <-done; err != nil {
		t.Fatalf("deliverer: topology after the api made the buckets: %v", err)
	}
}

// TestComposeNATS: docker-compose.yml runs NATS with the shipped
// configuration, gives the server every password and each hammer service
// its own user with the same password.
func TestComposeNATS(t *testing.T) {
	p := loadCompose(t)
	s, ok := p.Services["nats"]
	if !ok {
		t.Fatalf("%s: no nats service", composePath)
	}
	if len(s.Command) != 2 || s.Command[0] != "-c" {
		t.Fatalf("%s: service nats: command %q: want [-c <config>]", composePath, s.Command)
	}
	mounted := false
	for _, v := range s.Volumes {
		rel, err := filepath.Rel(mustAbs(t, root), v.Source)
		if v.Type == types.VolumeTypeBind && err == nil && filepath.ToSlash(rel) == filepath.Dir(natsConfig) &&
			s.Command[1] == v.Target+"/"+filepath.Base(natsConfig) && v.ReadOnly {
			mounted = true
		}
	}
	if !mounted {
		t.Errorf("%s: service nats: want %s mounted read-only and passed with -c", composePath, filepath.Dir(natsConfig))
	}
	for user, env := range natsUsers {
		if v := s.Environment[env]; v == nil || *v != "pw-"+user {
			t.Errorf("%s: service nats: %s: want it from the operator's environment", composePath, env)
		}
	}

	// The configuration: JetStream on a named volume, authorization on.
	startAuthNATS(t) // sets the passwords the configuration reads
	opts, err := server.ProcessConfigFile(filepath.Join(root, natsConfig))
	if err != nil {
		t.Fatal(err)
	}
	if !opts.JetStream || !slices.ContainsFunc(s.Volumes, func(v types.ServiceVolumeConfig) bool {
		return v.Type == types.VolumeTypeVolume && v.Target == opts.StoreDir
	}) {
		t.Errorf("%s: JetStream %v with store %q: want it on, on a named volume of service nats", natsConfig, opts.JetStream, opts.StoreDir)
	}
	if opts.HTTPPort == 0 || len(s.Ports) > 0 {
		t.Errorf("%s: monitoring port %d, published %v: want it on for the health check and unpublished", natsConfig, opts.HTTPPort, s.Ports)
	}
	users := map[string]bool{}
	for _, u := range opts.Users {
		users[u.Username] = true
		if u.Permissions == nil || u.Permissions.Publish == nil || u.Permissions.Subscribe == nil {
			t.Errorf("%s: user %s has no publish and subscribe permissions", natsConfig, u.Username)
		}
	}
	for user := range natsUsers {
		if !users[user] {
			t.Errorf("%s: no user %s", natsConfig, user)
		}
	}

	for name, svc := range p.Services {
		if !isHammer(svc) || len(svc.Command) == 0 || svc.Command[0] == "migrate" {
			continue
		}
		user, pw := svc.Environment["HAMMER_NATS_USER"], svc.Environment["HAMMER_NATS_PASSWORD"]
		if user == nil || *user != svc.Command[0] || pw == nil || *pw != "pw-"+svc.Command[0] {
			t.Errorf("%s: service %s: want HAMMER_NATS_USER=%s and HAMMER_NATS_PASSWORD from %s",
				composePath, name, svc.Command[0], natsUsers[svc.Command[0]])
		}
	}
}

func mustAbs(t *testing.T, path string) string {
	t.Helper()
	abs, err := filepath.Abs(path)
	if err != nil {
		t.Fatal(err)
	}
	return abs
}
