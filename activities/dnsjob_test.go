package activities

import (
	"strings"
	"testing"

	"go.temporal.io/sdk/testsuite"

	"github.com/dnsroll/dnsroll/config"
)

// Each green is compared with the blue it replaces, by label, whatever
// the order of either list: ns2-next answering as ns2 does is not a
// difference because ns1 answers otherwise. A green with no blue of its
// label (a nameserver the revision adds) is compared with the blue at
// its position.
func TestVerifyComparesEachGreenWithItsOwnBlue(t *testing.T) {
	fleet := &config.Fleet{}
	blue := []ProbeTarget{{Name: "ns2", Addr: "192.0.2.2:53"}, {Name: "ns1", Addr: "192.0.2.1:53"}}
	for _, tc := range []struct {
		name    string
		targets []ProbeTarget
		want    []string // each target's baseline
	}{
		{"by label", []ProbeTarget{{Name: "ns1-next", Addr: "198.51.100.1:53"}, {Name: "ns2-next", Addr: "198.51.100.2:53"}}, []string{"ns1", "ns2"}},
		{"by position, without a blue of its label", []ProbeTarget{{Name: "ns3-next", Addr: "198.51.100.3:53"}, {Name: "ns4-next", Addr: "198.51.100.4:53"}}, []string{"ns2", "ns1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			j := job(VerifyInput{StepFleet: StepFleet{Fleet: fleet}, Targets: tc.targets, Baseline: blue}, nil)
			if len(j.Baseline) != len(tc.targets) {
				t.Fatalf("baselines %+v for %d targets", j.Baseline, len(tc.targets))
			}
			for i, b := range j.Baseline {
				if b.Name != tc.want[i] || j.Targets[i].Name != tc.targets[i].Name {
					t.Errorf("%s is compared with %s (%s), want %s", j.Targets[i].Name, b.Name, b.Addr, tc.want[i])
				}
			}
		})
	}
}

// Green that serves a serial behind blue's is not switched to: resolvers
// and secondaries would keep blue's data. allow_serial_decrease lets a
// deliberate return to an older revision through.
func TestVerifyRefusesGreenBehindBlue(t *testing.T) {
	newer := strings.Replace(verifyZone, " 7 3600", " 8 3600", 1)
	in := verifyInput(t, true, verifyZone)
	in.Targets, in.Baseline = []ProbeTarget{{Name: "ns1-next", Addr: serveZone(t, verifyZone)}}, []ProbeTarget{{Name: "ns1", Addr: serveZone(t, newer)}}
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(&Activities{})
	_, err := env.ExecuteActivity((&Activities{}).Verify, in)
	if err == nil || !strings.Contains(err.Error(), "serves example.com. serial 7, behind ") || !strings.Contains(err.Error(), "ns1's 8") {
		t.Errorf("err = %v, want green refused for its serial behind blue's", err)
	}
	in.Fleet.Probe.AllowSerialDecrease = true
	if res := verify(t, in); !strings.HasPrefix(res.Summary, "pass") {
		t.Errorf("with allow_serial_decrease: %q, want a pass", res.Summary)
	}
}

// An input without the planned serials, as the workflow sends for a
// large fleet, still holds green to the zone files' serials: a green
// that serves the same records at another serial is not the revision.
func TestVerifyTakesSerialsFromTheZoneFiles(t *testing.T) {
	in := verifyInput(t, true, verifyZone)
	in.Serials = nil
	stale := strings.Replace(verifyZone, " 7 3600", " 6 3600", 1)
	in.Targets = []ProbeTarget{{Name: "ns1-next", Addr: serveZone(t, stale)}}
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(&Activities{})
	_, err := env.ExecuteActivity((&Activities{}).Verify, in)
	if err == nil || !strings.Contains(err.Error(), "serial 6, want 7 from the zone file") {
		t.Errorf("err = %v, want green refused for serving serial 6, not the zone file's 7", err)
	}
}

// A Verify that asks for fewer rounds than the fleet's (in.Rounds, as
// the check through the load balancers after the switch does) needs no
// more successes in a row than it has rounds: one clean round passes.
func TestVerifyInFewerRoundsThanTheFleets(t *testing.T) {
	in := verifyInput(t, true, verifyZone)
	in.Targets = []ProbeTarget{{Name: "lb1", Addr: serveZone(t, verifyZone)}}
	in.Fleet.Probe.Rounds, in.Fleet.Probe.ConsecutiveSuccesses, in.Rounds = 5, 3, 1
	if res := verify(t, in); !strings.HasPrefix(res.Summary, "pass after 1 round(s)") {
		t.Errorf("summary %q, want a pass after 1 round", res.Summary)
	}
}
