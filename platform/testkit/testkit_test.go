package testkit_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hammer-webhooks/hammer/platform/testkit"
)

func TestDatabasesAreIsolatedAndMigrated(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a, b := testkit.NewDB(t), testkit.NewDB(t)
	require.NotEqual(t, a.URL, b.URL)
	_, err := a.Pool.Exec(ctx, "INSERT INTO topics (id, name, created_at, updated_at) VALUES ('t', 'T', now(), now())")
	require.NoError(t, err, "the clone carries the schema")
	var n int
	require.NoError(t, b.Pool.QueryRow(ctx, "SELECT count(*) FROM topics").Scan(&n))
	require.Zero(t, n, "another test's database does not see the row")
}

func TestNATSIsOwnAndHasTopology(t *testing.T) {
	t.Parallel()
	a, b := testkit.NewNATS(t), testkit.NewNATS(t)
	require.NotEqual(t, a.URL, b.URL)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := a.JS.Stream(ctx, "MESSAGES")
	require.NoError(t, err)
}

func TestFreePortsAreDistinctBindableAndOutsideTheEphemeralRange(t *testing.T) {
	t.Parallel()
	firstEphemeral := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		_, _ = fmt.Sscan(string(b), &firstEphemeral)
	}
	seen := map[int]bool{}
	for range 50 {
		p := testkit.FreePort(t)
		require.False(t, seen[p], "port %d given twice", p)
		seen[p] = true
		require.Less(t, p, firstEphemeral, "below the ephemeral ports")
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		require.NoError(t, err, "port %d can be bound", p)
		require.NoError(t, ln.Close())
	}
}
