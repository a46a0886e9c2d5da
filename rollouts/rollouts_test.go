package rollouts

import (
	"strings"
	"testing"
	"time"

	"github.com/dnsroll/dnsroll/activities"
	"github.com/dnsroll/dnsroll/probe"
	"github.com/dnsroll/dnsroll/workflows"
)

func TestSummary(t *testing.T) {
	for _, tt := range []struct {
		in   workflows.RolloutInput
		want string
	}{
		{workflows.RolloutInput{Fleet: "lab"}, "roll out lab"},
		{workflows.RolloutInput{Fleet: "lab", Revision: "B", RequestedBy: "ci", Reason: "zone update"}, "roll out lab to revision B, by ci: zone update"},
	} {
		if got := summary(tt.in); got != tt.want {
			t.Errorf("summary(%+v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// A rollout starts with Fleet and its Revision as search attributes, each
// one the lab registers and the worker checks (workflows.SearchAttributes);
// without a revision it has no Revision rather than an empty one.
func TestStartOptions(t *testing.T) {
	registered := map[string]bool{}
	for _, k := range workflows.SearchAttributes {
		registered[k.GetName()] = true
	}
	for _, tt := range []struct {
		in                 workflows.RolloutInput
		wantRevision       string
		wantRevisionExists bool
	}{
		{workflows.RolloutInput{Fleet: "lab", Revision: "B"}, "B", true},
		{workflows.RolloutInput{Fleet: "lab"}, "", false},
	} {
		opts := startOptions(tt.in)
		attrs := opts.TypedSearchAttributes
		if got, ok := attrs.GetKeyword(workflows.FleetAttr); !ok || got != "lab" {
			t.Errorf("%+v: Fleet = %q (set %v), want lab", tt.in, got, ok)
		}
		if got, ok := attrs.GetKeyword(workflows.RevisionAttr); ok != tt.wantRevisionExists || got != tt.wantRevision {
			t.Errorf("%+v: Revision = %q (set %v), want %q (set %v)", tt.in, got, ok, tt.wantRevision, tt.wantRevisionExists)
		}
		for k := range attrs.GetUntypedValues() {
			if !registered[k.GetName()] {
				t.Errorf("%+v: search attribute %s is set at start but not in workflows.SearchAttributes, so no lab registers it", tt.in, k.GetName())
			}
		}
		if opts.ID != "rollout-lab" || opts.StaticSummary == "" {
			t.Errorf("%+v: ID %q, summary %q", tt.in, opts.ID, opts.StaticSummary)
		}
	}
}

// The printer prints only what is new, with times when it has a clock,
// including a step's retries with their last error.
func TestPrinter(t *testing.T) {
	var b strings.Builder
	at := time.Date(2026, 12, 1, 15, 4, 5, 0, time.UTC)
	p := &Printer{W: &b, Clock: func() time.Time { return at }}
	st := workflows.Status{Phase: workflows.PhaseDeletingBlue, Steps: []*workflows.Step{{Name: "DeleteServer", Target: "ns1", State: workflows.StepRunning}}}
	p.Update(st)
	st.Retrying = []workflows.Retry{{Activity: "DeleteServer", Attempt: 3, LastError: "[500] Internal Server Error", Progress: "deleting ns1"}}
	p.Update(st)
	p.Update(st)
	want := "15:04:05 ==> deleting-blue\n" +
		"15:04:05     DeleteServer ns1         running    \n" +
		"15:04:05     ~ DeleteServer (deleting ns1): attempt 3 after: [500] Internal Server Error\n"
	if got := b.String(); got != want {
		t.Errorf("printed:\n%q\nwant:\n%q", got, want)
	}
}

// At the approval gate the printer puts the decision in front of the
// operator: green's changes against blue, the deadline, and the commands
// that approve or abort this very rollout.
func TestPrinterApprovalGate(t *testing.T) {
	var b strings.Builder
	p := &Printer{W: &b, ID: "rollout-lab:0f1e"}
	verify := activities.VerifyResult{Reports: []probe.Report{{Name: "ns1-next", Diffs: []probe.Comparison{{
		Zone: "example.com.", Against: "ns1", Summary: "1 added, 0 removed, 1 changed: api.example.com. A, www.example.com. A",
	}}}}}
	p.Update(workflows.Status{
		Phase:     workflows.PhaseAwaitingApproval,
		ApproveBy: time.Date(2026, 12, 1, 16, 0, 0, 0, time.UTC),
		Analysis:  []workflows.Analysis{{Step: "VerifyGreen", Result: verify}},
	})
	got := b.String()
	for _, want := range []string{
		"zone example.com. on ns1-next against ns1: 1 added, 0 removed, 1 changed: api.example.com. A, www.example.com. A\n",
		"approve by 2026-12-01 16:00:00 UTC, or the rollout is aborted\n",
		"approve: dnsroll rollout approve --id rollout-lab:0f1e --reason '...'\n",
		"abort:   dnsroll rollout abort --id rollout-lab:0f1e --reason '...'\n",
		"temporal workflow signal --workflow-id rollout-lab --name approve",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("printed:\n%s\nlacks %q", got, want)
		}
	}
}
