package observability_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/hammer-webhooks/hammer/platform/testkit"
	"github.com/hammer-webhooks/hammer/tests/inproc"
)

// start runs hammer's four services on a fresh database and JetStream.
func start(t *testing.T) *inproc.Stack {
	t.Helper()
	return inproc.Start(t, testkit.NewDB(t), testkit.NewNATS(t), map[string]string{"HAMMER_DELIVERY_CONCURRENCY": "4"})
}

// receiver is a webhook endpoint that keeps the headers of what it gets.
type receiver struct {
	*httptest.Server
	mu      sync.Mutex
	headers []http.Header
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		_, _ = io.Copy(io.Discard, req.Body)
		r.mu.Lock()
		r.headers = append(r.headers, req.Header.Clone())
		r.mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) got() []http.Header {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]http.Header(nil), r.headers...)
}

// subscribe creates topic and a subscription of it to url.
func subscribe(t *testing.T, s *inproc.Stack, topic, url string) {
	t.Helper()
	s.MustCall(t, http.MethodPost, "/v1/topics", fmt.Sprintf(`{"topic": {"id": %q, "name": %q}}`, topic, topic), http.StatusOK)
	s.MustCall(t, http.MethodPost, "/v1/subscriptions", fmt.Sprintf(`{"subscription": {"id": %q, "topic_id": %q, "name": "s", "url": %q}}`, topic+"-sub", topic, url), http.StatusOK)
}
