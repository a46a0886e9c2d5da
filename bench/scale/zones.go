package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// zoneName is the name of the i-th generated zone.
func zoneName(i int) string { return fmt.Sprintf("z%06d.example", i) }

// zoneText is a small zone: SOA, NS and the two A records of its
// nameservers, the shape of most of a hosting provider's zones.
func zoneText(name string, serial uint32) string {
	return fmt.Sprintf("$ORIGIN %s.\n$TTL 300\n@ IN SOA ns1 hostmaster ( %d 3600 600 1209600 300 )\n  IN NS ns1\n  IN NS ns2\nns1 IN A 192.0.2.53\nns2 IN A 198.51.100.53\n", name, serial)
}

// Serials of the two revisions: B bumps the changed zones' serials.
const (
	serialA uint32 = 2026120201
	serialB uint32 = 2026120202
)

// writeZones writes revisions A and B of n zones under dir (dir/A and
// dir/B, one <zone>.zone each). In B the zones in changed have serial B;
// every other file of B is a hard link to A's, so that a fleet of 100,000
// zones costs one set of files and the time to write it once.
func writeZones(dir string, n int, changed map[int]bool) error {
	a, b := filepath.Join(dir, "A"), filepath.Join(dir, "B")
	for _, d := range []string{a, b} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	for i := range n {
		name := zoneName(i)
		file := name + ".zone"
		if err := os.WriteFile(filepath.Join(a, file), []byte(zoneText(name, serialA)), 0o644); err != nil {
			return err
		}
		var err error
		if changed[i] {
			err = os.WriteFile(filepath.Join(b, file), []byte(zoneText(name, serialB)), 0o644)
		} else {
			err = os.Link(filepath.Join(a, file), filepath.Join(b, file))
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// changedZones picks k zones of n spread evenly across the fleet (the
// first, the last, and between), the few that a revision changes.
func changedZones(n, k int) map[int]bool {
	out := map[int]bool{}
	k = min(k, n)
	for j := range k {
		if k == 1 {
			out[0] = true
			break
		}
		out[j*(n-1)/(k-1)] = true
	}
	return out
}

// fleetParams are what the generated fleet config varies.
type fleetParams struct {
	Name           string
	Zones          int
	ZoneDir        string
	AnsibleDir     string
	LB1, LB2       string
	DNSPortBase    int
	ProvisionLimit string
	ProbeLimit     string
	// Blue is the config that brings blue up (revision A): the same fleet
	// with the cheapest analysis, apex SOA and NS over UDP and no bake.
	// That rollout is not measured; it only has to leave blue serving
	// the zones. The measured rollout runs with the config of Blue false.
	Blue bool
}

// fleetYAML is a process-mode lab fleet of p.Zones zones: two nameservers
// behind two nginx load balancers, as fleets/lab.yaml, with the probe and
// bake kept lean (one round, short waits) so that the time measured is
// the rollout's own work rather than deliberate waiting.
func fleetYAML(p fleetParams) string {
	analysis, bake := "  protocols: [udp, tcp]\n", "2s"
	if p.Blue {
		analysis, bake = "  protocols: [udp]\n  all_names: false\n  coverage: {full_up_to: 1, sample: 1}\n", "0s"
	}
	var b strings.Builder
	fmt.Fprintf(&b, `fleet: %s
nameservers:
  - {label: ns1, region: us-east, type: g6-nanode-1, image: linode/debian12}
  - {label: ns2, region: eu-central, type: g6-nanode-1, image: linode/debian12}
load_balancers:
  - {name: lb1, address: "%s", fronts: ns1, driver: nginx}
  - {name: lb2, address: "%s", fronts: ns2, driver: nginx}
ansible:
  connection: local
  nameserver_playbook: %s/nameserver.yml
  loadbalancer_playbook: %s/loadbalancer.yml
probe:
%s  timeout: 2s
  attempts: 3
  rounds: 1
  interval: 500ms
steps:
  create_timeout: 2m
  provision_timeout: %s
  probe_timeout: %s
  switch_timeout: 2m
  heartbeat_timeout: 30s
  retry_initial_interval: 500ms
  retry_maximum_interval: 5s
rollout:
  strategy: all-at-once
  approval: auto
  bake: %s
  bake_interval: 1s
lab:
  dns_port_base: %d
zones:
`, p.Name, p.LB1, p.LB2, p.AnsibleDir, p.AnsibleDir, analysis, p.ProvisionLimit, p.ProbeLimit, bake, p.DNSPortBase)
	for i := range p.Zones {
		name := zoneName(i)
		fmt.Fprintf(&b, "  - {name: %s, file: \"%s/{revision}/%s.zone\"}\n", name, p.ZoneDir, name)
	}
	return b.String()
}
