package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/dnsroll/dnsroll/config"
	"github.com/dnsroll/dnsroll/internal/freeport"
	"github.com/dnsroll/dnsroll/lab"
)

// Drivers measured side by side, each on its own load balancer in front of
// its own nameserver, all switched by the same rollouts.
var benchLBs = []struct{ name, driver, fronts string }{
	{"lb-nginx", "nginx", "ns1"},
	{"lb-dnsdist", "dnsdist", "ns2"},
}

// writeBenchFleet derives fleet "bench" from the lab fleet at from: the same
// nameservers, zones, probes and steps, with the benchmark's load balancers
// on free ports, absolute paths, and a bake window to roll back in.
func writeBenchFleet(from, dir, zoneDir string, bake time.Duration) (*config.Fleet, map[string][]byte, error) {
	f, err := config.Load(from)
	if err != nil {
		return nil, nil, err
	}
	tmpls := map[string][]byte{}
	f.Name = "bench"
	f.LoadBalancers = nil
	for _, lb := range benchLBs {
		port, err := lab.FreePort()
		if err != nil {
			return nil, nil, err
		}
		f.LoadBalancers = append(f.LoadBalancers, config.LoadBalancer{
			Name: lb.name, Address: fmt.Sprintf("127.0.0.1:%d", port), Fronts: config.Labels{lb.fronts}, Driver: lb.driver,
		})
	}
	f.Ansible.NameserverPlaybook = f.Path(f.Ansible.NameserverPlaybook)
	f.Ansible.LoadBalancerPlaybook = f.Path(f.Ansible.LoadBalancerPlaybook)
	// Every rollout needs a newer zone serial than the one it replaces, so
	// the bench makes its own revisions r1, r2, ... from revision A.
	for i, z := range f.Zones {
		tmpl, err := os.ReadFile(f.ZoneFile(z, "A"))
		if err != nil {
			return nil, nil, err
		}
		tmpls[z.Name] = tmpl
		if !serialRE.Match(tmpl) || !bytes.Contains(tmpl, []byte(`"revision A"`)) {
			return nil, nil, fmt.Errorf("zone %s: want a serial and %s TXT \"revision A\" in revision A to derive revisions from", z.Name, probeName)
		}
		f.Zones[i].File = filepath.Join(zoneDir, config.RevisionPlaceholder, z.Name+".zone")
	}
	if f.Lab.DNSPortBase, err = freeport.BenchBases.Pick(40); err != nil {
		return nil, nil, err
	}
	d := config.Duration(bake)
	f.Rollout.Strategy, f.Rollout.Approval, f.Rollout.Bake = config.StrategyAllAtOnce, config.ApprovalAuto, &d
	f.Rollout.BakeInterval = config.Duration(min(2*time.Second, max(bake/3, time.Second)))
	f.Notifications = config.Notifications{}
	f, err = saveFleet(f, dir, from)
	return f, tmpls, err
}

// saveFleet writes f to <dir>/<name>.yaml and loads it back, as the
// worker will.
func saveFleet(f *config.Fleet, dir, from string) (*config.Fleet, error) {
	text, err := yaml.Marshal(f)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, f.Name+".yaml")
	header := "# Written by the benchmark (bench/), derived from " + from + ".\n"
	if err := os.WriteFile(path, append([]byte(header), text...), 0o644); err != nil {
		return nil, err
	}
	return config.Load(path)
}

// canarySteps are the weights of the canary scenarios, in percent.
var canarySteps = []int{1, 10, 50}

// useCanaryFleet rewrites the bench fleet for the canary scenarios:
// strategy canary through the load balancers that weigh backends, each
// step held for -canary-step. It returns them, one group per load
// balancer. The other load balancers, and the nameservers only they
// front, are left out of the fleet, so they are not switched again: the
// canary scenarios run last.
func (b *bench) useCanaryFleet() ([][]config.LoadBalancer, error) {
	f := *b.fleet
	f.LoadBalancers, f.Nameservers = nil, nil
	fronted := map[string]bool{}
	for _, lb := range b.fleet.LoadBalancers {
		if lb.Driver == "dnsdist" {
			f.LoadBalancers = append(f.LoadBalancers, lb)
			for _, l := range lb.Fronts {
				fronted[l] = true
			}
		}
	}
	// A fleet's every nameserver is behind one of its load balancers.
	for _, ns := range b.fleet.Nameservers {
		if fronted[ns.Label] {
			f.Nameservers = append(f.Nameservers, ns)
		}
	}
	f.Rollout.Strategy = config.StrategyCanary
	// Its own steps; the canary's other settings as the lab fleet has them.
	f.Rollout.Canary.Steps = nil
	for _, w := range canarySteps {
		f.Rollout.Canary.Steps = append(f.Rollout.Canary.Steps, config.CanaryStep{Weight: w, Duration: config.Duration(b.opts.canaryStep)})
	}
	fleet, err := saveFleet(&f, b.fleetDir, b.from)
	if err != nil {
		return nil, err
	}
	b.fleet = fleet
	var groups [][]config.LoadBalancer
	for _, lb := range fleet.LoadBalancers {
		groups = append(groups, []config.LoadBalancer{lb})
	}
	return groups, nil
}

var serialRE = regexp.MustCompile(`(?m)^(\s*)\d{10}(\s*;\s*serial)`)

// newRevision writes the next revision's zones and returns its name.
func (b *bench) newRevision() (string, error) {
	b.revisions++
	rev := ""
	for zone, tmpl := range b.zoneTmpls {
		var err error
		if rev, err = writeRevision(b.zoneDir, zone, tmpl, b.revisions); err != nil {
			return "", err
		}
	}
	return rev, nil
}

// writeRevision writes revision n of the zone from revision A's text: the
// serial goes up by n and release.example.com says "revision r<n>".
func writeRevision(zoneDir, zone string, tmpl []byte, n int) (string, error) {
	rev := fmt.Sprintf("r%d", n)
	text := serialRE.ReplaceAll(tmpl, []byte(fmt.Sprintf("${1}%d${2}", 2100000000+n)))
	text = bytes.ReplaceAll(text, []byte(`"revision A"`), []byte(`"revision `+rev+`"`))
	path := filepath.Join(zoneDir, rev, zone+".zone")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return "", err
	}
	return rev, os.WriteFile(path, text, 0o644)
}
