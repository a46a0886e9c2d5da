package activities

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/dnsroll/dnsroll/internal/testfiles"
	"github.com/dnsroll/dnsroll/probe"
	"github.com/dnsroll/dnsroll/zone"
)

// serveZones answers for every zone of zones, by apex, on a loopback port.
func serveZones(t *testing.T, zones map[string]*zone.Zone) string {
	t.Helper()
	return serveUDP(t, func(req, m *dns.Msg) {
		q := req.Question[0]
		m.Rcode = dns.RcodeRefused
		for apex, z := range zones {
			if dns.IsSubDomain(apex, dns.CanonicalName(q.Name)) {
				a := z.Lookup(q.Name, q.Qtype)
				m.Rcode, m.Answer = a.Rcode, append(m.Answer, a.RRs...)
			}
		}
	})
}

// TestVerifyCoverage verifies a fleet of 30 zones, 2 of them changed, as
// a large one (probe.coverage.full_up_to 10): blue's serials tell the
// changed zones, which are checked at every name with a sample of 3, and
// every other zone's SOA; the result and the summary say so. At the
// default threshold every name of every zone is checked, as before.
func TestVerifyCoverage(t *testing.T) {
	in := verifyInput(t, true, verifyZone)
	dir := t.TempDir()
	blue, green := map[string]*zone.Zone{}, map[string]*zone.Zone{}
	var planned []probe.Planned
	in.Zones = nil
	for i := range 30 {
		name := fmt.Sprintf("z%02d.test", i)
		text := "$TTL 300\n@ SOA ns1 hostmaster 7 3600 600 1209600 300\n NS ns1\nns1 A 192.0.2.53\nwww A 192.0.2.10\n"
		old, err := zone.Parse(strings.NewReader(text), name, "old")
		if err != nil {
			t.Fatal(err)
		}
		blue[name+"."], green[name+"."] = old, old
		if i == 4 || i == 20 {
			text = strings.Replace(strings.Replace(text, " 7 ", " 8 ", 1), "192.0.2.10", "192.0.2.11", 1)
			if green[name+"."], err = zone.Parse(strings.NewReader(text), name, "new"); err != nil {
				t.Fatal(err)
			}
		}
		path := filepath.Join(dir, name)
		testfiles.Write(t, path, text)
		zf := ZoneFile{Name: name, Path: path, Serial: green[name+"."].Serial()}
		in.Zones = append(in.Zones, zf)
		planned = append(planned, probe.Planned{Name: zf.Name, Serial: zf.Serial})
	}
	in.Serials = nil
	in.Targets, in.Baseline = []ProbeTarget{{Name: "ns1-next", Addr: serveZones(t, green)}}, []ProbeTarget{{Name: "ns1", Addr: serveZones(t, blue)}}
	res := verify(t, in)
	if c := res.Coverage; c == nil || *c != (probe.Coverage{Zones: 30, SOA: 30, Full: 30, ChangedBy: probe.ChangedAll, FullUpTo: 1000, SampleSize: 100, Seed: c.Seed, Names: 120}) || res.Checks != 180 {
		t.Errorf("at the default threshold: %d checks, coverage %+v", res.Checks, res.Coverage)
	}

	seed := uint32(5)
	in.Fleet.Probe.Coverage.FullUpTo, in.Fleet.Probe.Coverage.Sample, in.Fleet.Probe.Coverage.Seed = 10, 3, &seed
	res = verify(t, in)
	full := map[int]bool{4: true, 20: true}
	for _, i := range probe.Sample(planned, 3, 5) {
		full[i] = true
	}
	want := probe.Coverage{Zones: 30, SOA: 30, Full: len(full), Sampled: 3, Changed: 2, ChangedBy: probe.ChangedBaseline, FullUpTo: 10, SampleSize: 3, Seed: 5, Names: 4*len(full) + 30 - len(full), SOAOver: "udp"}
	if res.Coverage == nil || *res.Coverage != want || res.Checks != 6*len(full)+30-len(full) {
		t.Errorf("above the threshold: %d checks, coverage %+v, want %+v", res.Checks, res.Coverage, want)
	}
	if !strings.Contains(res.Summary, fmt.Sprintf("; covered SOA of 30 of 30 zones over udp, every name of %d (3 sampled with seed 5, 2 changed by baseline serial;", len(full))) {
		t.Errorf("summary %q", res.Summary)
	}
	if k := res.Reports[0].Kinds; k["serial"].Pass != 30 || k["answer"].Pass != res.Checks {
		t.Errorf("kinds %+v: want every zone's serial and every check passed", k)
	}

	// One zone over the threshold is above it: blue's serials tell the
	// changed zones.
	in.Fleet.Probe.Coverage.FullUpTo = 29
	if res = verify(t, in); res.Coverage.ChangedBy != probe.ChangedBaseline || res.Coverage.Changed != 2 {
		t.Errorf("one zone above the threshold: coverage %+v, want the changed zones told by blue's serials", res.Coverage)
	}

	// Through the load balancers there is no blue to tell changes by.
	in.Baseline = nil
	if res = verify(t, in); res.Coverage.ChangedBy != probe.ChangedUnknown || res.Coverage.Full != 3 || res.Coverage.Changed != 0 {
		t.Errorf("without a baseline: coverage %+v", res.Coverage)
	}
}
