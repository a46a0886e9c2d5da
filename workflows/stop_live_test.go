package workflows

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/activities"
	"github.com/dnsroll/dnsroll/config"
	"github.com/dnsroll/dnsroll/internal/temporaltest"
	"github.com/dnsroll/dnsroll/lb"
	"github.com/dnsroll/dnsroll/registrar"
)

// An abort that a replacement took while a step ran holds even when that
// step then ends well. A step that does not heartbeat learns of the cancel
// only when it ends, and on a real Temporal server it then reports its
// result, not a cancellation (the test environment cancels at once, so
// this runs on the dev server). Here the drain's last read is running
// when force-drain and then abort come: before, the drain ended, the
// replacement went past the point of no return, and the run ended failed
// with the glue on the new load balancers and the old ones kept, although
// the API had acknowledged the abort.
func TestLBReplaceAbortTakenDuringTheDrainsLastReadIsCarriedOut(t *testing.T) {
	c, steps, in := liveLBReplace(t, lbFleet, 200*time.Millisecond)
	var st LBReplaceStatus
	abortWhileHeld(t, c, LBReplaceWorkflowID(in.Fleet), steps, steps.gate, LoadBalancerReplaceWorkflow, in,
		"abort requested", "lbreplace-abort-in-the-last-drain-read", &st,
		sent{SignalForceDrain, SignalInput{Reason: "resolvers ignore TTLs"}}, sent{SignalAbort, SignalInput{Reason: "wrong domain"}})
	if st.Phase != PhaseAborted {
		t.Errorf("phase %s (%s), want aborted", st.Phase, st.Failure)
	}
	calls := steps.done()
	if !registrar.Equal(steps.parentNow(), oldGlue) {
		t.Errorf("the parent serves %v after the abort, want the old glue; steps %v", steps.parentNow(), calls)
	}
	for _, want := range []string{"Delete lb1-next", "Delete lb2-next"} {
		if !slices.Contains(calls, want) {
			t.Errorf("the abort did not %s: %v", want, calls)
		}
	}
	for _, never := range []string{"Delete lb1", "Delete lb2", "Rename lb1-next lb1"} {
		if slices.Contains(calls, never) {
			t.Errorf("the abort was not carried out: %s ran: %v", never, calls)
		}
	}
}

// liveLBReplace starts a dev server with dnsroll's search attributes, and
// makes the live steps of a replacement of the fleet fleetYAML, the old
// glue in its parent, and its input, whose drain polls every poll until
// the load balancers are quiet for a second.
func liveLBReplace(t *testing.T, fleetYAML string, poll time.Duration) (client.Client, *liveLBSteps, LBReplaceInput) {
	t.Helper()
	c, fleet := liveFleet(t, fleetYAML)
	in := lbInput()
	in.Drain = DrainPolicy{Quiet: config.Duration(time.Second), Poll: config.Duration(poll)}
	return c, &liveLBSteps{fleet: fleet, parent: oldGlue, gate: newGate(t)}, in
}

// executeOnQueueID starts workflow wf with input in as workflow id, on
// task queue id.
func executeOnQueueID(ctx context.Context, t *testing.T, c client.Client, id string, wf, in any) client.WorkflowRun {
	t.Helper()
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: id}, wf, in)
	if err != nil {
		t.Fatal(err)
	}
	return run
}

// liveFleet starts a dev server with dnsroll's search attributes and
// parses the fleet fleetYAML.
func liveFleet(t *testing.T, fleetYAML string) (client.Client, *config.Fleet) {
	t.Helper()
	c := temporaltest.DevServer(t, SearchAttributes...)
	fleet, err := config.Parse([]byte(fleetYAML))
	if err != nil {
		t.Fatal(err)
	}
	return c, fleet
}

// liveLBSteps are a replacement's steps for a real worker: the registrar
// and parent in memory, load balancers that are created at once and
// never busy. A drain round's read of the counters (of the last load
// balancer, in runs from before versionDrainReadsInOneStep) waits at gate,
// and then ends well whatever the cancel said.
type liveLBSteps struct {
	fleet *config.Fleet
	gate  *gate

	callLog
	parentMu sync.Mutex
	parent   []registrar.NameServer
}

func (s *liveLBSteps) parentNow() []registrar.NameServer {
	s.parentMu.Lock()
	defer s.parentMu.Unlock()
	return s.parent
}

func (s *liveLBSteps) LoadFleet(context.Context, string) (*config.Fleet, error) { return s.fleet, nil }

func (s *liveLBSteps) CheckNewLoadBalancerOffers(context.Context, activities.CheckOffersInput) (activities.StepResult, error) {
	return activities.StepResult{Attempt: 1}, nil
}

func (s *liveLBSteps) CheckParent(_ context.Context, in activities.ParentInput) (activities.ParentResult, error) {
	res := activities.ParentResult{Attempt: 1, NS: s.parentNow(), NSTTL: time.Second, GlueTTL: time.Second}
	if in.Child != "" {
		res.ZoneNSTTL = time.Second
	}
	return res, nil
}

func (s *liveLBSteps) SetGlue(_ context.Context, in activities.SetGlueInput) (activities.SetGlueResult, error) {
	to := "old"
	if registrar.Equal(in.NS, newGlue) {
		to = "new"
	}
	s.add("SetGlue " + to)
	s.parentMu.Lock()
	s.parent = in.NS
	s.parentMu.Unlock()
	return activities.SetGlueResult{Attempt: 1}, nil
}

func (s *liveLBSteps) CreateLoadBalancer(_ context.Context, in activities.LoadBalancerInput) (activities.NewLoadBalancer, error) {
	next := in.LB
	next.Name = dnsroll.NextLabel(in.LB.Name)
	n := strings.TrimPrefix(in.LB.Name, "lb")
	next.Address = "203.0.113." + n + ":53"
	s.add("Create " + next.Name)
	return activities.NewLoadBalancer{Attempt: 1, LB: next, Server: dnsroll.Server{ID: 10, Label: next.Name, IPv4: "203.0.113." + n}}, nil
}

func (s *liveLBSteps) VerifyLoadBalancer(context.Context, activities.LoadBalancerInput) (activities.StepResult, error) {
	return activities.StepResult{Attempt: 1}, nil
}

func (s *liveLBSteps) LoadBalancerQueries(_ context.Context, in activities.LoadBalancerInput) (activities.QueriesResult, error) {
	if in.LB.Name == s.fleet.LoadBalancers[len(s.fleet.LoadBalancers)-1].Name {
		s.gate.hold()
	}
	return activities.QueriesResult{Attempt: 1, Counted: true}, nil
}

func (s *liveLBSteps) LoadBalancersQueries(_ context.Context, in activities.LoadBalancersInput) (activities.LoadBalancersQueriesResult, error) {
	s.gate.hold()
	res := activities.LoadBalancersQueriesResult{Attempt: 1}
	for _, lb := range in.LBs {
		res.LBs = append(res.LBs, activities.LBQueries{Name: lb.Name, Counted: true})
	}
	return res, nil
}

func (s *liveLBSteps) DeleteLoadBalancer(_ context.Context, in activities.DeleteLoadBalancerInput) (activities.StepResult, error) {
	s.add("Delete " + in.Label)
	return activities.StepResult{Attempt: 1}, nil
}

func (s *liveLBSteps) RenameServer(_ context.Context, in activities.RenameInput) (activities.StepResult, error) {
	s.add("Rename " + in.Server.Label + " " + in.To)
	return activities.StepResult{Attempt: 1}, nil
}

func (s *liveLBSteps) Notify(context.Context, activities.NotifyInput) (activities.StepResult, error) {
	return activities.StepResult{Attempt: 1}, nil
}

// An abort that a load balancer update took while it checked DNS through
// the load balancer it had just updated restores that one, whether the
// check then ends well or not: the abort came while it was being updated.
// Before, an abort during the last one's check ended the update
// succeeded, and during an earlier one's, that one kept its update.
func TestLBUpdateAbortTakenDuringTheCheckAfterRestoresThatLB(t *testing.T) {
	c, fleet := liveFleet(t, labFleet)
	for _, lbName := range []string{"lb1", "lb2"} {
		t.Run(lbName, func(t *testing.T) {
			// A fleet of its own, so that a run this subtest leaves behind
			// does not hold the next one's fleet lock.
			fleet := *fleet
			fleet.Name = "test-" + lbName
			// lb1's bake, in real time, a second rather than a minute.
			second := config.Duration(time.Second)
			fleet.LBUpdate = config.LBUpdate{Bake: &second, BakeInterval: second}
			steps := &liveUpdateSteps{blockAfter: lbName, gate: newGate(t)}
			var st Status
			abortWhileHeld(t, c, "lbupdate-"+lbName, steps, steps.gate, LoadBalancerUpdateWorkflow, LBUpdateInput{Fleet: &fleet, Update: lb.Update{Kind: lb.UpdateBinary}},
				"abort by", "lbupdate-abort-in-the-check-after-"+lbName, &st, sent{SignalAbort, SignalInput{Reason: "wrong binary"}})
			if st.Phase != PhaseAborted {
				t.Errorf("phase %s (%s), want aborted", st.Phase, st.Failure)
			}
			calls := steps.done()
			if !slices.Contains(calls, "Restore "+lbName) {
				t.Errorf("the abort during %s's check did not restore it: %v", lbName, calls)
			}
			// Those done before keep the update.
			if lbName == "lb2" && slices.Contains(calls, "Restore lb1") {
				t.Errorf("lb1, updated and checked before the abort, was restored: %v", calls)
			}
		})
	}
}

// sent is a signal a test sends.
type sent struct {
	name string
	in   SignalInput
}

// abortWhileHeld runs workflow wf with input in, as workflow id, on a
// worker of its own (task queue id) that has the fake steps. Once a step
// waits at g, it sends signals, the last of them an abort; once the
// status says took (the workflow took the abort), it opens g, and the step
// ends well, as one that never heard of the cancel. The run's final
// status goes to st, from its result or its failure's details, and its
// history is recorded as name (temporaltest.RecordHistory).
func abortWhileHeld(t *testing.T, c client.Client, id string, steps any, g *gate, wf, in any, took, name string, st any, signals ...sent) {
	t.Helper()
	startLiveWorker(t, c, id, steps)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	run := executeOnQueueID(ctx, t, c, id, wf, in)
	g.reached(ctx, t, name+": the step held")
	for _, s := range signals {
		if err := c.SignalWorkflow(ctx, id, "", s.name, s.in); err != nil {
			t.Fatal(err)
		}
	}
	waitForEvent(ctx, t, c, id, took)
	g.open()
	err := run.Get(ctx, st)
	temporaltest.RecordHistory(t, c, id, run.GetRunID(), name)
	if err != nil {
		var failure *temporal.ApplicationError
		if !errors.As(err, &failure) || failure.Details(st) != nil {
			t.Fatalf("%s ended with %v", id, err)
		}
	}
}

// waitForEvent waits until the status of workflow id has an event that
// says what.
func waitForEvent(ctx context.Context, t *testing.T, c client.Client, id, what string) {
	t.Helper()
	for {
		v, err := c.QueryWorkflow(ctx, id, "", QueryStatus)
		if err != nil {
			t.Fatal(err)
		}
		var st struct{ Events []Event }
		if err := v.Get(&st); err != nil {
			t.Fatal(err)
		}
		if slices.ContainsFunc(st.Events, func(e Event) bool { return strings.Contains(e.Message, what) }) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// callLog records, in order, what a run did: the calls of its fake steps,
// its fleet holds (watchHold).
type callLog struct {
	mu    sync.Mutex
	calls []string
}

func (l *callLog) add(call string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls = append(l.calls, call)
}

func (l *callLog) done() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.calls)
}

// gate holds a fake step until the test opens it, as a step still running
// when an abort comes. Every step that reaches it waits (a retried attempt
// too); the first tells the test. It opens when the test ends at the
// latest, so that no step is left waiting.
type gate struct {
	once, openOnce  sync.Once
	arrived, opened chan struct{}
}

func newGate(t *testing.T) *gate {
	g := &gate{arrived: make(chan struct{}), opened: make(chan struct{})}
	t.Cleanup(g.open)
	return g
}

func (g *gate) hold() {
	g.once.Do(func() { close(g.arrived) })
	<-g.opened
}

func (g *gate) open() { g.openOnce.Do(func() { close(g.opened) }) }

// reached waits until a step reached the gate, or fails t.
func (g *gate) reached(ctx context.Context, t *testing.T, what string) {
	t.Helper()
	select {
	case <-g.arrived:
	case <-ctx.Done():
		t.Fatal(what + " never came")
	}
}

// liveUpdateSteps are a load balancer update's steps for a real worker.
// The check after blockAfter's update waits at gate, and then ends well
// whatever the cancel said.
type liveUpdateSteps struct {
	blockAfter string
	gate       *gate

	callLog
	updatedMu sync.Mutex
	updated   map[string]bool
}

func (s *liveUpdateSteps) CheckLoadBalancerDNS(_ context.Context, in activities.CheckLBInput) (activities.StepResult, error) {
	s.add("Check " + in.LB.Name)
	s.updatedMu.Lock()
	after := s.updated[in.LB.Name]
	s.updatedMu.Unlock()
	if after && in.LB.Name == s.blockAfter {
		s.gate.hold()
	}
	return activities.StepResult{Attempt: 1}, nil
}

func (s *liveUpdateSteps) UpdateLoadBalancer(_ context.Context, in activities.UpdateLBInput) (activities.StepResult, error) {
	s.updatedMu.Lock()
	defer s.updatedMu.Unlock()
	if s.updated == nil {
		s.updated = map[string]bool{}
	}
	s.updated[in.LB.Name] = true
	s.add("Update " + in.LB.Name)
	return activities.StepResult{Attempt: 1}, nil
}

func (s *liveUpdateSteps) RestoreLoadBalancer(_ context.Context, in activities.UpdateLBInput) (activities.RestoreResult, error) {
	s.add("Restore " + in.LB.Name)
	return activities.RestoreResult{StepResult: activities.StepResult{Attempt: 1}}, nil
}

// An abort that a fleet's first rollout took while it staged the last
// load balancer is carried out when the stage then ends well: nothing was
// switched yet, so green is deleted and the rollout ends aborted. Before,
// the rollout committed (a load balancer that fronts no blue has no way
// back) and then, its flips cancelled, ended failed with green left.
func TestFirstRolloutAbortTakenDuringTheLastStageIsCarriedOut(t *testing.T) {
	c, fleet := liveFleet(t, labFleet)
	steps := &liveRolloutSteps{fleet: fleet, gate: newGate(t)}
	var st Status
	abortWhileHeld(t, c, "rollout-test", steps, steps.gate, RolloutWorkflow, RolloutInput{Fleet: "test", Revision: "B"},
		"abort requested", "first-rollout-abort-in-the-last-stage", &st, sent{SignalAbort, SignalInput{Reason: "wrong revision"}})
	if st.Phase != PhaseAborted {
		t.Errorf("phase %s (%s), want aborted", st.Phase, st.Failure)
	}
	calls := steps.done()
	if !slices.Contains(calls, "DeleteGreen") {
		t.Errorf("the abort did not delete green: %v", calls)
	}
	if slices.ContainsFunc(calls, func(c string) bool { return strings.HasPrefix(c, "Flip ") }) {
		t.Errorf("a load balancer was flipped after the abort: %v", calls)
	}
}

// liveRolloutSteps are a fleet's first rollout's steps for a real worker:
// no blue, green created and checked at once. The stage of the last load
// balancer waits at gate, and then ends well whatever the cancel said.
type liveRolloutSteps struct {
	fleet *config.Fleet
	gate  *gate
	callLog
}

func (s *liveRolloutSteps) Plan(_ context.Context, in activities.PlanInput) (activities.Plan, error) {
	plan := activities.Plan{Fleet: s.fleet, Revision: in.Revision, Blue: map[string]dnsroll.Server{}, Zones: []activities.ZoneFile{{Name: "example.com", Serial: 7}}, Bundle: testBundle, Attempt: 1}
	if in.SmallHistory {
		plan.Fleet, plan.Zones, plan.ZoneCount, plan.FleetRef = s.fleet.ForSteps(), nil, 1, &testFleetRef
	}
	return plan, nil
}

func (s *liveRolloutSteps) LoadFleet(context.Context, string) (*config.Fleet, error) {
	return s.fleet, nil
}

func (s *liveRolloutSteps) EnsureServer(_ context.Context, in activities.EnsureServerInput) (activities.ServerResult, error) {
	s.add("EnsureServer " + in.Spec.Label)
	id := 10
	if strings.HasPrefix(in.Spec.Label, "ns2") {
		id = 11
	}
	return activities.ServerResult{Server: dnsroll.Server{ID: id, Label: in.Spec.Label, Status: "running", IPv4: "192.0.2." + strconv.Itoa(id)}, Attempt: 1}, nil
}

func (s *liveRolloutSteps) ProvisionNameservers(context.Context, activities.ProvisionInput) (activities.ProvisionResult, error) {
	return activities.ProvisionResult{Attempt: 1}, nil
}

func (s *liveRolloutSteps) VerifyGreen(context.Context, activities.VerifyInput) (activities.VerifyResult, error) {
	return activities.VerifyResult{Attempt: 1}, nil
}

func (s *liveRolloutSteps) VerifyLoadBalancers(context.Context, activities.VerifyInput) (activities.VerifyResult, error) {
	return activities.VerifyResult{Attempt: 1}, nil
}

func (s *liveRolloutSteps) BakeCheck(context.Context, activities.VerifyInput) (activities.VerifyResult, error) {
	return activities.VerifyResult{Attempt: 1}, nil
}

func (s *liveRolloutSteps) StageLoadBalancer(_ context.Context, in activities.StageInput) (activities.StepResult, error) {
	s.add("Stage " + in.LB.Name)
	if in.LB.Name == s.fleet.LoadBalancers[len(s.fleet.LoadBalancers)-1].Name {
		s.gate.hold()
	}
	return activities.StepResult{Attempt: 1}, nil
}

func (s *liveRolloutSteps) FlipLoadBalancer(_ context.Context, in activities.FlipInput) (activities.StepResult, error) {
	s.add("Flip " + in.LB.Name)
	return activities.StepResult{Attempt: 1}, nil
}

func (s *liveRolloutSteps) SwitchLoadBalancer(_ context.Context, in activities.SwitchInput) (activities.StepResult, error) {
	s.add("Switch " + in.LB.Name)
	return activities.StepResult{Attempt: 1}, nil
}

func (s *liveRolloutSteps) DeleteGreen(context.Context, activities.DeleteGreenInput) (activities.StepResult, error) {
	s.add("DeleteGreen")
	return activities.StepResult{Attempt: 1}, nil
}

func (s *liveRolloutSteps) DeleteServer(_ context.Context, in activities.DeleteServerInput) (activities.StepResult, error) {
	s.add("DeleteServer")
	return activities.StepResult{Attempt: 1}, nil
}

func (s *liveRolloutSteps) RenameServer(_ context.Context, in activities.RenameInput) (activities.StepResult, error) {
	s.add("Rename " + in.Server.Label)
	return activities.StepResult{Attempt: 1}, nil
}

func (s *liveRolloutSteps) Notify(context.Context, activities.NotifyInput) (activities.StepResult, error) {
	return activities.StepResult{Attempt: 1}, nil
}

// A replacement terminated while its zone rollout runs: Temporal ends the
// replacement's hold of the fleet and asks the rollout to cancel. The
// rollout holds the fleet itself while it undoes, so no other run of the
// fleet can start and change the load balancers it puts back. holder
// stands for the replacement.
func TestAHeldRolloutWhoseHolderIsTerminatedHoldsTheFleetForItsUndo(t *testing.T) {
	c, fleet := liveFleet(t, labFleet)
	steps := &gatedUndoSteps{liveRolloutSteps: liveRolloutSteps{fleet: fleet, gate: newGate(t)}, undo: newGate(t)}
	const queue = "held-rollout-test"
	startLiveWorker(t, c, queue, steps, func(w worker.Worker) {
		w.RegisterWorkflowWithOptions(holder, workflow.RegisterOptions{Name: "holder"})
	})
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	if _, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "holder-test", TaskQueue: queue}, "holder"); err != nil {
		t.Fatal(err)
	}
	steps.gate.reached(ctx, t, "the rollout's last stage")
	if err := c.TerminateWorkflow(ctx, "holder-test", "", "operator gave up on the replacement"); err != nil {
		t.Fatal(err)
	}
	// The stage ends only once the cancellation has reached the rollout:
	// one that ended before would let the rollout finish.
	for !cancelRequested(ctx, t, c, WorkflowID("test")) {
		time.Sleep(50 * time.Millisecond)
	}
	steps.gate.open()
	steps.undo.reached(ctx, t, "the rollout's undo")
	lock := FleetLockWorkflowID("test")
	held, cancelHeld := context.WithTimeout(ctx, 30*time.Second)
	defer cancelHeld()
	for {
		d, err := c.DescribeWorkflowExecution(held, lock, "")
		if err == nil && d.WorkflowExecutionInfo.Status == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING &&
			d.WorkflowExecutionInfo.ParentExecution.GetWorkflowId() == WorkflowID("test") {
			break
		}
		if held.Err() != nil {
			t.Fatalf("while the rollout undoes, %s is not held by it: %v %v", lock, d, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	steps.undo.open()
	var st Status
	err := c.GetWorkflow(ctx, WorkflowID("test"), "").Get(ctx, &st)
	var failure *temporal.ApplicationError
	if !errors.As(err, &failure) || failure.Details(&st) != nil || st.Phase != PhaseAborted {
		t.Fatalf("the rollout ended %v, phase %s; want aborted", err, st.Phase)
	}
	temporaltest.RecordHistory(t, c, WorkflowID("test"), "", "held-rollout-cancelled-when-its-holder-is-terminated")
	if d, err := c.DescribeWorkflowExecution(ctx, lock, ""); err != nil || d.WorkflowExecutionInfo.Status != enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED {
		t.Errorf("after the rollout, %s is %v (%v); want it released", lock, d.GetWorkflowExecutionInfo().GetStatus(), err)
	}
}

// cancelRequested tells whether workflow id has been asked to cancel.
func cancelRequested(ctx context.Context, t *testing.T, c client.Client, id string) bool {
	t.Helper()
	return historyHas(ctx, t, c, id, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_CANCEL_REQUESTED)
}

// historyHas tells whether workflow id's history has an event of type typ.
func historyHas(ctx context.Context, t *testing.T, c client.Client, id string, typ enumspb.EventType) bool {
	t.Helper()
	it := c.GetWorkflowHistory(ctx, id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		if e.GetEventType() == typ {
			return true
		}
	}
	return false
}

// failedRollout waits for the rollout run to fail, records its history as
// name, and returns the status its failure carries.
func failedRollout(ctx context.Context, t *testing.T, c client.Client, run client.WorkflowRun, name string) Status {
	t.Helper()
	var st Status
	err := run.Get(ctx, &st)
	temporaltest.RecordHistory(t, c, run.GetID(), run.GetRunID(), name)
	var failure *temporal.ApplicationError
	if !errors.As(err, &failure) || failure.Details(&st) != nil {
		t.Fatalf("the rollout ended with %v", err)
	}
	return st
}

// gatedUndoSteps are liveRolloutSteps whose DeleteGreen waits at undo.
type gatedUndoSteps struct {
	liveRolloutSteps
	undo *gate
}

func (s *gatedUndoSteps) DeleteGreen(ctx context.Context, in activities.DeleteGreenInput) (activities.StepResult, error) {
	s.undo.hold()
	return s.liveRolloutSteps.DeleteGreen(ctx, in)
}

// holder stands for a replacement that rolls out its zone: it holds fleet
// test and runs its rollout as a child, as runZoneRollout does.
func holder(ctx workflow.Context) error {
	hold, err := holdFleet(ctx, "test")
	if err != nil {
		return err
	}
	defer hold.release(ctx)
	ctx = workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{WorkflowID: WorkflowID("test"),
		ParentClosePolicy: enumspb.PARENT_CLOSE_POLICY_REQUEST_CANCEL, WaitForCancellation: true})
	return workflow.ExecuteChildWorkflow(ctx, RolloutWorkflow, RolloutInput{Fleet: "test", Revision: "B", HeldBy: "holder-test"}).Get(ctx, nil)
}

// startLiveWorker starts a worker of its own on queue, with the workflows,
// steps as their activities and whatever more registers, and one on its
// undo queue with steps, as dnsroll's worker does; they stop when the test
// ends.
func startLiveWorker(t *testing.T, c client.Client, queue string, steps any, more ...func(worker.Worker)) {
	t.Helper()
	startStoppableWorker(t, c, queue, steps, more...)
}

// A load balancer update's run, as its marks name it, is the same in a
// run reset from it (the Web UI's reset after a failed check): its
// restore must find the marks of the update the run before it made. The
// test environment has no resets, so a real server does one.
func TestUpdateRunSurvivesAReset(t *testing.T) {
	c := temporaltest.DevServer(t)
	const queue = "update-run-reset"
	startLiveWorker(t, c, queue, func(context.Context) error { return nil }, func(w worker.Worker) {
		w.RegisterWorkflowWithOptions(func(ctx workflow.Context) (string, error) {
			// A timer, so that the run has a workflow task to reset to.
			if err := workflow.Sleep(ctx, time.Millisecond); err != nil {
				return "", err
			}
			return updateRun(ctx), nil
		}, workflow.RegisterOptions{Name: "TestUpdateRun"})
	})
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "update-run-reset", TaskQueue: queue}, "TestUpdateRun")
	if err != nil {
		t.Fatal(err)
	}
	var first string
	if err := run.Get(ctx, &first); err != nil {
		t.Fatal(err)
	}
	if want := run.GetID() + "/" + run.GetRunID(); first != want {
		t.Fatalf("the run names itself %q, want %q", first, want)
	}
	reset, err := c.ResetWorkflowExecution(ctx, &workflowservice.ResetWorkflowExecutionRequest{
		Namespace:                 "default",
		WorkflowExecution:         &commonpb.WorkflowExecution{WorkflowId: run.GetID(), RunId: run.GetRunID()},
		Reason:                    "the test's",
		WorkflowTaskFinishEventId: 4, // the first workflow task's completion
		RequestId:                 "update-run-reset-1",
	})
	if err != nil {
		t.Fatal(err)
	}
	var again string
	if err := c.GetWorkflow(ctx, run.GetID(), reset.GetRunId()).Get(ctx, &again); err != nil {
		t.Fatal(err)
	}
	if reset.GetRunId() == run.GetRunID() || again != first {
		t.Errorf("the reset run %s names itself %q, want %q, the run it was reset from", reset.GetRunId(), again, first)
	}
}

// A rollback that comes while a forward flip runs flips back only once
// that flip has ended. A flip that does not heartbeat learns of the
// cancel only when it ends, on a real server, so a flip back started at
// the signal could land first, and the forward flip after it, leaving the
// load balancer on green in a run that says it rolled back.
func TestRollbackDuringAFlipFlipsBackAfterIt(t *testing.T) {
	c, fleet := liveFleet(t, labFleet)
	steps := &liveFlipSteps{liveRolloutSteps{fleet: fleet, gate: newGate(t)}}
	var st Status
	abortWhileHeld(t, c, "rollout-test", steps, steps.gate, RolloutWorkflow, RolloutInput{Fleet: "test", Revision: "B"},
		"rollback requested", "rollback-during-a-flip", &st, sent{SignalRollback, SignalInput{Reason: "green looks wrong"}})
	if st.Phase != PhaseRolledBack {
		t.Errorf("phase %s (%s), want rolled back", st.Phase, st.Failure)
	}
	landed := map[string]string{}
	for _, call := range steps.done() {
		if f := strings.Fields(call); f[0] == "Flip" {
			landed[f[1]] = f[2]
		}
	}
	if landed["lb1"] != "green:0" || landed["lb2"] != "green:0" {
		t.Errorf("last flips to land %v, want both load balancers back on blue; calls %v", landed, steps.done())
	}
}

// liveFlipSteps are a rollout's steps with blue: the forward flip of lb1
// waits at gate, and each flip is logged as it lands.
type liveFlipSteps struct{ liveRolloutSteps }

func (s *liveFlipSteps) Plan(ctx context.Context, in activities.PlanInput) (activities.Plan, error) {
	plan, err := s.liveRolloutSteps.Plan(ctx, in)
	plan.Blue = map[string]dnsroll.Server{
		"ns1": {ID: 1, Label: "ns1", Status: "running", IPv4: "192.0.2.1"},
		"ns2": {ID: 2, Label: "ns2", Status: "running", IPv4: "192.0.2.2"},
	}
	return plan, err
}

func (s *liveFlipSteps) StageLoadBalancer(_ context.Context, in activities.StageInput) (activities.StepResult, error) {
	s.add("Stage " + in.LB.Name)
	return activities.StepResult{Attempt: 1}, nil
}

func (s *liveFlipSteps) FlipLoadBalancer(_ context.Context, in activities.FlipInput) (activities.StepResult, error) {
	green := 0
	for _, sh := range in.Shares {
		if strings.HasSuffix(sh.Server.Label, "-next") {
			green = sh.Weight
		}
	}
	if green > 0 && in.LB.Name == "lb1" {
		s.gate.hold()
		// As a slow driver's answer: a flip back started beside it lands first.
		time.Sleep(300 * time.Millisecond)
	}
	s.add("Flip " + in.LB.Name + " green:" + strconv.Itoa(green))
	return activities.StepResult{Attempt: 1}, nil
}
