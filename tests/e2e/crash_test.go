package e2e

import (
	"testing"
	"time"

	"github.com/hammer-webhooks/hammer/platform/events"
	"github.com/hammer-webhooks/hammer/platform/topology"
)

// drainTimeout bounds the wait for a run to finish after publishing: the
// messages a killed fanout or recorder held come back after their
// consumer's AckWait (30 s), a killed deliverer's after
// shortAckWait.
const drainTimeout = 3 * time.Minute

// shortAckWait is the deliverers' AckWait in the tests that restart no
// hammer service (see defaultAckWait): what a killed deliverer held, or
// what the deliverers held when NATS went away, comes back after it.
const shortAckWait = 10 * time.Second

// Each crash test breaks one part of a fresh stack while it handles
// loadMessages messages over two subscriptions, then checks that nothing
// was lost and counts what was delivered twice.
func TestCrash(t *testing.T) {
	t.Run("KillAPI", func(t *testing.T) {
		s := newStack(t, stackOptions{})
		r := newLoadRun(t, s, "kill-api")
		r.publish(t, 0.3)
		// Mid-request: the batch in flight is cut off and sent again.
		eventually(t, 5*time.Second, r.pub.posting.Load, "no batch in flight")
		s.restart(s.api) // kill -9, start again, wait for /readyz
		r.drain(t, drainTimeout)
		r.verify(t)
	})
	t.Run("KillFanout", func(t *testing.T) {
		s := newStack(t, stackOptions{})
		r := newLoadRun(t, s, "kill-fanout")
		r.publish(t, 0.3)
		held := s.killBusy(s.fanout, events.StreamMessages, topology.ConsumerFanout)
		t.Logf("killed fanout with %d messages unacknowledged", held)
		s.startAndWait(s.fanout)
		r.drain(t, drainTimeout)
		r.verify(t)
	})
	t.Run("KillDeliverer", func(t *testing.T) {
		s := newStack(t, stackOptions{ackWait: shortAckWait})
		r := newLoadRun(t, s, "kill-deliverer")
		r.publish(t, 0.3)
		// The other deliverer finishes the run alone, including what the
		// killed one held when it died.
		held := s.killBusy(s.deliverers[0], events.StreamDeliveries, topology.ConsumerDeliverer)
		t.Logf("killed deliverer-1 with %d deliveries unacknowledged by the two", held)
		r.drain(t, drainTimeout)
		r.verify(t)
	})
	t.Run("KillRecorder", func(t *testing.T) {
		s := newStack(t, stackOptions{})
		r := newLoadRun(t, s, "kill-recorder")
		r.publish(t, 0.3)
		held := s.killBusy(s.recorder, events.StreamEvents, topology.ConsumerRecorderEvents)
		t.Logf("killed recorder with %d events unacknowledged", held)
		s.startAndWait(s.recorder)
		r.drain(t, drainTimeout)
		r.verify(t)
	})
	t.Run("RestartNATS", func(t *testing.T) {
		s := newStack(t, stackOptions{ackWait: shortAckWait})
		r := newLoadRun(t, s, "restart-nats")
		r.publish(t, 0.3)
		n := s.nats[0]
		s.outages.down()
		n.proc.stop(15 * time.Second)
		probes := probeDown(t, s, 3*time.Second, false)
		t.Logf("nats-server down: %d probes answered 503 in time", probes)
		if err := n.proc.start(); err != nil {
			t.Fatal(err)
		}
		n.waitReady(t)
		s.outages.up()
		r.drain(t, drainTimeout)
		r.verify(t)
	})
	t.Run("RestartPostgres", func(t *testing.T) {
		s := newStack(t, stackOptions{ackWait: shortAckWait})
		r := newLoadRun(t, s, "restart-postgres")
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("---- last lines of postgres ----\n%s", sharedPG.proc.tail(40))
			}
			if !sharedPG.proc.running() {
				_ = sharedPG.start() // for the tests after this one
			}
		})
		r.publish(t, 0.3)
		s.outages.down()
		sharedPG.stop()
		probes := probeDown(t, s, 3*time.Second, true)
		t.Logf("PostgreSQL down: %d probes answered 503 in time", probes)
		if err := sharedPG.start(); err != nil {
			t.Fatal(err)
		}
		s.outages.up()
		r.drain(t, drainTimeout)
		r.verify(t)
	})
}
