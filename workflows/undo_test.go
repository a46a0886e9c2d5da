package workflows

import (
	"slices"
	"strings"
	"testing"
)

// fourByTwo is the test fleet with four nameservers behind two load
// balancers, two each.
var fourByTwo = strings.NewReplacer(
	"  - {label: ns2, region: eu-west, type: g6-nanode-1, image: linode/debian12}\n",
	"  - {label: ns2, region: eu-west, type: g6-nanode-1, image: linode/debian12}\n"+
		"  - {label: ns3, region: us-west, type: g6-nanode-1, image: linode/debian12}\n"+
		"  - {label: ns4, region: ap-south, type: g6-nanode-1, image: linode/debian12}\n",
	"fronts: ns1}", "fronts: [ns1, ns3]}",
	"fronts: ns2}", "fronts: [ns2, ns4]}",
	"rollout: {bake: 0s}", "rollout: {bake: 2m, bake_interval: 1m}",
).Replace(labFleet)

// A failure after each step in turn runs exactly the undos of the steps
// done, in reverse order: nothing for a step that changed nothing or past
// the point of no return, and never an undo of a step that did not start.
func TestUndoesExactlyTheStepsDone(t *testing.T) {
	const (
		deleteGreen = UndoDeleteGreen
		release     = UndoReleaseGreen
		flipBack    = UndoFlipBackToBlue
	)
	for _, tt := range []struct {
		failAt string
		undos  []string
	}{
		{"Plan", nil},
		{"EnsureServer", []string{deleteGreen}},
		{"ProvisionNameservers", []string{deleteGreen}},
		{"VerifyGreen", []string{deleteGreen}},
		{"StageLoadBalancer", []string{release, deleteGreen}},
		{"FlipLoadBalancer", []string{flipBack, release, deleteGreen}},
		{"VerifyLoadBalancers", []string{flipBack, release, deleteGreen}},
		{"BakeCheck", []string{flipBack, release, deleteGreen}},
		// DeleteServer, RenameServer: past the point of no return.
		{"DeleteServer", nil},
		{"RenameServer", nil},
	} {
		t.Run(tt.failAt, func(t *testing.T) {
			h := newHarnessFleet(t, fourByTwo, tt.failAt)
			if !strings.Contains(fourByTwo, "ns4") {
				t.Fatal("fourByTwo has no ns4: labFleet changed")
			}
			_, err := h.run(t)
			if err == nil {
				t.Fatal("the rollout succeeded")
			}
			if got := undosRun(h.rec.calls); !slices.Equal(got, tt.undos) {
				t.Errorf("undos run %v, want %v; calls %v", got, tt.undos, h.rec.calls)
			}
			if len(tt.undos) > 0 && !h.rec.has("DeleteGreen ns1-next,ns2-next,ns3-next,ns4-next") {
				t.Errorf("green's four servers not deleted: %v", h.rec.calls)
			}
			if slices.Contains(tt.undos, flipBack) {
				for _, lb := range []string{"lb1", "lb2"} {
					if h.rec.lbs[lb] != map[string]string{"lb1": "ns1+ns3", "lb2": "ns2+ns4"}[lb] {
						t.Errorf("%s points at %s after the undo, want blue", lb, h.rec.lbs[lb])
					}
				}
			}
		})
	}
}

// undosRun reads the undo actions from the fake activities' calls, in the
// order they ran: a flip of green to 0%, a switch to a blue server (the
// release of green), the deletion of green.
func undosRun(calls []string) []string {
	var out []string
	add := func(u string) {
		if len(out) == 0 || out[len(out)-1] != u {
			out = append(out, u)
		}
	}
	for _, c := range calls {
		f := strings.Fields(c)
		switch {
		case f[0] == "Flip" && strings.Contains(c, "-next:0,"):
			add(UndoFlipBackToBlue)
		case f[0] == "Switch" && len(f) == 3 && !strings.HasSuffix(f[2], "-next"):
			add(UndoReleaseGreen)
		case f[0] == "DeleteGreen":
			add(UndoDeleteGreen)
		}
	}
	return out
}

// A release of blue that fails after the commit does not fail the rollout:
// every load balancer was flipped to green and confirmed, so blue is
// deleted and green renamed, and the status warns that blue stays staged.
func TestFailedReleaseOfBlueIsAWarning(t *testing.T) {
	h := newHarnessFleet(t, fourByTwo, "SwitchLoadBalancer")
	st, err := h.run(t)
	if err != nil {
		t.Fatalf("rollout failed: %v", err)
	}
	if !h.rec.has("DeleteServer ns1") || !h.rec.has("RenameServer ns1-next ns1") {
		t.Errorf("blue not deleted or green not renamed: %v", h.rec.calls)
	}
	if undos := undosRun(h.rec.calls); len(undos) != 0 {
		t.Errorf("undos run after the commit: %v", undos)
	}
	found := false
	for _, w := range st.Warnings {
		found = found || (strings.Contains(w, "ReleaseBlue") && strings.Contains(w, "blue stays staged"))
	}
	if !found {
		t.Errorf("warnings %q do not say that blue stays staged", st.Warnings)
	}
}
