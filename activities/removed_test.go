package activities

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/miekg/dns"
	"go.temporal.io/sdk/testsuite"

	"github.com/dnsroll/dnsroll/bundle"
	"github.com/dnsroll/dnsroll/internal/dnstest"
	"github.com/dnsroll/dnsroll/internal/testfiles"
	"github.com/dnsroll/dnsroll/zone"
)

// The live revision (blue's) holds a name, a type at a name that stays,
// and a whole zone that the planned revision removes.
const liveExample = dnstest.Zone + `www   A    192.0.2.10
www   TXT  "old"
old   A    192.0.2.5
`

var (
	plannedExample = strings.Replace(dnstest.Zone, " 7 ", " 8 ", 1) + "www   A    192.0.2.10\n"
	goneZone       = strings.ReplaceAll(dnstest.Zone, "example.com.", "gone.test.")
)

// liveRevision snapshots the live revision's zone files into store and
// returns its bundle hash.
func liveRevision(t *testing.T, store bundle.Store) string {
	t.Helper()
	return snapshot(t, store, map[string]string{"example.com": liveExample, "gone.test": goneZone})
}

// snapshot puts zone files, by origin, into store as a revision and
// returns its bundle hash.
func snapshot(t *testing.T, store bundle.Store, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	var paths []string
	var zones []bundle.Zone
	for name, text := range files {
		path := filepath.Join(dir, "zones", name+".zone")
		testfiles.Write(t, path, text)
		paths = append(paths, path)
		zones = append(zones, bundle.Zone{Name: name, Path: path, Serial: parse(t, text, name).Serial()})
	}
	m, err := store.Snapshot(dir, paths, zones)
	if err != nil {
		t.Fatal(err)
	}
	return m.Hash
}

func parse(t *testing.T, text, origin string) *zone.Zone {
	t.Helper()
	z, err := zone.Parse(strings.NewReader(text), origin, "test")
	if err != nil {
		t.Fatal(err)
	}
	return z
}

// verifyWith runs Verify with the bundle store store.
func verifyWith(store bundle.Store, in VerifyInput) (VerifyResult, error) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	acts := &Activities{Bundles: store}
	env.RegisterActivity(acts)
	v, err := env.ExecuteActivity(acts.Verify, in)
	var res VerifyResult
	if v != nil {
		if derr := v.Get(&res); derr != nil {
			return res, derr
		}
	}
	return res, err
}

// A green that still serves what the revision removed (a stale name, a
// stale type at a name that stays, a zone dropped from the plan) fails
// Verify when changes are expected: the names only blue's revision holds
// are asked of green too, expecting what the planned zones say. A green
// that serves the plan passes, though blue answers those names.
func TestVerifyAsksWhatTheRevisionRemoved(t *testing.T) {
	store := bundle.Store{Dir: t.TempDir()}
	live := liveRevision(t, store)
	blue := serveZones(t, map[string]*zone.Zone{"example.com.": parse(t, liveExample, "example.com"), "gone.test.": parse(t, goneZone, "gone.test")})
	planned := parse(t, plannedExample, "example.com")
	stale := func(extra string) map[string]*zone.Zone {
		return map[string]*zone.Zone{"example.com.": parse(t, strings.Replace(plannedExample, "www   A    192.0.2.10\n", "www   A    192.0.2.10\n"+extra, 1), "example.com")}
	}
	run := func(green map[string]*zone.Zone) (VerifyResult, error) {
		in := verifyInput(t, true, plannedExample)
		in.Live = live
		in.Targets, in.Baseline = []ProbeTarget{{Name: "ns1-next", Addr: serveZones(t, green)}}, []ProbeTarget{{Name: "ns1", Addr: blue}}
		return verifyWith(store, in)
	}
	for _, tc := range []struct {
		name  string
		green map[string]*zone.Zone
		want  string
	}{
		{"a removed name", stale("old   A    192.0.2.5\n"), "old.example.com. A"},
		{"a removed type", stale("www   TXT  \"old\"\n"), "www.example.com. TXT"},
		{"a removed zone", map[string]*zone.Zone{"example.com.": planned, "gone.test.": parse(t, goneZone, "gone.test")}, "gone.test. SOA"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := run(tc.green)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want the analysis to fail naming %s", err, tc.want)
			}
		})
	}

	res, err := run(map[string]*zone.Zone{"example.com.": planned})
	if err != nil {
		t.Fatalf("a green serving the plan: %v", err)
	}
	if c := res.Coverage; c == nil || c.Removed != 3 || !strings.Contains(res.Summary, "3 names the live revision answers otherwise") {
		t.Errorf("summary %q, coverage %+v; want the 3 removed names counted", res.Summary, res.Coverage)
	}
}

// Without expected changes green must equal blue anyway: the removed
// names are not asked, and the checks are those of the planned zones.
func TestVerifyAsksRemovedNamesOnlyWhenChangesAreExpected(t *testing.T) {
	store := bundle.Store{Dir: t.TempDir()}
	live := liveRevision(t, store)
	green := serveZones(t, map[string]*zone.Zone{"example.com.": parse(t, plannedExample, "example.com")})
	in := verifyInput(t, false, plannedExample)
	in.Targets = []ProbeTarget{{Name: "ns1-next", Addr: green}}
	without, err := verifyWith(store, in)
	if err != nil {
		t.Fatal(err)
	}
	in.Live = live
	with, err := verifyWith(store, in)
	if err != nil || with.Checks != without.Checks || with.Coverage.Removed != 0 {
		t.Errorf("with the live revision: %v, %d checks, coverage %+v; want %d checks, none removed", err, with.Checks, with.Coverage, without.Checks)
	}
}

// A zone dropped from the plan below a planned zone is answered by it
// (here NXDOMAIN, no delegation); one with none above it is refused.
func TestRemovedZoneAnsweredByThePlannedParent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "example.com.zone")
	testfiles.Write(t, path, plannedExample)
	lz := &liveZones{removed: []string{"sub.example.com.", "gone.test."}}
	checks, err := lz.zoneChecks([]ZoneFile{{Name: "example.com", Path: path}})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range checks {
		got = append(got, c.Zone+" "+c.String()+" "+dns.RcodeToString[c.Want.Rcode])
	}
	if want := "example.com. sub.example.com. SOA NXDOMAIN, gone.test. gone.test. SOA REFUSED"; strings.Join(got, ", ") != want {
		t.Errorf("checks %s, want %s", strings.Join(got, ", "), want)
	}
}

// A name that becomes an empty non-terminal under a wildcard loses the
// wildcard's answers, and one that stops being one gains them, though no
// RRset at it changes: Verify asks green the name when changes are
// expected, expecting the planned zone's answer.
func TestVerifyAsksWhereAnEmptyNonTerminalMeetsAWildcard(t *testing.T) {
	wild := dnstest.Zone + "*.w   A    192.0.2.170\n"
	bump := func(text string) string { return strings.Replace(text, " 7 ", " 8 ", 1) }
	for _, tc := range []struct {
		name                 string
		live, planned, stale string
	}{
		// green answers z.w A as the wildcard did, and all else as
		// planned.
		{"an empty non-terminal made", wild, bump(wild) + "deep.z.w TXT \"x\"\n", bump(wild) + "deep.z.w TXT \"x\"\nz.w A 192.0.2.170\n"},
		// green holds a name below z.w, answering as the plan's
		// wildcard there: z.w A is NODATA, not the wildcard's.
		{"an empty non-terminal ended", wild + "deep.z.w TXT \"x\"\n", bump(wild), bump(wild) + "deep.z.w A 192.0.2.170\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store := bundle.Store{Dir: t.TempDir()}
			live := snapshot(t, store, map[string]string{"example.com": tc.live})
			blue := serveZones(t, map[string]*zone.Zone{"example.com.": parse(t, tc.live, "example.com")})
			run := func(green string) error {
				in := verifyInput(t, true, tc.planned)
				in.Live = live
				in.Targets = []ProbeTarget{{Name: "ns1-next", Addr: serveZones(t, map[string]*zone.Zone{"example.com.": parse(t, green, "example.com")})}}
				in.Baseline = []ProbeTarget{{Name: "ns1", Addr: blue}}
				_, err := verifyWith(store, in)
				return err
			}
			if err := run(tc.planned); err != nil {
				t.Fatalf("a green serving the plan: %v", err)
			}
			if err := run(tc.stale); err == nil || !strings.Contains(err.Error(), "z.w.example.com. A") {
				t.Errorf("err = %v, want the analysis to fail naming z.w.example.com. A", err)
			}
		})
	}
}
