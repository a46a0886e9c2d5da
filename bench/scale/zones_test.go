package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
	text := fleetYAML(fleetParams{Name: "scale", Zones: 50, ZoneDir: dir, AnsibleDir: "/ansible", LB1: "127.0.0.1:1", LB2: "127.0.0.1:2",
		DNSPortBase: 10000, ProvisionLimit: "5m0s", ProbeLimit: "5m0s"})
	path := filepath.Join(t.TempDir(), "scale.yaml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Zones) != 50 || f.ZoneFile(f.Zones[49], "B") != filepath.Join(dir, "B", "z000049.example.zone") || f.Probe.Rounds != 1 {
		t.Errorf("fleet: %d zones, last %s, rounds %d", len(f.Zones), f.ZoneFile(f.Zones[49], "B"), f.Probe.Rounds)
	}
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
