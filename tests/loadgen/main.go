// Command loadgen measures hammer end to end: it starts hammer dev (or uses
// a running hammer on loopback), creates a topic whose subscriptions point
// at receivers in this process, publishes a bounded number of messages and
// prints one JSON summary: ingest rate, delivery rate, how long until
// Postgres shows every delivery completed, receipt latency percentiles and
// the CPU and memory the processes used. make bench runs it;
// docs/BENCHMARKS.md has the scenarios, -profile and -timeline.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

type options struct {
	hammer      string
	target      string
	subs        int
	messages    int
	publishers  int
	batch       int
	rate        float64
	deadBacklog int
	payload     int
	timeout     time.Duration
	label       string
	keepLogs    bool
	profile     string
	profileFor  time.Duration
	idle        time.Duration
	timeline    time.Duration
	// subFields is a JSON object of optional subscription fields that every
	// measured subscription is created with; empty, they are created as
	// the README creates one.
	subFields string
}

func main() {
	var o options
	flag.StringVar(&o.hammer, "hammer", "./bin/hammer", "hammer binary to start in dev mode")
	flag.StringVar(&o.target, "url", "", "use the hammer API at this loopback URL instead of starting one")
	flag.IntVar(&o.subs, "subs", 1, "subscriptions of the measured topic")
	flag.IntVar(&o.messages, "messages", 20000, "messages to publish")
	flag.IntVar(&o.publishers, "publishers", 16, "concurrent publishers")
	flag.IntVar(&o.batch, "batch", 0, "messages per POST /v1/messages:batch; 0 publishes one message per request")
	flag.Float64Var(&o.rate, "rate", 0, "messages per second offered (open loop); 0 publishes as fast as the API answers")
	flag.IntVar(&o.deadBacklog, "dead-backlog", 0, "first hold this many retries for an always-500 receiver (delay 10 min)")
	flag.DurationVar(&o.idle, "idle", 0, "before publishing, measure the CPU hammer and PostgreSQL use for this long with nothing to do (but the held retries)")
	flag.IntVar(&o.payload, "payload", 256, "bytes of data per message")
	flag.DurationVar(&o.timeout, "timeout", 5*time.Minute, "give up after this long")
	flag.StringVar(&o.label, "label", "", "a name for this run, copied into the summary")
	flag.StringVar(&o.subFields, "sub", "", `optional fields of the measured subscriptions as a JSON object, e.g. '{"max_concurrent_requests": 64}'; empty: created as the README creates one (defaults)`)
	flag.BoolVar(&o.keepLogs, "keep-logs", false, "print hammer's log path and keep it")
	flag.DurationVar(&o.timeline, "timeline", 0, "print to stderr, per interval of this length, the deliveries accepted and received and each stage's progress and queue")
	flag.StringVar(&o.profile, "profile", "", "write pprof profiles of hammer dev under load to this directory (starts it with HAMMER_PPROF=true)")
	flag.DurationVar(&o.profileFor, "profile-seconds", 8*time.Second, "length of the CPU profile taken from the start of publishing")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

// summary is the one JSON object loadgen prints.
type summary struct {
	Label         string `json:"label,omitempty"`
	Messages      int    `json:"messages"`
	Subscriptions int    `json:"subscriptions"`
	// SubscriptionFields is what the measured subscriptions were created
	// with beyond id, topic_id, name and url: {} is the README's subscription.
	SubscriptionFields  json.RawMessage    `json:"subscription_created_with"`
	Publishers          int                `json:"publishers"`
	Batch               int                `json:"batch"`
	OfferedRate         float64            `json:"offered_rate,omitempty"`
	DeadBacklog         int                `json:"dead_backlog,omitempty"`
	Deliveries          int                `json:"deliveries"`
	Duplicates          int64              `json:"duplicates"`
	IngestPerSecond     float64            `json:"ingest_msgs_per_s"`
	DeliveriesPerSecond float64            `json:"deliveries_per_s"`
	RecordedSeconds     float64            `json:"seconds_until_all_recorded"`
	LatencyMillis       map[string]float64 `json:"receipt_latency_ms"`
	// LongestGap is the longest time between two receipts: a stalled
	// stage shows here as seconds where a healthy run has milliseconds.
	LongestGap  float64            `json:"longest_receipt_gap_s"`
	IdlePercent map[string]float64 `json:"idle_cpu_percent_of_a_core,omitempty"`
	Processes   []processUsage     `json:"processes,omitempty"`
	CPUPer1000  float64            `json:"cpu_seconds_per_1000_deliveries,omitempty"`
	// LoadAverage is the machine's 1-minute load average when publishing
	// began and when the run ended: a shared machine's noise, for the reader.
	LoadAverage [2]float64 `json:"load_average_1m"`
}

func run(o options) error {
	if o.messages < 1 || o.subs < 1 || o.publishers < 1 {
		return errors.New("-messages, -subs and -publishers must be at least 1")
	}
	extra, err := subscriptionFields(o.subFields)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()

	base := o.target
	var dev *devProcess
	if base == "" {
		if dev, err = startDev(ctx, o); err != nil {
			return err
		}
		defer dev.stop()
		base = dev.apiURL
	} else if err := requireLoopback(base); err != nil {
		return err
	}
	c := &client{base: base, http: &http.Client{
		Timeout:   30 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: o.publishers * 2, MaxConnsPerHost: o.publishers * 2},
	}}

	run := fmt.Sprintf("bench-%d", time.Now().UnixNano())
	if o.deadBacklog > 0 {
		if err := holdBacklog(ctx, c, run, o.deadBacklog); err != nil {
			return err
		}
	}

	total := o.messages * o.subs
	rcv := newReceivers(total)
	defer rcv.close()
	topic := run + "-topic"
	if err := c.post(ctx, "/v1/topics", fmt.Sprintf(`{"topic": {"id": %q, "name": "bench"}}`, topic), nil); err != nil {
		return err
	}
	for i := range o.subs {
		srv := rcv.add()
		body, err := subscriptionBody(fmt.Sprintf("%s-sub-%d", run, i), topic, srv.URL, extra)
		if err != nil {
			return err
		}
		if err := c.post(ctx, "/v1/subscriptions", body, nil); err != nil {
			return err
		}
	}

	// Warm-up: one message through every subscription, so that the
	// measured run starts with the pipeline running end to end (consumers
	// pulling, the subscriptions in the deliverers' view, connections open).
	warm := rcv.expect(o.subs)
	if err := c.post(ctx, "/v1/messages", fmt.Sprintf(`{"message": {"topic_id": %q, "data": "warm-up"}}`, topic), nil); err != nil {
		return err
	}
	select {
	case <-warm:
	case <-ctx.Done():
		return fmt.Errorf("the warm-up message reached %d of %d subscriptions before the timeout", rcv.count(), o.subs)
	}
	all := rcv.expect(total)

	var prof *profiler
	if o.profile != "" {
		if dev == nil {
			return errors.New("-profile needs the hammer dev that loadgen starts (no -url)")
		}
		var err error
		if prof, err = newProfiler(dev.opsURL, o.profile, o.label); err != nil {
			return err
		}
		if err := prof.allocs(ctx, "before"); err != nil {
			return err
		}
	}

	var idle map[string]float64
	if o.idle > 0 && dev != nil {
		idle = map[string]float64{}
		start := dev.usage()
		select {
		case <-time.After(o.idle):
		case <-ctx.Done():
			return ctx.Err()
		}
		for _, p := range diff(start, dev.usage()) {
			idle[p.Name] = round(100 * p.CPUSeconds / o.idle.Seconds())
		}
	}

	var before []processUsage
	if dev != nil {
		before = dev.usage()
	}
	selfBefore := selfUsage()
	loadBefore := loadAverage()
	began := time.Now()
	if prof != nil {
		prof.startCPU(ctx, o.profileFor)
	}
	var samples *sampler
	if o.timeline > 0 && dev != nil {
		var onStall func()
		if prof != nil {
			onStall = func() {
				fmt.Fprintln(os.Stderr, "loadgen: the deliverer stalled; saving every goroutine's stack and the consumers' state")
				_ = prof.consumers(ctx, dev.natsURL, "stall-consumers.json")
				_ = prof.fetch(ctx, "/debug/pprof/goroutine?debug=2", "stall-goroutines.txt", 30*time.Second)
			}
		}
		samples = startSampler(ctx, dev.opsURL, o.timeline, onStall)
	}
	if err := publish(ctx, c, o, topic); err != nil {
		return err
	}
	published := time.Since(began)

	select {
	case <-all:
	case <-ctx.Done():
		return fmt.Errorf("only %d of %d deliveries arrived before the timeout", rcv.count(), total)
	}
	delivered := time.Since(began)
	if err := waitRecorded(ctx, c, topic, total+o.subs); err != nil { // the warm-up too
		return err
	}
	recorded := time.Since(began)
	self := selfUsage()
	self.CPUSeconds -= selfBefore.CPUSeconds

	s := summary{
		Label: o.label, Messages: o.messages, Subscriptions: o.subs, SubscriptionFields: extra, Publishers: o.publishers,
		Batch: o.batch, OfferedRate: o.rate, DeadBacklog: o.deadBacklog, Deliveries: total,
		Duplicates:          rcv.duplicates.Load(),
		IngestPerSecond:     round(float64(o.messages) / published.Seconds()),
		DeliveriesPerSecond: round(float64(total) / delivered.Seconds()),
		RecordedSeconds:     round(recorded.Seconds()),
		LatencyMillis:       rcv.percentiles(),
		LongestGap:          round(rcv.longestGap().Seconds()),
		IdlePercent:         idle,
		LoadAverage:         [2]float64{loadBefore, loadAverage()},
	}
	if dev != nil {
		s.Processes = diff(before, dev.usage())
		var cpu float64
		for _, p := range s.Processes {
			cpu += p.CPUSeconds
		}
		s.CPUPer1000 = round(cpu / float64(total) * 1000)
	}
	// loadgen shares the machine: its own CPU (publishers and receivers)
	// is shown, not counted in the cost per delivery.
	self.CPUSeconds = round(self.CPUSeconds)
	self.PeakRSSMiB = round(self.PeakRSSMiB)
	s.Processes = append(s.Processes, self)
	if prof != nil {
		if err := prof.waitCPU(); err != nil {
			return err
		}
		if err := prof.allocs(ctx, "after"); err != nil {
			return err
		}
		if err := prof.metrics(ctx); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "loadgen: profiles in %s\n", o.profile)
	}
	if o.timeline > 0 {
		var series []map[string]float64
		if samples != nil {
			series = samples.finish()
		}
		rcv.printTimeline(os.Stderr, began, o.timeline, series)
	}
	out, _ := json.MarshalIndent(s, "", "  ")
	fmt.Println(string(out))
	return nil
}

// publish sends the messages with o.publishers workers, one per request or
// in batches, as fast as possible or at o.rate.
func publish(ctx context.Context, c *client, o options, topic string) error {
	data := bytes.Repeat([]byte("x"), o.payload)
	item := fmt.Sprintf(`{"topic_id": %q, "data": %q}`, topic, data)
	per := max(o.batch, 1)
	requests := (o.messages + per - 1) / per
	jobs := make(chan int)
	go func() {
		defer close(jobs)
		// Open loop: request i is due at start + i×interval whatever became
		// of the ones before it; a late sender catches up instead of
		// lowering the rate offered (as a ticker dropping ticks would).
		var interval time.Duration
		if o.rate > 0 {
			interval = time.Duration(float64(time.Second) * float64(per) / o.rate)
		}
		start := time.Now()
		for i := range requests {
			if wait := time.Until(start.Add(time.Duration(i) * interval)); wait > 0 {
				select {
				case <-time.After(wait):
				case <-ctx.Done():
					return
				}
			}
			select {
			case jobs <- i:
			case <-ctx.Done():
				return
			}
		}
	}()
	var wg sync.WaitGroup
	var firstErr atomic.Value
	for range o.publishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				n := min(per, o.messages-i*per)
				var err error
				if o.batch == 0 {
					err = c.post(ctx, "/v1/messages", `{"message": `+item+`}`, nil)
				} else {
					var b bytes.Buffer
					b.WriteString(`{"messages": [`)
					for j := range n {
						if j > 0 {
							b.WriteByte(',')
						}
						b.WriteString(item)
					}
					b.WriteString(`]}`)
					err = c.post(ctx, "/v1/messages:batch", b.String(), nil)
				}
				if err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err, _ := firstErr.Load().(error); err != nil {
		return fmt.Errorf("publishing: %w", err)
	}
	return ctx.Err()
}

// holdBacklog makes n deliveries to a receiver that always fails with a
// 10-minute retry delay, and waits until each has made its first attempt: n
// held retries then sit in JetStream for the rest of the run.
func holdBacklog(ctx context.Context, c *client, run string, n int) error {
	var attempts atomic.Int64
	dead := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		attempts.Add(1)
		w.WriteHeader(http.StatusInternalServerError)
	}))
	// Left running: the held retries come due after the measured run.
	topic := run + "-dead"
	if err := c.post(ctx, "/v1/topics", fmt.Sprintf(`{"topic": {"id": %q, "name": "dead"}}`, topic), nil); err != nil {
		return err
	}
	body := fmt.Sprintf(`{"subscription": {"id": "%s-dead", "topic_id": %q, "name": "dead", "url": %q, "delivery_attempt_delay": 600, "max_delivery_attempts": 5}}`, run, topic, dead.URL)
	if err := c.post(ctx, "/v1/subscriptions", body, nil); err != nil {
		return err
	}
	item := fmt.Sprintf(`{"topic_id": %q, "data": "dead"}`, topic)
	for sent := 0; sent < n; {
		k := min(500, n-sent)
		var b bytes.Buffer
		b.WriteString(`{"messages": [`)
		for j := range k {
			if j > 0 {
				b.WriteByte(',')
			}
			b.WriteString(item)
		}
		b.WriteString(`]}`)
		if err := c.post(ctx, "/v1/messages:batch", b.String(), nil); err != nil {
			return err
		}
		sent += k
	}
	for attempts.Load() < int64(n) {
		select {
		case <-ctx.Done():
			return fmt.Errorf("backlog: %d of %d first attempts made before the timeout", attempts.Load(), n)
		case <-time.After(100 * time.Millisecond):
		}
	}
	return nil
}

// waitRecorded polls the API until the total-th completed delivery of topic
// exists: then Postgres holds every delivery completed.
func waitRecorded(ctx context.Context, c *client, topic string, total int) error {
	path := fmt.Sprintf("/v1/deliveries?topic_id=%s&status=completed&order=asc&limit=1&offset=%d", url.QueryEscape(topic), total-1)
	for {
		var page struct {
			Deliveries []json.RawMessage `json:"deliveries"`
		}
		if err := c.get(ctx, path, &page); err != nil {
			return err
		}
		if len(page.Deliveries) == 1 {
			return nil
		}
		select {
		case <-ctx.Done():
			return errors.New("not every delivery was recorded completed before the timeout")
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// receivers are the webhook endpoints of the measured subscriptions.
type receivers struct {
	mu         sync.Mutex
	servers    []*httptest.Server
	seen       map[string]bool
	latencies  []time.Duration
	accepted   []time.Time // created_at of each delivery counted
	received   []time.Time
	want       int
	all        chan struct{}
	duplicates atomic.Int64
}

func newReceivers(want int) *receivers {
	return &receivers{seen: make(map[string]bool, want), latencies: make([]time.Duration, 0, want), want: want, all: make(chan struct{})}
}

// expect starts counting afresh: the returned channel closes once n new
// deliveries have arrived. Deliveries seen before stay known, so a late
// duplicate of one is counted as a duplicate.
func (r *receivers) expect(n int) <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.latencies, r.accepted, r.received = r.latencies[:0], r.accepted[:0], r.received[:0]
	r.want, r.all = n, make(chan struct{})
	return r.all
}

func (r *receivers) add() *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(r.handle))
	r.servers = append(r.servers, srv)
	return srv
}

func (r *receivers) handle(w http.ResponseWriter, req *http.Request) {
	now := time.Now()
	var env struct {
		CreatedAt time.Time `json:"created_at"`
	}
	body, _ := io.ReadAll(req.Body)
	_ = json.Unmarshal(body, &env)
	id := req.Header.Get("webhook-id")
	r.mu.Lock()
	if r.seen[id] {
		r.duplicates.Add(1)
	} else {
		r.seen[id] = true
		r.latencies = append(r.latencies, now.Sub(env.CreatedAt))
		r.accepted = append(r.accepted, env.CreatedAt)
		r.received = append(r.received, now)
		if len(r.latencies) == r.want {
			close(r.all)
		}
	}
	r.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (r *receivers) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.latencies)
}

func (r *receivers) percentiles() map[string]float64 {
	r.mu.Lock()
	l := slices.Clone(r.latencies)
	r.mu.Unlock()
	slices.Sort(l)
	at := func(p float64) float64 {
		if len(l) == 0 {
			return 0
		}
		return round(float64(l[min(len(l)-1, int(p*float64(len(l))))]) / float64(time.Millisecond))
	}
	return map[string]float64{"p50": at(0.50), "p95": at(0.95), "p99": at(0.99), "max": at(1)}
}

// longestGap is the longest time between two consecutive receipts.
func (r *receivers) longestGap() time.Duration {
	r.mu.Lock()
	at := slices.Clone(r.received)
	r.mu.Unlock()
	slices.SortFunc(at, func(a, b time.Time) int { return a.Compare(b) })
	var gap time.Duration
	for i := 1; i < len(at); i++ {
		gap = max(gap, at[i].Sub(at[i-1]))
	}
	return gap
}

func (r *receivers) close() {
	for _, s := range r.servers {
		s.Close()
	}
}

// client talks to the API.
type client struct {
	base string
	http *http.Client
}

func (c *client) post(ctx context.Context, path, body string, out any) error {
	return c.do(ctx, http.MethodPost, path, body, out)
}

func (c *client) get(ctx context.Context, path string, out any) error {
	return c.do(ctx, http.MethodGet, path, "", out)
}

func (c *client) do(ctx context.Context, method, path, body string, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, bytes.NewBufferString(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, b)
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

// devProcess is a hammer dev started by loadgen, on free loopback ports
// and a fresh data directory.
type devProcess struct {
	cmd     *exec.Cmd
	apiURL  string
	opsURL  string
	natsURL string
	dataDir string
	logPath string
	keep    bool
}

func startDev(ctx context.Context, o options) (*devProcess, error) {
	bin, err := filepath.Abs(o.hammer)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "hammer-bench-")
	if err != nil {
		return nil, err
	}
	ports, err := freePorts(3)
	if err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(dir, "hammer.log"))
	if err != nil {
		return nil, err
	}
	d := &devProcess{apiURL: fmt.Sprintf("http://127.0.0.1:%d", ports[0]), opsURL: fmt.Sprintf("http://127.0.0.1:%d", ports[1]), natsURL: fmt.Sprintf("nats://127.0.0.1:%d", ports[2]), dataDir: dir, logPath: logf.Name(), keep: o.keepLogs}
	d.cmd = exec.Command(bin, "dev")
	d.cmd.Env = append(os.Environ(),
		"HAMMER_DATA_DIR="+filepath.Join(dir, "data"),
		fmt.Sprintf("HAMMER_HTTP_ADDR=127.0.0.1:%d", ports[0]),
		fmt.Sprintf("HAMMER_OPS_ADDR=127.0.0.1:%d", ports[1]),
		fmt.Sprintf("HAMMER_DEV_NATS_ADDR=127.0.0.1:%d", ports[2]),
		"HAMMER_LOG_LEVEL=warn",
	)
	if o.profile != "" {
		d.cmd.Env = append(d.cmd.Env, "HAMMER_PPROF=true")
	}
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := d.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s dev: %w", bin, err)
	}
	for {
		resp, err := http.Get(d.apiURL + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return d, nil
			}
		}
		select {
		case <-ctx.Done():
			d.stop()
			return nil, fmt.Errorf("hammer dev did not become ready; its log: %s", d.logPath)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (d *devProcess) stop() {
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = d.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
	if d.keep {
		fmt.Fprintln(os.Stderr, "loadgen: hammer's log:", d.logPath)
		return
	}
	_ = os.RemoveAll(d.dataDir)
}

func freePorts(n int) ([]int, error) {
	var ports []int
	var lns []net.Listener
	defer func() {
		for _, l := range lns {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		lns = append(lns, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func requireLoopback(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("-url: %w", err)
	}
	ips, err := net.LookupIP(u.Hostname())
	if err != nil {
		return fmt.Errorf("-url: %w", err)
	}
	for _, ip := range ips {
		if !ip.IsLoopback() {
			return fmt.Errorf("-url %s: loadgen only targets loopback addresses", raw)
		}
	}
	return nil
}

func round(f float64) float64 {
	return float64(int64(f*100+0.5)) / 100
}

// subscriptionFields checks -sub: a JSON object (or nothing) that names
// none of the fields loadgen sets itself.
func subscriptionFields(raw string) (json.RawMessage, error) {
	if strings.TrimSpace(raw) == "" {
		return json.RawMessage("{}"), nil
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal([]byte(raw), &fields); err != nil {
		return nil, fmt.Errorf("-sub %q: want a JSON object of subscription fields: %w", raw, err)
	}
	for _, own := range []string{"id", "topic_id", "name", "url"} {
		if _, ok := fields[own]; ok {
			return nil, fmt.Errorf("-sub names %q, which loadgen sets itself", own)
		}
	}
	return json.Marshal(fields)
}

// subscriptionBody is the create request of one measured subscription: the
// README's four fields plus extra.
func subscriptionBody(id, topic, url string, extra json.RawMessage) (string, error) {
	var fields map[string]any
	if err := json.Unmarshal(extra, &fields); err != nil {
		return "", err
	}
	fields["id"], fields["topic_id"], fields["name"], fields["url"] = id, topic, "bench", url
	body, err := json.Marshal(map[string]any{"subscription": fields})
	return string(body), err
}
