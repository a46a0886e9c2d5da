package config

import (
	"path/filepath"
	"testing"
)

// A lab fleet's servers answer on their own loopback port and live in the
// lab directory; a real fleet's answer on 53 and have no lab directory.
func TestPlacement(t *testing.T) {
	lab := &Fleet{Name: "lab", Lab: &Lab{DNSPortBase: 15300}}
	real := &Fleet{Name: "prod"}
	place := PlaceIn("/tmp/lab")
	if p := place.Place(lab); !p.InLab() || p.DNSPort(1001) != 15301 || p.VMDir(1001) != filepath.Join("/tmp/lab", "vms", "1001") || p.LabDir() != "/tmp/lab" {
		t.Errorf("lab placement: in lab %v, port %d, dir %q", p.InLab(), p.DNSPort(1001), p.VMDir(1001))
	}
	if p := place.Place(real); p.InLab() || p.DNSPort(1001) != 53 || p.VMDir(1001) != "" {
		t.Errorf("real placement: in lab %v, port %d, dir %q", p.InLab(), p.DNSPort(1001), p.VMDir(1001))
	}
	// A nil Placer still knows a lab fleet is one, so a driver fails for
	// want of a directory instead of treating lab processes as VMs.
	var none Placer
	if p := none.Place(lab); !p.InLab() || p.LabDir() != "" {
		t.Errorf("nil Placer: in lab %v, dir %q", p.InLab(), p.LabDir())
	}
}
