package testkit

import (
	"bytes"
	"sync"
)

// Output collects what a child process writes, safely across the
// goroutines that copy its stdout and stderr and the test that reads it
// for a failure message.
type Output struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (o *Output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.Write(p)
}

func (o *Output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}
