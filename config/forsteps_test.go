package config

import (
	"fmt"
	"testing"
)

// A fleet of any size reaches every step with at most StepZones zones and
// its true zone count, and without webhook URLs.
func TestForStepsCutsZonesKeepsCount(t *testing.T) {
	f := &Fleet{Name: "big", Notifications: Notifications{Webhooks: []Webhook{{Name: "ops", URL: "https://secret.example/hook"}}}}
	for i := range 100_000 {
		f.Zones = append(f.Zones, Zone{Name: fmt.Sprintf("z%d.example.", i), File: fmt.Sprintf("zones/z%d.zone", i)})
	}
	c := f.ForSteps()
	if len(c.Zones) != StepZones || c.Zones[0] != f.Zones[0] || c.Zones[StepZones-1] != f.Zones[StepZones-1] {
		t.Fatalf("ForSteps kept %d zones starting %v, want the first %d", len(c.Zones), c.Zones[:1], StepZones)
	}
	if c.ZonesTotal() != 100_000 || f.ZonesTotal() != 100_000 {
		t.Fatalf("ZonesTotal = %d (copy), %d (fleet), want 100000", c.ZonesTotal(), f.ZonesTotal())
	}
	if c.Notifications.Webhooks[0].URL != "" || f.Notifications.Webhooks[0].URL == "" {
		t.Fatalf("webhook URL in the copy %q, in the fleet %q: want it only in the fleet", c.Notifications.Webhooks[0].URL, f.Notifications.Webhooks[0].URL)
	}
	// Appending to the copy's zones must not write into the fleet's.
	c.Zones = append(c.Zones, Zone{Name: "extra."})
	if f.Zones[StepZones].Name == "extra." {
		t.Fatal("the copy's zone list shares the fleet's backing array")
	}
	small := (&Fleet{Zones: f.Zones[:3]}).ForSteps()
	if len(small.Zones) != 3 || small.ZonesTotal() != 3 {
		t.Fatalf("a 3-zone fleet: ForSteps kept %d zones, total %d", len(small.Zones), small.ZonesTotal())
	}
}
