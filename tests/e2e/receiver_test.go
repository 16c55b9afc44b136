package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// envelope is the body a receiver gets.
type envelope struct {
	TopicID        string `json:"topic_id"`
	SubscriptionID string `json:"subscription_id"`
	MessageID      string `json:"message_id"`
	SecretToken    string `json:"secret_token"`
	Data           []byte `json:"data"`
	CreatedAt      string `json:"created_at"`
}

// request is one request a receiver got.
type request struct {
	at     time.Time
	path   string
	header http.Header
	body   []byte
	env    envelope
}

// behaviour is how a receiver answers: status after delay; stall holds
// the request until the client gives up.
type behaviour struct {
	status int
	delay  time.Duration
	stall  bool
}

// receiver is a webhook endpoint in the test: it records every request
// and answers as told, first from a script (one behaviour per request),
// then with its standing behaviour.
type receiver struct {
	url string
	srv *http.Server

	mu       sync.Mutex
	requests []request
	script   []behaviour
	standing behaviour
	counts   map[string]int // message ID → requests
	done     chan struct{}
}

func newReceiver(t testing.TB, script ...behaviour) *receiver {
	r := &receiver{script: script, standing: behaviour{status: http.StatusOK}, counts: map[string]int{}, done: make(chan struct{})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	r.url = "http://" + ln.Addr().String()
	r.srv = &http.Server{Handler: http.HandlerFunc(r.serve), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = r.srv.Serve(ln) }()
	t.Cleanup(func() {
		close(r.done)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = r.srv.Shutdown(ctx)
	})
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	got := request{at: time.Now(), path: req.URL.Path, header: req.Header.Clone(), body: body}
	_ = json.Unmarshal(body, &got.env)
	r.mu.Lock()
	r.requests = append(r.requests, got)
	r.counts[got.env.MessageID]++
	b := r.standing
	if len(r.script) > 0 {
		b, r.script = r.script[0], r.script[1:]
	}
	r.mu.Unlock()
	if b.stall {
		select {
		case <-req.Context().Done():
		case <-r.done:
		}
		return
	}
	if b.delay > 0 {
		select {
		case <-time.After(b.delay):
		case <-req.Context().Done():
			return
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(b.status)
	fmt.Fprintf(w, `{"ok": %v}`, b.status < 300)
}

// set changes the standing behaviour.
func (r *receiver) set(b behaviour) {
	r.mu.Lock()
	r.standing = b
	r.mu.Unlock()
}

// got is every request so far.
func (r *receiver) got() []request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]request(nil), r.requests...)
}

// count is the number of requests so far.
func (r *receiver) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.requests)
}

// perMessage is how many requests each message ID got.
func (r *receiver) perMessage() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]int, len(r.counts))
	for k, v := range r.counts {
		out[k] = v
	}
	return out
}
