package activities

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/dnsroll/dnsroll/bundle"
	"github.com/dnsroll/dnsroll/config"
	"github.com/dnsroll/dnsroll/internal/testfiles"
)

// A plan that asks for them (a dry run) shows, for each zone whose file
// differs from the live revision's, the RRsets it adds, removes and
// changes; a rollout's plan does not ask, and carries none.
func TestPlanDiffsZonesAgainstTheLiveRevision(t *testing.T) {
	c, live := planLive(t)

	dir := t.TempDir()
	writeFleetDir(t, dir)
	changed := strings.Replace(verifyZone, "www   A    192.0.2.10", "www   A    192.0.2.20\nnew   TXT  \"hello\"", 1)
	changed = strings.Replace(changed, "mail  MX   10 ns1\n", "", 1)
	changed = strings.Replace(changed, " 7 3600", " 8 3600", 1)
	testfiles.WriteAll(t, dir, map[string]string{"zones/example.com.zone": changed})

	next := c.planIn(t, dir, PlanInput{Fleet: "t", LiveBundle: live.Bundle, Diff: 20})
	if len(next.Diffs) != 1 || next.Diffs[0].Zone != "example.com" || next.MoreDiffs != 0 {
		t.Fatalf("diffs %+v, want example.com's", next.Diffs)
	}
	d := next.Diffs[0].Diff
	if got, want := d.Describe(10), `added new.example.com. TXT: [] → ["hello"]; removed mail.example.com. MX: [10 ns1.example.com.] → []; changed www.example.com. A: [192.0.2.10] → [192.0.2.20]`; got != want {
		t.Errorf("diff\n got %s\nwant %s", got, want)
	}
	if !d.SerialChanged || d.OldSerial != 7 || d.NewSerial != 8 {
		t.Errorf("serials %d → %d (changed %v), want 7 → 8", d.OldSerial, d.NewSerial, d.SerialChanged)
	}
	// At most a given number of each kind, the rest counted.
	if one := c.planIn(t, dir, PlanInput{Fleet: "t", LiveBundle: live.Bundle, Diff: 1}); len(one.Diffs) != 1 || len(one.Diffs[0].Diff.Added) != 1 {
		t.Errorf("Diff 1: %+v", one.Diffs)
	}

	if rollout := c.planIn(t, dir, PlanInput{Fleet: "t", LiveBundle: live.Bundle}); rollout.Diffs != nil {
		t.Errorf("a rollout's plan carries diffs: %+v", rollout.Diffs)
	}
	// The same files as live: nothing to show.
	same := c.planIn(t, dir, PlanInput{Fleet: "t", LiveBundle: next.Bundle, Diff: 20})
	if len(same.Diffs) != 0 {
		t.Errorf("no change shows diffs: %+v", same.Diffs)
	}
}

// A zone's file is found by its path's ending, whatever the fleet's
// directory was, and quickly for a fleet of many zones.
func TestFilesOfZones(t *testing.T) {
	m := bundle.Manifest{
		Files: []bundle.File{{Name: "zones/a.zone", SHA256: "1"}, {Name: "b.zone", SHA256: "2"}, {Name: "/elsewhere/c.zone", SHA256: "3"}},
		Zones: []bundle.Zone{{Name: "a", Path: "/old/fleet/zones/a.zone"}, {Name: "b", Path: "/x/b.zone"}, {Name: "c", Path: "/elsewhere/c.zone"}, {Name: "d", Path: "/x/d.zone"}},
	}
	got := filesOfZones(m)
	if got["a"].SHA256 != "1" || got["b"].SHA256 != "2" || got["c"].SHA256 != "3" || len(got) != 3 {
		t.Errorf("files of zones: %+v", got)
	}
}

// An infrastructure-only rollout (expect_changes false) is refused at
// Plan when its zone files change the live revision's records: green's
// analysis asks only the names the new files hold, so a record they drop
// would pass it. Where this worker has no snapshot of the live revision,
// a warning says what goes unchecked.
func TestPlanRefusesZoneChangesInAnInfrastructureOnlyRollout(t *testing.T) {
	c, live := planLive(t)
	no := false
	dir := t.TempDir()
	writeFleetDir(t, dir)
	dropped := strings.Replace(verifyZone, "mail  MX   10 ns1\n", "", 1)
	testfiles.WriteAll(t, dir, map[string]string{"zones/example.com.zone": dropped})
	c.readFrom(dir)
	_, err := c.env.ExecuteActivity(c.acts.Plan, PlanInput{Fleet: "t", LiveBundle: live.Bundle, Overrides: Overrides{ExpectChanges: &no}})
	if err == nil || !strings.Contains(err.Error(), "probe.expect_changes is false, but this revision changes zone example.com: removed mail.example.com. MX") {
		t.Errorf("Plan: %v; want a refusal naming the change", err)
	}

	// The live revision's records: nothing to refuse or warn of.
	same, _ := c.planWith(t, PlanInput{Fleet: "t", LiveBundle: live.Bundle, Overrides: Overrides{ExpectChanges: &no}})
	for _, w := range same.Warnings {
		if strings.Contains(w, "expect_changes") {
			t.Errorf("warning %q for a revision that changes no record", w)
		}
	}
	unknown, _ := c.planWith(t, PlanInput{Fleet: "t", Overrides: Overrides{ExpectChanges: &no}})
	if !slices.ContainsFunc(unknown.Warnings, func(w string) bool {
		return strings.Contains(w, "probe.expect_changes is false, but the zone files cannot be compared with the live revision's")
	}) {
		t.Errorf("warnings %q: want one saying the zone files went uncompared", unknown.Warnings)
	}

	// The live manifest is here but its snapshot's files no longer hash
	// to it: the changed zone's records cannot be compared, and a warning
	// says so rather than let the dropped record pass unseen.
	root := filepath.Join(c.acts.Bundles.Dir, strings.TrimPrefix(live.Bundle, "sha256:"))
	testfiles.Write(t, filepath.Join(root, "zones", "example.com.zone"), "; damaged\n")
	damaged := c.planIn(t, dir, PlanInput{Fleet: "t", LiveBundle: live.Bundle, Overrides: Overrides{ExpectChanges: &no}})
	if !slices.ContainsFunc(damaged.Warnings, func(w string) bool {
		return strings.Contains(w, "probe.expect_changes is false, but the zone files cannot be compared with the live revision's") && strings.Contains(w, "snapshot")
	}) {
		t.Errorf("warnings %q with the live snapshot damaged: want one saying the zone files went uncompared", damaged.Warnings)
	}
}

// A zone added alone, with the live revision's zones kept as they are, is
// a change too: green's analysis would ask it only of green.
func TestPlanRefusesAnAddedZoneInAnInfrastructureOnlyRollout(t *testing.T) {
	c, live := planLive(t)
	no := false
	dir := t.TempDir()
	writeFleetDir(t, dir)
	testfiles.WriteAll(t, dir, map[string]string{"zones/example.net.zone": strings.ReplaceAll(verifyZone, "example.com.", "example.net.")})
	c.fleet.Zones = append(c.fleet.Zones, config.Zone{Name: "example.net", File: "zones/example.net.zone"})
	c.readFrom(dir)
	_, err := c.env.ExecuteActivity(c.acts.Plan, PlanInput{Fleet: "t", LiveBundle: live.Bundle, Overrides: Overrides{ExpectChanges: &no}})
	if err == nil || !strings.Contains(err.Error(), "probe.expect_changes is false, but this revision adds zones (example.net)") {
		t.Errorf("Plan: %v; want a refusal naming the added zone", err)
	}
}

// A revision that bumps every serial, and drops a record in a zone past
// the first MaxZoneDiffs, is refused all the same: zones whose only
// change is the serial do not use up the comparison.
func TestPlanRefusesAChangeBehindManySerialBumps(t *testing.T) {
	c := newCloudEnv(t)
	c.acts.Bundles = bundle.Store{Dir: t.TempDir()}
	no := false
	files := func(drop bool) (string, map[string]string) {
		dir := t.TempDir()
		writeFleetDir(t, dir)
		out := map[string]string{}
		for i := range MaxZoneDiffs + 5 {
			text := strings.ReplaceAll(verifyZone, "example.com.", fmt.Sprintf("z%02d.example.", i))
			if drop {
				text = strings.Replace(text, " 7 3600", " 8 3600", 1)
				if i == MaxZoneDiffs+3 {
					text = strings.Replace(text, "mail  MX   10 ns1\n", "", 1)
				}
			}
			out[fmt.Sprintf("zones/z%02d.zone", i)] = text
		}
		testfiles.WriteAll(t, dir, out)
		return dir, out
	}
	c.fleet.Zones = nil
	for i := range MaxZoneDiffs + 5 {
		c.fleet.Zones = append(c.fleet.Zones, config.Zone{Name: fmt.Sprintf("z%02d.example", i), File: fmt.Sprintf("zones/z%02d.zone", i)})
	}
	liveDir, _ := files(false)
	live := c.planIn(t, liveDir, PlanInput{Fleet: "t"})
	dir, _ := files(true)
	c.readFrom(dir)
	_, err := c.env.ExecuteActivity(c.acts.Plan, PlanInput{Fleet: "t", LiveBundle: live.Bundle, Overrides: Overrides{ExpectChanges: &no}})
	if want := fmt.Sprintf("this revision changes zone z%02d.example: removed mail.z%02d.example. MX", MaxZoneDiffs+3, MaxZoneDiffs+3); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("Plan: %v; want a refusal saying %q", err, want)
	}
}

// An RFC 2317 zone, whose name holds "/", is diffed like any other: its
// file is the fleet's, found by path, and its names print as written.
func TestPlanDiffsAClasslessReverseZone(t *testing.T) {
	c := newCloudEnv(t)
	c.acts.Bundles = bundle.Store{Dir: t.TempDir()}
	const name = "0/26.2.0.192.in-addr.arpa"
	c.fleet.Zones = []config.Zone{{Name: name, File: "zones/0-26.zone"}}
	text := "$TTL 300\n@ SOA ns1.example.net. hostmaster.example.net. 7 3600 600 86400 300\n NS ns1.example.net.\n1 PTR host1.example.com.\n"
	dir := t.TempDir()
	writeFleetDir(t, dir)
	testfiles.WriteAll(t, dir, map[string]string{"zones/0-26.zone": text})
	live := c.planIn(t, dir, PlanInput{Fleet: "t"})

	dir = t.TempDir()
	writeFleetDir(t, dir)
	testfiles.WriteAll(t, dir, map[string]string{"zones/0-26.zone": strings.Replace(text, "host1", "host9", 1)})
	next := c.planIn(t, dir, PlanInput{Fleet: "t", LiveBundle: live.Bundle, Diff: 20})
	if len(next.Diffs) != 1 || next.Diffs[0].Zone != name {
		t.Fatalf("diffs %+v, want %s's", next.Diffs, name)
	}
	if got, want := next.Diffs[0].Diff.Describe(10), "changed 1.0/26.2.0.192.in-addr.arpa. PTR: [host1.example.com.] → [host9.example.com.]"; got != want {
		t.Errorf("diff\n got %s\nwant %s", got, want)
	}
}
