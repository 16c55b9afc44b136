package ssrf

import "net/netip"

// entry is one range the default policy refuses and why.
type entry struct {
	prefix netip.Prefix
	reason string
}

func refuse(cidr, reason string) entry {
	return entry{prefix: netip.MustParsePrefix(cidr), reason: reason}
}

// metadata are cloud metadata and platform service addresses. They are
// refused even inside HAMMER_DELIVERY_ALSO_ALLOWED_CIDRS: opening a private
// or link-local range for a receiver must never open the machine's
// credentials. Only a complete allow list (HAMMER_DELIVERY_ALLOWED_CIDRS)
// that contains one lets it through.
var metadata = []entry{
	refuse("169.254.169.254/32", "a cloud metadata address"),       // AWS, GCP, Azure, OCI, DigitalOcean, ...
	refuse("169.254.170.2/32", "a cloud metadata address"),         // AWS ECS task metadata and credentials
	refuse("fd00:ec2::254/128", "a cloud metadata address"),        // AWS IMDS over IPv6
	refuse("100.100.100.200/32", "a cloud metadata address"),       // Alibaba Cloud
	refuse("168.63.129.16/32", "a cloud platform service address"), // Azure WireServer: a public address
	refuse("192.0.0.192/32", "a cloud metadata address"),           // Oracle Cloud (legacy)
}

// specialPurpose is every entry of IANA's "IPv4 Special-Purpose Address
// Registry" and "IPv6 Special-Purpose Address Registry" (RFC 6890 and the
// RFCs each entry names), as of 2025, plus the multicast, reserved and
// site-local blocks of IANA's "IPv4 Address Space" and "Internet Protocol
// Version 6 Address Space" registries. Every one is refused, including
// entries the registries mark globally reachable (anycast services, AS112,
// AMT): none is a webhook receiver. Addresses outside these tables pass only
// if they are global unicast (for IPv6: inside 2000::/3, see Check).
//
// Entries are most specific first, so that the reason names the most
// telling range. IPv4 addresses are checked in their 4-byte form: an
// IPv4-mapped address (::ffff:0:0/96) is the IPv4 address it maps, which is
// where the kernel connects, so it is judged as that address.
var specialPurpose = []entry{
	// IPv4 Special-Purpose Address Registry.
	refuse("0.0.0.0/8", "an unspecified or 'this network' address"), // RFC 791; 0.0.0.0/32 "this host" inside
	refuse("10.0.0.0/8", "a private address"),                       // RFC 1918
	refuse("100.64.0.0/10", "a carrier-grade NAT address"),          // RFC 6598 Shared Address Space
	refuse("127.0.0.0/8", "a loopback address"),                     // RFC 1122
	refuse("169.254.0.0/16", "a link-local address"),                // RFC 3927
	refuse("172.16.0.0/12", "a private address"),                    // RFC 1918
	refuse("192.0.0.0/29", "an IPv4 service continuity address"),    // RFC 7335
	refuse("192.0.0.8/32", "an IPv4 dummy address"),                 // RFC 7600
	refuse("192.0.0.9/32", "a PCP anycast address"),                 // RFC 7723
	refuse("192.0.0.10/32", "a TURN anycast address"),               // RFC 8155
	refuse("192.0.0.170/31", "a NAT64/DNS64 discovery address"),     // RFC 7050: .170 and .171
	refuse("192.0.0.0/24", "an IETF protocol address"),              // RFC 6890
	refuse("192.0.2.0/24", "a documentation address"),               // RFC 5737 TEST-NET-1
	refuse("192.31.196.0/24", "an AS112 address"),                   // RFC 7535
	refuse("192.52.193.0/24", "an AMT address"),                     // RFC 7450
	refuse("192.88.99.0/24", "a 6to4 relay anycast address"),        // RFC 7526 (deprecated), 6a44 RFC 6751
	refuse("192.168.0.0/16", "a private address"),                   // RFC 1918
	refuse("192.175.48.0/24", "an AS112 address"),                   // RFC 7534 Direct Delegation AS112
	refuse("198.18.0.0/15", "a benchmarking address"),               // RFC 2544
	refuse("198.51.100.0/24", "a documentation address"),            // RFC 5737 TEST-NET-2
	refuse("203.0.113.0/24", "a documentation address"),             // RFC 5737 TEST-NET-3
	refuse("255.255.255.255/32", "a broadcast address"),             // RFC 919 Limited Broadcast
	refuse("240.0.0.0/4", "a reserved address"),                     // RFC 1112
	// IPv4 Address Space: multicast.
	refuse("224.0.0.0/4", "a multicast address"), // RFC 5771

	// IPv6 Special-Purpose Address Registry.
	refuse("::1/128", "a loopback address"),                 // RFC 4291
	refuse("::/128", "an unspecified address"),              // RFC 4291
	refuse("::ffff:0:0/96", "an IPv4-mapped address"),       // RFC 4291 (only reached for invalid forms: Check unmaps first)
	refuse("64:ff9b::/96", "a NAT64 address"),               // RFC 6052 (see Check: judged by the IPv4 address inside)
	refuse("64:ff9b:1::/48", "a NAT64 local-use address"),   // RFC 8215
	refuse("100::/64", "a discard-only address"),            // RFC 6666
	refuse("100:0:0:1::/64", "a dummy IPv6 address"),        // RFC 9780
	refuse("2001::/32", "a Teredo address"),                 // RFC 4380
	refuse("2001:1::1/128", "a PCP anycast address"),        // RFC 7723
	refuse("2001:1::2/128", "a TURN anycast address"),       // RFC 8155
	refuse("2001:1::3/128", "a DNS-SD SRP anycast address"), // RFC 9665
	refuse("2001:2::/48", "a benchmarking address"),         // RFC 5180
	refuse("2001:3::/32", "an AMT address"),                 // RFC 7450
	refuse("2001:4:112::/48", "an AS112 address"),           // RFC 7535
	refuse("2001:10::/28", "an ORCHID address"),             // RFC 4843 (deprecated)
	refuse("2001:20::/28", "an ORCHIDv2 address"),           // RFC 7343
	refuse("2001:30::/28", "a drone remote ID address"),     // RFC 9374
	refuse("2001::/23", "an IETF protocol address"),         // RFC 2928
	refuse("2001:db8::/32", "a documentation address"),      // RFC 3849
	refuse("2002::/16", "a 6to4 address"),                   // RFC 3056: carries an IPv4 address
	refuse("2620:4f:8000::/48", "an AS112 address"),         // RFC 7534
	refuse("3fff::/20", "a documentation address"),          // RFC 9637
	refuse("5f00::/16", "a segment routing address"),        // RFC 9602
	refuse("fc00::/7", "a unique-local address"),            // RFC 4193
	refuse("fe80::/10", "a link-local address"),             // RFC 4291
	// Internet Protocol Version 6 Address Space: outside 2000::/3 nothing
	// is global unicast (Check refuses all of it); these name the reason.
	refuse("::ffff:0:0:0/96", "an IPv4-translated address"), // RFC 2765 SIIT
	refuse("::/96", "an IPv4-compatible address"),           // RFC 4291 (deprecated)
	refuse("fec0::/10", "a site-local address"),             // RFC 3879 (deprecated)
	refuse("ff00::/8", "a multicast address"),               // RFC 4291
}

// globalUnicast6 is IANA's global unicast space of IPv6; everything else is
// reserved, local or multicast.
var globalUnicast6 = netip.MustParsePrefix("2000::/3")

// nat64 is the well-known NAT64 prefix: 64:ff9b::a.b.c.d is a.b.c.d reached
// through the network's translator. An IPv6-only network with DNS64 reaches
// every IPv4-only receiver this way, so such an address is judged by the
// IPv4 address in its last 32 bits: 64:ff9b::8.8.8.8 passes,
// 64:ff9b::169.254.169.254 and 64:ff9b::10.0.0.1 do not. The local-use
// prefix 64:ff9b:1::/48 (RFC 8215) places the IPv4 address where the
// operator chose, so it stays refused unless opened.
var nat64 = netip.MustParsePrefix("64:ff9b::/96")
