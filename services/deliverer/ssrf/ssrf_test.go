package ssrf

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// names is a resolver for tests: each name maps to a list of answers, one
// per lookup (the last repeats), so a test can change what a name resolves
// to between lookups, as a rebinding attacker's DNS server does.
type names struct {
	mu      sync.Mutex
	answers map[string][][]string
	lookups map[string]int
}

func (n *names) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	answers, ok := n.answers[host]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	i := min(n.lookups[host], len(answers)-1)
	n.lookups[host]++
	var out []netip.Addr
	for _, s := range answers[i] {
		out = append(out, netip.MustParseAddr(s))
	}
	return out, nil
}

func newNames(answers map[string][][]string) *names {
	return &names{answers: answers, lookups: map[string]int{}}
}

// loopbackOnly is a dial hook that fails the test when asked for anything
// but loopback, and otherwise really dials (for the one test that reaches a
// server).
func loopbackOnly(t *testing.T, dialled *[]string) DialFunc {
	return func(ctx context.Context, network, address string) (net.Conn, error) {
		*dialled = append(*dialled, address)
		host, _, err := net.SplitHostPort(address)
		require.NoError(t, err)
		if !netip.MustParseAddr(host).IsLoopback() {
			t.Errorf("dial to %s: the guard let a non-loopback address through", address)
			return nil, errors.New("test: refusing to dial outside loopback")
		}
		return (&net.Dialer{}).DialContext(ctx, network, address)
	}
}

func TestDefaultPolicyRefusesInternalTargetsBeforeDialling(t *testing.T) {
	t.Parallel()
	resolver := newNames(map[string][][]string{
		"intranet.test":  {{"10.1.2.3"}},
		"mixed.test":     {{"8.8.8.8", "192.168.1.1"}},
		"localhost.test": {{"127.0.0.1"}},
		"metadata.test":  {{"169.254.169.254"}},
		"mapped.test":    {{"::ffff:10.0.0.1"}},
	})
	var dialled []string
	g := New(Config{Resolver: resolver, Dial: loopbackOnly(t, &dialled)})

	cases := []struct{ host, reason string }{
		{"127.0.0.1", "loopback"},
		{"127.9.9.9", "loopback"},
		{"::1", "loopback"},
		{"10.0.0.1", "private"},
		{"172.16.0.1", "private"},
		{"172.31.255.254", "private"},
		{"192.168.0.1", "private"},
		{"100.64.0.1", "carrier-grade NAT"},
		{"169.254.169.254", "cloud metadata"},
		{"169.254.1.1", "link-local"},
		{"fe80::1", "link-local"},
		{"fd00:ec2::254", "cloud metadata"},
		{"100.100.100.200", "cloud metadata"},
		{"fc00::1", "unique-local"},
		{"224.0.0.1", "multicast"},
		{"ff02::1", "multicast"},
		{"0.0.0.0", "unspecified"},
		{"::", "unspecified"},
		{"255.255.255.255", "broadcast"},
		{"::ffff:127.0.0.1", "loopback"},
		{"64:ff9b::a00:1", "NAT64"},
		{"intranet.test", "private"},
		{"localhost.test", "loopback"},
		{"metadata.test", "cloud metadata"},
		{"mixed.test", "private"}, // one bad answer among good ones is enough
		{"mapped.test", "private"},
	}
	for _, c := range cases {
		_, err := g.DialContext(context.Background(), "tcp", net.JoinHostPort(c.host, "80"))
		var refused *RefusedError
		require.ErrorAs(t, err, &refused, c.host)
		require.Contains(t, err.Error(), "refused by SSRF guard", c.host)
		require.Contains(t, err.Error(), c.reason, c.host)
	}
	require.Empty(t, dialled, "a refused target was dialled")
}

func TestRebindingNameIsDialledOnlyAtTheCheckedAddress(t *testing.T) {
	t.Parallel()
	// The first lookup answers a public address, every later one a private
	// address. The guard must connect to what it checked, not look again.
	resolver := newNames(map[string][][]string{"rebind.test": {{"8.8.4.4"}, {"10.0.0.7"}}})
	var dialled []string
	g := New(Config{Resolver: resolver, Dial: func(_ context.Context, _, address string) (net.Conn, error) {
		dialled = append(dialled, address)
		return nil, errors.New("test: not dialling a public address")
	}})
	_, err := g.DialContext(context.Background(), "tcp", "rebind.test:443")
	require.ErrorContains(t, err, "not dialling")
	require.Equal(t, []string{"8.8.4.4:443"}, dialled)
	require.Equal(t, 1, resolver.lookups["rebind.test"])

	// The next connection resolves again, sees the private address and is
	// refused without a dial.
	_, err = g.DialContext(context.Background(), "tcp", "rebind.test:443")
	var refused *RefusedError
	require.ErrorAs(t, err, &refused)
	require.Equal(t, "10.0.0.7", refused.Addr.String())
	require.Len(t, dialled, 1)
}

func TestAllowListIsComplete(t *testing.T) {
	t.Parallel()
	allowed, err := ParsePrefixes([]string{"127.0.0.0/8", " 10.1.0.0/16", "192.0.2.1"})
	require.NoError(t, err)
	resolver := newNames(map[string][][]string{"receiver.test": {{"127.0.0.1"}}})
	var dialled []string
	g := New(Config{Allowed: allowed, Resolver: resolver, Dial: loopbackOnly(t, &dialled)})

	require.Empty(t, g.Check(netip.MustParseAddr("10.1.2.3")))
	require.Empty(t, g.Check(netip.MustParseAddr("192.0.2.1")))
	require.Contains(t, g.Check(netip.MustParseAddr("10.2.0.1")), "HAMMER_DELIVERY_ALLOWED_CIDRS")
	// A public address outside the list is refused too: the list replaces
	// the default policy.
	require.Contains(t, g.Check(netip.MustParseAddr("8.8.8.8")), "HAMMER_DELIVERY_ALLOWED_CIDRS")

	// An allowed CIDR is reached, through a name.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "reached")
	}))
	t.Cleanup(srv.Close)
	_, port, err := net.SplitHostPort(srv.Listener.Addr().String())
	require.NoError(t, err)
	client := &http.Client{Transport: &http.Transport{DialContext: g.DialContext}}
	resp, err := client.Get("http://receiver.test:" + port + "/")
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, "reached", string(body))
	require.Equal(t, []string{"127.0.0.1:" + port}, dialled)
}

func TestResolveFailureIsADNSError(t *testing.T) {
	t.Parallel()
	g := New(Config{Resolver: newNames(nil), Dial: func(context.Context, string, string) (net.Conn, error) {
		t.Error("dialled after a failed lookup")
		return nil, errors.New("unreachable")
	}})
	_, err := g.DialContext(context.Background(), "tcp", "nowhere.test:80")
	var dnsErr *net.DNSError
	require.ErrorAs(t, err, &dnsErr)
	require.True(t, dnsErr.IsNotFound)
}

func TestDevAllowedCIDRsParse(t *testing.T) {
	t.Parallel()
	prefixes, err := ParsePrefixes(DevAllowedCIDRs())
	require.NoError(t, err)
	g := New(Config{Allowed: prefixes})
	for _, ok := range []string{"127.0.0.1", "::1", "10.0.0.1", "172.16.0.1", "192.168.1.1", "fd12::1"} {
		require.Empty(t, g.Check(netip.MustParseAddr(ok)), ok)
	}
	require.NotEmpty(t, g.Check(netip.MustParseAddr("169.254.169.254")))
}

// hammer dev opens loopback and private ranges on top of the default policy:
// a developer's receivers run there, public receivers stay reachable, and
// metadata addresses stay refused even when their range is opened.
func TestAlsoAllowedOpensRangesButNeverMetadata(t *testing.T) {
	t.Parallel()
	also, err := ParsePrefixes(append(DevAllowedCIDRs(), "169.254.0.0/16", "fd00::/8", "100.64.0.0/10"))
	require.NoError(t, err)
	g := New(Config{AlsoAllowed: also})
	for _, ok := range []string{"127.0.0.1", "::1", "10.1.2.3", "172.20.0.1", "192.168.1.1", "fd12::1", "169.254.1.1", "8.8.8.8", "2606:4700:4700::1111"} {
		require.Empty(t, g.Check(netip.MustParseAddr(ok)), ok)
	}
	for _, refused := range []string{"169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200", "64:ff9b::a9fe:a9fe"} {
		require.Contains(t, g.Check(netip.MustParseAddr(refused)), "cloud metadata", refused)
	}
	require.Contains(t, g.Check(netip.MustParseAddr("224.0.0.1")), "multicast", "ranges not opened keep the default")

	// A complete allow list wins over AlsoAllowed.
	only, err := ParsePrefixes([]string{"10.0.0.0/8"})
	require.NoError(t, err)
	g = New(Config{Allowed: only, AlsoAllowed: also})
	require.Empty(t, g.Check(netip.MustParseAddr("10.0.0.1")))
	require.NotEmpty(t, g.Check(netip.MustParseAddr("127.0.0.1")))
}

// The address a name resolved to is the operator's to see: the guard logs
// it, while the attempt records only destination_not_allowed.
func TestRefusalIsLoggedWithTheAddress(t *testing.T) {
	t.Parallel()
	core, logs := observer.New(zap.WarnLevel)
	g := New(Config{Log: zap.New(core), Resolver: newNames(map[string][][]string{"intranet.test": {{"10.9.8.7"}}})})
	_, err := g.DialContext(context.Background(), "tcp", "intranet.test:443")
	var refused *RefusedError
	require.ErrorAs(t, err, &refused)
	entries := logs.All()
	require.Len(t, entries, 1)
	fields := entries[0].ContextMap()
	require.Equal(t, "intranet.test", fields["host"])
	require.Equal(t, "10.9.8.7", fields["address"])
	require.Equal(t, "a private address", fields["reason"])
}
