package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/hammer-webhooks/hammer/platform/events"
	"github.com/hammer-webhooks/hammer/platform/testkit"
	"github.com/hammer-webhooks/hammer/platform/topology"
)

// defaultAckWait is HAMMER_DELIVERY_ACK_WAIT's default. Only the
// deliverer reads that variable; api, fanout and recorder apply the
// topology with the default when they start, setting the deliverer
// consumer's AckWait back to it, and JetStream then shifts every
// redelivery delayed by NakWithDelay by the difference. So the tests that
// restart one of those services keep the default, and only the others
// shorten it (so that what a dead deliverer held comes back sooner).
const defaultAckWait = time.Minute

// stackOptions shape a stack.
type stackOptions struct {
	natsNodes int           // 1, or 3 for a JetStream cluster
	replicas  int           // HAMMER_STREAM_REPLICAS
	ackWait   time.Duration // the deliverers' HAMMER_DELIVERY_ACK_WAIT; defaultAckWait when 0
}

// stack is hammer running as people run it: api, fanout, two deliverers
// and recorder as separate processes of the hammer binary, on their own
// nats-server(s) and database of the shared PostgreSQL.
type stack struct {
	t          testing.TB
	dir        string
	procs      *procs
	dbURL      string
	nats       []*natsNode
	natsURL    string
	api        *proc
	apiURL     string
	fanout     *proc
	deliverers []*proc
	recorder   *proc
	opsURL     map[*proc]string // /readyz of each service

	outages *outages // when a dependency was down on purpose

	// The test's own view of the record and of the streams.
	pool *pgxpool.Pool
	nc   *nats.Conn
	js   jetstream.JetStream
	http *http.Client
}

var databaseSeq atomic.Int64

// newStack starts a stack and waits until every service is ready.
func newStack(t testing.TB, opts stackOptions) *stack {
	t.Helper()
	if opts.natsNodes == 0 {
		opts.natsNodes = 1
	}
	if opts.replicas == 0 {
		opts.replicas = 1
	}
	if opts.ackWait == 0 {
		opts.ackWait = defaultAckWait
	}
	started := time.Now()
	s := &stack{t: t, dir: t.TempDir(), procs: newProcs(t), opsURL: map[*proc]string{},
		outages: &outages{}, http: &http.Client{Timeout: 10 * time.Second}}
	ctx := context.Background()

	db := fmt.Sprintf("e2e_%d_%d", time.Now().UnixNano()%1e6, databaseSeq.Add(1))
	url, err := sharedPG.createDatabase(ctx, db)
	require.NoError(t, err)
	s.dbURL = url

	s.nats = startNATS(t, s.procs, s.dir, opts.natsNodes)
	var urls []string
	for _, n := range s.nats {
		urls = append(urls, n.url())
	}
	s.natsURL = strings.Join(urls, ",")

	common := with(baseEnv(),
		"HAMMER_DATABASE_URL="+s.dbURL,
		"HAMMER_NATS_URL="+s.natsURL,
		"HAMMER_LOG_LEVEL=info",
		"HAMMER_PPROF=true", // /debug/pprof on every ops port, for looking into a slow run
		"HAMMER_STREAM_REPLICAS="+strconv.Itoa(opts.replicas),
	)
	migrate := newProc("migrate", hammerBin, s.dir, common, "migrate", "up")
	out, err := migrate.run(time.Minute)
	require.NoError(t, err, "hammer migrate up:\n%s", out)

	apiPort := testkit.FreePort(t)
	s.apiURL = fmt.Sprintf("http://127.0.0.1:%d", apiPort)
	s.api = s.service("api", with(common, fmt.Sprintf("HAMMER_HTTP_ADDR=127.0.0.1:%d", apiPort)))
	s.opsURL[s.api] = s.apiURL
	s.fanout = s.service("fanout", common)
	s.recorder = s.service("recorder", with(common, "HAMMER_RECORDER_FLUSH_INTERVAL=20ms"))
	for i := range 2 {
		s.deliverers = append(s.deliverers, s.service(fmt.Sprintf("deliverer-%d", i+1), with(common,
			"HAMMER_DELIVERY_ALLOWED_CIDRS=127.0.0.0/8",
			"HAMMER_DELIVERY_ACK_WAIT="+opts.ackWait.String())))
	}

	nc, err := nats.Connect(s.natsURL, nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	s.nc = nc
	s.js, err = jetstream.New(nc)
	require.NoError(t, err)

	// Every service applies the topology when it starts, retrying until
	// JetStream can (on a fresh cluster that takes seconds). The
	// deliverers start last, so that their HAMMER_DELIVERY_ACK_WAIT is the
	// one in force (see defaultAckWait).
	s.startAndWait(s.api, s.fanout, s.recorder)
	s.waitTopology(opts, false)
	s.startAndWait(s.deliverers...)
	s.waitTopology(opts, true)
	s.requireNoCrashes()

	s.pool, err = pgxpool.New(ctx, s.dbURL)
	require.NoError(t, err)
	t.Cleanup(s.pool.Close)
	t.Logf("stack ready in %s (%d NATS node(s), replicas %d)", time.Since(started).Round(time.Millisecond), opts.natsNodes, opts.replicas)
	return s
}

// waitTopology waits until the streams, consumers and buckets exist and,
// with ackWait, the deliverer consumer has the deliverers' AckWait. The
// services answer /readyz once their connections are up, whether or not
// they have applied the topology yet.
func (s *stack) waitTopology(opts stackOptions, ackWait bool) {
	s.t.Helper()
	want := map[string][]string{
		events.StreamMessages:   {topology.ConsumerFanout, topology.ConsumerRecorderMessages},
		events.StreamDeliveries: {topology.ConsumerDeliverer, topology.ConsumerRecorderDeliveries},
		events.StreamEvents:     {topology.ConsumerRecorderEvents},
	}
	var why string
	ok := waitFor(time.Minute, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		for stream, consumers := range want {
			st, err := s.js.Stream(ctx, stream)
			if err != nil {
				why = fmt.Sprintf("stream %s: %v", stream, err)
				return false
			}
			if st.CachedInfo().Config.Replicas != opts.replicas {
				why = fmt.Sprintf("stream %s has %d replicas", stream, st.CachedInfo().Config.Replicas)
				return false
			}
			for _, name := range consumers {
				c, err := st.Consumer(ctx, name)
				if err != nil {
					why = fmt.Sprintf("consumer %s: %v", name, err)
					return false
				}
				if ackWait && name == topology.ConsumerDeliverer && c.CachedInfo().Config.AckWait != opts.ackWait {
					why = fmt.Sprintf("consumer %s has AckWait %s", name, c.CachedInfo().Config.AckWait)
					return false
				}
			}
		}
		for _, bucket := range []string{events.BucketSubscriptions, events.BucketIdempotency} {
			if _, err := s.js.KeyValue(ctx, bucket); err != nil {
				why = fmt.Sprintf("bucket %s: %v", bucket, err)
				return false
			}
		}
		return true
	})
	require.True(s.t, ok, "the topology is not in place: %s", why)
}

// service defines one hammer process; services other than the API serve
// /readyz on an ops port of their own.
func (s *stack) service(name string, env []string) *proc {
	cmd, _, _ := strings.Cut(name, "-")
	if cmd == "api" {
		return s.procs.add(newProc(name, hammerBin, s.dir, env, cmd))
	}
	port := testkit.FreePort(s.t)
	env = with(env, fmt.Sprintf("HAMMER_OPS_ADDR=127.0.0.1:%d", port))
	p := s.procs.add(newProc(name, hammerBin, s.dir, env, cmd))
	s.opsURL[p] = fmt.Sprintf("http://127.0.0.1:%d", port)
	return p
}

// with is env plus extra, in a new slice (appending to a shared
// environment could overwrite another process's variables).
func with(env []string, extra ...string) []string {
	return append(slices.Clone(env), extra...)
}

// startAndWait starts processes and waits until each answers /readyz.
func (s *stack) startAndWait(ps ...*proc) {
	s.t.Helper()
	for _, p := range ps {
		require.NoError(s.t, p.start())
	}
	for _, p := range ps {
		s.waitReady(p, time.Minute)
	}
}

// waitReady waits until p's /readyz answers 200.
func (s *stack) waitReady(p *proc, timeout time.Duration) {
	s.t.Helper()
	url := s.opsURL[p] + "/readyz"
	client := &http.Client{Timeout: 2 * time.Second}
	var last string
	ok := waitFor(timeout, func() bool {
		if !p.running() {
			return true
		}
		resp, err := client.Get(url)
		if err != nil {
			last = err.Error()
			return false
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		last = fmt.Sprintf("%d %s", resp.StatusCode, b)
		return resp.StatusCode == http.StatusOK
	})
	if !p.running() {
		s.t.Fatalf("%s exited while starting:\n%s", p.name, p.tail(40))
	}
	if !ok {
		s.t.Fatalf("%s not ready after %s (last /readyz: %s):\n%s", p.name, timeout, last, p.tail(40))
	}
}

// restart kills p (kill -9) and starts it again, waiting for /readyz.
func (s *stack) restart(p *proc) {
	s.t.Helper()
	p.kill()
	s.startAndWait(p)
}

// outages are the windows during which the test held a dependency of the
// API (NATS or PostgreSQL) down.
type outages struct {
	mu      sync.Mutex
	windows [][2]time.Time // a zero end: still down
}

// down marks the start of an outage; call it before stopping the dependency.
func (o *outages) down() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.windows = append(o.windows, [2]time.Time{time.Now()})
}

// up marks the end of the outage; call it once the dependency is back.
func (o *outages) up() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if n := len(o.windows); n > 0 && o.windows[n-1][1].IsZero() {
		o.windows[n-1][1] = time.Now()
	}
}

// during reports whether at falls in an outage.
func (o *outages) during(at time.Time) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, w := range o.windows {
		if !at.Before(w[0]) && (w[1].IsZero() || at.Before(w[1])) {
			return true
		}
	}
	return false
}

// killBusy kills p (kill -9) while it holds work it has not
// acknowledged, so that the crash loses work in hand: it freezes p
// (SIGSTOP), looks at consumer of stream, and kills p if messages are
// waiting for an acknowledgement, else lets it run a moment and tries
// again, for up to ten seconds. It returns how many were unacknowledged
// (by every process sharing consumer) when p died.
func (s *stack) killBusy(p *proc, stream, consumer string) int {
	s.t.Helper()
	c, err := s.js.Consumer(context.Background(), stream, consumer)
	require.NoError(s.t, err)
	pending := 0
	waitFor(10*time.Second, func() bool {
		p.pause(true)
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		info, err := c.Info(ctx)
		if err == nil && info.NumAckPending > 0 {
			pending = info.NumAckPending
			return true
		}
		p.pause(false)
		return false
	})
	p.kill()
	return pending
}

// requireNoCrashes fails the test if a process exited by itself.
func (s *stack) requireNoCrashes() {
	s.t.Helper()
	require.Empty(s.t, s.procs.crashes(), "processes exited without being asked")
}

// call sends one request to the API and returns the status and body.
func (s *stack) call(method, path string, body any) (int, []byte, error) {
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	case []byte:
		r = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			return 0, nil, err
		}
		r = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, s.apiURL+path, r)
	if err != nil {
		return 0, nil, err
	}
	if r != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := s.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// must sends a request that must answer want and decodes the answer.
func (s *stack) must(method, path string, body any, want int) map[string]any {
	s.t.Helper()
	code, b, err := s.call(method, path, body)
	require.NoError(s.t, err, "%s %s", method, path)
	require.Equal(s.t, want, code, "%s %s: %s", method, path, b)
	out := map[string]any{}
	if len(b) > 0 {
		require.NoError(s.t, json.Unmarshal(b, &out), "%s %s: %s", method, path, b)
	}
	return out
}

// list is GET of a list, returning its items.
func (s *stack) list(path, key string) []map[string]any {
	s.t.Helper()
	out := s.must(http.MethodGet, path, nil, http.StatusOK)
	raw, _ := out[key].([]any)
	items := make([]map[string]any, len(raw))
	for i, r := range raw {
		items[i] = r.(map[string]any)
	}
	return items
}

// consumersIdle reports whether every durable consumer has nothing pending
// and nothing waiting for an acknowledgement.
func (s *stack) consumersIdle() (bool, string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var busy []string
	for _, stream := range []string{events.StreamMessages, events.StreamDeliveries, events.StreamEvents} {
		st, err := s.js.Stream(ctx, stream)
		if err != nil {
			return false, err.Error()
		}
		lister := st.ListConsumers(ctx)
		for info := range lister.Info() {
			// Only hammer's durable consumers carry work; an ephemeral one
			// (a deliverer's read-ahead of message bodies) left by a killed
			// process lingers with messages pending until it expires.
			if info.Config.Durable == "" {
				continue
			}
			if info.NumPending > 0 || info.NumAckPending > 0 {
				busy = append(busy, fmt.Sprintf("%s/%s pending %d ack-pending %d", stream, info.Name, info.NumPending, info.NumAckPending))
			}
		}
		if err := lister.Err(); err != nil {
			return false, err.Error()
		}
	}
	return len(busy) == 0, strings.Join(busy, "; ")
}
