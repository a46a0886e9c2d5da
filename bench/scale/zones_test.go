package main

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dnsroll/dnsroll/config"
)

// Revision B shares A's files but for the changed zones, which carry the
// newer serial; the fleet config lists every zone and loads.
func TestZonesAndFleet(t *testing.T) {
	dir := t.TempDir()
	changed := changedZones(50, 3)
	if len(changed) != 3 || !changed[0] || !changed[24] || !changed[49] {
		t.Fatalf("changed %v, want the first, the middle and the last", changed)
	}
	if err := writeZones(dir, 50, changed); err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		a, err := os.ReadFile(filepath.Join(dir, "A", zoneName(i)+".zone"))
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(dir, "B", zoneName(i)+".zone"))
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Equal(a, b) == changed[i] || !bytes.Contains(a, []byte(" 2026120201 ")) {
			t.Errorf("zone %d: A\n%s\nB\n%s", i, a, b)
		}
	}
	f := loadFleet(t, t.TempDir(), testParams(dir, false))
	if len(f.Zones) != 50 || f.ZoneFile(f.Zones[49], "B") != filepath.Join(dir, "B", "z000049.example.zone") || f.Probe.Rounds != 1 {
		t.Errorf("fleet: %d zones, last %s, rounds %d", len(f.Zones), f.ZoneFile(f.Zones[49], "B"), f.Probe.Rounds)
	}
}

// Blue is brought up with the measured fleet's config but for the
// analysis (apex SOA and NS of every zone, over UDP) and the bake (none):
// its rollout is not measured, and the measured rollout's config keeps
// both protocols, every name of up to 1,000 zones and its 2 s bake.
func TestBlueConfigDiffersOnlyInAnalysis(t *testing.T) {
	dir := t.TempDir()
	fleets := t.TempDir()
	blue, measured := loadFleet(t, fleets, testParams(dir, true)), loadFleet(t, fleets, testParams(dir, false))
	if blue.Probe.CheckAllNames() || !slices.Equal(blue.Probe.Protocols, []string{"udp"}) || blue.Rollout.Bake == nil || blue.Rollout.Bake.D() != 0 {
		t.Errorf("blue's analysis: all names %v, protocols %v, bake %v; want apex only, udp, no bake", blue.Probe.CheckAllNames(), blue.Probe.Protocols, blue.Rollout.Bake)
	}
	if c := blue.Probe.Coverage; c.FullUpTo != 1 || c.Sample != 1 {
		t.Errorf("blue's coverage %+v, want every name of 1 zone at most", c)
	}
	if c := measured.Probe.Coverage; !measured.Probe.CheckAllNames() || len(measured.Probe.Protocols) != 2 || measured.Rollout.Bake.D() != 2*time.Second || c.FullUpTo != 1000 || c.Sample != 100 {
		t.Errorf("measured: all names %v, protocols %v, bake %v, coverage %+v; want every name, udp and tcp, 2s, the defaults (1000, 100)",
			measured.Probe.CheckAllNames(), measured.Probe.Protocols, measured.Rollout.Bake, c)
	}
	blue.Probe, blue.Rollout.Bake = measured.Probe, measured.Rollout.Bake
	if !reflect.DeepEqual(blue, measured) {
		t.Error("blue's config differs from the measured one beyond the analysis and bake")
	}
}

func testParams(zoneDir string, blue bool) fleetParams {
	return fleetParams{Name: "scale", Zones: 50, ZoneDir: zoneDir, AnsibleDir: "/ansible", LB1: "127.0.0.1:1", LB2: "127.0.0.1:2",
		DNSPortBase: 10000, ProvisionLimit: "5m0s", ProbeLimit: "5m0s", Blue: blue}
}

// loadFleet writes fleetYAML(p) into dir and loads it as the worker would.
func loadFleet(t *testing.T, dir string, p fleetParams) *config.Fleet {
	t.Helper()
	path := filepath.Join(dir, "scale.yaml")
	if err := os.WriteFile(path, []byte(fleetYAML(p)), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestParseSizes(t *testing.T) {
	got, err := parseSizes("1, 1000,100000")
	if err != nil || len(got) != 3 || got[2] != 100000 {
		t.Errorf("parseSizes = %v, %v", got, err)
	}
	for _, bad := range []string{"", "0", "1,x", "-5"} {
		if _, err := parseSizes(bad); err == nil || !strings.Contains(err.Error(), "-sizes") {
			t.Errorf("parseSizes(%q): %v, want an error naming -sizes", bad, err)
		}
	}
}
