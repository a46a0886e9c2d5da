package e2e

import (
	"strings"
	"testing"

	"github.com/dnsroll/dnsroll/internal/needlab"
	"github.com/dnsroll/dnsroll/internal/signzone"
	"github.com/dnsroll/dnsroll/workflows"
)

// A green that does not serve what it should is stopped before the switch
// by the DNS analysis against real BIND, and blue keeps serving: a change
// in an infrastructure-only rollout, and a signed zone whose signatures
// expired. A SOA serial behind the one blue serves is refused even
// earlier, at Plan, before any server exists. One lab serves all of them
// (blue is revision A throughout) to keep the test short.
func TestAnalysisStopsBadGreenBeforeSwitch(t *testing.T) {
	a := readZone(t, "A")
	bump := func(z string) string { return strings.Replace(z, "2026112301 ; serial", "2026112302 ; serial", 1) }
	needlab.Programs(t, signzone.Tools...)
	// Signatures that expired on 2026-11-01, over a zone that also holds a
	// CNAME loop: named-checkzone passes it and named loads it (so
	// provisioning succeeds), answers SERVFAIL for the loop, as the
	// analysis expects, and planning warns about it.
	expired, err := signzone.Sign(t.TempDir(), "example.com", bump(a)+"loop    IN CNAME loop\n",
		signzone.Options{Start: "20261001000000", End: "20261101000000"})
	if err != nil {
		t.Fatal(err)
	}
	tl := startBlue(t, "nginx", map[string]string{
		// www moves, in a rollout that says nothing should change.
		"C": bump(strings.Replace(a, "www     IN A    192.0.2.10", "www     IN A    192.0.2.99", 1)),
		// The same content as blue under an older serial.
		"D": strings.Replace(a, "2026112301 ; serial", "2026112300 ; serial", 1),
		"E": expired,
	})
	blue := tl.assertOnly(t, "ns1", "ns2")

	no := false
	cases := []struct {
		rev           string
		expectChanges *bool
		want          []string
	}{
		{"C", &no, []string{"green ns1-next differs from blue ns1: changed www.example.com. A: [192.0.2.10] → [192.0.2.99]"}},
		// The failure names the RRset and the expiry.
		{"E", nil, []string{"green ns1-next DNSSEC: ", "example.com. SOA: RRSIG expired 2026-11-01T00:00:00Z"}},
	}
	// An infrastructure-only rollout whose zone files change a record is
	// refused at Plan, which compares them with the live revision's
	// snapshot, before any server exists.
	t.Run("C at Plan", func(t *testing.T) {
		created := len(tl.Sim().Instances())
		st, err := tl.wait(t, tl.start(t, workflows.RolloutInput{Revision: "C", ExpectChanges: &no}))
		if err == nil || st.Phase != workflows.PhaseFailed {
			t.Fatalf("rollout C: phase %s, err %v; want it refused", st.Phase, err)
		}
		for _, want := range []string{"Plan lab failed: ", "probe.expect_changes is false, but this revision changes zone example.com: changed www.example.com. A: [192.0.2.10] → [192.0.2.99]"} {
			if !strings.Contains(st.Failure, want) {
				t.Errorf("failure %q lacks %q", st.Failure, want)
			}
		}
		if n := len(tl.Sim().Instances()); n != created {
			t.Errorf("the simulator holds %d instances, had %d: a refused rollout created servers", n, created)
		}
	})
	t.Run("D", func(t *testing.T) {
		created := len(tl.Sim().Instances())
		_, st, err := tl.rollout(t, "D")
		if err == nil || st.Phase != workflows.PhaseFailed {
			t.Fatalf("rollout D: phase %s, err %v; want it refused", st.Phase, err)
		}
		for _, want := range []string{"Plan lab failed: ", "serial 2026112300, behind the 2026112301 that blue ns1 serves", "--allow-serial-decrease"} {
			if !strings.Contains(st.Failure, want) {
				t.Errorf("failure %q lacks %q", st.Failure, want)
			}
		}
		if n := len(tl.Sim().Instances()); n != created {
			t.Errorf("the simulator holds %d instances, had %d: a refused rollout created servers", n, created)
		}
	})
	for _, c := range cases {
		t.Run(c.rev, func(t *testing.T) {
			// Green's analysis is what stops C where Plan cannot compare
			// the zone files: the live revision unknown to the worker.
			run := tl.start(t, workflows.RolloutInput{Revision: c.rev, ExpectChanges: c.expectChanges, LiveUnknown: "the test asks green's analysis"})
			st, err := tl.wait(t, run)
			if err == nil || st.Phase != workflows.PhaseFailed {
				t.Fatalf("rollout %s: phase %s, err %v; want it to fail", c.rev, st.Phase, err)
			}
			t.Logf("rollout %s: %s", c.rev, st.Failure)
			for _, want := range c.want {
				if !strings.HasPrefix(st.Failure, "VerifyGreen ns1-next,ns2-next failed: ") || !strings.Contains(st.Failure, want) {
					t.Errorf("failure %q\nwant VerifyGreen to fail naming %q", st.Failure, want)
				}
			}
			for _, s := range st.Steps {
				if strings.HasPrefix(s.Name, "Switch") || strings.HasPrefix(s.Name, "Stage") || strings.HasPrefix(s.Name, "Flip") {
					t.Errorf("rollout %s touched a load balancer: %+v", c.rev, s)
				}
				if s.Name == "VerifyGreen" && s.Attempts != 1 {
					t.Errorf("a failed analysis is not retried: %d attempts", s.Attempts)
				}
			}
			tl.wantAnswers(t, "", "revision A,revision A")
			now := tl.assertOnly(t, "ns1", "ns2")
			for _, l := range []string{"ns1", "ns2"} {
				if now[l].ID != blue[l].ID {
					t.Errorf("%s is instance %d, want blue's %d", l, now[l].ID, blue[l].ID)
				}
			}
			// The status keeps the failed analysis: per server, per kind of
			// check, with samples and the diff against blue.
			var green []string
			for _, an := range st.Analysis {
				if an.Step != "VerifyGreen" {
					continue
				}
				for _, rep := range an.Result.Reports {
					green = append(green, rep.Name)
					if rep.OK || rep.Kinds["answer"].Pass == 0 || len(rep.Results) == 0 || len(rep.Diffs) != 1 {
						t.Errorf("analysis of %s: %+v", rep.Name, rep)
					}
				}
				if c.rev == "C" && !strings.Contains(an.Result.Reports[0].Diffs[0].Summary, "1 changed: www.example.com. A") {
					t.Errorf("diff summary %q", an.Result.Reports[0].Diffs[0].Summary)
				}
			}
			if strings.Join(green, ",") != "ns1-next,ns2-next" {
				t.Errorf("status analysis covers %v, want ns1-next,ns2-next", green)
			}
			if c.rev == "E" && !strings.Contains(strings.Join(st.Warnings, "\n"), "loop.example.com.: CNAME loop") {
				t.Errorf("planning did not warn about the loop: %q", st.Warnings)
			}
		})
	}
}
