package probe

import (
	"context"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/miekg/dns"
)

// Identity is what tells one nameserver from another in its answers: the
// NSID it sends (BIND's server-id; dnsroll's nameserver role sets it to the
// instance's ID) and the serial of a zone it serves.
type Identity struct {
	NSID   string
	Serial uint32
}

func (i Identity) String() string {
	nsid := i.NSID
	if nsid == "" {
		nsid = "none"
	}
	return fmt.Sprintf("NSID %s, serial %d", nsid, i.Serial)
}

// Identify asks addr over proto (udp or tcp) for zone's SOA with the NSID
// option, on a connection of its own, so that queries through a load
// balancer spread over its workers. It fails unless the answer is an
// authoritative NOERROR with the SOA.
func Identify(ctx context.Context, addr, proto, zone string, timeout time.Duration) (Identity, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(zone), dns.TypeSOA)
	m.RecursionDesired = false
	m.SetEdns0(1232, false)
	opt := m.IsEdns0()
	opt.Option = append(opt.Option, &dns.EDNS0_NSID{Code: dns.EDNS0NSID})
	c := &dns.Client{Net: proto, Timeout: timeout}
	r, _, err := c.ExchangeContext(ctx, m, addr)
	if err != nil {
		return Identity{}, fmt.Errorf("%s SOA %s at %s: %w", proto, zone, addr, err)
	}
	if r.Rcode != dns.RcodeSuccess || !r.Authoritative {
		return Identity{}, fmt.Errorf("%s SOA %s at %s: rcode %s, aa %v", proto, zone, addr, dns.RcodeToString[r.Rcode], r.Authoritative)
	}
	var id Identity
	found := false
	for _, rr := range r.Answer {
		if soa, ok := rr.(*dns.SOA); ok {
			id.Serial, found = soa.Serial, true
		}
	}
	if !found {
		return Identity{}, fmt.Errorf("%s SOA %s at %s: no SOA in the answer", proto, zone, addr)
	}
	if o := r.IsEdns0(); o != nil {
		for _, e := range o.Option {
			if n, ok := e.(*dns.EDNS0_NSID); ok {
				id.NSID = decodeNSID(n.Nsid)
			}
		}
	}
	return id, nil
}

// decodeNSID turns the hex that miekg/dns keeps NSIDs in back into text.
func decodeNSID(h string) string {
	b, err := hex.DecodeString(h)
	if err != nil {
		return h
	}
	return string(b)
}
