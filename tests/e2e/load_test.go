package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Load runs: the crash and cluster tests publish loadMessages messages to
// a topic with two subscriptions while something breaks, then check that
// nothing was lost.
const (
	loadMessages = 5000
	loadChunk    = 100                    // messages per POST /v1/messages:batch
	loadPace     = 120 * time.Millisecond // between chunks: about 6 s of publishing
	// loadReceiverDelay is how long the receivers take to answer.
	loadReceiverDelay = 20 * time.Millisecond
	// quickAnswer bounds how long the API may take to say 503 to a request
	// made while a dependency is down.
	quickAnswer = 3 * time.Second
	// noHang bounds how long any request may take, a publish caught by
	// the start of an outage included.
	noHang = 10 * time.Second
)

// publisher sends the messages of one run in chunks, each item with an
// idempotency key, retrying a chunk that was refused (503) or not answered
// (the API was down) until it is accepted. It keeps which message ID each
// item was accepted under and how the API answered.
type publisher struct {
	s     *stack
	run   string
	topic string
	total int

	mu         sync.Mutex
	accepted   map[int]string // item → message ID
	byID       map[string]int
	statuses   map[int]int // HTTP status → answers
	noAnswer   int         // requests the API did not answer (it was down)
	slow       []string    // refusals slower than quickAnswer, asked during an outage
	straddled  []string    // refusals slower than quickAnswer, asked just before an outage
	unexpected []string    // answers other than 200 and 503
	done       chan struct{}
	err        error
	posting    atomic.Bool // a batch is on its way to the API
}

func newPublisher(s *stack, run, topic string, total int) *publisher {
	return &publisher{s: s, run: run, topic: topic, total: total,
		accepted: map[int]string{}, byID: map[string]int{}, statuses: map[int]int{}, done: make(chan struct{})}
}

// item is the body of message n of the run.
type item struct {
	Run string `json:"run"`
	N   int    `json:"n"`
}

// start publishes in the background until every item is accepted or
// deadline passes.
func (p *publisher) start(deadline time.Duration) {
	go func() {
		defer close(p.done)
		p.err = p.publishAll(time.Now().Add(deadline))
	}()
}

func (p *publisher) publishAll(deadline time.Time) error {
	client := &http.Client{Timeout: noHang}
	pace := time.NewTicker(loadPace)
	defer pace.Stop()
	for first := 0; first < p.total; first += loadChunk {
		<-pace.C
		n := min(loadChunk, p.total-first)
		items := make([]map[string]any, n)
		for i := range items {
			items[i] = map[string]any{
				"topic_id":        p.topic,
				"data":            item{Run: p.run, N: first + i},
				"idempotency_key": fmt.Sprintf("%s-%d", p.run, first+i),
			}
		}
		body, err := json.Marshal(map[string]any{"messages": items})
		if err != nil {
			return err
		}
		for {
			if time.Now().After(deadline) {
				return fmt.Errorf("items %d.. not accepted before the deadline", first)
			}
			ids, retry, err := p.post(client, body, n)
			if err != nil {
				return err
			}
			if !retry {
				p.mu.Lock()
				for i, id := range ids {
					p.accepted[first+i] = id
					p.byID[id] = first + i
				}
				p.mu.Unlock()
				break
			}
			time.Sleep(100 * time.Millisecond) // a client's back-off before it tries again
		}
	}
	return nil
}

// post sends one chunk; retry says it was not accepted and may be sent
// again.
func (p *publisher) post(client *http.Client, body []byte, n int) (ids []string, retry bool, err error) {
	started := time.Now()
	req, err := http.NewRequest(http.MethodPost, p.s.apiURL+"/v1/messages:batch", strings.NewReader(string(body)))
	if err != nil {
		return nil, false, err
	}
	req.Header.Set("Content-Type", "application/json")
	p.posting.Store(true)
	resp, err := client.Do(req)
	p.posting.Store(false)
	took := time.Since(started)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) && uerr.Timeout() {
			return nil, false, fmt.Errorf("the API did not answer a batch within %s", noHang)
		}
		p.mu.Lock()
		p.noAnswer++ // the API is down: connection refused or reset
		p.mu.Unlock()
		return nil, true, nil
	}
	defer resp.Body.Close()
	var out struct {
		Messages []struct {
			ID string `json:"id"`
		} `json:"messages"`
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	decodeErr := json.NewDecoder(resp.Body).Decode(&out)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.statuses[resp.StatusCode]++
	switch {
	case resp.StatusCode == http.StatusOK && decodeErr == nil && len(out.Messages) == n:
		for _, m := range out.Messages {
			ids = append(ids, m.ID)
		}
		return ids, false, nil
	case resp.StatusCode == http.StatusServiceUnavailable:
		if took > quickAnswer {
			what := fmt.Sprintf("503 after %s to a batch sent at %s", took.Round(time.Millisecond), started.Format("15:04:05.000"))
			if p.s.outages.during(started) {
				p.slow = append(p.slow, what)
			} else {
				p.straddled = append(p.straddled, what)
			}
		}
		return nil, true, nil
	}
	p.unexpected = append(p.unexpected, fmt.Sprintf("%d after %s: %s %s (%v)", resp.StatusCode, took.Round(time.Millisecond), out.Code, out.Message, decodeErr))
	return nil, false, fmt.Errorf("the API answered %d to a batch: %s %s", resp.StatusCode, out.Code, out.Message)
}

// count is how many items have been accepted.
func (p *publisher) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.accepted)
}

// wait waits for the publisher to finish and fails t if it could not.
func (p *publisher) wait(t testing.TB, timeout time.Duration) {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(timeout):
		t.Fatalf("%s: publishing did not finish within %s (%d accepted)", p.run, timeout, p.count())
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	require.NoError(t, p.err, "%s: answers %v", p.run, p.statuses)
	require.Empty(t, p.unexpected, "%s: the API answered neither 200 nor 503", p.run)
	require.Empty(t, p.slow, "%s: refusals slower than %s while a dependency was down", p.run, quickAnswer)
	for _, s := range p.straddled {
		t.Logf("%s: slow refusal of a batch sent just before the outage: %s", p.run, s)
	}
	require.Len(t, p.accepted, p.total)
}

// ids is every accepted message ID.
func (p *publisher) ids() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]string, 0, len(p.accepted))
	for _, id := range p.accepted {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

// probe asks the API, while a dependency is down, to publish one message
// to a topic without subscriptions (and, when reads need the dependency
// too, to list deliveries); every answer must be a quick 503. It probes
// for hold and then returns how many probes it made.
func probeDown(t testing.TB, s *stack, hold time.Duration, readsToo bool) int {
	t.Helper()
	client := &http.Client{Timeout: noHang}
	probes := 0
	until := time.Now().Add(hold)
	for time.Now().Before(until) {
		check := func(method, path, body string) {
			t.Helper()
			req, err := http.NewRequest(method, s.apiURL+path, strings.NewReader(body))
			require.NoError(t, err)
			if body != "" {
				req.Header.Set("Content-Type", "application/json")
			}
			started := time.Now()
			resp, err := client.Do(req)
			took := time.Since(started)
			require.NoError(t, err, "%s %s while a dependency is down", method, path)
			resp.Body.Close()
			require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, "%s %s while a dependency is down", method, path)
			require.Less(t, took, quickAnswer, "%s %s took %s to refuse", method, path, took)
			probes++
		}
		check(http.MethodPost, "/v1/messages", `{"message": {"topic_id": "probe", "data": "are you there?"}}`)
		if readsToo {
			check(http.MethodGet, "/v1/deliveries?limit=1", "")
		}
		time.Sleep(200 * time.Millisecond) // probing pace
	}
	return probes
}

// runStats are the figures of one load run, for the closing note.
type runStats struct {
	name       string
	sent       int // messages accepted
	completed  int // deliveries recorded completed
	duplicates int // requests beyond the first per (message, subscription)
	extra      int // messages received that no 200 answer named
	refused    int // publish answers 503
	unanswered int // publishes the API did not answer (it was down)
	took       time.Duration
}

func (r runStats) String() string {
	return fmt.Sprintf("%s: messages sent %d, deliveries completed %d, duplicates received %d (messages delivered that no 200 named %d; batches refused with 503 %d, unanswered %d; run %s)",
		r.name, r.sent, r.completed, r.duplicates, r.extra, r.refused, r.unanswered, r.took.Round(100*time.Millisecond))
}

var (
	statsMu  sync.Mutex
	allStats []runStats
)

// loadRun is one run: a topic with two subscriptions, each with its own
// receiver, and the publisher.
type loadRun struct {
	s       *stack
	name    string
	topic   string
	subs    []string
	rcvs    []*receiver
	pub     *publisher
	started time.Time
}

// newLoadRun creates the topic, the subscriptions and the receivers, and a
// topic "probe" without subscriptions for probeDown.
func newLoadRun(t testing.TB, s *stack, name string) *loadRun {
	r := &loadRun{s: s, name: name, topic: "load", started: time.Now()}
	s.must(http.MethodPost, "/v1/topics", `{"topic": {"id": "load", "name": "Load"}}`, http.StatusOK)
	s.must(http.MethodPost, "/v1/topics", `{"topic": {"id": "probe", "name": "Probe"}}`, http.StatusOK)
	for _, id := range []string{"load-a", "load-b"} {
		// Each request takes a little while, so that a crash finds
		// requests in flight.
		rcv := newReceiver(t)
		rcv.set(behaviour{status: http.StatusOK, delay: loadReceiverDelay})
		body := subscription(id, "load", rcv.url+"/"+id, 5, 1, 5)
		body["subscription"].(map[string]any)["max_concurrent_requests"] = 16
		s.must(http.MethodPost, "/v1/subscriptions", body, http.StatusOK)
		r.subs = append(r.subs, id)
		r.rcvs = append(r.rcvs, rcv)
	}
	r.pub = newPublisher(s, name, "load", loadMessages)
	return r
}

// publish starts publishing and waits until fraction of the messages are
// accepted, so that what the caller breaks next breaks mid-run.
func (r *loadRun) publish(t testing.TB, fraction float64) {
	t.Helper()
	r.pub.start(4 * time.Minute)
	want := int(fraction * float64(loadMessages))
	eventually(t, 2*time.Minute, func() bool { return r.pub.count() >= want || isClosed(r.pub.done) },
		"%s: %d of %d messages accepted", r.name, r.pub.count(), want)
}

func isClosed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// drain waits until every accepted message reached both receivers, every
// consumer is idle and the record shows every delivery completed.
func (r *loadRun) drain(t testing.TB, timeout time.Duration) {
	t.Helper()
	r.pub.wait(t, 3*time.Minute)
	t.Logf("%s: %d messages accepted after %s", r.name, loadMessages, time.Since(r.started).Round(100*time.Millisecond))
	ids := r.pub.ids()
	var why string
	var received time.Duration
	ok := waitFor(timeout, func() bool {
		if crashes := r.s.procs.crashes(); len(crashes) > 0 {
			return true // no use waiting: requireNoCrashes says why
		}
		for i, rcv := range r.rcvs {
			seen := rcv.perMessage()
			missing := 0
			for _, id := range ids {
				if seen[id] == 0 {
					missing++
				}
			}
			if missing > 0 {
				why = fmt.Sprintf("%s is missing %d messages", r.subs[i], missing)
				return false
			}
		}
		if received == 0 {
			received = time.Since(r.started)
			t.Logf("%s: every message reached both receivers after %s", r.name, received.Round(100*time.Millisecond))
		}
		idle, busy := r.s.consumersIdle()
		if !idle {
			why = "consumers busy: " + busy
			return false
		}
		var completed int
		err := r.s.pool.QueryRow(context.Background(),
			`SELECT count(*) FROM deliveries WHERE topic_id = $1 AND status = 'completed'`, r.topic).Scan(&completed)
		if err != nil {
			why = err.Error()
			return false
		}
		if completed < len(ids)*len(r.subs) {
			why = fmt.Sprintf("%d of %d deliveries recorded completed", completed, len(ids)*len(r.subs))
			return false
		}
		return true
	})
	r.s.requireNoCrashes()
	require.True(t, ok, "%s: not drained after %s: %s", r.name, timeout, why)
}

// verify checks the run after draining and reports its figures: every
// (message, subscription) reached its receiver at least once; Postgres has
// exactly one delivery each, all completed, each with its successful
// attempt, and attempts unique per (delivery, attempt).
func (r *loadRun) verify(t testing.TB) runStats {
	t.Helper()
	ctx := context.Background()
	ids := r.pub.ids()
	accepted := make(map[string]bool, len(ids))
	for _, id := range ids {
		accepted[id] = true
	}
	stats := runStats{name: r.name, sent: len(ids), took: time.Since(r.started)}
	r.pub.mu.Lock()
	stats.refused = r.pub.statuses[http.StatusServiceUnavailable]
	stats.unanswered = r.pub.noAnswer
	r.pub.mu.Unlock()

	// The receivers.
	extra := map[string]bool{}
	for i, rcv := range r.rcvs {
		seen := rcv.perMessage()
		for _, id := range ids {
			require.GreaterOrEqual(t, seen[id], 1, "%s never got message %s", r.subs[i], id)
		}
		for id, n := range seen {
			stats.duplicates += n - 1
			if !accepted[id] {
				extra[id] = true
			}
		}
		for _, req := range rcv.got() {
			require.Equal(t, r.subs[i], req.env.SubscriptionID)
			require.Equal(t, "/"+r.subs[i], req.path)
		}
	}
	stats.extra = len(extra)
	if len(extra) > 0 {
		var which []string
		for _, rcv := range r.rcvs {
			for _, req := range rcv.got() {
				if extra[req.env.MessageID] {
					var it item
					_ = json.Unmarshal(req.env.Data, &it)
					which = append(which, fmt.Sprintf("%s (item %d, accepted as %s)", req.env.MessageID, it.N, r.pub.accepted[it.N]))
				}
			}
		}
		t.Logf("%s: %d message(s) delivered that no 200 answer named (a publish answered 503 that landed anyway): %s",
			r.name, len(extra), strings.Join(which, ", "))
	}

	// The record.
	rows, err := r.s.pool.Query(ctx, `SELECT message_id, subscription_id, status, delivery_attempts,
			EXISTS (SELECT 1 FROM delivery_attempts a WHERE a.delivery_id = d.id AND a.success)
		FROM deliveries d WHERE topic_id = $1`, r.topic)
	require.NoError(t, err)
	perPair := map[[2]string]int{}
	for rows.Next() {
		var msg, sub, status string
		var attempts int
		var succeeded bool
		require.NoError(t, rows.Scan(&msg, &sub, &status, &attempts, &succeeded))
		perPair[[2]string{msg, sub}]++
		require.Equal(t, "completed", status, "delivery of %s to %s", msg, sub)
		require.GreaterOrEqual(t, attempts, 1, "delivery of %s to %s", msg, sub)
		require.True(t, succeeded, "delivery of %s to %s has no successful attempt recorded", msg, sub)
		stats.completed++
	}
	require.NoError(t, rows.Err())
	for pair, n := range perPair {
		require.Equal(t, 1, n, "deliveries of %s to %s", pair[0], pair[1])
	}
	for _, id := range ids {
		for _, sub := range r.subs {
			require.Equal(t, 1, perPair[[2]string{id, sub}], "deliveries of %s to %s", id, sub)
		}
	}
	require.Equal(t, len(ids)+len(extra), len(perPair)/len(r.subs), "one delivery per subscription for each message received")

	var attempts, distinct int
	require.NoError(t, r.s.pool.QueryRow(ctx, `SELECT count(*), count(DISTINCT (delivery_id, attempt)) FROM delivery_attempts`).Scan(&attempts, &distinct))
	require.Equal(t, distinct, attempts, "attempts unique per (delivery, attempt)")
	require.GreaterOrEqual(t, attempts, stats.completed)

	var messages, inTopic int
	require.NoError(t, r.s.pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE id = ANY($1)), count(*) FROM messages WHERE topic_id = $2`,
		ids, r.topic).Scan(&messages, &inTopic))
	require.Equal(t, len(ids), messages, "every accepted message is in the record")
	require.Equal(t, len(ids)+len(extra), inTopic, "no message in the record that no receiver saw")

	// And the API agrees: nothing pending, nothing failed.
	for _, status := range []string{"pending", "failed"} {
		require.Empty(t, r.s.list("/v1/deliveries?topic_id=load&status="+status, "deliveries"), "%s deliveries", status)
	}
	r.s.requireNoCrashes()

	t.Log(stats.String())
	statsMu.Lock()
	allStats = append(allStats, stats)
	statsMu.Unlock()
	return stats
}
