package activities

import (
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.temporal.io/sdk/temporal"

	"github.com/dnsroll/dnsroll/bundle"
	"github.com/dnsroll/dnsroll/config"
	"github.com/dnsroll/dnsroll/internal/testfiles"
)

// A zone that BIND loads but answers wrongly (a CNAME loop, which it
// answers with SERVFAIL) plans, with a warning that names the zone and
// the name: the operator sees it before any server exists.
func TestPlanWarnsOfZoneContentsBINDAnswersWrongly(t *testing.T) {
	c := newCloudEnv(t)
	dir := t.TempDir()
	writeFleetDir(t, dir)
	testfiles.WriteAll(t, dir, map[string]string{"zones/example.com.zone": verifyZone + "loop  CNAME loop\n"})
	plan := c.planIn(t, dir, PlanInput{Fleet: "t"})
	if want := "zone example.com: loop.example.com.: CNAME loop (BIND answers SERVFAIL)"; !slices.Contains(plan.Warnings, want) {
		t.Errorf("warnings %q, want %q", plan.Warnings, want)
	}
}

// A zone removed alone, the others kept as they are, is a change in an
// infrastructure-only rollout: green would stop serving it, and green's
// analysis, which asks the zones this revision holds, would not see it.
func TestPlanRefusesARemovedZoneInAnInfrastructureOnlyRollout(t *testing.T) {
	c := newCloudEnv(t)
	c.acts.Bundles = bundle.Store{Dir: t.TempDir()}
	dir := t.TempDir()
	writeFleetDir(t, dir)
	testfiles.WriteAll(t, dir, map[string]string{"zones/example.net.zone": strings.ReplaceAll(verifyZone, "example.com.", "example.net.")})
	kept := c.fleet.Zones
	c.fleet.Zones = append(slices.Clip(kept), config.Zone{Name: "example.net", File: "zones/example.net.zone"})
	live := c.planIn(t, dir, PlanInput{Fleet: "t"})

	c.fleet.Zones = kept
	no := false
	_, err := c.env.ExecuteActivity(c.acts.Plan, PlanInput{Fleet: "t", LiveBundle: live.Bundle, Overrides: Overrides{ExpectChanges: &no}})
	if err == nil || !strings.Contains(err.Error(), "probe.expect_changes is false, but this revision adds zones (none) and removes zones (example.net)") {
		t.Errorf("Plan: %v; want a refusal naming the removed zone", err)
	}
}

// A zone file edited while Plan runs, after preflight hashed and parsed it
// but before the snapshot copied it, would give green bytes that Plan
// never parsed or checked, under the serial and hash of the old ones. Plan
// refuses, with an error a retry fixes: the retry plans the new bytes.
func TestPlanRefusesAZoneFileChangedWhilePlanning(t *testing.T) {
	_, err := planWhileZoneFileChanges(t, func(path string) {
		testfiles.Changing(t, path, verifyZone, verifyZone, verifyZone+"; edited while planning\n")
	})
	var app *temporal.ApplicationError
	if err == nil || !strings.Contains(err.Error(), "zone example.com") || !strings.Contains(err.Error(), "changed while planning") || !errors.As(err, &app) || app.NonRetryable() {
		t.Fatalf("err = %v, want a retryable refusal naming zone example.com, changed while planning", err)
	}
}

// A zone file that turns into a directory by the time Plan snapshots it
// is a lasting mistake, not a passing one: Plan refuses at once, naming
// the file and the fix, rather than retry until its deadline.
func TestPlanRefusesAFileThatBecameADirectory(t *testing.T) {
	path, err := planWhileZoneFileChanges(t, func(path string) { testfiles.Unreadable(t, path, verifyZone, verifyZone) })
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || !app.NonRetryable() || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "is a directory") {
		t.Fatalf("err = %v; want a final refusal naming %s, a directory", err, path)
	}
}

// planWhileZoneFileChanges runs Plan for the test fleet with its zone
// file at path made by edit, which changes it at the read it chooses:
// preflight reads it twice (its hash, then its parse), and the snapshot's
// copy is the third read.
func planWhileZoneFileChanges(t *testing.T, edit func(path string)) (path string, err error) {
	c := newCloudEnv(t)
	c.labFleet(t)
	c.acts.Bundles = bundle.Store{Dir: filepath.Join(t.TempDir(), "bundles")}
	dir := t.TempDir()
	writeFleetDir(t, dir)
	path = filepath.Join(dir, "zones", "example.com.zone")
	edit(path)
	c.readFrom(dir)
	_, err = c.env.ExecuteActivity(c.acts.Plan, PlanInput{Fleet: "t"})
	return path, err
}
