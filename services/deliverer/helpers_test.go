package deliverer_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/hammer-webhooks/hammer/platform/config"
	"github.com/hammer-webhooks/hammer/platform/events"
	"github.com/hammer-webhooks/hammer/platform/testkit"
	"github.com/hammer-webhooks/hammer/platform/topology"
	"github.com/hammer-webhooks/hammer/services/deliverer"
)

// testSecret is a signing secret as the API generates them.
const testSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// bundle is what a test needs: its own JetStream and a way to play the
// API (subscriptions in the bucket) and fanout (messages and delivery
// events), and to read what the deliverer published.
type bundle struct {
	nats     *testkit.NATS
	js       jetstream.JetStream
	kv       jetstream.KeyValue
	messages jetstream.Stream
	events   jetstream.Stream
	names    map[string][]string // the test's DNS
}

func setup(t *testing.T) *bundle {
	t.Helper()
	n := testkit.NewNATS(t)
	ctx := context.Background()
	kv, err := n.JS.KeyValue(ctx, events.BucketSubscriptions)
	require.NoError(t, err)
	messages, err := n.JS.Stream(ctx, events.StreamMessages)
	require.NoError(t, err)
	evs, err := n.JS.Stream(ctx, events.StreamEvents)
	require.NoError(t, err)
	return &bundle{nats: n, js: n.JS, kv: kv, messages: messages, events: evs, names: map[string][]string{}}
}

// LookupNetIP is the test's resolver: names map to what the test says,
// anything else does not exist. Nothing is ever asked of real DNS.
func (b *bundle) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	addrs, ok := b.names[host]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	var out []netip.Addr
	for _, a := range addrs {
		out = append(out, netip.MustParseAddr(a))
	}
	return out, nil
}

func testConfig(natsURL string) config.Deliverer {
	return config.Deliverer{
		Common: config.Common{
			LogLevel: "info", NATSURL: natsURL, OpsAddr: "127.0.0.1:0",
			StreamReplicas: 1, StreamMaxAge: 7 * 24 * time.Hour, StreamMaxBytes: -1,
		},
		DeliveryConcurrency: 16,
		AllowedCIDRs:        []string{"127.0.0.0/8"},
		AckWait:             time.Minute,
		StopGrace:           10 * time.Second,
	}
}

// running is a deliverer started by a test.
type running struct {
	svc  *deliverer.Service
	stop func()
	reg  *prometheus.Registry
}

// start runs a deliverer with its own NATS connection until the test ends
// (or stop is called). Its dial hook fails the test if the deliverer ever
// tries to connect outside loopback.
func (b *bundle) start(t *testing.T, change ...func(*deliverer.Options)) *running {
	t.Helper()
	nc, err := nats.Connect(b.nats.URL)
	require.NoError(t, err)
	reg := prometheus.NewRegistry()
	opts := deliverer.Options{
		Config:   testConfig(b.nats.URL),
		NATS:     nc,
		Logger:   testkit.Logger(t),
		Registry: reg,
		Resolver: b,
		Dial: func(ctx context.Context, network, address string) (net.Conn, error) {
			host, _, err := net.SplitHostPort(address)
			if err != nil || !netip.MustParseAddr(host).IsLoopback() {
				t.Errorf("deliverer dialled %s: only loopback may be reached in tests", address)
				return nil, errors.New("test: refusing to dial outside loopback")
			}
			return (&net.Dialer{}).DialContext(ctx, network, address)
		},
	}
	for _, c := range change {
		c(&opts)
	}
	svc, err := deliverer.New(opts)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				require.NoError(t, err)
			case <-time.After(30 * time.Second):
				t.Error("deliverer did not stop")
			}
			nc.Close()
		})
	}
	t.Cleanup(stop)
	return &running{svc: svc, stop: stop, reg: reg}
}

// subscription returns a subscription to url with fast test limits.
func subscription(id, url string) events.Subscription {
	now := time.Now().UTC().Truncate(time.Microsecond)
	return events.Subscription{
		ID: id, TopicID: "topic", Name: id, URL: url,
		SecretToken: "token-" + id, SigningSecret: testSecret,
		MaxDeliveryAttempts: 5, DeliveryAttemptDelay: 1, DeliveryAttemptTimeout: 5,
		MaxConcurrentRequests: 8, CreatedAt: now, UpdatedAt: now,
	}
}

// putSubscription writes sub to the bucket as the API does.
func (b *bundle) putSubscription(t *testing.T, sub events.Subscription) {
	t.Helper()
	data, err := json.Marshal(sub)
	require.NoError(t, err)
	_, err = b.kv.Put(context.Background(), events.EncodeID(sub.ID), data)
	require.NoError(t, err)
}

func (b *bundle) deleteSubscription(t *testing.T, id string) {
	t.Helper()
	require.NoError(t, b.kv.Delete(context.Background(), events.EncodeID(id)))
}

// accepted is a message on MESSAGES and its sequence.
type accepted struct {
	events.Message
	seq uint64
}

// publishMessage publishes a message as the API does.
func (b *bundle) publishMessage(t *testing.T, data string) accepted {
	t.Helper()
	now := time.Now().UTC().Truncate(time.Microsecond)
	m := events.Message{ID: events.NewMessageID(now), TopicID: "topic", ContentType: "application/json", CreatedAt: now, Data: []byte(data)}
	ack, err := b.js.PublishMsg(context.Background(), m.NATSMsg())
	require.NoError(t, err)
	return accepted{Message: m, seq: ack.Sequence}
}

// deliveryFor is the first delivery event of m to sub, as fanout builds it.
func deliveryFor(m accepted, sub events.Subscription) events.Delivery {
	now := time.Now().UTC().Truncate(time.Microsecond)
	return events.Delivery{
		DeliveryRef: events.DeliveryRef{
			DeliveryID:        events.DeliveryID(m.ID, m.CreatedAt, sub.ID),
			MessageID:         m.ID,
			TopicID:           m.TopicID,
			SubscriptionID:    sub.ID,
			MessageSequence:   m.seq,
			MessageCreatedAt:  m.CreatedAt,
			DeliveryCreatedAt: now,
		},
		Target:    sub.Target(),
		Attempt:   1,
		NotBefore: now,
	}
}

func deliveryMsg(t *testing.T, d events.Delivery) *nats.Msg {
	t.Helper()
	data, err := events.Encode(&d)
	require.NoError(t, err)
	msg := nats.NewMsg(events.DeliverySubject(d.SubscriptionID))
	msg.Data = data
	msg.Header.Set(events.HeaderMsgID, events.DeliveryMsgID(d.DeliveryID, d.Attempt))
	return msg
}

// deliver publishes the first delivery event of m to sub and returns its ID.
func (b *bundle) deliver(t *testing.T, m accepted, sub events.Subscription) string {
	t.Helper()
	d := deliveryFor(m, sub)
	_, err := b.js.PublishMsg(context.Background(), deliveryMsg(t, d))
	require.NoError(t, err)
	return d.DeliveryID
}

// recorded is everything the deliverer published on EVENTS.
type recorded struct {
	attempts []events.Attempt
	outcomes []events.Outcome
	subjects map[string]string // outcome subject by delivery ID
}

func (r recorded) attemptsOf(deliveryID string) []events.Attempt {
	var out []events.Attempt
	for _, a := range r.attempts {
		if a.DeliveryID == deliveryID {
			out = append(out, a)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Attempt < out[j].Attempt })
	return out
}

func (r recorded) outcomeOf(deliveryID string) (events.Outcome, bool) {
	for _, o := range r.outcomes {
		if o.DeliveryID == deliveryID {
			return o, true
		}
	}
	return events.Outcome{}, false
}

func (b *bundle) recorded(t *testing.T) recorded {
	t.Helper()
	ctx := context.Background()
	info, err := b.events.Info(ctx)
	require.NoError(t, err)
	r := recorded{subjects: map[string]string{}}
	if info.State.Msgs == 0 {
		return r
	}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		raw, err := b.events.GetMsg(ctx, seq)
		require.NoError(t, err)
		kind, _, err := events.ParseEventSubject(raw.Subject)
		require.NoError(t, err)
		switch kind {
		case events.KindAttempt:
			var a events.Attempt
			require.NoError(t, events.Decode(raw.Data, &a))
			r.attempts = append(r.attempts, a)
		case events.KindDeliveryCompleted, events.KindDeliveryFailed:
			var o events.Outcome
			require.NoError(t, events.Decode(raw.Data, &o))
			r.outcomes = append(r.outcomes, o)
			r.subjects[o.DeliveryID] = raw.Subject
		}
	}
	return r
}

// waitOutcome waits for the delivery's outcome and returns everything
// recorded then.
func (b *bundle) waitOutcome(t *testing.T, deliveryID string, timeout time.Duration) (events.Outcome, recorded) {
	t.Helper()
	var r recorded
	var o events.Outcome
	testkit.Eventually(t, timeout, func() bool {
		r = b.recorded(t)
		var ok bool
		o, ok = r.outcomeOf(deliveryID)
		return ok
	}, "no outcome for delivery %s", deliveryID)
	return o, r
}

// waitIdle waits until the deliverer's consumer has nothing left: no event
// pending, none held. After it, no further request can come.
func (b *bundle) waitIdle(t *testing.T, timeout time.Duration) {
	t.Helper()
	cons, err := b.js.Consumer(context.Background(), events.StreamDeliveries, topology.ConsumerDeliverer)
	require.NoError(t, err)
	testkit.Eventually(t, timeout, func() bool {
		info, err := cons.Info(context.Background())
		require.NoError(t, err)
		return info.NumPending == 0 && info.NumAckPending == 0
	}, "deliveries consumer did not become idle")
}

// request is one request a receiver got.
type request struct {
	at     time.Time
	host   string
	path   string
	header http.Header
	body   []byte
}

// receiver is an httptest server on 127.0.0.1 that records its requests and
// answers with respond (200 when nil). n counts requests from 1.
type receiver struct {
	*httptest.Server
	mu       sync.Mutex
	requests []request
}

func newReceiver(t *testing.T, respond func(n int, w http.ResponseWriter, r *http.Request)) *receiver {
	t.Helper()
	rc := &receiver{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	rc.Server = &httptest.Server{Listener: ln, Config: &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.requests = append(rc.requests, request{at: time.Now(), host: r.Host, path: r.URL.Path, header: r.Header.Clone(), body: body})
		n := len(rc.requests)
		rc.mu.Unlock()
		if respond == nil {
			w.WriteHeader(http.StatusOK)
			return
		}
		respond(n, w, r)
	})}}
	rc.Start()
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) got() []request {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]request(nil), rc.requests...)
}

func (rc *receiver) count() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.requests)
}

func status(code int) func(int, http.ResponseWriter, *http.Request) {
	return func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(code) }
}

// metric sums a metric of the deliverer over the series that have a label
// with the value label ("" for all); a histogram counts its observations.
func (r *running) metric(t *testing.T, name, label string) float64 {
	t.Helper()
	families, err := r.reg.Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		var sum float64
		for _, m := range f.GetMetric() {
			matches := label == ""
			for _, l := range m.GetLabel() {
				matches = matches || l.GetValue() == label
			}
			if !matches {
				continue
			}
			switch {
			case m.GetCounter() != nil:
				sum += m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				sum += m.GetGauge().GetValue()
			case m.GetHistogram() != nil:
				sum += float64(m.GetHistogram().GetSampleCount())
			}
		}
		return sum
	}
	return 0
}

// deliverMany publishes n messages and their first delivery events to sub,
// asynchronously, and returns the delivery IDs.
func (b *bundle) deliverMany(t *testing.T, n int, sub events.Subscription) []string {
	t.Helper()
	ctx := context.Background()
	msgs := make([]events.Message, n)
	futures := make([]jetstream.PubAckFuture, n)
	for i := range n {
		now := time.Now().UTC().Truncate(time.Microsecond)
		msgs[i] = events.Message{ID: events.NewMessageID(now), TopicID: "topic", ContentType: "application/json", CreatedAt: now, Data: []byte(`{"n":` + strconv.Itoa(i) + `}`)}
		f, err := b.js.PublishMsgAsync(msgs[i].NATSMsg())
		require.NoError(t, err)
		futures[i] = f
	}
	ids := make([]string, n)
	deliveries := make([]jetstream.PubAckFuture, n)
	for i, f := range futures {
		select {
		case ack := <-f.Ok():
			d := deliveryFor(accepted{Message: msgs[i], seq: ack.Sequence}, sub)
			ids[i] = d.DeliveryID
			df, err := b.js.PublishMsgAsync(deliveryMsg(t, d))
			require.NoError(t, err)
			deliveries[i] = df
		case err := <-f.Err():
			require.NoError(t, err)
		case <-time.After(10 * time.Second):
			t.Fatal("no publish acknowledgement")
		}
	}
	select {
	case <-b.js.PublishAsyncComplete():
	case <-ctx.Done():
	case <-time.After(20 * time.Second):
		t.Fatal("delivery events not acknowledged")
	}
	for _, f := range deliveries {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			require.NoError(t, err)
		}
	}
	return ids
}
