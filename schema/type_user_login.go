package schema

import "net/netip"

// userLogin is "user.login": a user signed in, from an optional IPv4 or
// IPv6 address whose version the enrichment records.
func userLogin() EventType {
	return EventType{
		Name: "user.login",
		Check: checkPayload(func(p object) Enrichment {
			p.requiredString("user_id")
			ip, hasIP := p.optionalString("ip", ipAddress)
			if p.failed() {
				return nil
			}
			enrichment := Enrichment{}
			if hasIP {
				enrichment["ip_version"] = ipVersion(netip.MustParseAddr(ip))
			}
			return enrichment
		}),
	}
}

// ipAddress accepts an IPv4 or IPv6 address in its textual form.
func ipAddress(s string) string {
	if _, err := netip.ParseAddr(s); err != nil {
		return "must be an IPv4 or IPv6 address such as 203.0.113.7 or 2001:db8::1"
	}
	return ""
}

// ipVersion is 4 for an IPv4 address and 6 for any IPv6 one, including an
// IPv4-mapped IPv6 address such as ::ffff:203.0.113.7, as it was written.
func ipVersion(addr netip.Addr) int {
	if addr.Is4() {
		return 4
	}
	return 6
}
