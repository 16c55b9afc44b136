// Package lifecycle runs a process's components together and stops them in
// order: the first component listed stops first, so the API stops taking
// requests before the workers behind it stop and the recorder flushes last.
package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"go.uber.org/zap"
)

// SignalContext is cancelled by SIGINT or SIGTERM.
func SignalContext(parent context.Context) (context.Context, context.CancelFunc) {
	return signal.NotifyContext(parent, os.Interrupt, syscall.SIGTERM)
}

// Component is one long-running part of a process. Run returns nil when its
// context is cancelled and an error when it cannot go on.
type Component struct {
	Name string
	Run  func(ctx context.Context) error
}

// Run starts every component and waits until ctx is cancelled or one of
// them returns. It then cancels them one by one in the order given, giving
// each up to stopTimeout to return, and reports the first failure.
func Run(ctx context.Context, log *zap.Logger, stopTimeout time.Duration, components ...Component) error {
	type result struct {
		index int
		err   error
	}
	results := make(chan result, len(components))
	cancels := make([]context.CancelFunc, len(components))
	done := make([]chan struct{}, len(components))
	for i, c := range components {
		cctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		cancels[i] = cancel
		done[i] = make(chan struct{})
		go func() {
			defer close(done[i])
			err := c.Run(cctx)
			results <- result{i, err}
		}()
	}

	var first error
	select {
	case <-ctx.Done():
		log.Info("stopping", zap.String("reason", context.Cause(ctx).Error()))
	case r := <-results:
		if r.err != nil {
			first = fmt.Errorf("%s: %w", components[r.index].Name, r.err)
			log.Error("component failed; stopping", zap.String("component", components[r.index].Name), zap.Error(r.err))
		} else {
			log.Info("component returned; stopping", zap.String("component", components[r.index].Name))
		}
	}

	for i, c := range components {
		cancels[i]()
		select {
		case <-done[i]:
		case <-time.After(stopTimeout):
			log.Error("component did not stop in time", zap.String("component", c.Name), zap.Duration("timeout", stopTimeout))
		}
	}
	// A component that missed its stop timeout may still send later; the
	// channel has room for every component, so it never blocks.
	for {
		select {
		case r := <-results:
			if r.err != nil && !errors.Is(r.err, context.Canceled) && first == nil {
				first = fmt.Errorf("%s: %w", components[r.index].Name, r.err)
			}
		default:
			return first
		}
	}
}
