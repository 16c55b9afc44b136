package pipeline_test

import (
	"testing"

	"github.com/hammer-webhooks/hammer/platform/testkit"
	"github.com/hammer-webhooks/hammer/tests/inproc"
)

// setup starts every service on a fresh database and JetStream.
func setup(t *testing.T) *inproc.Stack {
	t.Helper()
	return inproc.Start(t, testkit.NewDB(t), testkit.NewNATS(t))
}
