package config

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
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

// Activities and load balancer drivers take a resolved Placement; only
// the worker's Placer reads a fleet's lab section. The pattern is issue
// 15's check, so a test (or a driver) that sets or reads Fleet.Lab
// directly fails here rather than in review.
func TestOnlyThePlacerReadsTheLabSection(t *testing.T) {
	readsLab := regexp.MustCompile(`fleet\.Lab|\.Lab != nil`)
	for _, root := range []string{"../activities", "../lb"} {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") {
				return err
			}
			src, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			for i, line := range strings.Split(string(src), "\n") {
				if readsLab.MatchString(line) {
					t.Errorf("%s:%d reads the lab section: %s; take a config.Placement (Activities.Place) instead", path, i+1, strings.TrimSpace(line))
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}
