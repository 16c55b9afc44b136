package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// profiler fetches pprof profiles from hammer dev's ops address while the
// measured run goes on: a CPU profile from the start of publishing, and the
// allocation profile before and after the run (so that
// `go tool pprof -diff_base allocs-before.pprof allocs-after.pprof` shows
// what the run itself allocated) and the metrics after it.
type profiler struct {
	opsURL string
	dir    string
	prefix string
	cpu    chan error
}

func newProfiler(opsURL, dir, label string) (*profiler, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("-profile: %w", err)
	}
	prefix := ""
	if label != "" {
		prefix = label + "-"
	}
	return &profiler{opsURL: opsURL, dir: dir, prefix: prefix}, nil
}

// startCPU begins a CPU profile of d in the background, and takes the
// goroutines' stacks halfway through; waitCPU collects the CPU profile.
func (p *profiler) startCPU(ctx context.Context, d time.Duration) {
	p.cpu = make(chan error, 1)
	go func() {
		// Where every goroutine waits, halfway through the CPU profile.
		select {
		case <-time.After(d / 2):
			_ = p.fetch(ctx, "/debug/pprof/goroutine?debug=1", "goroutines.txt", 30*time.Second)
		case <-ctx.Done():
		}
	}()
	go func() {
		secs := max(int(d.Seconds()), 1)
		p.cpu <- p.fetch(ctx, fmt.Sprintf("/debug/pprof/profile?seconds=%d", secs), "cpu.pprof", d+30*time.Second)
	}()
}

func (p *profiler) waitCPU() error {
	if p.cpu == nil {
		return nil
	}
	return <-p.cpu
}

// allocs saves the cumulative allocation profile as allocs-<name>.pprof.
func (p *profiler) allocs(ctx context.Context, name string) error {
	return p.fetch(ctx, "/debug/pprof/allocs", "allocs-"+name+".pprof", 30*time.Second)
}

// metrics saves hammer's Prometheus metrics after the run as metrics.txt:
// batch sizes, flush and publish times, holds.
func (p *profiler) metrics(ctx context.Context) error {
	return p.fetch(ctx, "/metrics", "metrics.txt", 30*time.Second)
}

// consumers saves what JetStream says of hammer's durable consumers (pending,
// ack pending, pull requests waiting) as file.
func (p *profiler) consumers(ctx context.Context, natsURL, file string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	nc, err := nats.Connect(natsURL, nats.Name("loadgen"))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	var infos []*jetstream.ConsumerInfo
	for _, stream := range []string{"MESSAGES", "DELIVERIES", "EVENTS"} {
		st, err := js.Stream(ctx, stream)
		if err != nil {
			return err
		}
		list := st.ListConsumers(ctx)
		for info := range list.Info() {
			infos = append(infos, info)
		}
		if err := list.Err(); err != nil {
			return err
		}
	}
	out, err := json.MarshalIndent(infos, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(p.dir, p.prefix+file), out, 0o644)
}

func (p *profiler) fetch(ctx context.Context, path, file string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.opsURL+path, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("fetching %s: %w", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return fmt.Errorf("fetching %s: %s %s", path, resp.Status, b)
	}
	f, err := os.Create(filepath.Join(p.dir, p.prefix+file))
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return fmt.Errorf("fetching %s: %w", path, err)
	}
	return f.Close()
}
