package ssrf

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"
)

// registries is written out again here, from IANA's "IPv4 Special-Purpose
// Address Registry" and "IPv6 Special-Purpose Address Registry", rather than
// read from the guard's table, so that an entry dropped from the table fails
// the test instead of silently leaving it.
var registries = []string{
	// IPv4 Special-Purpose Address Registry.
	"0.0.0.0/8", "0.0.0.0/32", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
	"172.16.0.0/12", "192.0.0.0/24", "192.0.0.0/29", "192.0.0.8/32", "192.0.0.9/32", "192.0.0.10/32",
	"192.0.0.170/32", "192.0.0.171/32", "192.0.2.0/24", "192.31.196.0/24", "192.52.193.0/24",
	"192.88.99.0/24", "192.88.99.2/32", "192.168.0.0/16", "192.175.48.0/24", "198.18.0.0/15",
	"198.51.100.0/24", "203.0.113.0/24", "240.0.0.0/4", "255.255.255.255/32",
	// IPv6 Special-Purpose Address Registry.
	"::1/128", "::/128", "::ffff:0:0/96", "64:ff9b::/96", "64:ff9b:1::/48", "100::/64",
	"100:0:0:1::/64", "2001::/23", "2001::/32", "2001:1::1/128", "2001:1::2/128", "2001:1::3/128",
	"2001:2::/48", "2001:3::/32", "2001:4:112::/48", "2001:10::/28", "2001:20::/28", "2001:30::/28",
	"2001:db8::/32", "2002::/16", "2620:4f:8000::/48", "3fff::/20", "5f00::/16", "fc00::/7", "fe80::/10",
	// Outside the registries but never a receiver: multicast, IPv4-translated
	// (RFC 2765), IPv4-compatible, site-local.
	"224.0.0.0/4", "ff00::/8", "::ffff:0:0:0/96", "::/96", "fec0::/10",
}

// last is the highest address of p.
func last(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

func TestEverySpecialPurposeAddressIsRefused(t *testing.T) {
	t.Parallel()
	g := New(Config{})
	for _, cidr := range registries {
		p := netip.MustParsePrefix(cidr)
		for _, a := range []netip.Addr{p.Masked().Addr(), p.Masked().Addr().Next(), last(p).Prev(), last(p)} {
			if !p.Contains(a) {
				continue // a /32 or /128 has one address
			}
			require.NotEmpty(t, g.Check(a), "%s (in %s) passed the guard", a, cidr)
		}
	}
}

// The findings of the second security round, each refused with a reason
// that names the range.
func TestFormerlyPassingAddressesAreRefused(t *testing.T) {
	t.Parallel()
	g := New(Config{})
	for addr, reason := range map[string]string{
		"::ffff:0:a9fe:a9fe":     "IPv4-translated",
		"2001::1":                "Teredo",
		"2001:0:4136:e378::1":    "Teredo",
		"100::1":                 "discard-only",
		"fec0::1":                "site-local",
		"192.0.2.1":              "documentation",
		"198.51.100.7":           "documentation",
		"203.0.113.9":            "documentation",
		"2001:db8::1":            "documentation",
		"3fff::1":                "documentation",
		"168.63.129.16":          "cloud platform service",
		"169.254.170.2":          "cloud metadata",
		"64:ff9b::a9fe:a9fe":     "cloud metadata",
		"64:ff9b::a00:1":         "private",
		"64:ff9b:1::a00:1":       "NAT64 local-use",
		"2002:a00:1::1":          "6to4",
		"::a00:1":                "IPv4-compatible",
		"::ffff:169.254.169.254": "cloud metadata",
		"4000::1":                "not a global unicast",
		"fe80::1%eth0":           "link-local",
		"5f00::1":                "segment routing",
		"192.0.0.9":              "PCP anycast",
		"2620:4f:8000::1":        "AS112",
		"ff02::1":                "multicast",
		"239.255.255.250":        "multicast",
		"100.100.100.200":        "cloud metadata",
		"fd00:ec2::254":          "cloud metadata",
		"::ffff:0:0:0":           "IPv4-translated",
	} {
		require.Contains(t, g.Check(netip.MustParseAddr(addr)), reason, addr)
	}
}

func TestGlobalUnicastPasses(t *testing.T) {
	t.Parallel()
	g := New(Config{})
	for _, addr := range []string{
		"8.8.8.8", "1.1.1.1", "9.9.9.9", "1.0.0.1", "11.0.0.0", "126.255.255.255", "128.0.0.0",
		"100.63.255.255", "100.128.0.0", "169.253.255.255", "169.255.0.0", "172.15.255.255", "172.32.0.0",
		"192.0.1.0", "192.0.3.0", "192.167.255.255", "192.169.0.0", "198.17.255.255", "198.20.0.0",
		"223.255.255.255", "168.63.129.17",
		"2606:4700:4700::1111", "2a00:1450:4001::1", "2001:200::1", "2001:4860:4860::8888", "2003::1",
		"3fff:1000::1", "3ffe::1",
		// Embedded IPv4 forms judged by what they carry.
		"::ffff:8.8.8.8", "64:ff9b::808:808",
	} {
		require.Empty(t, g.Check(netip.MustParseAddr(addr)), addr)
	}
}

// Each special-purpose range opens with HAMMER_DELIVERY_ALSO_ALLOWED_CIDRS,
// as DESIGN's SSRF guard says (hammer dev opens loopback and private
// ranges this way), and with a complete allow list.
func TestSpecialPurposeRangesOpenWhenListed(t *testing.T) {
	t.Parallel()
	for _, cidr := range []string{"192.0.2.0/24", "2001::/32", "fec0::/10", "100::/64", "198.18.0.0/15", "4000::/2"} {
		p := netip.MustParsePrefix(cidr)
		also := New(Config{AlsoAllowed: []netip.Prefix{p}})
		only := New(Config{Allowed: []netip.Prefix{p}})
		for _, a := range []netip.Addr{p.Addr(), last(p)} {
			require.Empty(t, also.Check(a), "%s with %s also allowed", a, cidr)
			require.Empty(t, only.Check(a), "%s with %s allowed", a, cidr)
		}
	}
	// Metadata addresses stay refused inside an opened range, and a NAT64
	// address carrying one too.
	also := New(Config{AlsoAllowed: []netip.Prefix{netip.MustParsePrefix("169.254.0.0/16"), netip.MustParsePrefix("168.63.0.0/16")}})
	for _, addr := range []string{"169.254.169.254", "169.254.170.2", "168.63.129.16", "64:ff9b::a9fe:a9fe"} {
		require.NotEmpty(t, also.Check(netip.MustParseAddr(addr)), addr)
	}
	require.Empty(t, also.Check(netip.MustParseAddr("169.254.1.1")))
}
