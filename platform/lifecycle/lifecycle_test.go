package lifecycle_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	"github.com/hammer-webhooks/hammer/platform/lifecycle"
)

// recorder notes the order in which components see their cancellation.
type recorder struct {
	mu    sync.Mutex
	order []string
}

func (r *recorder) component(name string) lifecycle.Component {
	return lifecycle.Component{Name: name, Run: func(ctx context.Context) error {
		<-ctx.Done()
		r.mu.Lock()
		r.order = append(r.order, name)
		r.mu.Unlock()
		return nil
	}}
}

func TestStopsInOrderOnCancel(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	r := &recorder{}
	done := make(chan error)
	go func() {
		done <- lifecycle.Run(ctx, zap.NewNop(), time.Second, r.component("api"), r.component("fanout"), r.component("recorder"))
	}()
	cancel()
	require.NoError(t, <-done)
	require.Equal(t, []string{"api", "fanout", "recorder"}, r.order)
}

func TestFailureStopsTheOthersAndIsReported(t *testing.T) {
	t.Parallel()
	r := &recorder{}
	boom := errors.New("boom")
	err := lifecycle.Run(context.Background(), zap.NewNop(), time.Second,
		r.component("api"),
		lifecycle.Component{Name: "broken", Run: func(context.Context) error { return boom }},
		r.component("recorder"))
	require.ErrorIs(t, err, boom)
	require.ErrorContains(t, err, "broken")
	require.Equal(t, []string{"api", "recorder"}, r.order)
}

func TestStuckComponentDoesNotBlockShutdownForever(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	release := make(chan struct{})
	defer close(release)
	stuck := lifecycle.Component{Name: "stuck", Run: func(context.Context) error { <-release; return nil }}
	done := make(chan error)
	go func() { done <- lifecycle.Run(ctx, zap.NewNop(), 50*time.Millisecond, stuck) }()
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run waited for a stuck component beyond its stop timeout")
	}
}
