package probe

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dnsroll/dnsroll/zone"
)

func fleetZones(n int) []Planned {
	zones := make([]Planned, n)
	for i := range zones {
		zones[i] = Planned{Name: fmt.Sprintf("z%06d.test", i), Serial: 1}
	}
	return zones
}

func TestCoverBelowThresholdChecksEverything(t *testing.T) {
	full, cov := Cover(fleetZones(1000), Policy{FullUpTo: 1000, Sample: 10, Seed: 1}, nil)
	if slices.Contains(full, false) {
		t.Error("a zone of a fleet at the threshold is not checked in full")
	}
	want := Coverage{Zones: 1000, SOA: 1000, Full: 1000, ChangedBy: ChangedAll, FullUpTo: 1000, SampleSize: 10, Seed: 1}
	if cov != want {
		t.Errorf("coverage %+v, want %+v", cov, want)
	}
}

func TestCoverAboveThreshold(t *testing.T) {
	zones := fleetZones(2000)
	base := map[string]uint32{}
	for i, z := range zones {
		if i%100 == 0 {
			zones[i].Serial = 2 // changed in this revision
		}
		if i != 5 { // blue does not serve z000005.test: unknown, so checked
			base[z.Name+"."] = 1
		}
	}
	pol := Policy{FullUpTo: 100, Sample: 50, Seed: 7}
	full, cov := Cover(zones, pol, base)
	sample := Sample(zones, 50, 7)
	wantFull := map[int]bool{5: true}
	for i := 0; i < 2000; i += 100 {
		wantFull[i] = true
	}
	for _, i := range sample {
		wantFull[i] = true
	}
	for i, f := range full {
		if f != wantFull[i] {
			t.Errorf("zone %s: full %v, want %v", zones[i].Name, f, wantFull[i])
		}
	}
	want := Coverage{Zones: 2000, SOA: 2000, Full: len(wantFull), Sampled: 50, Changed: 21, ChangedBy: ChangedBaseline, FullUpTo: 100, SampleSize: 50, Seed: 7}
	if cov != want {
		t.Errorf("coverage %+v, want %+v", cov, want)
	}

	// Without a baseline the changed zones cannot be told: the sample only.
	full, cov = Cover(zones, pol, nil)
	if cov.ChangedBy != ChangedUnknown || cov.Changed != 0 || cov.Full != 50 || cov.Sampled != 50 {
		t.Errorf("coverage without a baseline: %+v", cov)
	}
	if !strings.Contains(cov.String(), "SOA of 2000 of 2000 zones, every name of 50 (50 sampled with seed 7, 0 changed by unknown: no baseline") {
		t.Errorf("summary %q", cov.String())
	}
	for i, f := range full {
		if f != slices.Contains(sample, i) {
			t.Errorf("zone %d: full %v without a baseline", i, f)
		}
	}
}

func TestSampleIsDeterministicPerSeed(t *testing.T) {
	zones := fleetZones(5000)
	names := func(zs []Planned, idx []int) []string {
		var out []string
		for _, i := range idx {
			out = append(out, zs[i].Name)
		}
		slices.Sort(out)
		return out
	}
	a := names(zones, Sample(zones, 100, 42))
	if len(a) != 100 || len(slices.Compact(slices.Clone(a))) != 100 {
		t.Fatalf("sample of %d distinct zones, want 100: %v", len(a), a)
	}
	if b := names(zones, Sample(zones, 100, 42)); !slices.Equal(a, b) {
		t.Error("the same seed chose another sample")
	}
	reversed := slices.Clone(zones)
	slices.Reverse(reversed)
	if b := names(reversed, Sample(reversed, 100, 42)); !slices.Equal(a, b) {
		t.Error("the order of the zones changed the sample")
	}
	other := names(zones, Sample(zones, 100, 43))
	if same := len(a) + len(other) - len(slices.Compact(slices.Sorted(slices.Values(append(slices.Clone(a), other...))))); same > 10 {
		t.Errorf("seeds 42 and 43 share %d of 100 zones", same)
	}
	if got := Sample(zones[:10], 100, 42); len(got) != 10 {
		t.Errorf("a sample larger than the fleet: %d zones, want all 10", len(got))
	}
}

// Above full_up_to, blue's serials are asked before the analysis to tell
// the changed zones; the analysis's first round then compares green's SOA
// answers with those very answers rather than ask blue every SOA again
// (100,000 queries a blue server at 100,000 zones). A difference they show
// is still found, and a later analysis asks blue afresh.
func TestBaselineSOAIsAskedOnce(t *testing.T) {
	const n = 40
	zones := fleetZones(n)
	blue, green := fleet{}, fleet{}
	var checks []Check
	serials := map[string]uint32{}
	for i, z := range zones {
		apex := z.Name + "."
		blue.add(t, apex, smallZone(1, "192.0.2.1"))
		text := smallZone(1, "192.0.2.1")
		if i == 5 { // green's SOA differs from blue's but for its serial
			text = strings.Replace(text, "3600 600", "7200 600", 1)
		}
		var c Coverage
		apexRecords, err := zone.Parse(strings.NewReader(text), apex, "test")
		if err != nil {
			t.Fatal(err)
		}
		checks = append(checks, c.SOACheck(apexRecords.Apex()))
		green.add(t, apex, text)
		serials[apex] = 1
	}
	b, g := startLookup(t, blue.lookup), startLookup(t, green.lookup)
	p := &Prober{Timeout: 2 * time.Second, Attempts: 3}
	ctx := context.Background()
	if base := p.BaselineSerials(ctx, []string{b.addr}, zones); len(base) != n {
		t.Fatalf("blue's serials: %d of %d zones", len(base), n)
	}
	job := Job{Role: "green", Targets: []Server{{"ns1-next", g.addr}}, BaselineRole: "blue", Baseline: []Server{{"ns1", b.addr}}, Checks: checks, Serials: serials}
	a := p.Analyze(ctx, job, Settings{Protocols: []string{"udp"}, Thresholds: Thresholds{Rounds: 1}})
	if got := b.soaAsked.Load(); got != n {
		t.Errorf("blue was asked %d SOA queries for %d zones, want each once", got, n)
	}
	if a.OK || !strings.Contains(a.Reason, zones[5].Name) {
		t.Errorf("the analysis did not find green's different SOA in %s: ok %v, %s", zones[5].Name, a.OK, a.Reason)
	}
	p.Analyze(ctx, job, Settings{Protocols: []string{"udp"}, Thresholds: Thresholds{Rounds: 1}})
	if got := b.soaAsked.Load(); got != 2*n {
		t.Errorf("a second analysis asked blue %d SOA queries, want %d: the first's answers are not for reuse", got-n, n)
	}
}
