package lb

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/config"
)

// TestDir: every driver finds a load balancer's directory here. A lab
// fleet without a lab directory is EINVALID (not treated as real
// machines), a real fleet's load balancer has none, and a name cannot
// leave the lab directory.
func TestDir(t *testing.T) {
	lab := &config.Fleet{Name: "lab", Lab: &config.Lab{DNSPortBase: 15300}}
	real := &config.Fleet{Name: "prod"}
	var none config.Placer
	if _, err := Dir(none.Place(lab), "lb1"); dnsroll.ErrorCode(err) != dnsroll.EINVALID {
		t.Errorf("lab fleet, no lab directory: %v, want EINVALID", err)
	}
	if dir, err := Dir(none.Place(real), "lb1"); dir != "" || err != nil {
		t.Errorf("real fleet: %q, %v; want no directory", dir, err)
	}
	labDir := t.TempDir()
	if dir, err := Dir(config.PlaceIn(labDir).Place(lab), "lb1"); dir != filepath.Join(labDir, "lb", "lb1") || err != nil {
		t.Errorf("lab fleet: %q, %v; want %s/lb/lb1", dir, err, labDir)
	}
	if _, err := Dir(config.PlaceIn(labDir).Place(lab), "../lb1"); dnsroll.ErrorCode(err) != dnsroll.EINVALID {
		t.Errorf("name ../lb1: %v, want EINVALID", err)
	}
}

func TestSplitAddr(t *testing.T) {
	for addr, want := range map[string]string{
		"192.0.2.1:53":     "192.0.2.1 53",
		"[2001:db8::1]:53": "2001:db8::1 53",
		"ns1.example:5353": "ns1.example 5353",
		"192.0.2.1":        "error",
		"192.0.2.1:0":      "error",
		"192.0.2.1:65536":  "error",
		"192.0.2.1:dns":    "error",
	} {
		host, port, err := SplitAddr(addr)
		got := fmt.Sprint(host, " ", port)
		if err != nil {
			got = "error"
		}
		if got != want {
			t.Errorf("SplitAddr(%q) = %s (%v), want %s", addr, got, err, want)
		}
	}
}
