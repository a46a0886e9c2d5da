package workflows

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/activities"
	"github.com/dnsroll/dnsroll/config"
	"github.com/dnsroll/dnsroll/internal/fleettest"
	"github.com/dnsroll/dnsroll/internal/temporaltest"
	"github.com/dnsroll/dnsroll/lb"
)

var labFleet = fleettest.YAML("test", "127.0.0.1:5301", "127.0.0.1:5302") + `ansible: {connection: local}
rollout: {bake: 0s}
`

// recorder is a fake cloud and load balancer pair, driven by the mocked
// activities: it records what the workflow asked for, in order.
type recorder struct {
	mu    sync.Mutex
	calls []string
	// lbs maps a load balancer to the label it points at (labels joined
	// by + for one that points at several).
	lbs map[string]string
	// failDeleteGreen is how many DeleteGreen calls fail before one works.
	failDeleteGreen int
	// deleteGreenDown makes every DeleteGreen fail with an error a retry
	// may fix, as a cloud answering 503 does.
	deleteGreenDown bool
	// counters are what LoadBalancerStats returns, per load balancer; nil
	// returns nothing.
	counters func(lb string) []lb.BackendStats
	// onFlip, when set, runs first in every flip; an error fails it.
	onFlip func(in activities.FlipInput) error
	// onDisk is the bundle that provision and verify find; empty is the
	// one Plan hashed, testBundle.
	onDisk string
	// small is set when the workflow asked Plan for a small history.
	small bool
	// badFleetArgs are the steps that named their fleet other than by
	// the plan's reference (checkFleetArg).
	badFleetArgs []string
	// live is each Verify's step and VerifyInput.Live.
	live []string
	// commitLate, when set, is how long after its request the fake
	// Linode commits a create, whatever became of the request; green holds
	// each -next server it has, with when it appears.
	commitLate time.Duration
	green      map[string]time.Time
	// slowTarget makes the EnsureServer or StageLoadBalancer step of that
	// server or load balancer alone take an hour; failTarget makes it
	// alone fail.
	slowTarget, failTarget string
	// slowFlipTo makes the forward flip (to green) of that load balancer
	// alone take an hour.
	slowFlipTo string
	// retryable makes the step failAt names fail with an error a retry may
	// fix, every attempt, rather than a non-retryable one.
	retryable bool
}

// testFleetRef is the reference to the fleet config that the fake Plan
// of a small history returns.
var testFleetRef = activities.FleetRef{Name: "test", SHA256: "sha256:fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"}

// fleetSteps are the steps whose input names the fleet.
var fleetSteps = map[string]bool{"EnsureServer": true, "ProvisionNameservers": true, "VerifyGreen": true, "VerifyLoadBalancers": true,
	"BakeCheck": true, "SwitchLoadBalancer": true, "StageLoadBalancer": true, "FlipLoadBalancer": true, "LoadBalancerStats": true}

// checkFleetArg records a step of a plan with a fleet reference whose
// input carries the fleet config itself, or another reference: history
// must hold the config once, in the plan.
func (r *recorder) checkFleetArg(info *activity.Info, _ context.Context, args converter.EncodedValues) {
	if !r.small || !fleetSteps[info.ActivityType.Name] {
		return
	}
	var in struct {
		Fleet    json.RawMessage      `json:"fleet"`
		FleetRef *activities.FleetRef `json:"fleet_ref"`
	}
	err := args.Get(&in)
	if err == nil && len(in.Fleet) == 0 && in.FleetRef != nil && reflect.DeepEqual(*in.FleetRef, testFleetRef) {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.badFleetArgs = append(r.badFleetArgs, fmt.Sprintf("%s got fleet %.40s and fleet_ref %+v (%v)", info.ActivityType.Name, in.Fleet, in.FleetRef, err))
}

// creating has the fake Linode commit the server of an EnsureServer that
// starts: commitLate after the request, whatever becomes of the step.
func (r *recorder) creating(env *testsuite.TestWorkflowEnvironment, info *activity.Info, args converter.EncodedValues) {
	var in activities.EnsureServerInput
	if info.ActivityType.Name != "EnsureServer" || args.Get(&in) != nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.green == nil {
		r.green = map[string]time.Time{}
	}
	r.green[in.Spec.Label] = env.Now().Add(r.commitLate)
}

// failedAnalysisSummary is the summary of the analysis that a verify
// step the harness fails with "<step>Analysis" attaches to its error.
const failedAnalysisSummary = "ns1-next: 3 of 12 answers differ from blue's"

// testBundle is the revision the fake Plan hashes.
const testBundle = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// revisionChanged refuses, as provision and verify do, a planned bundle
// other than the one on disk; it also fails a step given no bundle, so
// every test checks that the workflow passes the plan's on, and, when
// the plan has a small history, a step given zones (which history must
// not repeat) or no revision (to find the zones by).
func (r *recorder) revisionChanged(planned, revision string, zones []activities.ZoneFile) error {
	if r.small && (len(zones) > 0 || revision == "") {
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf("a step of a small plan got %d zones and revision %q; want none and the plan's", len(zones), revision), activities.ErrStep, nil, int32(1))
	}
	found := testBundle
	if r.onDisk != "" {
		found = r.onDisk
	}
	if planned == found {
		return nil
	}
	return temporal.NewApplicationErrorWithOptions("revision changed since the plan: planned "+planned+", found "+found+" (zones/example.com.zone changed); re-run the rollout to deploy the new revision",
		activities.ErrConflict, temporal.ApplicationErrorOptions{NonRetryable: true, Details: []any{int32(1)}})
}

// pointBack records that load balancer name now points at label to; with
// failBack set, lb2's move back to blue cannot be confirmed and fails.
// pointBack points load balancer name at to, failing lb2's point back to
// blue when failBack. An undo step (back, to blue alone) of a plan with a
// fleet reference must carry the planned fleet too, and only an undo step.
func (r *recorder) pointBack(failBack bool, name, to string, back bool, in activities.StepFleet) (activities.StepResult, error) {
	if r.small && back != (in.Planned != nil) {
		r.mu.Lock()
		r.badFleetArgs = append(r.badFleetArgs, fmt.Sprintf("%s pointed at %s with planned fleet %v: want it on undo steps alone", name, to, in.Planned != nil))
		r.mu.Unlock()
	}
	if failBack && name == "lb2" && !strings.HasSuffix(to, "-next") {
		return activities.StepResult{}, temporal.NewApplicationErrorWithOptions("confirm: lb2 answers with NSID linode-12, not from ns2", activities.ErrStep,
			temporal.ApplicationErrorOptions{NonRetryable: true, Details: []any{int32(9)}})
	}
	r.mu.Lock()
	r.lbs[name] = to
	r.mu.Unlock()
	return activities.StepResult{Attempt: 1}, nil
}

func (r *recorder) stats(name string) activities.StatsResult {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, "Stats "+name)
	if r.counters == nil {
		return activities.StatsResult{Attempt: 1}
	}
	return activities.StatsResult{Attempt: 1, Backends: r.counters(name)}
}

func (r *recorder) count(prefix string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return countPrefixed(r.calls, prefix)
}

// countPrefixed is how many of calls begin with prefix.
func countPrefixed(calls []string, prefix string) int {
	n := 0
	for _, c := range calls {
		if strings.HasPrefix(c, prefix) {
			n++
		}
	}
	return n
}

func (r *recorder) add(s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, s)
}

func (r *recorder) has(prefix string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.calls {
		if strings.HasPrefix(c, prefix) {
			return true
		}
	}
	return false
}

type harness struct {
	testsuite.WorkflowTestSuite
	env *testsuite.TestWorkflowEnvironment
	rec *recorder
	// blue are the servers Plan finds, by label; a test may remove them
	// before the run (clear: the fleet's first rollout).
	blue map[string]dnsroll.Server
}

// newHarness mocks every activity with a well-behaved fake; failAt makes
// the named step (or "VerifyGreen"/"VerifyLoadBalancers") fail, and slowAt
// makes it take an hour of simulated time, so a signal can arrive during it.
func newHarness(t *testing.T, failAt string, slowAt ...string) *harness {
	t.Helper()
	return newHarnessWith(t, "rollout: {bake: 0s}", failAt, slowAt...)
}

// testEnv parses a test fleet and makes a workflow test environment with
// the workflows and activities registered, for the test's mocks to override.
func testEnv(t *testing.T, suite *testsuite.WorkflowTestSuite, fleetYAML string) (*config.Fleet, *testsuite.TestWorkflowEnvironment) {
	t.Helper()
	fleet, err := config.Parse([]byte(fleetYAML))
	if err != nil {
		t.Fatal(err)
	}
	env := suite.NewTestWorkflowEnvironment()
	Register(env)
	env.RegisterActivity(&activities.Activities{})
	return fleet, env
}

// newHarnessWith replaces the test fleet's rollout settings with controls.
func newHarnessWith(t *testing.T, controls, failAt string, slowAt ...string) *harness {
	t.Helper()
	return newHarnessFleet(t, strings.Replace(labFleet, "rollout: {bake: 0s}", controls, 1), failAt, slowAt...)
}

// newHarnessFleet runs the fleet described by text.
func newHarnessFleet(t *testing.T, text, failAt string, slowAt ...string) *harness {
	t.Helper()
	h := &harness{rec: &recorder{lbs: map[string]string{"lb1": "ns1", "lb2": "ns2"}}}
	fleet, env := testEnv(t, &h.WorkflowTestSuite, text)
	h.env = env
	rec := h.rec
	env.SetOnActivityStartedListener(func(info *activity.Info, ctx context.Context, args converter.EncodedValues) {
		rec.checkFleetArg(info, ctx, args)
		rec.creating(env, info, args)
	})
	stepErr := func(step string) error {
		if step != failAt {
			return nil
		}
		if rec.retryable {
			return temporal.NewApplicationErrorWithOptions(step+" answered 503", activities.ErrStep,
				temporal.ApplicationErrorOptions{Details: []any{int32(1)}})
		}
		return temporal.NewApplicationErrorWithOptions(step+" exploded", activities.ErrStep,
			temporal.ApplicationErrorOptions{NonRetryable: true, Details: []any{int32(3)}})
	}
	slow := func(step string, c *testsuite.MockCallWrapper) {
		for _, s := range slowAt {
			if s == step {
				c.After(time.Hour)
			}
		}
	}
	blue := map[string]dnsroll.Server{}
	for i, ns := range fleet.Nameservers {
		blue[ns.Label] = dnsroll.Server{ID: i + 1, Label: ns.Label, IPv4: fmt.Sprintf("192.0.2.%d", i+1), Status: "running", DNSPort: 53}
	}
	h.blue = blue
	env.OnActivity(a.Plan, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.PlanInput) (activities.Plan, error) {
		rec.add("Plan")
		plan := activities.Plan{Fleet: fleet, Revision: in.Revision, Blue: blue, Zones: []activities.ZoneFile{{Name: "example.com", Serial: 7}}, Bundle: testBundle, Attempt: 1,
			Changes: &activities.Changes{Live: in.LiveBundle, ZonesChanged: activities.Names{Count: 1, Names: []string{"example.com"}}}}
		if rec.small = in.SmallHistory; rec.small {
			plan.Fleet, plan.Zones, plan.ZoneCount, plan.FleetRef = fleet.ForSteps(), nil, 1, &testFleetRef
		}
		return plan, stepErr("Plan")
	})
	targetErr := func(target string) error {
		if target != rec.failTarget {
			return nil
		}
		return temporal.NewApplicationErrorWithOptions(target+" exploded", activities.ErrStep,
			temporal.ApplicationErrorOptions{NonRetryable: true, Details: []any{int32(1)}})
	}
	ensure := func(_ context.Context, in activities.EnsureServerInput) (activities.ServerResult, error) {
		rec.add("EnsureServer " + in.Spec.Label)
		id := 10 + len(in.Spec.Label)
		if strings.HasPrefix(in.Spec.Label, "ns2") {
			id++
		}
		return activities.ServerResult{Server: dnsroll.Server{ID: id, Label: in.Spec.Label, Status: "running", IPv4: "192.0.2.9"}, Attempt: 1}, cmp.Or(targetErr(in.Spec.Label), stepErr("EnsureServer"))
	}
	// Registered first, so that it wins over the mock of every call.
	env.OnActivity(a.EnsureServer, mock.Anything, mock.MatchedBy(func(in activities.EnsureServerInput) bool { return in.Spec.Label == rec.slowTarget })).After(time.Hour).Return(ensure)
	slow("EnsureServer", env.OnActivity(a.EnsureServer, mock.Anything, mock.Anything).Return(ensure))
	slow("ProvisionNameservers", env.OnActivity(a.ProvisionNameservers, mock.Anything, mock.Anything).Return(func(ctx context.Context, in activities.ProvisionInput) (activities.ProvisionResult, error) {
		if err := rec.revisionChanged(in.Bundle, in.Revision, in.Zones); err != nil {
			return activities.ProvisionResult{}, err
		}
		rec.add("ProvisionNameservers")
		if failAt == "Hang" {
			// A step that makes no progress: its deadline must end it.
			select {
			case <-ctx.Done():
			case <-time.After(10 * time.Second):
			}
		}
		return activities.ProvisionResult{Attempt: 2}, stepErr("ProvisionNameservers")
	}))
	env.OnActivity(a.BakeCheck, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.VerifyInput) (activities.VerifyResult, error) {
		rec.add("BakeCheck")
		return activities.VerifyResult{Attempt: 1}, stepErr("BakeCheck")
	})
	for _, step := range []string{"VerifyGreen", "VerifyLoadBalancers"} {
		isStep := mock.MatchedBy(func(in activities.VerifyInput) bool {
			return strings.HasPrefix(in.Targets[0].Name, "lb") == (step == "VerifyLoadBalancers")
		})
		fn := map[string]any{"VerifyGreen": a.VerifyGreen, "VerifyLoadBalancers": a.VerifyLoadBalancers}[step]
		slow(step, env.OnActivity(fn, mock.Anything, isStep).Return(func(_ context.Context, in activities.VerifyInput) (activities.VerifyResult, error) {
			if err := rec.revisionChanged(in.Bundle, in.Revision, in.Zones); err != nil {
				return activities.VerifyResult{}, err
			}
			rec.add(step)
			rec.mu.Lock()
			rec.live = append(rec.live, step+" "+in.Live)
			rec.mu.Unlock()
			if failAt == step+"Analysis" {
				res := activities.VerifyResult{Attempt: 1, Summary: failedAnalysisSummary}
				return res, temporal.NewApplicationErrorWithOptions("ns1-next answers example.com SOA with serial 6, blue 7", activities.ErrAnalysis,
					temporal.ApplicationErrorOptions{NonRetryable: true, Details: []any{int32(1), res}})
			}
			return activities.VerifyResult{Attempt: 1}, stepErr(step)
		}))
	}
	slow("SwitchLoadBalancer", env.OnActivity(a.SwitchLoadBalancer, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.SwitchInput) (activities.StepResult, error) {
		to := "none"
		if len(in.Backends) > 0 {
			to = strings.ReplaceAll(labelsOf(in.Backends), ",", "+")
		}
		rec.add("Switch " + in.LB.Name + " " + to)
		if err := stepErr("SwitchLoadBalancer"); err != nil && strings.HasSuffix(to, "-next") {
			return activities.StepResult{}, err
		}
		return rec.pointBack(failAt == "SwitchBackToBlue", in.LB.Name, to, !strings.Contains(to, "-next"), in.StepFleet)
	}))
	stage := func(_ context.Context, in activities.StageInput) (activities.StepResult, error) {
		rec.add("Stage " + in.LB.Name + " " + labelsOf(in.Staged))
		return activities.StepResult{Attempt: 1}, cmp.Or(targetErr(in.LB.Name), stepErr("StageLoadBalancer"))
	}
	env.OnActivity(a.StageLoadBalancer, mock.Anything, mock.MatchedBy(func(in activities.StageInput) bool { return in.LB.Name == rec.slowTarget })).After(time.Hour).Return(stage)
	slow("StageLoadBalancer", env.OnActivity(a.StageLoadBalancer, mock.Anything, mock.Anything).Return(stage))
	flip := func(_ context.Context, in activities.FlipInput) (activities.StepResult, error) {
		to, top := "none", 0
		var split []string
		for _, s := range in.Shares {
			split = append(split, fmt.Sprintf("%s:%d", s.Server.Label, s.Weight))
			switch {
			case s.Weight > top:
				to, top = s.Server.Label, s.Weight
			case s.Weight == top && top > 0:
				to += "+" + s.Server.Label
			}
		}
		rec.add("Flip " + in.LB.Name + " " + strings.Join(split, ","))
		if top == 0 {
			// As every driver refuses a split that answers nothing.
			return activities.StepResult{}, fmt.Errorf("load balancer %s: flip: shares: no backend has a weight above 0; that would send every query SERVFAIL", in.LB.Name)
		}
		if rec.onFlip != nil {
			if err := rec.onFlip(in); err != nil {
				return activities.StepResult{}, err
			}
		}
		if err := stepErr("FlipLoadBalancer"); err != nil && strings.HasSuffix(to, "-next") {
			return activities.StepResult{}, err
		}
		back := true
		for _, s := range in.Shares {
			back = back && (s.Weight == 0 || !strings.HasSuffix(s.Server.Label, "-next"))
		}
		return rec.pointBack(failAt == "FlipBackToBlue", in.LB.Name, to, back, in.StepFleet)
	}
	// Registered first, so that it wins over the mock of every call.
	env.OnActivity(a.FlipLoadBalancer, mock.Anything, mock.MatchedBy(func(in activities.FlipInput) bool {
		return in.LB.Name == rec.slowFlipTo && slices.ContainsFunc(in.Shares, func(s lb.Share) bool { return s.Weight > 0 && strings.HasSuffix(s.Server.Label, "-next") })
	})).After(time.Hour).Return(flip)
	slow("FlipLoadBalancer", env.OnActivity(a.FlipLoadBalancer, mock.Anything, mock.Anything).Return(flip))
	env.OnActivity(a.LoadBalancerStats, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.StatsInput) (activities.StatsResult, error) {
		return rec.stats(in.LB.Name), nil
	})
	slow("DeleteServer", env.OnActivity(a.DeleteServer, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.DeleteServerInput) (activities.StepResult, error) {
		rec.add("DeleteServer " + in.Server.Label)
		if failAt == "DeleteServer" {
			// Each server fails in its own words, so a test can tell
			// whether a message pairs a step with its own error.
			return activities.StepResult{}, temporal.NewApplicationErrorWithOptions("instance "+in.Server.Label+" answered 500", activities.ErrStep,
				temporal.ApplicationErrorOptions{NonRetryable: true, Details: []any{int32(3)}})
		}
		return activities.StepResult{Attempt: 1}, nil
	}))
	env.OnActivity(a.DeleteGreen, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.DeleteGreenInput) (activities.StepResult, error) {
		call := "DeleteGreen " + strings.Join(in.Labels, ",")
		if len(in.IDs) > 0 {
			call += fmt.Sprintf(" ids %v", in.IDs)
		}
		rec.add(call)
		rec.mu.Lock()
		defer rec.mu.Unlock()
		if rec.deleteGreenDown {
			return activities.StepResult{}, errors.New("the cloud answered 503: service unavailable")
		}
		if rec.failDeleteGreen > 0 {
			rec.failDeleteGreen--
			return activities.StepResult{}, temporal.NewApplicationErrorWithOptions("the cloud answered 401: invalid token", activities.ErrStep,
				temporal.ApplicationErrorOptions{NonRetryable: true, Details: []any{int32(1)}})
		}
		// What the fake Linode has now goes; what it commits later stays.
		for _, l := range in.Labels {
			if at, ok := rec.green[l]; ok && !at.After(env.Now()) {
				delete(rec.green, l)
			}
		}
		return activities.StepResult{Attempt: 1}, nil
	})
	env.OnActivity(a.LoadFleet, mock.Anything, mock.Anything).Return(func(_ context.Context, name string) (*config.Fleet, error) {
		rec.add("LoadFleet " + name)
		return fleet, nil
	})
	slow("Notify", env.OnActivity(a.Notify, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.NotifyInput) (activities.StepResult, error) {
		if in.ApprovalGate > 0 {
			rec.add(fmt.Sprintf("Notify %s gate %d", in.Event, in.ApprovalGate))
		} else {
			rec.add("Notify " + in.Event)
		}
		if failAt == "WebhookDown" {
			// A receiver that refuses connections: retryable, as Notify's
			// errors are.
			return activities.StepResult{}, errors.New("webhook-1: connection refused")
		}
		return activities.StepResult{Attempt: 1}, stepErr("Notify")
	}))
	env.OnActivity(a.RenameServer, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.RenameInput) (activities.StepResult, error) {
		rec.add("RenameServer " + in.Server.Label + " " + in.To)
		return activities.StepResult{Attempt: 1}, stepErr("RenameServer")
	})
	return h
}

func labelsOf(servers []dnsroll.Server) string {
	var out []string
	for _, s := range servers {
		out = append(out, s.Label)
	}
	return strings.Join(out, ",")
}

func (h *harness) run(t *testing.T) (Status, error) {
	t.Helper()
	return h.runInput(t, RolloutInput{Fleet: "test", Revision: "B"})
}

// runInput runs the workflow with in and returns its final status.
func (h *harness) runInput(t *testing.T, in RolloutInput) (Status, error) {
	t.Helper()
	h.env.ExecuteWorkflow(RolloutWorkflow, in)
	if !h.env.IsWorkflowCompleted() {
		t.Fatal("workflow did not complete")
	}
	for _, bad := range h.rec.badFleetArgs {
		t.Errorf("a step of a plan with a fleet reference: %s", bad)
	}
	if err := h.env.GetWorkflowError(); err != nil {
		v, qerr := h.env.QueryWorkflow(QueryStatus)
		return temporaltest.Value[Status](t, v, qerr), err
	}
	var st Status
	if err := h.env.GetWorkflowResult(&st); err != nil {
		t.Fatal(err)
	}
	return st, nil
}

func TestRolloutHappyPath(t *testing.T) {
	h := newHarness(t, "")
	st, err := h.run(t)
	if err != nil {
		t.Fatalf("rollout failed: %v", err)
	}
	if got, want := st.Phase, PhaseSucceeded; got != want {
		t.Errorf("phase = %s, want %s", got, want)
	}
	for _, want := range []string{"DeleteServer ns1", "DeleteServer ns2", "RenameServer ns1-next ns1", "RenameServer ns2-next ns2"} {
		if !h.rec.has(want) {
			t.Errorf("missing call %q in %v", want, h.rec.calls)
		}
	}
	if h.rec.has("DeleteGreen") {
		t.Errorf("a successful rollout deleted green: %v", h.rec.calls)
	}
	if got, want := h.rec.lbs["lb1"]+","+h.rec.lbs["lb2"], "ns1-next,ns2-next"; got != want {
		t.Errorf("load balancers point at %s, want %s", got, want)
	}
	if got := st.Green["ns1"].Label; got != "ns1" {
		t.Errorf("green ns1 label = %q after rename, want ns1", got)
	}
	if got, want := strings.Join(st.OnGreen, ","), "lb1,lb2"; got != want {
		t.Errorf("on green = %s, want %s", got, want)
	}
	// Deleting blue must come after the load balancers were verified on green.
	idxVerify, idxDelete := -1, -1
	for i, c := range h.rec.calls {
		if c == "VerifyLoadBalancers" {
			idxVerify = i
		}
		if strings.HasPrefix(c, "DeleteServer") && idxDelete < 0 {
			idxDelete = i
		}
	}
	if idxVerify < 0 || idxDelete < idxVerify {
		t.Errorf("blue deleted before verification through the load balancers: %v", h.rec.calls)
	}
	for _, s := range st.Steps {
		if s.State != StepSucceeded || s.Attempts < 1 || s.EndedAt.IsZero() {
			t.Errorf("step %s %s: state %s attempts %d ended %v", s.Name, s.Target, s.State, s.Attempts, s.EndedAt)
		}
	}
}

// Verify is given the live revision Plan compared with, to ask green
// what that revision holds and this one removes.
func TestVerifyIsGivenTheLiveRevision(t *testing.T) {
	h := newHarness(t, "")
	if _, err := h.runInput(t, RolloutInput{Fleet: "test", Revision: "B", LiveBundle: "sha256:live"}); err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(h.rec.live, ", "), "VerifyGreen sha256:live, VerifyLoadBalancers sha256:live"; got != want {
		t.Errorf("verified with %s, want %s", got, want)
	}
}

// A failure at any step before blue is deleted leaves blue serving and
// green deleted.
func TestRolloutFailureAtEachStepRestoresBlue(t *testing.T) {
	for _, tt := range []struct {
		step    string
		errType string
		phase   Phase
	}{
		{"EnsureServer", ErrTypeFailed, PhaseFailed},
		{"ProvisionNameservers", ErrTypeFailed, PhaseFailed},
		{"VerifyGreen", ErrTypeFailed, PhaseFailed},
		// After the switch, a failure is an automatic rollback.
		{"StageLoadBalancer", ErrTypeFailed, PhaseFailed},
		{"FlipLoadBalancer", ErrTypeRolledBack, PhaseRolledBack},
		{"VerifyLoadBalancers", ErrTypeRolledBack, PhaseRolledBack},
	} {
		step := tt.step
		t.Run(step, func(t *testing.T) {
			h := newHarness(t, step)
			st, err := h.run(t)
			var app *temporal.ApplicationError
			if !errors.As(err, &app) || app.Type() != tt.errType {
				t.Fatalf("err = %v, want %s", err, tt.errType)
			}
			if !strings.Contains(err.Error(), step+" exploded") || !strings.Contains(st.Failure, step) {
				t.Errorf("failure %q / %q does not name the step", err, st.Failure)
			}
			if st.Phase != tt.phase {
				t.Errorf("phase = %s, want %s", st.Phase, tt.phase)
			}
			if !h.rec.has("DeleteGreen ns1-next,ns2-next") {
				t.Errorf("green not deleted: %v", h.rec.calls)
			}
			if h.rec.has("DeleteServer") || h.rec.has("RenameServer") {
				t.Errorf("blue touched: %v", h.rec.calls)
			}
			if got := h.rec.lbs["lb1"] + "," + h.rec.lbs["lb2"]; got != "ns1,ns2" {
				t.Errorf("load balancers point at %s, want blue ns1,ns2", got)
			}
			var failed *Step
			for _, s := range st.Steps {
				if s.State == StepFailed {
					failed = s
				}
			}
			if failed == nil || failed.Attempts != 3 || !strings.Contains(failed.Error, "exploded") {
				t.Errorf("failed step not recorded with attempts and error: %+v", failed)
			}
		})
	}
}

func TestAbortBeforeSwitchDeletesGreenOnly(t *testing.T) {
	h := newHarness(t, "", "ProvisionNameservers")
	signalAt(h.env, time.Minute, SignalAbort, SignalInput{Reason: "wrong zone", By: "alice"})
	st, err := h.run(t)
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || app.Type() != ErrTypeAborted {
		t.Fatalf("err = %v, want %s", err, ErrTypeAborted)
	}
	if got, want := st.Phase, PhaseAborted; got != want {
		t.Errorf("phase = %s, want %s", got, want)
	}
	if !strings.Contains(st.Failure, "alice") || !strings.Contains(st.Failure, "wrong zone") {
		t.Errorf("failure %q does not say who aborted and why", st.Failure)
	}
	if !h.rec.has("DeleteGreen") || h.rec.has("Switch") || h.rec.has("DeleteServer") {
		t.Errorf("abort before switch: calls %v", h.rec.calls)
	}
}

// A create cut short by an abort may still be committed by Linode after
// the undo's first sweep of green; the undo sweeps again once such a
// create has settled, so no -next server is left behind. Before, the run
// said green was deleted, and ns1-next and ns2-next appeared after it and
// ran until the next rollout reused them.
func TestAbortDuringCreateLeavesNoGreen(t *testing.T) {
	h := newHarness(t, "", "EnsureServer")
	h.rec.commitLate = time.Minute + time.Second
	signalAt(h.env, time.Minute, SignalAbort, SignalInput{Reason: "wrong zone", By: "alice"})
	st, err := h.run(t)
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || app.Type() != ErrTypeAborted {
		t.Fatalf("err = %v, want %s", err, ErrTypeAborted)
	}
	if len(h.rec.green) != 0 {
		t.Errorf("left at Linode after the abort: %v (calls %v)", h.rec.green, h.rec.calls)
	}
	if st.Phase != PhaseAborted {
		t.Errorf("phase %s, want aborted", st.Phase)
	}
}

func TestRollbackAfterSwitchRestoresBlue(t *testing.T) {
	h := newHarness(t, "", "VerifyLoadBalancers")
	signalAt(h.env, time.Minute, SignalRollback, SignalInput{Reason: "latency"})
	st, err := h.run(t)
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || app.Type() != ErrTypeRolledBack {
		t.Fatalf("err = %v, want %s", err, ErrTypeRolledBack)
	}
	if got := h.rec.lbs["lb1"] + "," + h.rec.lbs["lb2"]; got != "ns1,ns2" {
		t.Errorf("load balancers point at %s, want blue", got)
	}
	if !h.rec.has("DeleteGreen") || h.rec.has("DeleteServer") {
		t.Errorf("rollback: calls %v", h.rec.calls)
	}
	if len(st.OnGreen) != 0 || st.Phase != PhaseRolledBack {
		t.Errorf("after rollback: on green %v, phase %s", st.OnGreen, st.Phase)
	}
}

// The outcome says what happened to the traffic, whichever signal stopped
// the rollout: aborted, the load balancers never moved; rolled-back, they
// went to green and came back (README's table of outcomes).
func TestOutcomeFollowsTheTrafficNotTheSignal(t *testing.T) {
	for _, tt := range []struct {
		name, slowAt, signal string
		phase                Phase
		errType              string
	}{
		{"rollback before the switch", "ProvisionNameservers", SignalRollback, PhaseAborted, ErrTypeAborted},
		{"abort after the switch", "VerifyLoadBalancers", SignalAbort, PhaseRolledBack, ErrTypeRolledBack},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, "", tt.slowAt)
			signalAt(h.env, time.Minute, tt.signal, SignalInput{Reason: "wrong zone", By: "alice"})
			st, err := h.run(t)
			var app *temporal.ApplicationError
			if !errors.As(err, &app) || app.Type() != tt.errType || st.Phase != tt.phase {
				t.Fatalf("err %v, phase %s; want %s, %s", err, st.Phase, tt.errType, tt.phase)
			}
			if !strings.Contains(st.Failure, "wrong zone") || !strings.Contains(st.Failure, tt.signal) {
				t.Errorf("failure %q does not say which signal asked and why", st.Failure)
			}
			if got := h.rec.lbs["lb1"] + "," + h.rec.lbs["lb2"]; got != "ns1,ns2" {
				t.Errorf("load balancers point at %s, want blue", got)
			}
		})
	}
}

func TestRollbackAfterBlueDeletedIsRejected(t *testing.T) {
	h := newHarness(t, "", "DeleteServer")
	signalAt(h.env, time.Minute, SignalRollback, SignalInput{})
	st, err := h.run(t)
	if err != nil {
		t.Fatalf("rollout failed: %v", err)
	}
	rejected := false
	for _, e := range st.Events {
		rejected = rejected || strings.Contains(e.Message, "rollback rejected")
	}
	if !rejected || h.rec.has("DeleteGreen") {
		t.Errorf("rollback after blue deletion: events %v, calls %v", st.Events, h.rec.calls)
	}
}

// A failure after blue is gone must not switch back to the deleted blue.
func TestFailureAfterCommitKeepsGreen(t *testing.T) {
	h := newHarness(t, "RenameServer")
	st, err := h.run(t)
	if err == nil || st.Phase != PhaseFailed {
		t.Fatalf("err %v phase %s, want a failure", err, st.Phase)
	}
	if h.rec.has("DeleteGreen") || h.rec.lbs["lb1"] != "ns1-next" {
		t.Errorf("green undone after blue was deleted: %v, lbs %v", h.rec.calls, h.rec.lbs)
	}
}

func TestPlanFailureTouchesNothing(t *testing.T) {
	h := newHarness(t, "Plan")
	st, err := h.run(t)
	if err == nil || st.Phase != PhaseFailed {
		t.Fatalf("err %v phase %s", err, st.Phase)
	}
	if h.rec.has("EnsureServer") || h.rec.has("DeleteGreen") {
		t.Errorf("plan failure acted: %v", h.rec.calls)
	}
	// The status in the failure has every step in phase planning: that is
	// how rollouts.LaterChange tells a run that changed nothing, which
	// does not stop a cleanup after the run before it.
	var app *temporal.ApplicationError
	var failed Status
	if !errors.As(err, &app) || app.Details(&failed) != nil || len(failed.Steps) == 0 {
		t.Fatalf("failure %v carries no status", err)
	}
	for _, step := range failed.Steps {
		if step.Phase != PhasePlanning {
			t.Errorf("step %s began in phase %q, want %s", step.Name, step.Phase, PhasePlanning)
		}
	}
}

// A failure after blue deletion has started is the point of no return: it
// is reported as such, never as a rollback, and the message pairs the step
// and target with that step's own error.
func TestFailureAfterPointOfNoReturnIsNotARollback(t *testing.T) {
	for _, step := range []string{"DeleteServer", "RenameServer"} {
		t.Run(step, func(t *testing.T) {
			h := newHarnessWith(t, "rollout: {bake: 10m, bake_interval: 5m}", step)
			st, err := h.run(t)
			wantErrType(t, err, ErrTypeFailed)
			if st.Phase != PhaseFailed {
				t.Errorf("phase = %s, want %s", st.Phase, PhaseFailed)
			}
			for _, text := range []string{err.Error(), st.Failure} {
				if strings.Contains(text, "rolled back") {
					t.Errorf("failure after blue deletion says it rolled back: %q", text)
				}
				if !strings.Contains(text, "point of no return") || !strings.Contains(text, "stay on green") {
					t.Errorf("failure %q does not say it is past the point of no return with the load balancers on green", text)
				}
			}
			// Both servers' steps fail; the first one's error is reported and
			// must come with its own name.
			want := map[string]string{
				"DeleteServer": "DeleteServer ns1 failed: instance ns1 answered 500",
				"RenameServer": "RenameServer ns1-next failed: RenameServer exploded",
			}[step]
			if !strings.HasPrefix(st.Failure, want) {
				t.Errorf("failure = %q, want it to start with %q", st.Failure, want)
			}
			if h.rec.has("DeleteGreen") || h.rec.lbs["lb1"] != "ns1-next" || h.rec.lbs["lb2"] != "ns2-next" {
				t.Errorf("green undone after blue deletion: calls %v, lbs %v", h.rec.calls, h.rec.lbs)
			}
			if got, want := strings.Join(st.OnGreen, ","), "lb1,lb2"; got != want {
				t.Errorf("on green = %s, want %s", got, want)
			}
		})
	}
}

// Every step has a heartbeat timeout well inside its deadline, Plan
// included, so a step on a worker that died is retried within seconds
// instead of at its deadline; and every step retries until its deadline
// rather than a fixed, small number of attempts.
func TestEveryStepHasAHeartbeatTimeoutAndADeadline(t *testing.T) {
	h := newHarnessWith(t, "rollout: {bake: 10m, bake_interval: 5m}\nnotifications: {webhooks: [{url: \"https://hooks.example/x\"}]}", "")
	seen := map[string]bool{}
	h.env.SetOnActivityStartedListener(func(info *activity.Info, _ context.Context, _ converter.EncodedValues) {
		name := info.ActivityType.Name
		seen[name] = true
		if info.HeartbeatTimeout <= 0 || info.HeartbeatTimeout >= info.StartToCloseTimeout {
			t.Errorf("%s: heartbeat timeout %s, start-to-close %s: a dead worker's attempt would wait for its deadline", name, info.HeartbeatTimeout, info.StartToCloseTimeout)
		}
		if name == "Notify" {
			return // notifications are best effort, with a bounded retry
		}
		if info.ScheduleToCloseTimeout <= 0 || info.ScheduleToCloseTimeout > 2*time.Hour {
			t.Errorf("%s: schedule-to-close %s, want the step's deadline", name, info.ScheduleToCloseTimeout)
		}
	})
	if _, err := h.run(t); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"Plan", "EnsureServer", "ProvisionNameservers", "VerifyGreen", "StageLoadBalancer", "FlipLoadBalancer", "SwitchLoadBalancer", "VerifyLoadBalancers", "BakeCheck", "DeleteServer", "RenameServer", "Notify"} {
		if !seen[name] {
			t.Errorf("activity %s never ran", name)
		}
	}
}

// A switch back to blue that cannot be confirmed ends the rollout
// cleanup-failed, saying which load balancer is still on green and why,
// and green is not deleted while a load balancer may still send it
// queries.
func TestUnconfirmedSwitchBackIsCleanupFailed(t *testing.T) {
	h := newHarness(t, "FlipBackToBlue", "VerifyLoadBalancers")
	signalAt(h.env, time.Minute, SignalRollback, SignalInput{Reason: "latency"})
	st, err := h.run(t)
	wantErrType(t, err, ErrTypeFailed)
	if st.Phase != PhaseCleanupFailed {
		t.Errorf("phase = %s, want %s", st.Phase, PhaseCleanupFailed)
	}
	if got, want := strings.Join(st.OnGreen, ","), "lb2"; got != want {
		t.Errorf("on green = %q, want %q: lb1 went back, lb2 did not", got, want)
	}
	for _, want := range []string{"FlipBackToBlue lb2 failed", "NSID linode-12", "on green: [lb2]"} {
		if !strings.Contains(st.Failure, want) {
			t.Errorf("failure %q lacks %q", st.Failure, want)
		}
	}
	if h.rec.has("DeleteGreen") {
		t.Errorf("green deleted while lb2 may still point at it: %v", h.rec.calls)
	}
	if strings.Contains(st.Failure, "blue is serving") {
		t.Errorf("failure claims blue is serving: %q", st.Failure)
	}
	// It gave up only at steps.cleanup_timeout (an hour by default; rounds
	// 30s apart, doubling to ten minutes), and left the list of what to
	// undo: the load balancer still on green, and every -next server.
	if st.Cleanup == nil || st.Cleanup.Round < 5 || !st.Cleanup.NextRoundAt.IsZero() {
		t.Fatalf("cleanup = %+v, want several failed rounds, then no next one", st.Cleanup)
	}
	var left []string
	for _, l := range st.Cleanup.Left {
		left = append(left, l.Kind+" "+l.Name+": "+l.Action)
	}
	want := []string{
		"load-balancer lb2: point back at blue ns2 (192.0.2.2:53)",
		"server ns1-next: delete",
		"server ns2-next: delete",
	}
	if strings.Join(left, "\n") != strings.Join(want, "\n") {
		t.Errorf("left =\n%s\nwant\n%s", strings.Join(left, "\n"), strings.Join(want, "\n"))
	}
	if !strings.Contains(st.Failure, "dnsroll rollout cleanup") {
		t.Errorf("failure %q does not name the command that undoes the rest", st.Failure)
	}
}

// A cleanup that fails is tried again in rounds, with backoff, until one
// works: the status and the events say so meanwhile, and green is deleted
// in the end.
func TestCleanupRetriesInRounds(t *testing.T) {
	h := newHarness(t, "", "ProvisionNameservers")
	h.rec.failDeleteGreen = 2
	signalAt(h.env, time.Minute, SignalAbort, SignalInput{Reason: "wrong zone"})
	st, err := h.run(t)
	wantErrType(t, err, ErrTypeAborted)
	if st.Phase != PhaseAborted {
		t.Errorf("phase = %s, want %s", st.Phase, PhaseAborted)
	}
	if got := h.rec.count("DeleteGreen"); got != 3 {
		t.Errorf("DeleteGreen ran %d times, want 3: two failed rounds, then one that works", got)
	}
	if st.Cleanup == nil || st.Cleanup.Round != 2 || !strings.Contains(st.Cleanup.LastError, "DeleteGreen failed: the cloud answered 401") {
		t.Errorf("cleanup = %+v, want round 2 with DeleteGreen's last error", st.Cleanup)
	}
	if len(st.Green) != 0 || !st.Cleanup.NextRoundAt.IsZero() {
		t.Errorf("green = %v, next round at %s after a cleanup that succeeded", st.Green, st.Cleanup.NextRoundAt)
	}
	var rounds []string
	for _, e := range st.Events {
		if strings.HasPrefix(e.Message, "cleanup round") {
			rounds = append(rounds, e.Message)
		}
	}
	if len(rounds) != 2 || !strings.Contains(rounds[0], "next round at") {
		t.Errorf("events about failed rounds = %q, want two, each with its next round", rounds)
	}
	// The pause between rounds doubles, from steps.retry_maximum_interval.
	var starts []time.Time
	for _, s := range st.Steps {
		if s.Name == "DeleteGreen" {
			starts = append(starts, s.StartedAt)
		}
	}
	if len(starts) != 3 || starts[1].Sub(starts[0]) != 30*time.Second || starts[2].Sub(starts[1]) != time.Minute {
		t.Errorf("rounds' DeleteGreen started at %v; want 30s, then 1m apart", starts)
	}
}

// A cleanup that fails every round for the longest steps.cleanup_timeout
// the config takes still ends cleanup-failed within Temporal's limits:
// about 10,000 events for two load balancers switched back and a webhook,
// which with config.MaxAnalysisRounds' 22,000 stay under the 51,200 that
// terminate a run, and a status (the failure's details) far from the 2 MiB
// a payload may have. A month of rounds, which the config once took, was
// some 99,500 events and a status of 2.9 MB.
func TestLongestCleanupFitsTheHistory(t *testing.T) {
	h := newHarnessWith(t, fmt.Sprintf("rollout: {bake: 0s}\nsteps: {cleanup_timeout: %s}\nnotifications: {webhooks: [{url: 'http://127.0.0.1:9/hook'}]}", config.MaxCleanupTimeout),
		"FlipBackToBlue", "VerifyLoadBalancers")
	h.env.OnActivity(a.Notify, mock.Anything, mock.Anything).Return(nil)
	var mu sync.Mutex
	acts, timers := map[string]bool{}, 0
	h.env.SetOnActivityCompletedListener(func(info *activity.Info, _ converter.EncodedValue, _ error) {
		mu.Lock()
		defer mu.Unlock()
		acts[info.ActivityID] = true
	})
	h.env.SetOnTimerScheduledListener(func(string, time.Duration) { mu.Lock(); timers++; mu.Unlock() })
	signalAt(h.env, time.Minute, SignalRollback, SignalInput{Reason: "latency"})
	st, err := h.run(t)
	wantErrType(t, err, ErrTypeFailed)
	if st.Phase != PhaseCleanupFailed || st.Cleanup == nil {
		t.Fatalf("phase %s, cleanup %+v; want cleanup-failed", st.Phase, st.Cleanup)
	}
	// Each activity is scheduled, started and closed, each timer started
	// and fired, and each wakes a workflow task (3 events).
	events := 3*len(acts) + 2*timers + 3*(len(acts)+timers)
	status, _ := json.Marshal(st)
	t.Logf("%d rounds: %d activities, %d timers, about %d events; status %d bytes", st.Cleanup.Round, len(acts), timers, events, len(status))
	if events > 25_000 || len(status) > 1<<20 {
		t.Errorf("about %d events and a status of %d bytes, want at most 25,000 and 1 MiB", events, len(status))
	}
}

// A cleanup round flips every load balancer back and tells every
// webhook, so its cost grows with them: a cleanup that fails every round
// for the longest steps.cleanup_timeout the config takes for the fleet
// stays within what a rollout's history leaves it beside
// config.MaxAnalysisRounds, with twelve load balancers and with the most
// a fleet may have. Before, the config took 72h whatever the fleet: with
// twelve, some 36,500 events, which with a bake of 2,000 rounds (22,000)
// passed the 51,200 that terminate a run; with 64, 173,000 and a status
// of 5 MB. (historyCount says how the events are counted.)
func TestLongestCleanupOfManyLoadBalancersFitsTheHistory(t *testing.T) {
	for _, n := range []int{12, config.MaxLoadBalancers} {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			lb2 := `{name: lb2, address: "127.0.0.1:5302", fronts: ns2}`
			more := []string{lb2}
			for i := 3; i <= n; i++ {
				more = append(more, fmt.Sprintf(`{name: lb%d, address: "127.0.0.1:%d", fronts: ns%d}`, i, 5300+i, 2-i%2))
			}
			fleet := strings.Replace(labFleet, lb2, strings.Join(more, "\n  - "), 1)
			settings := "rollout: {bake: 0s}\nsteps: {cleanup_timeout: %s}\nnotifications: {webhooks: [{url: 'http://127.0.0.1:9/hook'}]}"
			f, err := config.Parse([]byte(strings.Replace(fleet, "rollout: {bake: 0s}", fmt.Sprintf(settings, time.Hour), 1)))
			if err != nil {
				t.Fatal(err)
			}
			longest := f.LongestCleanupTimeout()
			for _, d := range []time.Duration{longest, longest + time.Minute} {
				_, err := config.Parse([]byte(strings.Replace(fleet, "rollout: {bake: 0s}", fmt.Sprintf(settings, d), 1)))
				if refused := err != nil && strings.Contains(err.Error(), "steps.cleanup_timeout") && strings.Contains(err.Error(), "set it to at most "+longest.String()); refused != (d > longest) {
					t.Errorf("cleanup_timeout %s, the longest %s: %v", d, longest, err)
				}
			}
			h := newHarnessFleet(t, strings.Replace(fleet, "rollout: {bake: 0s}", fmt.Sprintf(settings, longest), 1), "FlipBackToBlue", "VerifyLoadBalancers")
			h.env.OnActivity(a.Notify, mock.Anything, mock.Anything).Return(nil)
			hc := countHistory(h.env)
			signalAt(h.env, time.Minute, SignalRollback, SignalInput{Reason: "latency"})
			st, err := h.run(t)
			wantErrType(t, err, ErrTypeFailed)
			if st.Phase != PhaseCleanupFailed || st.Cleanup == nil {
				t.Fatalf("phase %s, cleanup %+v; want cleanup-failed", st.Phase, st.Cleanup)
			}
			status, _ := json.Marshal(st)
			room := temporalHistoryCap*9/10 - 11*config.MaxAnalysisRounds
			t.Logf("cleanup_timeout %s, %d rounds: about %d events (%s); status %d KB", longest, st.Cleanup.Round, hc.events(), hc, len(status)/1024)
			if hc.events() > room || len(status) > 1<<20 {
				t.Errorf("about %d events and a status of %d bytes, want at most %d (nine tenths of Temporal's cap, less %d analysis rounds) and 1 MiB",
					hc.events(), len(status), room, config.MaxAnalysisRounds)
			}
		})
	}
}

// A rollout stopped by an abort or a rollback whose cleanup then fails
// closes as failed, like the same cleanup failure after a failed step: not
// as cancelled, which would hide it from `--status failed`, the
// temporal_workflow_failed_total alert and the Web UI's failure message,
// the runs that leave green up for an operator. The failure carries the
// status, with what is left to undo.
func TestStoppedRolloutWhoseCleanupFailsClosesFailed(t *testing.T) {
	for _, tc := range []struct {
		name, failAt, slowAt, signal string
	}{
		{"abort while provisioning", "", "ProvisionNameservers", SignalAbort},
		{"rollback while verifying the load balancers", "", "VerifyLoadBalancers", SignalRollback},
		{"failed step (control)", "VerifyGreen", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var slow []string
			if tc.slowAt != "" {
				slow = append(slow, tc.slowAt)
			}
			h := newHarness(t, tc.failAt, slow...)
			h.rec.failDeleteGreen = 1 << 20 // every round fails until steps.cleanup_timeout
			if tc.signal != "" {
				signalAt(h.env, time.Minute, tc.signal, SignalInput{Reason: "cf test", By: "alice"})
			}
			st, err := h.run(t)
			var canceled *temporal.CanceledError
			if errors.As(err, &canceled) {
				t.Fatalf("err = %v: a cleanup-failed rollout closes as cancelled, not failed", err)
			}
			wantErrType(t, err, ErrTypeFailed)
			if st.Phase != PhaseCleanupFailed {
				t.Fatalf("phase = %s, want %s", st.Phase, PhaseCleanupFailed)
			}
			var app *temporal.ApplicationError
			errors.As(err, &app)
			for _, want := range []string{"cleanup failed: DeleteGreen failed", "dnsroll rollout cleanup"} {
				if !strings.Contains(app.Message(), want) {
					t.Errorf("failure message %q lacks %q", app.Message(), want)
				}
			}
			var carried Status
			if !app.HasDetails() || app.Details(&carried) != nil || carried.Phase != PhaseCleanupFailed || carried.Cleanup == nil || len(carried.Cleanup.Left) == 0 {
				t.Errorf("failure details = %+v, want the status with cleanup.left", carried)
			}
		})
	}
}

// cleanupBlue are the blue servers a cleanup request names, as
// `dnsroll rollout cleanup` takes them from the failed run's status.
var cleanupBlue = map[string]dnsroll.Server{
	"ns1": {ID: 1, Label: "ns1", IPv4: "192.0.2.1", Status: "running", DNSPort: 53},
	"ns2": {ID: 2, Label: "ns2", IPv4: "192.0.2.2", Status: "running", DNSPort: 53},
}

// A cleanup-only run does not know which load balancers the failed run
// left on green: one whose switch back fails is listed for the operator,
// in the failure and in cleanup.left, as a rollout's would be.
func TestCleanupOnlyRunListsALoadBalancerItCouldNotSwitchBack(t *testing.T) {
	h := newHarness(t, "SwitchBackToBlue")
	h.rec.lbs["lb2"] = "ns2-next"
	st, err := h.runInput(t, RolloutInput{Fleet: "test", CleanUp: &CleanupRequest{From: "rollout-test/r1", Blue: cleanupBlue}})
	if err == nil || st.Phase != PhaseCleanupFailed {
		t.Fatalf("phase %s, err %v; want cleanup-failed", st.Phase, err)
	}
	var left []string
	for _, l := range st.Cleanup.Left {
		left = append(left, l.Kind+" "+l.Name)
	}
	if !slices.Contains(left, "load-balancer lb2") || slices.Contains(left, "load-balancer lb1") {
		t.Errorf("cleanup.left = %v; want lb2, which is still on green, and not lb1, which is back on blue", left)
	}
	if !slices.Equal(st.OnGreen, []string{"lb2"}) || !strings.Contains(st.Failure, "on green: [lb2]") {
		t.Errorf("on green %v, failure %q; want lb2 named", st.OnGreen, st.Failure)
	}
}

// A load balancer replacement's rollout of its zone records switched the
// new load balancers too (RolloutInput.ExtraLoadBalancers, kept in the
// status): a cleanup of it, which loads the fleet's config, points them
// back at blue as well. Before, they were left on green, which the
// cleanup then deleted.
func TestCleanupOnlyRunSwitchesTheReplacementsLoadBalancersBack(t *testing.T) {
	h := newHarness(t, "")
	h.rec.lbs["lb1-next"] = "ns1-next"
	next := config.LoadBalancer{Name: "lb1-next", Address: "203.0.113.1:53", Fronts: config.Labels{"ns1"}}
	st, err := h.runInput(t, RolloutInput{Fleet: "test", CleanUp: &CleanupRequest{From: "rollout-test/r1", Blue: cleanupBlue}, ExtraLoadBalancers: []config.LoadBalancer{next}})
	if err != nil || st.Phase != PhaseCleanedUp {
		t.Fatalf("phase %s, err %v; want cleaned-up", st.Phase, err)
	}
	if got := h.rec.lbs["lb1"] + "," + h.rec.lbs["lb2"] + "," + h.rec.lbs["lb1-next"]; got != "ns1,ns2,ns1" {
		t.Errorf("load balancers point at %s; want lb1, lb2 and lb1-next back on blue (ns1,ns2,ns1)", got)
	}
}

// A cleanup-only run deletes the servers the failed run's cleanup.left
// names, by ID where it knew it, though the fleet no longer lists their
// nameserver: here ns2 was dropped from it after the failure, and a run
// that went by the fleet alone ended cleaned-up with ns2-next running.
func TestCleanupOnlyRunDeletesWhatTheFailedRunLeftThoughTheFleetChanged(t *testing.T) {
	fleet := strings.Replace(labFleet, "  - {label: ns2, region: eu-west, type: g6-nanode-1, image: linode/debian12}\n", "", 1)
	h := newHarnessFleet(t, strings.Replace(fleet, "fronts: ns2", "fronts: ns1", 1), "")
	left := []Leftover{
		{Kind: LeftoverLoadBalancer, Name: "lb2", Action: "point back at blue ns2"},
		{Kind: LeftoverServer, Name: "ns1-next", Action: "delete if it exists"},
		{Kind: LeftoverServer, Name: "ns2-next", ID: 12, Action: "delete"},
		// Whatever the request says, a blue is never deleted: not by its
		// label, nor by its ID, nor as a leftover of another kind.
		{Kind: LeftoverServer, Name: "ns1", ID: 7, Action: "delete"},
		{Kind: LeftoverLoadBalancer, Name: "ns3-next", ID: 13, Action: "delete"},
	}
	st, err := h.runInput(t, RolloutInput{Fleet: "test", CleanUp: &CleanupRequest{From: "rollout-test/r1", Blue: cleanupBlue, Left: left}})
	if err != nil || st.Phase != PhaseCleanedUp {
		t.Fatalf("phase %s, err %v; want cleaned-up", st.Phase, err)
	}
	if !slices.Contains(h.rec.calls, "DeleteGreen ns1-next,ns2-next ids [12]") {
		t.Errorf("want green deleted as DeleteGreen ns1-next,ns2-next ids [12] (ns2-next, which the failed run left, and no blue): %v", h.rec.calls)
	}

	// A cleanup that fails again lists it, with its ID, for the next.
	h = newHarnessFleet(t, strings.Replace(fleet, "fronts: ns2", "fronts: ns1", 1), "")
	h.rec.failDeleteGreen = 1 << 20
	st, _ = h.runInput(t, RolloutInput{Fleet: "test", CleanUp: &CleanupRequest{From: "rollout-test/r1", Blue: cleanupBlue, Left: left}})
	if st.Phase != PhaseCleanupFailed || st.Cleanup == nil || !slices.Contains(st.Cleanup.Left, left[2]) {
		t.Errorf("phase %s, cleanup %+v; want cleanup-failed with %+v left", st.Phase, st.Cleanup, left[2])
	}
}

// A server an earlier run left with its ID keeps the ID in the next
// cleanup.left though the fleet still names its nameserver and this run
// never learnt it: listed by label alone ("delete if it exists"), the run
// after would lose the ID, and with it a server a list by label misses.
func TestFailedCleanupOnlyRunKeepsTheIDsItWasGiven(t *testing.T) {
	h := newHarness(t, "")
	h.rec.failDeleteGreen = 1 << 20
	left := Leftover{Kind: LeftoverServer, Name: "ns1-next", ID: 11, Action: "delete"}
	st, _ := h.runInput(t, RolloutInput{Fleet: "test", CleanUp: &CleanupRequest{From: "rollout-test/r1", Blue: cleanupBlue, Left: []Leftover{left}}})
	if st.Phase != PhaseCleanupFailed || st.Cleanup == nil || !slices.Contains(st.Cleanup.Left, left) {
		t.Errorf("phase %s, cleanup %+v; want cleanup-failed with %+v left", st.Phase, st.Cleanup, left)
	}
}

// A cleanup-only run whose failed run learnt the ID of every -next server
// (each create reported back) has no create that may still appear: it
// sweeps green once and ends, where it used to wait createSettle (30 s)
// for a second sweep. One missing an ID, or a nameserver's -next server,
// may follow a create cut short, and still sweeps again once it settled.
func TestCleanupOnlyRunSweepsOnceWhenEveryCreateReportedBack(t *testing.T) {
	for _, tt := range []struct {
		name   string
		left   []Leftover
		sweeps int
	}{
		{"every create reported back", []Leftover{
			{Kind: LeftoverServer, Name: "ns1-next", ID: 11, Action: "delete"},
			{Kind: LeftoverServer, Name: "ns2-next", ID: 12, Action: "delete"},
		}, 1},
		{"one server left without an ID", []Leftover{
			{Kind: LeftoverServer, Name: "ns1-next", ID: 11, Action: "delete"},
			{Kind: LeftoverServer, Name: "ns2-next", Action: "delete if it exists"},
		}, 2},
		// A run terminated while creating lists only the servers it learnt.
		{"a nameserver's -next server not listed", []Leftover{
			{Kind: LeftoverServer, Name: "ns1-next", ID: 11, Action: "delete"},
		}, 2},
		{"nothing listed", nil, 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, "")
			start := h.env.Now()
			st, err := h.runInput(t, RolloutInput{Fleet: "test", CleanUp: &CleanupRequest{From: "rollout-test/r1", Blue: cleanupBlue, Left: tt.left}})
			if err != nil || st.Phase != PhaseCleanedUp {
				t.Fatalf("phase %s, err %v; want cleaned-up", st.Phase, err)
			}
			if got := h.rec.count("DeleteGreen"); got != tt.sweeps {
				t.Errorf("DeleteGreen ran %d times, want %d: %v", got, tt.sweeps, h.rec.calls)
			}
			took := h.env.Now().Sub(start)
			if waited := took >= createSettle; waited != (tt.sweeps == 2) {
				t.Errorf("the cleanup took %v; want a wait of createSettle (%v) only before a second sweep", took, createSettle)
			}
		})
	}
}

// A cleanup-only run, as `dnsroll rollout cleanup` starts it, points every
// load balancer back at blue and deletes green, without planning or
// creating anything.
func TestCleanupOnlyRun(t *testing.T) {
	h := newHarness(t, "")
	h.rec.lbs["lb2"] = "ns2-next"
	st, err := h.runInput(t, RolloutInput{Fleet: "test", RequestedBy: "ops", CleanUp: &CleanupRequest{From: "rollout-test/r1", Blue: cleanupBlue}})
	if err != nil {
		// A run that did what it was started for completes: a failure
		// would count in `--status failed` and the failed-workflow alert.
		t.Fatalf("err = %v, want a cleanup that worked to complete", err)
	}
	if st.Phase != PhaseCleanedUp {
		t.Errorf("phase = %s, want %s", st.Phase, PhaseCleanedUp)
	}
	if got, want := h.rec.lbs["lb1"]+","+h.rec.lbs["lb2"], "ns1,ns2"; got != want {
		t.Errorf("load balancers point at %s, want %s", got, want)
	}
	if !h.rec.has("DeleteGreen ns1-next,ns2-next") {
		t.Errorf("green not deleted: %v", h.rec.calls)
	}
	for _, never := range []string{"Plan", "EnsureServer", "ProvisionNameservers"} {
		if h.rec.has(never) {
			t.Errorf("a cleanup-only run called %s: %v", never, h.rec.calls)
		}
	}
	if !strings.Contains(st.Failure, "cleaned up after rollout-test/r1") {
		t.Errorf("status %q does not name the run it cleaned up after", st.Failure)
	}
}

// A rollout's phases are among every workflow's, in the same order, so
// that the API's filter takes each that `rollout list --phase` offers.
func TestRolloutPhasesAreAmongPhases(t *testing.T) {
	i := 0
	for _, p := range Phases {
		if i < len(RolloutPhases) && RolloutPhases[i] == p {
			i++
		}
	}
	if i != len(RolloutPhases) {
		t.Errorf("RolloutPhases %v are not in Phases %v in its order (from %s)", RolloutPhases, Phases, RolloutPhases[i])
	}
}

// A rollout cancelled after its switch (as Temporal cancels a
// replacement's zone rollout when the replacement is terminated) ends
// rolled-back, as an abort there does: its load balancers went to green
// and came back. Before, it ended aborted, which says they never moved.
func TestCancelAfterTheSwitchEndsRolledBack(t *testing.T) {
	h := newHarness(t, "", "VerifyLoadBalancers")
	h.env.RegisterDelayedCallback(h.env.CancelWorkflow, time.Minute)
	st, err := h.run(t)
	wantErrType(t, err, ErrTypeRolledBack)
	if st.Phase != PhaseRolledBack || !strings.Contains(st.Failure, "cancelled") {
		t.Errorf("phase %s, failure %q; want rolled back, saying the workflow was cancelled", st.Phase, st.Failure)
	}
	if got := h.rec.lbs["lb1"] + "," + h.rec.lbs["lb2"]; got != "ns1,ns2" {
		t.Errorf("load balancers point at %s, want blue", got)
	}
}
