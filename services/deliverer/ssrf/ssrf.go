// Package ssrf keeps deliveries from being turned against the network hammer
// runs in: a subscription URL is chosen by whoever can call the API, so
// before any connection the host is resolved once, every address it resolves
// to is checked, and only a checked address is dialled. A name that resolves
// to a public address when checked and to an internal one a moment later
// (DNS rebinding) therefore never reaches the internal one.
package ssrf

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// Resolver looks up the addresses of a host. *net.Resolver is one; tests
// pass a map of names so that nothing leaves loopback.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// DialFunc opens a connection to an address that has passed the guard.
type DialFunc func(ctx context.Context, network, address string) (net.Conn, error)

// RefusedError is a target the guard will not connect to. It is a failed
// attempt with a clear reason, never a request.
type RefusedError struct {
	Host   string
	Addr   netip.Addr
	Reason string
}

func (e *RefusedError) Error() string {
	if e.Host == e.Addr.String() {
		return fmt.Sprintf("refused by SSRF guard: %s is %s", e.Addr, e.Reason)
	}
	return fmt.Sprintf("refused by SSRF guard: %s resolves to %s, %s", e.Host, e.Addr, e.Reason)
}

// metadataRanges is how many entries of denied are metadata addresses.
const metadataRanges = 3

// denied is the default policy: every range a webhook has no business
// reaching, most specific first so that the reason names the most telling
// range (the metadata address before link-local).
var denied = []struct {
	prefix netip.Prefix
	reason string
}{
	{netip.MustParsePrefix("169.254.169.254/32"), "a cloud metadata address"},
	{netip.MustParsePrefix("fd00:ec2::254/128"), "a cloud metadata address"},
	{netip.MustParsePrefix("100.100.100.200/32"), "a cloud metadata address"},
	// metadataRanges entries above this line are refused even inside
	// AlsoAllowed.
	{netip.MustParsePrefix("0.0.0.0/8"), "an unspecified or 'this network' address"},
	{netip.MustParsePrefix("127.0.0.0/8"), "a loopback address"},
	{netip.MustParsePrefix("10.0.0.0/8"), "a private address"},
	{netip.MustParsePrefix("172.16.0.0/12"), "a private address"},
	{netip.MustParsePrefix("192.168.0.0/16"), "a private address"},
	{netip.MustParsePrefix("100.64.0.0/10"), "a carrier-grade NAT address"},
	{netip.MustParsePrefix("169.254.0.0/16"), "a link-local address"},
	{netip.MustParsePrefix("192.0.0.0/24"), "an IETF protocol address"},
	{netip.MustParsePrefix("198.18.0.0/15"), "a benchmarking address"},
	{netip.MustParsePrefix("224.0.0.0/4"), "a multicast address"},
	{netip.MustParsePrefix("240.0.0.0/4"), "a reserved or broadcast address"},
	{netip.MustParsePrefix("::1/128"), "a loopback address"},
	{netip.MustParsePrefix("::/128"), "an unspecified address"},
	// IPv4-compatible, NAT64 and 6to4 addresses carry an IPv4 address
	// inside; refusing them keeps that address from bypassing the checks.
	{netip.MustParsePrefix("::/96"), "an IPv4-compatible address"},
	{netip.MustParsePrefix("64:ff9b::/96"), "a NAT64 address"},
	{netip.MustParsePrefix("64:ff9b:1::/48"), "a NAT64 address"},
	{netip.MustParsePrefix("2002::/16"), "a 6to4 address"},
	{netip.MustParsePrefix("fe80::/10"), "a link-local address"},
	{netip.MustParsePrefix("fc00::/7"), "a unique-local address"},
	{netip.MustParsePrefix("ff00::/8"), "a multicast address"},
}

// DevAllowedCIDRs is what hammer dev opens on top of the default policy when
// neither HAMMER_DELIVERY_ALLOWED_CIDRS nor HAMMER_DELIVERY_ALSO_ALLOWED_CIDRS
// is set: loopback and private ranges, where a developer's receivers run.
// Public receivers stay reachable and metadata addresses stay refused. It is
// a list, not a flag, so that hammer dev can log exactly what it opens.
func DevAllowedCIDRs() []string {
	return []string{"127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"}
}

// Guard checks addresses and dials only checked ones.
type Guard struct {
	allowed  []netip.Prefix
	also     []netip.Prefix
	resolver Resolver
	dial     DialFunc
}

// Config builds a Guard.
type Config struct {
	// Allowed, when not empty, is the complete allow list: an address is
	// allowed if and only if one of these contains it. Empty means the
	// default policy: every address except the denied ranges.
	Allowed []netip.Prefix
	// AlsoAllowed, used when Allowed is empty, opens these ranges on top of
	// the default policy. Cloud metadata addresses stay refused whatever it
	// holds: only a complete allow list naming them lets them through.
	AlsoAllowed []netip.Prefix
	// Resolver defaults to net.DefaultResolver.
	Resolver Resolver
	// Dial defaults to a net.Dialer's DialContext. It is only ever called
	// with an IP address that passed the guard.
	Dial DialFunc
}

// New returns a guard.
func New(c Config) *Guard {
	g := &Guard{allowed: c.Allowed, also: c.AlsoAllowed, resolver: c.Resolver, dial: c.Dial}
	if g.resolver == nil {
		g.resolver = net.DefaultResolver
	}
	if g.dial == nil {
		g.dial = (&net.Dialer{}).DialContext
	}
	return g
}

// ParsePrefixes reads an allow list such as HAMMER_DELIVERY_ALLOWED_CIDRS; a
// bare address is a single host.
func ParsePrefixes(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range list {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if !strings.Contains(s, "/") {
			a, err := netip.ParseAddr(s)
			if err != nil {
				return nil, fmt.Errorf("%q is neither a CIDR nor an IP address", s)
			}
			a = a.Unmap()
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("%q is not a CIDR (e.g. 10.0.0.0/8)", s)
		}
		if p.Addr().Is4In6() {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// Check returns why addr must not be reached, or "" when it may be.
func (g *Guard) Check(addr netip.Addr) string {
	addr = addr.WithZone("").Unmap()
	if !addr.IsValid() {
		return "not an IP address"
	}
	if len(g.allowed) > 0 {
		for _, p := range g.allowed {
			if p.Contains(addr) {
				return ""
			}
		}
		return "outside HAMMER_DELIVERY_ALLOWED_CIDRS"
	}
	for i, d := range denied {
		if i == metadataRanges {
			for _, p := range g.also {
				if p.Contains(addr) {
					return ""
				}
			}
		}
		if d.prefix.Contains(addr) {
			return d.reason
		}
	}
	return ""
}

// Resolve returns the addresses of host after checking every one of them:
// if any is refused, the whole host is, since the system resolver of
// another component could pick that one.
func (g *Guard) Resolve(ctx context.Context, host string) ([]netip.Addr, error) {
	if a, err := netip.ParseAddr(host); err == nil {
		if reason := g.Check(a); reason != "" {
			return nil, &RefusedError{Host: host, Addr: a, Reason: reason}
		}
		return []netip.Addr{a.Unmap()}, nil
	}
	addrs, err := g.resolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil, err
	}
	if len(addrs) == 0 {
		return nil, &net.DNSError{Err: "no addresses", Name: host, IsNotFound: true}
	}
	for _, a := range addrs {
		if reason := g.Check(a); reason != "" {
			return nil, &RefusedError{Host: host, Addr: a.WithZone("").Unmap(), Reason: reason}
		}
	}
	out := make([]netip.Addr, len(addrs))
	for i, a := range addrs {
		out[i] = a.Unmap()
	}
	return out, nil
}

// DialContext is an http.Transport's DialContext: it resolves the host of
// address once, checks the result and connects to the checked addresses in
// turn, never resolving again.
func (g *Guard) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return nil, fmt.Errorf("dialing %q: %w", address, err)
	}
	addrs, err := g.Resolve(ctx, host)
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, a := range addrs {
		conn, err := g.dial(ctx, network, net.JoinHostPort(a.String(), port))
		if err == nil {
			return conn, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	if len(errs) == 1 {
		return nil, errs[0]
	}
	return nil, errors.Join(errs...)
}
