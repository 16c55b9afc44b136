package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// sampled are the series of hammer's metrics that the timeline shows, by
// column name: each stage's progress and what waits in front of it.
var sampled = []struct{ column, prefix string }{
	{"fanned", "hammer_fanout_deliveries_published_total"},
	{"attempts", "hammer_delivery_attempts_total"},
	{"held", "hammer_delivery_held_total"},
	{"recorded", "hammer_recorder_events_total"},
	{"q_fanout", `hammer_jetstream_consumer_pending{consumer="fanout"`},
	{"q_deliver", `hammer_jetstream_consumer_pending{consumer="deliverer"`},
	{"q_rec_ev", `hammer_jetstream_consumer_pending{consumer="recorder-events"`},
}

// sampler reads hammer's /metrics every interval while the run goes on.
type sampler struct {
	mu      sync.Mutex
	samples []map[string]float64
	stop    func()
	done    chan struct{}
}

// stallAfter is how long the deliverer may make no attempt, with deliveries
// waiting, before the sampler calls it a stall.
const stallAfter = 3 * time.Second

// startSampler samples until finish. onStall, when not nil, is called once
// if the deliverer stalls.
func startSampler(ctx context.Context, opsURL string, every time.Duration, onStall func()) *sampler {
	ctx, cancel := context.WithCancel(ctx)
	s := &sampler{stop: cancel, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(every)
		defer t.Stop()
		var lastAttempts float64
		var since time.Time
		for {
			v, _ := scrape(ctx, opsURL)
			s.mu.Lock()
			s.samples = append(s.samples, v) // nil when the scrape failed
			s.mu.Unlock()
			switch {
			case v == nil:
			case v["attempts"] != lastAttempts || v["q_deliver"] == 0:
				lastAttempts, since = v["attempts"], time.Time{}
			case since.IsZero():
				since = time.Now()
			case onStall != nil && time.Since(since) >= stallAfter:
				onStall()
				onStall = nil
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return s
}

func (s *sampler) finish() [](map[string]float64) {
	s.stop()
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.samples
}

// scrape sums, per column, the series whose line starts with its prefix.
func scrape(ctx context.Context, opsURL string) (map[string]float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, opsURL+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		for _, m := range sampled {
			if !strings.HasPrefix(line, m.prefix) {
				continue
			}
			if i := strings.LastIndexByte(line, ' '); i > 0 {
				f, _ := strconv.ParseFloat(line[i+1:], 64)
				out[m.column] += f
			}
		}
	}
	return out, sc.Err()
}

// printTimeline writes, per interval since start, how many of the counted
// deliveries were accepted by the API and how many were received, and with
// samples, each stage's progress in that interval and the queues at its
// end: a stall shows as intervals that receive nothing while a queue grows.
func (r *receivers) printTimeline(w io.Writer, start time.Time, every time.Duration, samples []map[string]float64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var acc, rec []int
	bucket := func(counts []int, t time.Time) []int {
		i := max(int(t.Sub(start)/every), 0)
		for len(counts) <= i {
			counts = append(counts, 0)
		}
		counts[i]++
		return counts
	}
	for i := range r.received {
		acc = bucket(acc, r.accepted[i])
		rec = bucket(rec, r.received[i])
	}
	fmt.Fprintf(w, "%8s %9s %9s", "since", "accepted", "received")
	for _, m := range sampled {
		fmt.Fprintf(w, " %9s", m.column)
	}
	fmt.Fprintln(w)
	at := func(counts []int, i int) int {
		if i < len(counts) {
			return counts[i]
		}
		return 0
	}
	for i := range max(len(acc), len(rec), len(samples)-1) {
		fmt.Fprintf(w, "%8s %9d %9d", time.Duration(i)*every, at(acc, i), at(rec, i))
		for _, m := range sampled {
			if i+1 >= len(samples) || samples[i] == nil || samples[i+1] == nil {
				fmt.Fprintf(w, " %9s", "")
				continue
			}
			v := samples[i+1][m.column]
			if !strings.HasPrefix(m.column, "q_") {
				v -= samples[i][m.column] // a counter: what happened in the interval
			}
			fmt.Fprintf(w, " %9.0f", v)
		}
		fmt.Fprintln(w)
	}
}
