package main

import (
	"slices"
	"testing"

	"gopkg.in/yaml.v3"
)

// Every compose service that reads fleets also reads their zone files: the
// worker provisions from them, and the API checks them at startup and on
// every start and plan, so a service with fleets but no zones refuses
// every fleet like examples/production.yaml. Neither mounts the
// repository's fleets/, whose lab fleets' labels (ns1, lb1) a real-API
// worker refuses to share with the operator's fleet.
func TestComposeServicesWithFleetsMountTheZones(t *testing.T) {
	b := repoFile(t, "docker-compose.yml")
	var compose struct {
		Services map[string]struct {
			Command []string `yaml:"command"`
			Volumes []string `yaml:"volumes"`
			Init    bool     `yaml:"init"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(b, &compose); err != nil {
		t.Fatal(err)
	}
	var readers int
	for name, s := range compose.Services {
		if !slices.Contains(s.Command, "--fleets") {
			continue
		}
		readers++
		// dnsroll as PID 1 would leave the processes ssh detaches
		// (ControlPersist) unreaped.
		if !s.Init {
			t.Errorf("service %s runs dnsroll without an init to reap what ssh leaves", name)
		}
		if slices.Contains(s.Volumes, "./fleets:/app/fleets:ro") {
			t.Errorf("service %s mounts the repository's fleets/, the labs' fleets", name)
		}
		for _, want := range []string{"${DNSROLL_FLEETS_DIR:-./production/fleets}:/app/fleets:ro", "${DNSROLL_ZONES_DIR:-./production/zones}:/app/zones:ro"} {
			if !slices.Contains(s.Volumes, want) {
				t.Errorf("service %s runs with --fleets but does not mount %s (it has %q)", name, want, s.Volumes)
			}
		}
	}
	if readers < 2 {
		t.Errorf("%d services run with --fleets, want the worker and the API", readers)
	}
}
