package workflows

import (
	"errors"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"
)

// A zone file edited between Plan and Provision: provision refuses the
// changed revision, and the rollout fails at once, naming the file,
// deletes green and leaves blue serving; green never got a mix.
func TestRevisionChangedBeforeProvisionFailsTheRollout(t *testing.T) {
	h := newHarness(t, "")
	h.rec.onDisk = "sha256:ef01ef01ef01ef01ef01ef01ef01ef01ef01ef01ef01ef01ef01ef01ef01ef01"
	st, err := h.run(t)
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || app.Type() != ErrTypeFailed || st.Phase != PhaseFailed {
		t.Fatalf("err = %v, phase %s; want %s and %s", err, st.Phase, ErrTypeFailed, PhaseFailed)
	}
	for _, want := range []string{"ProvisionNameservers", "revision changed since the plan: planned " + testBundle, "(zones/example.com.zone changed)", "re-run the rollout"} {
		if !strings.Contains(st.Failure, want) {
			t.Errorf("failure %q lacks %q", st.Failure, want)
		}
	}
	if st.Bundle != testBundle {
		t.Errorf("status bundle = %q, want the plan's %q", st.Bundle, testBundle)
	}
	if h.rec.has("ProvisionNameservers") || h.rec.has("VerifyGreen") || h.rec.has("Switch") {
		t.Errorf("steps ran on the changed revision: %v", h.rec.calls)
	}
	if !h.rec.has("DeleteGreen ns1-next,ns2-next") || h.rec.has("DeleteServer") {
		t.Errorf("want green deleted and blue untouched: %v", h.rec.calls)
	}
	for _, s := range st.Steps {
		if s.Name == "ProvisionNameservers" && s.Attempts != 1 {
			t.Errorf("provision tried %d times; a changed revision is not retried", s.Attempts)
		}
	}
}

// The Web UI's Current Details of a rollout name its phase, revision and
// bundle hash, and, once planned, how many zones it deploys (also with a
// small history, whose plan carries no zone list).
func TestCurrentDetailsNameTheBundle(t *testing.T) {
	r := &rollout{st: Status{Fleet: "lab", Revision: "B", Run: Run{Phase: PhasePlanning}}}
	if got, want := r.currentDetails(), "**planning** · fleet `lab` · revision `B`"; got != want {
		t.Fatalf("before the plan: %q, want %q", got, want)
	}
	r.st.Phase, r.st.Bundle, r.plan.ZoneCount = PhaseProvisioning, testBundle, 100_000
	want := "**provisioning** · fleet `lab` · revision `B` · bundle `" + testBundle + "` · 100000 zones"
	if got := r.currentDetails(); got != want {
		t.Fatalf("after the plan: %q, want %q", got, want)
	}
}

// At an approval gate the Web UI's Current Details say what the operator
// must do and by when, and, at a later gate of approval: each, which load
// balancers go back to blue without it.
func TestCurrentDetailsAtTheGate(t *testing.T) {
	r := &rollout{st: Status{Fleet: "lab", Revision: "B", Run: Run{Phase: PhaseAwaitingApproval}, ApproveBy: time.Date(2026, 12, 1, 16, 0, 0, 0, time.UTC), ApprovalGate: 2}}
	got := r.currentDetails()
	for _, want := range []string{"send `approve` (or `abort`) by 2026-12-01 16:00 UTC", "or it is aborted", "this is approval gate 2: `{\"gate\": 2}`"} {
		if !strings.Contains(got, want) {
			t.Errorf("details %q lack %q", got, want)
		}
	}
	r.st.OnGreen = []string{"lb1"}
	if got := r.currentDetails(); !strings.Contains(got, "or lb1 goes back to blue") {
		t.Errorf("at a later gate: %q", got)
	}
	r.st.Phase = PhaseBaking
	if got := r.currentDetails(); strings.Contains(got, "approve") {
		t.Errorf("past the gate: %q", got)
	}
}

// A run from before versionApproveGate numbers no gate (ApprovalGate 0)
// and ignores an approve whose input names "gate", even 0: its Current
// Details must not ask for one, as the printer does not.
func TestCurrentDetailsAtAnUnnumberedGate(t *testing.T) {
	r := &rollout{st: Status{Fleet: "lab", Revision: "B", Run: Run{Phase: PhaseAwaitingApproval}, ApproveBy: time.Date(2026, 12, 1, 16, 0, 0, 0, time.UTC)}}
	got := r.currentDetails()
	if !strings.Contains(got, "send `approve` (or `abort`) by 2026-12-01 16:00 UTC, or it is aborted") || strings.Contains(got, "gate") {
		t.Errorf("details %q; want the approve asked for without a gate", got)
	}
}
