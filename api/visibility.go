package api

import (
	"context"
	"errors"
	"fmt"
	"strings"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/converter"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/rollouts"
	"github.com/dnsroll/dnsroll/workflows"
)

// What Temporal records of rollouts without asking them: search
// attributes, times and states, read and listed through its visibility
// store.

// recorded is the status Temporal keeps without the workflow's help: the
// search attributes and the execution's times.
func recorded(info *workflowpb.WorkflowExecutionInfo) workflows.Status {
	attrs := info.GetSearchAttributes()
	st := workflows.Status{
		Fleet: keyword(attrs, workflows.FleetAttr.GetName()), Revision: keyword(attrs, workflows.RevisionAttr.GetName()),
		Run: workflows.Run{
			Phase:     workflows.Phase(keyword(attrs, workflows.PhaseAttr.GetName())),
			StartedAt: info.GetStartTime().AsTime(), Steps: []*workflows.Step{},
		},
	}
	if info.GetCloseTime() != nil {
		st.EndedAt = info.GetCloseTime().AsTime()
	}
	if st.Phase == "" {
		// The first workflow task has not run yet: planning is next.
		st.Phase = workflows.PhasePlanning
	}
	return st
}

func keyword(attrs *commonpb.SearchAttributes, name string) string {
	p, ok := attrs.GetIndexedFields()[name]
	if !ok {
		return ""
	}
	var s string
	if err := converter.GetDefaultDataConverter().FromPayload(p, &s); err != nil {
		return ""
	}
	return s
}

// List implements Backend through Temporal's visibility store.
func (t *Temporal) List(ctx context.Context, f Filter) ([]Summary, []byte, error) {
	resp, err := t.Client.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
		Namespace: t.Namespace, PageSize: int32(f.Limit), NextPageToken: f.PageToken, Query: ListQuery(f),
	})
	var bad *serviceerror.InvalidArgument
	switch {
	case errors.As(err, &bad) && f.State != "" && strings.Contains(bad.Message, "ExecutionStatus"):
		// A Temporal server older than the API's client may not know a
		// status (1.29 refuses Paused).
		return nil, nil, fieldError("status", "Temporal's visibility store does not filter by %s: %s; list without it", f.State, bad.Message)
	case errors.As(err, &bad):
		return nil, nil, dnsroll.Errorf(dnsroll.EINVALID, "page_token or filter: %s", bad.Message)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("list %ss: %w", f.kind().Noun, err)
	}
	out := make([]Summary, 0, len(resp.GetExecutions()))
	for _, e := range resp.GetExecutions() {
		run := rollouts.Run{WorkflowID: e.GetExecution().GetWorkflowId(), RunID: e.GetExecution().GetRunId()}
		st := recorded(e)
		sum := Summary{
			ID: RolloutID(run), WorkflowID: run.WorkflowID, RunID: run.RunID,
			Fleet: st.Fleet, Revision: st.Revision, Phase: st.Phase, State: stateName(e.GetStatus()),
			StartedAt: st.StartedAt, EndedAt: st.EndedAt,
		}
		if k := f.kind(); k.Type != Rollouts.Type {
			// Only rollouts keep their phase in a search attribute; a load
			// balancer run's fleet is in its workflow ID, attribute or not.
			sum.Fleet, sum.Phase = k.Fleet(run), ""
		}
		out = append(out, sum)
	}
	return out, resp.GetNextPageToken(), nil
}

// LastRevision implements Backend: the revision of the fleet's most
// recently completed rollout (rollouts.LastSucceeded).
func (t *Temporal) LastRevision(ctx context.Context, fleet string) (string, error) {
	st, _, err := rollouts.LastSucceeded(ctx, t.Client, fleet)
	return st.Revision, err
}

// Live implements Backend.
func (t *Temporal) Live(ctx context.Context, fleet string) (bundle, why string) {
	return rollouts.Live(ctx, t.Client, fleet)
}

// ListQuery is the visibility query for f. Its values are checked against
// config.ValidFleetName, States and Phases first, so none can carry a quote.
func ListQuery(f Filter) string {
	k := f.kind()
	q := []string{fmt.Sprintf("WorkflowType = '%s'", k.Type)}
	switch {
	case f.Fleet == "":
	case k.Type == Rollouts.Type:
		q = append(q, fmt.Sprintf("Fleet = '%s'", f.Fleet))
	default:
		// A fleet has one workflow ID per kind of load balancer run, and
		// the ID holds where a run started without the API has no Fleet.
		q = append(q, fmt.Sprintf("WorkflowId = '%s'", k.ID(f.Fleet)))
	}
	if f.State != "" {
		q = append(q, fmt.Sprintf("ExecutionStatus = '%s'", queryStates[f.State]))
	}
	if f.Phase != "" {
		q = append(q, fmt.Sprintf("Phase = '%s'", f.Phase))
	}
	return strings.Join(q, " AND ")
}

// queryStates maps States to the names visibility queries use.
var queryStates = map[string]string{
	"running": "Running", "paused": "Paused", "completed": "Completed", "failed": "Failed", "canceled": "Canceled",
	"terminated": "Terminated", "timed-out": "TimedOut", "continued-as-new": "ContinuedAsNew",
}

func stateName(s enumspb.WorkflowExecutionStatus) string {
	for name, q := range queryStates {
		if q == s.String() {
			return name
		}
	}
	return strings.ToLower(s.String())
}
