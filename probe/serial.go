package probe

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/dnsroll/dnsroll/zone"
)

// SOASerial asks addr for zone's SOA (one attempt over UDP, TCP if
// truncated) and returns its serial, so a rollout can tell which version of
// a zone a server has loaded. The answer must be authoritative NOERROR.
func SOASerial(ctx context.Context, addr, zoneName string, timeout time.Duration) (uint32, error) {
	p := &Prober{Timeout: timeout, Attempts: 1}
	name := dns.CanonicalName(zoneName)
	fail := func(format string, args ...any) (uint32, error) {
		return 0, fmt.Errorf("SOA serial of %s from %s: %s", name, addr, fmt.Sprintf(format, args...))
	}
	rep, err := p.query(ctx, addr, "udp", name, dns.TypeSOA, false)
	r := rep.msg
	switch {
	case err != nil:
		return fail("%s", describe(err, p))
	case r.Rcode != dns.RcodeSuccess:
		return fail("rcode %s, want NOERROR", rcode(r.Rcode))
	case !r.Authoritative:
		return fail("missing AA flag: the server is not authoritative for the zone")
	}
	for _, rr := range r.Answer {
		if soa, ok := rr.(*dns.SOA); ok && dns.CanonicalName(soa.Hdr.Name) == name {
			return soa.Serial, nil
		}
	}
	return fail("no SOA record in the answer")
}

// CheckSerials verifies that every report saw, for each zone, the same SOA
// serial as every other report and, where want names the zone, the serial
// want expects. Zones are compared by canonical name. The error lists every
// disagreement, naming servers and serials.
func CheckSerials(reports []Report, want map[string]uint32) error {
	wants := map[string]uint32{}
	zones := map[string]bool{}
	for z, s := range want {
		wants[dns.CanonicalName(z)] = s
		zones[dns.CanonicalName(z)] = true
	}
	for _, r := range reports {
		for z := range r.Serials {
			zones[dns.CanonicalName(z)] = true
		}
	}
	var problems []string
	for _, z := range slices.Sorted(maps.Keys(zones)) {
		w, hasWant := wants[z]
		var seen []string
		distinct := map[uint32]bool{}
		for _, r := range reports {
			s, ok := serialOf(r, z)
			if !ok {
				problems = append(problems, fmt.Sprintf("%s: no SOA serial seen for %s", r.Addr, z))
				continue
			}
			seen = append(seen, fmt.Sprintf("%s has %d", r.Addr, s))
			distinct[s] = true
			if hasWant && s != w {
				how := "not"
				switch zone.SerialCompare(s, w) {
				case -1:
					how = "behind"
				case 1:
					how = "ahead of"
				}
				problems = append(problems, fmt.Sprintf("%s serves %s serial %d, want %d (%s the expected serial)", r.Addr, z, s, w, how))
			}
		}
		if len(distinct) > 1 {
			problems = append(problems, fmt.Sprintf("servers disagree on %s serial: %s", z, strings.Join(seen, ", ")))
		}
	}
	if len(problems) == 0 {
		return nil
	}
	return errors.New("SOA serial check failed: " + strings.Join(problems, "; "))
}

func serialOf(r Report, z string) (uint32, bool) {
	for k, s := range r.Serials {
		if dns.CanonicalName(k) == z {
			return s, true
		}
	}
	return 0, false
}
