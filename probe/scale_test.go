package probe

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/dnsroll/dnsroll/internal/testfiles"
	"github.com/dnsroll/dnsroll/zone"
)

// smallZone is a zone of a large fleet: SOA, NS and two A records, three
// names.
func smallZone(serial uint32, www string) string {
	return fmt.Sprintf("$TTL 300\n@ SOA ns1 hostmaster %d 3600 600 1209600 300\n  NS ns1\nns1 A 192.0.2.53\nwww A %s\n", serial, www)
}

// fleet is the records of many zones by canonical apex, answered as an
// authoritative server would for the queries of their checks, without the
// cost of parsing each zone with BIND's compiler.
type fleet map[string][]dns.RR

func (f fleet) add(t testing.TB, apex, text string) []dns.RR {
	t.Helper()
	zp := dns.NewZoneParser(strings.NewReader(text), apex, "test")
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		f[apex] = append(f[apex], rr)
	}
	if zp.Err() != nil {
		t.Fatal(zp.Err())
	}
	return f[apex]
}

func (f fleet) lookup(name string, qtype uint16) zone.Answer {
	name = dns.CanonicalName(name)
	for off, end := 0, false; !end; off, end = dns.NextLabel(name, off) {
		rrs, ok := f[name[off:]]
		if !ok {
			continue
		}
		a := zone.Answer{Rcode: dns.RcodeNameError}
		for _, rr := range rrs {
			if dns.CanonicalName(rr.Header().Name) == name {
				a.Rcode = dns.RcodeSuccess
				if rr.Header().Rrtype == qtype {
					a.RRs = append(a.RRs, rr)
				}
			}
		}
		return a
	}
	return zone.Answer{Rcode: dns.RcodeRefused}
}

// coverChecks reads the zone files at paths, as Verify does: the zones
// checked in full with BIND's compiler, the others at their apex.
func coverChecks(t *testing.T, zones []Planned, paths []string, full []bool, cov *Coverage) []Check {
	t.Helper()
	var checks []Check
	for i, z := range zones {
		if full[i] {
			zf, err := zone.ParseFile(paths[i], z.Name)
			if err != nil {
				t.Fatal(err)
			}
			checks = append(checks, cov.Checks(zf, Scope{All: true})...)
			continue
		}
		apex, err := zone.ParseApex(paths[i], z.Name)
		if err != nil {
			t.Fatal(err)
		}
		checks = append(checks, cov.SOACheck(apex))
	}
	return checks
}

// TestAnalysisOf100000ZonesIsSmall analyses a fleet of 100,000 zones on
// two green servers against blue, as Verify does: blue's serials tell the
// 1,000 changed zones, which are checked at every name with a sample of
// 100, and every other zone's SOA. Green serves a wrong serial for 100
// zones, so the analysis fails with everything a failure records, and
// its result must still fit in a workflow history payload (256 KB).
func TestAnalysisOf100000ZonesIsSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("100,000 zones")
	}
	const n = 100_000
	start := time.Now()
	dir := t.TempDir()
	zones := fleetZones(n)
	paths := make([]string, n)
	blue, green := fleet{}, fleet{}
	wantSerials := map[string]uint32{}
	for i, z := range zones {
		apex := z.Name + "."
		text := smallZone(1, "192.0.2.1")
		green[apex] = blue.add(t, apex, text)
		if i%100 == 0 { // changed in this revision
			zones[i].Serial, text = 2, smallZone(2, "192.0.2.2")
			green[apex] = nil
			green.add(t, apex, text)
		}
		if i%1000 == 7 { // green serves a serial that was never planned
			green[apex] = nil
			green.add(t, apex, smallZone(3, "192.0.2.1"))
		}
		wantSerials[apex] = zones[i].Serial
		paths[i] = filepath.Join(dir, z.Name)
		testfiles.Write(t, paths[i], text)
	}
	written := time.Since(start)
	b, g1, g2 := startLookup(t, blue.lookup), startLookup(t, green.lookup), startLookup(t, green.lookup)
	p := &Prober{Timeout: 2 * time.Second, Attempts: 3}
	ctx := context.Background()

	start = time.Now()
	base := p.BaselineSerials(ctx, []string{b.addr}, zones)
	full, cov := Cover(zones, Policy{FullUpTo: 1000, Sample: 100, Seed: 42}, base)
	swept := time.Since(start)
	start = time.Now()
	checks := coverChecks(t, zones, paths, full, &cov)
	read := time.Since(start)
	if cov.Changed != 1000 || cov.Sampled != 100 || cov.SOA != n || cov.Zones != n || cov.ChangedBy != ChangedBaseline || cov.Seed != 42 {
		t.Fatalf("coverage %+v", cov)
	}
	if cov.Full < 1000 || cov.Full > 1100 || cov.Names != 4*cov.Full+(n-cov.Full) {
		t.Errorf("coverage %+v: names %d, want 4 for each of %d full zones and 1 for the others", cov, cov.Names, cov.Full)
	}

	start = time.Now()
	a := p.Analyze(ctx, Job{
		Role: "green", Targets: []Server{{"ns1-next", g1.addr}, {"ns2-next", g2.addr}},
		BaselineRole: "blue", Baseline: []Server{{"ns1", b.addr}, {"ns2", b.addr}},
		Checks: checks, Serials: wantSerials,
	}, Settings{Protocols: []string{"udp"}, Thresholds: Thresholds{Rounds: 1}, ExpectChanges: true})
	t.Logf("%d zones: written in %s; blue's serials asked in %s; zone files read in %s; %d checks analysed on 2 targets and blue in %s",
		n, written.Round(time.Millisecond), swept.Round(time.Millisecond), read.Round(time.Millisecond), len(checks), time.Since(start).Round(time.Millisecond))

	if a.OK || !strings.Contains(a.Reason, "serial 3, want 1 from the zone file") {
		t.Errorf("analysis passed or does not name the wrong serials: %s", a.Reason)
	}
	for _, r := range a.Reports {
		if s := r.Kinds[KindSerial]; s.Fail != 100 || s.Pass != n-100 {
			t.Errorf("%s: serial checks %+v, want 100 failed of %d", r.Name, s, n)
		}
		if len(r.Serials) != 5 || len(r.Diffs) != 5 || r.DiffsOmitted != n-5 || len(r.Results) > 5 {
			t.Errorf("%s: %d serials, %d diffs (%d omitted), %d results: not bounded by samples", r.Name, len(r.Serials), len(r.Diffs), r.DiffsOmitted, len(r.Results))
		}
		for z, s := range r.Serials {
			if s != 3 {
				t.Errorf("%s: kept the serial of %s, which passed, over the failures", r.Name, z)
			}
		}
	}
	out, err := json.Marshal(struct {
		Analysis
		Coverage Coverage `json:"coverage"`
	}{a, cov})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) > 256<<10 {
		t.Errorf("the result of a 100,000-zone analysis is %d bytes as JSON, over 256 KB", len(out))
	}
	t.Logf("result: %d bytes as JSON", len(out))
}
