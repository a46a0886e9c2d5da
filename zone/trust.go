package zone

import (
	"fmt"
	"sort"
	"strings"

	"github.com/miekg/dns"
)

// CheckDelegationKeys checks the chain of trust from parent to child when
// both zones are known: if the parent holds DS records for the child, one
// of them must match a key of the child's DNSKEY set (same key tag,
// algorithm and digest), and the child must be signed. Otherwise
// validating resolvers find every answer of the child bogus: that is an
// outage of the child zone, and the way it happens is a key rolled in the
// child before its DS reached the parent.
// A parent without DS for the child (an unsigned delegation) passes.
func CheckDelegationKeys(parent, child *Zone) error {
	ds := parent.RRset(child.Origin(), dns.TypeDS)
	if len(ds) == 0 {
		return nil
	}
	keys := child.DNSKEYs()
	if !child.Signed() {
		// Its keys sign nothing: named serves it without signatures.
		keys = nil
	}
	var tags []string
	for _, rr := range ds {
		d, ok := rr.(*dns.DS)
		if !ok {
			continue
		}
		tags = append(tags, fmt.Sprint(d.KeyTag))
		for _, kr := range keys {
			k, ok := kr.(*dns.DNSKEY)
			if !ok || k.KeyTag() != d.KeyTag || k.Algorithm != d.Algorithm {
				continue
			}
			if got := k.ToDS(d.DigestType); got != nil && strings.EqualFold(got.Digest, d.Digest) {
				return nil
			}
		}
	}
	sort.Strings(tags)
	if len(keys) == 0 && !child.Signed() && len(child.DNSKEYs()) > 0 {
		return fmt.Errorf("zone %s is not signed, but its parent %s holds DS records for it (key tags %s): it holds DNSKEY records but no signatures, so validating resolvers would find it bogus; name the signed zone file, or remove the DS from the parent first",
			child.Origin(), parent.Origin(), strings.Join(tags, ", "))
	}
	if len(keys) == 0 {
		return fmt.Errorf("zone %s has no DNSKEY, but its parent %s holds DS records for it (key tags %s): validating resolvers would find it bogus; remove the DS from the parent first, or sign the zone",
			child.Origin(), parent.Origin(), strings.Join(tags, ", "))
	}
	return fmt.Errorf("zone %s: no key of its DNSKEY set matches the DS records its parent %s holds (key tags %s): validating resolvers would find it bogus; publish the new key's DS in the parent first, or keep the old key",
		child.Origin(), parent.Origin(), strings.Join(tags, ", "))
}
