package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hammer-webhooks/hammer/platform/events"
)

// Three nats-server processes form a JetStream cluster on loopback; every
// stream, consumer and bucket has three replicas and every service is
// given all three URLs. Mid-run the node leading the MESSAGES stream is
// killed (kill -9) and stays down: the run completes on the other two with
// nothing lost.
func TestCluster(t *testing.T) {
	s := newStack(t, stackOptions{natsNodes: 3, replicas: 3, ackWait: shortAckWait})
	ctx := context.Background()

	for _, name := range []string{events.StreamMessages, events.StreamDeliveries, events.StreamEvents} {
		st, err := s.js.Stream(ctx, name)
		require.NoError(t, err)
		info, err := st.Info(ctx)
		require.NoError(t, err)
		require.Equal(t, 3, info.Config.Replicas, "stream %s", name)
		require.NotNil(t, info.Cluster)
		require.Len(t, info.Cluster.Replicas, 2, "stream %s has a leader and two followers", name)
	}

	r := newLoadRun(t, s, "cluster-kill-leader")
	r.publish(t, 0.3)

	st, err := s.js.Stream(ctx, events.StreamMessages)
	require.NoError(t, err)
	info, err := st.Info(ctx)
	require.NoError(t, err)
	var victim *natsNode
	for _, n := range s.nats {
		if n.name == info.Cluster.Leader {
			victim = n
		}
	}
	require.NotNil(t, victim, "no node leads MESSAGES (leader %q)", info.Cluster.Leader)
	victim.proc.kill()
	t.Logf("killed %s, the leader of %s, with %d messages accepted", victim.name, events.StreamMessages, r.pub.count())

	// A new leader takes over among the two left.
	eventually(t, 30*time.Second, func() bool {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		info, err := st.Info(cctx)
		return err == nil && info.Cluster != nil && info.Cluster.Leader != "" && info.Cluster.Leader != victim.name
	}, "no new leader of %s", events.StreamMessages)

	r.drain(t, drainTimeout)
	r.verify(t)
}
