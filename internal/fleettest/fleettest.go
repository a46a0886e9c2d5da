// Package fleettest is the fleet config that tests start from, in one
// place: tests add or replace lines of it for what they are about.
package fleettest

import "fmt"

// YAML is a valid fleet config called name: nameservers ns1 (us-east) and
// ns2 (eu-west), load balancers lb1 and lb2 in front of them at the
// addresses lb1 and lb2 (host:port), and the zone example.com from
// zones/example.com.zone. Everything else is left to the defaults.
func YAML(name, lb1, lb2 string) string {
	return fmt.Sprintf(`
fleet: %s
nameservers:
  - {label: ns1, region: us-east, type: g6-nanode-1, image: linode/debian12}
  - {label: ns2, region: eu-west, type: g6-nanode-1, image: linode/debian12}
load_balancers:
  - {name: lb1, address: %q, fronts: ns1}
  - {name: lb2, address: %q, fronts: ns2}
zones:
  - {name: example.com, file: zones/example.com.zone}
`, name, lb1, lb2)
}
