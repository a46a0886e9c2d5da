package rollouts

import (
	"testing"

	"go.temporal.io/sdk/client"

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
		if got := workflows.RolloutSummary(tt.in); got != tt.want {
			t.Errorf("summary(%+v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// A rollout and a plan start with Fleet and its Revision as search
// attributes, each one the lab registers and the worker checks
// (workflows.SearchAttributes); without a revision they have no Revision
// rather than an empty one.
func TestStartOptions(t *testing.T) {
	for _, kind := range []struct {
		name, id string
		options  func(workflows.RolloutInput) client.StartWorkflowOptions
	}{
		{"rollout", "rollout-lab", startOptions},
		{"plan", "plan-lab-1a2b", func(in workflows.RolloutInput) client.StartWorkflowOptions { return planOptions(in, "1a2b") }},
	} {
		t.Run(kind.name, func(t *testing.T) { testStartOptions(t, kind.id, kind.options) })
	}
}

func testStartOptions(t *testing.T, wantID string, options func(workflows.RolloutInput) client.StartWorkflowOptions) {
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
		opts := options(tt.in)
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
		if opts.ID != wantID || opts.StaticSummary == "" {
			t.Errorf("%+v: ID %q, summary %q", tt.in, opts.ID, opts.StaticSummary)
		}
	}
}
