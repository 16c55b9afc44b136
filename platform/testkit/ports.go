package testkit

import (
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
)

var (
	portsMu sync.Mutex
	given   = map[int]bool{}
)

// FreePort is a loopback TCP port that nothing listens on now, for a child
// process to bind. It is picked at random below the kernel's ephemeral
// range: a port asked of the kernel with ":0" comes from that range, and any
// outgoing connection of a test running in parallel (a database pool, a NATS
// client) can take it in the moment between the check and the child's bind.
// No port is given twice in one test binary.
func FreePort(t testing.TB) int {
	t.Helper()
	low, high := portRange()
	portsMu.Lock()
	defer portsMu.Unlock()
	for range 200 {
		p := low + rand.IntN(high-low)
		if given[p] {
			continue
		}
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			continue
		}
		_ = ln.Close()
		given[p] = true
		return p
	}
	t.Fatalf("no free loopback port in [%d, %d)", low, high)
	return 0
}

// FreeAddr is FreePort as a host:port on 127.0.0.1.
func FreeAddr(t testing.TB) string {
	t.Helper()
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(FreePort(t)))
}

// portRange is the span of ports FreePort draws from: the 12,000 ports
// just below the first ephemeral port, and never below 1024.
func portRange() (low, high int) {
	high = 32768 // Linux's default first ephemeral port
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil && n > 2048 {
				high = n
			}
		}
	}
	low = max(high-12000, 1024)
	return low, high
}
