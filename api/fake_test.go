package api

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/activities"
	"github.com/dnsroll/dnsroll/rollouts"
	"github.com/dnsroll/dnsroll/workflows"
	"github.com/dnsroll/dnsroll/zone"
)

var _ Backend = (*fakeBackend)(nil)

// fakeBackend keeps rollouts in memory; tests set their phases directly.
type fakeBackend struct {
	mu      sync.Mutex
	runs    map[string]*Rollout // by ID
	order   []string            // IDs, oldest first
	n       int
	started []workflows.RolloutInput
	keys    map[string]keyedStart // starts by Idempotency-Key
	signals []string              // "<signal> <id> <reason> <by>"
	// sent are the signals' inputs, in the order of signals.
	sent []workflows.SignalInput
	// live and liveWhy are what Live answers; looked are the fleets it
	// was asked about.
	live, liveWhy string
	looked        []string
	lastRev       string
	listErr       error
	healthy       bool
	// healthChecks counts the calls to Health.
	healthChecks int
	// lbRuns are load balancer updates and replacements, by ID, with
	// lbOrder their IDs, oldest first; lbStarted their inputs.
	lbRuns    map[string]*fakeLBRun
	lbOrder   []string
	lbStarted []any
	// refusedBusy are the IDs of rollouts that failed because their fleet
	// was busy (addRefused).
	refusedBusy map[string]bool
	// noWorker plays a Temporal with no worker polling: a running run's
	// status query is not answered (a rollout is read from what Temporal
	// recorded, which numbers no gate).
	noWorker bool
	// planned are the inputs of plans; planErr, when set, refuses them.
	planned []workflows.RolloutInput
	planErr error
	// planCut, when set, plays the SDK waiting for a plan no worker
	// takes: its gRPC call ends with this error a moment before ctx says
	// it is done.
	planCut error
	// signalErr, when set, is what Signal answers, sending nothing.
	signalErr error
	// inputs are the inputs of rollouts, by ID: those Start recorded and
	// those tests set. Input makes one up for the others.
	inputs map[string]workflows.RolloutInput
	// inputErr, when set, is what Input answers.
	inputErr error
}

// fakeLBRun is a run of a load balancer workflow.
type fakeLBRun struct {
	kind   Kind
	run    rollouts.Run
	state  string
	status any
}

func newFake() *fakeBackend {
	return &fakeBackend{runs: map[string]*Rollout{}, lbRuns: map[string]*fakeLBRun{}, refusedBusy: map[string]bool{}, healthy: true}
}

var t0 = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

// add records a rollout of fleet in phase and returns its ID.
func (f *fakeBackend) add(fleet string, phase workflows.Phase) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n++
	run := rollouts.Run{WorkflowID: workflows.WorkflowID(fleet), RunID: fmt.Sprintf("run-%d", f.n)}
	state := "running"
	switch phase {
	case workflows.PhaseSucceeded:
		state = "completed"
	case workflows.PhaseFailed, workflows.PhaseAborted, workflows.PhaseRolledBack, workflows.PhaseCleanupFailed, workflows.PhaseCleanedUp:
		state = "failed"
	}
	ro := &Rollout{ID: RolloutID(run), WorkflowID: run.WorkflowID, RunID: run.RunID, State: state, Status: workflows.Status{
		Fleet: fleet, Revision: "A", Run: workflows.Run{Phase: phase, StartedAt: t0.Add(time.Duration(f.n) * time.Minute), Steps: []*workflows.Step{{Name: "Plan", Target: fleet, State: workflows.StepSucceeded, StartedAt: t0, EndedAt: t0.Add(time.Second), Attempts: 1}}},
		Blue:  map[string]dnsroll.Server{"ns1": {ID: 1, Label: "ns1", Status: "running", IPv4: "127.0.0.1", DNSPort: 15301}},
		Green: map[string]dnsroll.Server{}, OnGreen: []string{},
		Changes: &activities.Changes{Live: "sha256:" + strings.Repeat("0a", 32), ZonesChanged: activities.Names{Count: 1, Names: []string{"example.com"}},
			ZonesAdded: &activities.Names{}, ZonesRemoved: &activities.Names{}, AnsibleChanged: &activities.Names{Count: 1, Names: []string{"ansible/nameserver.yml"}},
			AnsibleAdded: &activities.Names{}, AnsibleRemoved: &activities.Names{}},
		Backends: map[string][]workflows.Backend{"lb1": {{Server: "ns1", Weight: 100}, {Server: "ns1-next", Weight: 0}}},
	}}
	if state != "running" {
		ro.EndedAt = ro.StartedAt.Add(30 * time.Second)
	}
	if state == "failed" {
		ro.Failure = "VerifyGreen failed; blue is serving and green was deleted"
	}
	f.runs[ro.ID] = ro
	f.order = append(f.order, ro.ID)
	return ro.ID
}

// addRefused records a rollout of fleet that failed because the fleet was
// busy, and returns its ID.
func (f *fakeBackend) addRefused(fleet string) string {
	id := f.add(fleet, workflows.PhaseFailed)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.refusedBusy[id] = true
	f.runs[id].Failure = "fleet " + fleet + " is busy"
	return id
}

// LaterChange passes over the runs addRefused recorded.
func (f *fakeBackend) LaterChange(_ context.Context, run rollouts.Run) (rollouts.Run, string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := len(f.order) - 1; i >= 0; i-- {
		ro := f.runs[f.order[i]]
		switch {
		case ro.WorkflowID != run.WorkflowID || f.refusedBusy[ro.ID]:
		case ro.RunID == run.RunID:
			return rollouts.Run{}, "", nil
		default:
			return rollouts.Run{WorkflowID: ro.WorkflowID, RunID: ro.RunID}, ro.State, nil
		}
	}
	return rollouts.Run{}, "", dnsroll.Errorf(dnsroll.ENOTFOUND, "no rollout %s", RolloutID(run))
}

// Start keeps rollouts.StartOnce's promise about keys by remembering
// them, as Temporal's memo does.
func (f *fakeBackend) Start(_ context.Context, in workflows.RolloutInput, key string) (rollouts.Run, bool, error) {
	f.mu.Lock()
	if k, ok := f.keys[key]; ok && key != "" {
		f.mu.Unlock()
		if !reflect.DeepEqual(k.in, in) {
			return rollouts.Run{}, false, dnsroll.Errorf(dnsroll.EINVALID, "rollout %s was started with this key and another request", RolloutID(k.run))
		}
		return k.run, true, nil
	}
	for _, ro := range f.runs {
		if ro.Fleet == in.Fleet && ro.State == "running" {
			f.mu.Unlock()
			return rollouts.Run{}, false, dnsroll.Errorf(dnsroll.ECONFLICT, "fleet %s already has a running rollout: workflow %s run %s", in.Fleet, ro.WorkflowID, ro.RunID)
		}
	}
	f.started = append(f.started, in)
	f.mu.Unlock()
	id := f.add(in.Fleet, workflows.PhasePlanning)
	f.setInput(id, in)
	run, _ := ParseID(id)
	if key != "" {
		f.mu.Lock()
		if f.keys == nil {
			f.keys = map[string]keyedStart{}
		}
		f.keys[key] = keyedStart{run, in}
		f.mu.Unlock()
	}
	return run, false, nil
}

// setInput records the input rollout id was started with.
func (f *fakeBackend) setInput(id string, in workflows.RolloutInput) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.inputs == nil {
		f.inputs = map[string]workflows.RolloutInput{}
	}
	f.inputs[id] = in
}

// Input answers the input setInput recorded, or one of the rollout's
// fleet, revision, reason and requester.
func (f *fakeBackend) Input(_ context.Context, run rollouts.Run) (workflows.RolloutInput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.inputErr != nil {
		return workflows.RolloutInput{}, f.inputErr
	}
	id := RolloutID(run)
	if in, ok := f.inputs[id]; ok {
		return in, nil
	}
	ro, ok := f.runs[id]
	if !ok {
		return workflows.RolloutInput{}, dnsroll.Errorf(dnsroll.ENOTFOUND, "rollout %s not found", id)
	}
	return workflows.RolloutInput{Fleet: ro.Fleet, Revision: ro.Revision, Reason: ro.Reason, RequestedBy: ro.RequestedBy}, nil
}

// Replayed answers as Start does for a key it remembers.
func (f *fakeBackend) Replayed(_ context.Context, in workflows.RolloutInput, key string) (rollouts.Run, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	k, ok := f.keys[key]
	if !ok || key == "" || !reflect.DeepEqual(k.in, in) {
		return rollouts.Run{}, false, nil
	}
	return k.run, true, nil
}

// keyedStart is a start the fake remembers by its Idempotency-Key.
type keyedStart struct {
	run rollouts.Run
	in  workflows.RolloutInput
}

func (f *fakeBackend) Get(_ context.Context, run rollouts.Run) (Rollout, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := len(f.order) - 1; i >= 0; i-- {
		ro := f.runs[f.order[i]]
		if ro.WorkflowID == run.WorkflowID && (run.RunID == "" || ro.RunID == run.RunID) {
			got := *ro
			if f.noWorker && Open(got.State) {
				got.ApprovalGate, got.unanswered = 0, noWorker(Rollouts, run, got.State, context.DeadlineExceeded)
			}
			return got, nil
		}
	}
	return Rollout{}, dnsroll.Errorf(dnsroll.ENOTFOUND, "no rollout %s", RolloutID(run))
}

// List pages by position; the token is the next position.
func (f *fakeBackend) List(_ context.Context, flt Filter) ([]Summary, []byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.listErr != nil {
		return nil, nil, f.listErr
	}
	var all []Summary
	for i := len(f.order) - 1; i >= 0 && flt.kind().Type == Rollouts.Type; i-- {
		ro := f.runs[f.order[i]]
		if (flt.Fleet == "" || ro.Fleet == flt.Fleet) && (flt.State == "" || ro.State == flt.State) && (flt.Phase == "" || ro.Phase == flt.Phase) {
			all = append(all, Summary{ID: ro.ID, WorkflowID: ro.WorkflowID, RunID: ro.RunID, Fleet: ro.Fleet, Revision: ro.Revision, Phase: ro.Phase, State: ro.State, StartedAt: ro.StartedAt, EndedAt: ro.EndedAt})
		}
	}
	for i := len(f.lbOrder) - 1; i >= 0; i-- {
		r := f.lbRuns[f.lbOrder[i]]
		fleet := r.kind.Fleet(r.run)
		if r.kind.Type == flt.kind().Type && (flt.Fleet == "" || fleet == flt.Fleet) && (flt.State == "" || r.state == flt.State) {
			all = append(all, Summary{ID: RolloutID(r.run), WorkflowID: r.run.WorkflowID, RunID: r.run.RunID, Fleet: fleet, State: r.state, StartedAt: t0})
		}
	}
	from := 0
	if len(flt.PageToken) > 0 {
		if _, err := fmt.Sscanf(string(flt.PageToken), "pos:%d", &from); err != nil || from > len(all) {
			return nil, nil, dnsroll.Errorf(dnsroll.EINVALID, "page_token: not one of ours")
		}
	}
	to := min(from+flt.Limit, len(all))
	var next []byte
	if to < len(all) {
		next = fmt.Appendf(nil, "pos:%d", to)
	}
	return all[from:to], next, nil
}

func (f *fakeBackend) Signal(_ context.Context, run rollouts.Run, name string, in workflows.SignalInput) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.signalErr != nil {
		return f.signalErr
	}
	sig := fmt.Sprintf("%s %s %s %s", name, RolloutID(run), in.Reason, in.By)
	if in.Revision != "" {
		sig += " revision " + in.Revision
	}
	if in.Gate != 0 {
		sig += fmt.Sprintf(" gate %d", in.Gate)
	}
	f.signals = append(f.signals, sig)
	f.sent = append(f.sent, in)
	return nil
}

func (f *fakeBackend) Live(_ context.Context, fleet string) (bundle, why string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.looked = append(f.looked, fleet)
	return f.live, f.liveWhy
}

func (f *fakeBackend) LastRevision(context.Context, string) (string, error) {
	return f.lastRev, nil
}

func (f *fakeBackend) Retry(ctx context.Context, run rollouts.Run) (rollouts.Run, workflows.RolloutInput, error) {
	f.mu.Lock()
	ro, ok := f.runs[RolloutID(run)]
	f.mu.Unlock()
	if !ok {
		return rollouts.Run{}, workflows.RolloutInput{}, dnsroll.Errorf(dnsroll.ENOTFOUND, "rollout %s not found", RolloutID(run))
	}
	in := workflows.RolloutInput{Fleet: ro.Fleet, Revision: ro.Revision, Reason: ro.Reason, RequestedBy: ro.RequestedBy}
	started, _, err := f.Start(ctx, in, "")
	return started, in, err
}

func (f *fakeBackend) Plan(ctx context.Context, in workflows.RolloutInput) (workflows.PlanReport, rollouts.Run, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.planned = append(f.planned, in)
	run := rollouts.Run{WorkflowID: workflows.PlanWorkflowID(in.Fleet, "f1"), RunID: "r1"}
	if f.planErr != nil {
		return workflows.PlanReport{}, run, f.planErr
	}
	if f.planCut != nil {
		f.mu.Unlock()
		deadline, _ := ctx.Deadline()
		time.Sleep(time.Until(deadline) - 20*time.Millisecond)
		f.mu.Lock()
		return workflows.PlanReport{}, run, fmt.Errorf("plan %s: %w", run.WorkflowID, f.planCut)
	}
	if f.noWorker {
		f.mu.Unlock()
		<-ctx.Done()
		f.mu.Lock()
		return workflows.PlanReport{}, run, ctx.Err()
	}
	diff := zone.ZoneDiff{OldSerial: 7, NewSerial: 8, SerialChanged: true, MoreAdded: 1,
		Added: []zone.RRsetChange{{Name: "new.example.com.", Type: "TXT", New: []string{`new.example.com. 300 IN TXT "x"`}}}}
	return workflows.PlanReport{Fleet: in.Fleet, Revision: in.Revision, Blue: map[string]dnsroll.Server{"ns1": {ID: 1, Label: "ns1"}}, Zones: 1,
		Diffs: []activities.ZoneChange{{Zone: "example.com", Diff: diff}}}, run, nil
}

func (f *fakeBackend) Health(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	f.mu.Lock()
	f.healthChecks++
	f.mu.Unlock()
	if !f.healthy {
		return fmt.Errorf("connection refused")
	}
	return nil
}

// addRun records a run of k for fleet in state with status and returns it.
func (f *fakeBackend) addRun(k Kind, fleet, state string, status any) rollouts.Run {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n++
	run := rollouts.Run{WorkflowID: k.ID(fleet), RunID: fmt.Sprintf("run-%d", f.n)}
	f.lbRuns[RolloutID(run)] = &fakeLBRun{kind: k, run: run, state: state, status: status}
	f.lbOrder = append(f.lbOrder, RolloutID(run))
	return run
}

func (f *fakeBackend) StartWorkflow(ctx context.Context, k Kind, fleet string, in any) (rollouts.Run, error) {
	if cur, state, err := f.Read(ctx, k, rollouts.Run{WorkflowID: k.ID(fleet)}, nil); err == nil && state == "running" {
		return rollouts.Run{}, dnsroll.Errorf(dnsroll.ECONFLICT, "fleet %s already has a running %s: %s", fleet, k.Noun, RolloutID(cur))
	}
	f.mu.Lock()
	f.lbStarted = append(f.lbStarted, in)
	f.mu.Unlock()
	return f.addRun(k, fleet, "running", map[string]any{"fleet": fleet, "phase": workflows.PhasePlanning, "started_at": t0}), nil
}

// Read decodes a run's status through JSON, as Temporal's data converter
// does.
func (f *fakeBackend) Read(ctx context.Context, k Kind, run rollouts.Run, status any) (rollouts.Run, string, error) {
	if k.Type == Rollouts.Type {
		ro, err := f.Get(ctx, run)
		if err == nil && status != nil {
			err = recode(ro.Status, status)
		}
		return rollouts.Run{WorkflowID: ro.WorkflowID, RunID: ro.RunID}, ro.State, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := len(f.lbOrder) - 1; i >= 0; i-- {
		r := f.lbRuns[f.lbOrder[i]]
		if r.kind.Type != k.Type || r.run.WorkflowID != run.WorkflowID || (run.RunID != "" && r.run.RunID != run.RunID) {
			continue
		}
		if status != nil && f.noWorker && r.state == "running" {
			return r.run, r.state, noWorker(k, r.run, r.state, context.DeadlineExceeded)
		}
		if status != nil {
			if err := recode(r.status, status); err != nil {
				return r.run, "", err
			}
		}
		return r.run, r.state, nil
	}
	return run, "", dnsroll.Errorf(dnsroll.ENOTFOUND, "no %s %s", k.Noun, RolloutID(run))
}

func recode(from, to any) error {
	b, err := json.Marshal(from)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, to)
}
