package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/internal/fleettest"
)

// FuzzParse feeds fleet files to Parse, as an operator or CI would. Parse
// must not panic; a refusal names the field to fix (or the line of a YAML
// error); an accepted fleet keeps the invariants the workflows rely on,
// computed here without Parse's arithmetic, and survives the JSON round
// trip that carries it through workflow history.
func FuzzParse(f *testing.F) {
	for _, dir := range []string{"../fleets", "../examples"} {
		files, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
		for _, p := range files {
			b, err := os.ReadFile(p)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	f.Add([]byte(valid))
	f.Add([]byte(fleettest.YAML("v6", "[2001:db8::1]:53", "lb.example.com:5353")))
	f.Add([]byte(strings.NewReplacer("fronts: ns1}", "fronts: ns1, driver: dnsdist}", "fronts: ns2}", "fronts: ns2, driver: dnsdist}").Replace(valid) +
		"rollout: {strategy: canary, bake: 2000000h, bake_interval: 1000h, canary: {steps: [{weight: 5, duration: 2000000h}]}}\n"))
	for _, extra := range []string{
		"rollout: {strategy: one-at-a-time, bake: 1h, bake_interval: 10s}",
		"rollout: {strategy: canary, canary: {steps: [{weight: 5, duration: 1m}]}}",
		"probe: {rounds: 5, consecutive_successes: 3, interval: 10s, timeout: 1s, attempts: 2}",
		"steps: {probe_timeout: 10m, heartbeat_timeout: 1m, cleanup_timeout: 2h}",
		"notifications: {webhooks: [{url: 'https://hooks.example.com/x', events: [failed]}]}",
		"lab: {dns_port_base: 20000}",
		"probe: {names: [www, '@', mail.example.com.], types: [A, MX]}",
		// Durations whose products and sums pass time.Duration's range:
		// each was accepted, its check overflowing to a negative number.
		"rollout: {strategy: one-at-a-time, bake: 1500000h, bake_interval: 1s}",
		"probe: {rounds: 1000, consecutive_successes: 1000, interval: 1000000h}\nsteps: {probe_timeout: 2000000h}",
		"probe: {attempts: 10, timeout: 1000000h}\nsteps: {probe_timeout: 2000000h}",
	} {
		f.Add([]byte(valid + extra + "\n"))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fl, err := Parse(data)
		if err != nil {
			checkRefusal(t, err)
			return
		}
		checkFleet(t, fl)
		b, err := json.Marshal(fl)
		if err != nil {
			t.Fatalf("json.Marshal: %v", err)
		}
		var back Fleet
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("json round trip: %v\n%s", err, b)
		}
		if !reflect.DeepEqual(*fl, back) {
			t.Fatalf("json round trip changed the fleet:\n%+v\n%+v", *fl, back)
		}
		if err := back.Validate(); err != nil {
			t.Fatalf("the fleet from history fails validation: %v", err)
		}
	})
}

// fleetKeys are the top-level keys of a fleet file: a field error names
// one of them first.
var fleetKeys = func() map[string]bool {
	keys := map[string]bool{}
	for _, k := range sections["config.Fleet"].keys {
		keys[k] = true
	}
	return keys
}()

func checkRefusal(t *testing.T, err error) {
	t.Helper()
	if err.Error() == "" {
		t.Fatal("empty error")
	}
	var fe *FieldError
	if errors.As(err, &fe) {
		root := fe.Field
		if i := strings.IndexAny(root, ".["); i >= 0 {
			root = root[:i]
		}
		if !fleetKeys[root] || fe.Message == "" {
			t.Fatalf("error names no field of the fleet file: %v", err)
		}
	}
	// Go's names for the config's types mean nothing to an operator.
	if strings.Contains(err.Error(), "config.") {
		t.Fatalf("error names a Go type: %v", err)
	}
}

// checkFleet checks what the workflows take for granted of an accepted
// fleet, in float64 so that no overflow hides a breach.
func checkFleet(t *testing.T, fl *Fleet) {
	t.Helper()
	if !ValidFleetName(fl.Name) || len(fl.Nameservers) == 0 || len(fl.LoadBalancers) == 0 || len(fl.Zones) == 0 {
		t.Fatalf("accepted a fleet without name, nameservers, load balancers or zones: %+v", fl)
	}
	for _, ns := range fl.Nameservers {
		for _, l := range []string{ns.Label, dnsroll.NextLabel(ns.Label)} {
			if err := dnsroll.CheckLabel(l); err != nil {
				t.Fatalf("accepted a label Linode refuses: %v", err)
			}
		}
	}
	for _, lb := range fl.LoadBalancers {
		for _, l := range []string{lb.Name, dnsroll.NextLabel(lb.Name)} {
			if err := dnsroll.CheckLabel(l); err != nil {
				t.Fatalf("accepted a load balancer name Linode refuses: %v", err)
			}
		}
	}
	sec := func(d Duration) float64 { return time.Duration(d).Seconds() }
	s, p, r := fl.Steps, fl.Probe, fl.Rollout
	for _, d := range []Duration{s.CreateTimeout, s.ProvisionTimeout, s.ProbeTimeout, s.SwitchTimeout, s.HeartbeatTimeout, s.RetryInitialInterval, s.RetryMaximumInterval, s.CleanupTimeout} {
		if d <= 0 {
			t.Fatalf("accepted a step duration that is not positive: %+v", s)
		}
	}
	if s.CleanupTimeout.D() > MaxCleanupTimeout || s.HeartbeatTimeout.D() < time.Second {
		t.Fatalf("accepted steps out of bounds: %+v", s)
	}
	if float64(p.ConsecutiveSuccesses-1)*sec(p.Interval) >= sec(s.ProbeTimeout) {
		t.Fatalf("accepted an analysis that cannot pass within steps.probe_timeout %s: %d rounds %s apart", s.ProbeTimeout, p.ConsecutiveSuccesses, p.Interval)
	}
	if float64(p.Attempts)*sec(p.Timeout) >= sec(s.ProbeTimeout) {
		t.Fatalf("accepted a query that outlasts steps.probe_timeout %s: %d attempts of %s", s.ProbeTimeout, p.Attempts, p.Timeout)
	}
	if p.Timeout <= 0 || p.Interval < 0 || p.MaxLatency < 0 || p.MaxLatency >= p.Timeout {
		t.Fatalf("accepted probe durations out of bounds: %+v", p)
	}
	analysed := sec(*r.Bake)
	if r.Strategy == StrategyOneAtATime {
		analysed *= float64(len(fl.LoadBalancers))
	}
	for _, c := range r.Canary.Steps {
		analysed += sec(c.Duration)
	}
	if rounds := analysed / sec(r.BakeInterval); rounds >= MaxAnalysisRounds+1 {
		t.Fatalf("accepted %g analysis rounds, more than the %d a history holds: %+v", rounds, MaxAnalysisRounds, r)
	}
	if r.ApprovalTimeout.D() < time.Minute || *r.Bake < 0 || r.BakeInterval.D() < time.Second {
		t.Fatalf("accepted rollout durations out of bounds: %+v", r)
	}
}

// FuzzParseSettings fills the settings whose checks do arithmetic, and the
// names Linode takes, into a valid fleet: arbitrary bytes rarely make a
// fleet that passes, and these are where an accepted fleet can break the
// workflows' invariants (checkFleet).
func FuzzParseSettings(f *testing.F) {
	f.Add("ns1", "lb1", uint8(0), "5m", "15s", "1m", uint8(3), "2s", "2s", uint8(3), uint8(1), "2m", "30s", "1h", "24h")
	f.Add("ns-a.b", "lb_1", uint8(1), "1500000h", "1s", "2000000h", uint8(10), "1000000h", "1000000h", uint8(200), uint8(200), "2000000h", "1s", "72h", "1m")
	f.Add("Ns1", "LB1", uint8(2), "0s", "1s", "1s", uint8(1), "0s", "1ns", uint8(1), uint8(1), "1s", "1s", "1s", "1m")
	f.Fuzz(func(t *testing.T, label, lbName string, strategy uint8, bake, bakeInterval, canaryStep string, attempts uint8, timeout, interval string,
		rounds, successes uint8, probeTimeout, heartbeat, cleanup, approval string) {
		q := func(s string) string { b, _ := json.Marshal(s); return string(b) }
		strategies := []string{StrategyAllAtOnce, StrategyOneAtATime, StrategyCanary}
		doc := fmt.Sprintf(`fleet: fuzz
nameservers:
  - {label: %s, region: us-east, type: g6-nanode-1, image: linode/debian12}
  - {label: ns9, region: eu-west, type: g6-nanode-1, image: linode/debian12}
load_balancers:
  - {name: %s, address: "192.0.2.1:53", fronts: [%s], driver: dnsdist}
  - {name: lb9, address: "192.0.2.2:53", fronts: ns9, driver: dnsdist}
zones:
  - {name: example.com, file: zones/example.com.zone}
probe: {attempts: %d, timeout: %s, interval: %s, rounds: %d, consecutive_successes: %d}
steps: {probe_timeout: %s, heartbeat_timeout: %s, cleanup_timeout: %s}
rollout: {strategy: %s, bake: %s, bake_interval: %s, approval_timeout: %s%s}
`, q(label), q(lbName), q(label), attempts, q(timeout), q(interval), rounds, successes, q(probeTimeout), q(heartbeat), q(cleanup),
			strategies[int(strategy)%len(strategies)], q(bake), q(bakeInterval), q(approval),
			map[bool]string{true: ", canary: {steps: [{weight: 10, duration: " + q(canaryStep) + "}]}"}[int(strategy)%len(strategies) == 2])
		fl, err := Parse([]byte(doc))
		if err != nil {
			checkRefusal(t, err)
			return
		}
		checkFleet(t, fl)
	})
}
