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

	"go.uber.org/zap"
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
	log      *zap.Logger
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
	// Log gets one line per refused connection, naming the host, the
	// address it resolved to and why it was refused. That detail goes to
	// the operator's log only: the attempt a subscription's owner reads
	// records a generic destination_not_allowed, so the guard does not
	// tell callers of the API how hammer's network resolves names.
	// Nil logs nothing.
	Log *zap.Logger
}

// New returns a guard.
func New(c Config) *Guard {
	g := &Guard{allowed: c.Allowed, also: c.AlsoAllowed, resolver: c.Resolver, dial: c.Dial, log: c.Log}
	if g.log == nil {
		g.log = zap.NewNop()
	}
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
//
// With a complete allow list, the list alone decides. Otherwise cloud
// metadata addresses are refused first, then AlsoAllowed opens its ranges,
// then every special-purpose range is refused, and what is left passes only
// if it is global unicast. Forms that carry an IPv4 address: IPv4-mapped
// addresses are judged as the IPv4 address (the kernel connects to it), a
// NAT64 address of the well-known prefix as the IPv4 address its translator
// reaches; IPv4-compatible, IPv4-translated, 6to4, Teredo and local-use
// NAT64 addresses are refused whatever they carry (see registry.go).
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
	if nat64.Contains(addr) {
		b := addr.As16()
		inner := netip.AddrFrom4([4]byte(b[12:]))
		if reason := g.Check(inner); reason != "" {
			return "a NAT64 address of " + inner.String() + ", " + reason
		}
		return ""
	}
	for _, d := range metadata {
		if d.prefix.Contains(addr) {
			return d.reason
		}
	}
	for _, p := range g.also {
		if p.Contains(addr) {
			return ""
		}
	}
	for _, d := range specialPurpose {
		if d.prefix.Contains(addr) {
			return d.reason
		}
	}
	if addr.Is6() && !globalUnicast6.Contains(addr) {
		return "not a global unicast address"
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
		var refused *RefusedError
		if errors.As(err, &refused) {
			g.log.Warn("delivery target refused by the SSRF guard", zap.String("host", refused.Host),
				zap.String("address", refused.Addr.String()), zap.String("reason", refused.Reason))
		}
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
