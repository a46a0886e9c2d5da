package workflows

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"

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
	c := temporaltest.DevServer(t, SearchAttributes...)
	steps := &liveLBSteps{parent: oldGlue, reading: make(chan struct{}), release: make(chan struct{})}
	fleet, err := config.Parse([]byte(lbFleet))
	if err != nil {
		t.Fatal(err)
	}
	steps.fleet = fleet
	w := worker.New(c, TaskQueue, worker.Options{})
	Register(w)
	w.RegisterActivity(steps)
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)

	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	in := lbInput()
	in.Drain = DrainPolicy{Quiet: config.Duration(time.Second), Poll: config.Duration(200 * time.Millisecond)}
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: LBReplaceWorkflowID(in.Fleet), TaskQueue: TaskQueue}, LoadBalancerReplaceWorkflow, in)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-steps.reading:
	case <-ctx.Done():
		t.Fatal("the drain never read the counters")
	}
	for _, s := range []struct {
		name string
		in   SignalInput
	}{{SignalForceDrain, SignalInput{Reason: "resolvers ignore TTLs"}}, {SignalAbort, SignalInput{Reason: "wrong domain"}}} {
		if err := c.SignalWorkflow(ctx, run.GetID(), "", s.name, s.in); err != nil {
			t.Fatal(err)
		}
	}
	waitForEvent(ctx, t, c, run.GetID(), "abort requested")
	close(steps.release) // the read ends well, as one that never heard of the cancel

	var st LBReplaceStatus
	err = run.Get(ctx, &st)
	if err != nil {
		var failure *temporal.ApplicationError
		if !errors.As(err, &failure) || failure.Details(&st) != nil {
			t.Fatalf("the replacement ended with %v", err)
		}
	}
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

// liveLBSteps are a replacement's steps for a real worker: the registrar
// and parent in memory, load balancers that are created at once and
// never busy. The first read of the last load balancer's counter (the
// last read of a drain round) blocks, signalling reading, until release
// is closed, and then ends well whatever the cancel said.
type liveLBSteps struct {
	fleet            *config.Fleet
	reading, release chan struct{}

	mu     sync.Mutex
	parent []registrar.NameServer
	calls  []string
	read   bool
}

func (s *liveLBSteps) add(call string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, call)
}

func (s *liveLBSteps) done() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

func (s *liveLBSteps) parentNow() []registrar.NameServer {
	s.mu.Lock()
	defer s.mu.Unlock()
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
	s.mu.Lock()
	s.parent = in.NS
	s.mu.Unlock()
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
	s.mu.Lock()
	// The round's last read: after it, the drain decides.
	first := !s.read && in.LB.Name == s.fleet.LoadBalancers[len(s.fleet.LoadBalancers)-1].Name
	s.read = s.read || first
	s.mu.Unlock()
	if first {
		close(s.reading)
		<-s.release
	}
	return activities.QueriesResult{Attempt: 1, Counted: true}, nil
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
	c := temporaltest.DevServer(t, SearchAttributes...)
	fleet, err := config.Parse([]byte(labFleet))
	if err != nil {
		t.Fatal(err)
	}
	for _, lbName := range []string{"lb1", "lb2"} {
		t.Run(lbName, func(t *testing.T) {
			steps := &liveUpdateSteps{blockAfter: lbName, reading: make(chan struct{}), release: make(chan struct{})}
			queue := TaskQueue + "-" + lbName
			w := worker.New(c, queue, worker.Options{})
			Register(w)
			w.RegisterActivity(steps)
			if err := w.Start(); err != nil {
				t.Fatal(err)
			}
			defer w.Stop()
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "lbupdate-" + lbName, TaskQueue: queue}, LoadBalancerUpdateWorkflow,
				LBUpdateInput{Fleet: fleet, Update: lb.Update{Kind: lb.UpdateBinary}})
			if err != nil {
				t.Fatal(err)
			}
			select {
			case <-steps.reading:
			case <-ctx.Done():
				t.Fatal("the update never checked " + lbName)
			}
			if err := c.SignalWorkflow(ctx, run.GetID(), "", SignalAbort, SignalInput{Reason: "wrong binary"}); err != nil {
				t.Fatal(err)
			}
			waitForEvent(ctx, t, c, run.GetID(), "abort by")
			close(steps.release)

			var st Status
			if err := run.Get(ctx, &st); err != nil {
				var failure *temporal.ApplicationError
				if !errors.As(err, &failure) || failure.Details(&st) != nil {
					t.Fatalf("the update ended with %v", err)
				}
			}
			if st.Phase != PhaseAborted {
				t.Errorf("phase %s (%s), want aborted", st.Phase, st.Failure)
			}
			if calls := steps.done(); !slices.Contains(calls, "Restore "+lbName) {
				t.Errorf("the abort during %s's check did not restore it: %v", lbName, calls)
			}
		})
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

// liveUpdateSteps are a load balancer update's steps for a real worker.
// The check after blockAfter's update blocks, signalling reading, until
// release is closed, and then ends well whatever the cancel said.
type liveUpdateSteps struct {
	blockAfter       string
	reading, release chan struct{}

	mu      sync.Mutex
	calls   []string
	updated map[string]bool
}

func (s *liveUpdateSteps) done() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

func (s *liveUpdateSteps) CheckLoadBalancerDNS(_ context.Context, in activities.CheckLBInput) (activities.StepResult, error) {
	s.mu.Lock()
	after := s.updated[in.LB.Name]
	s.calls = append(s.calls, "Check "+in.LB.Name)
	s.mu.Unlock()
	if after && in.LB.Name == s.blockAfter {
		close(s.reading)
		<-s.release
	}
	return activities.StepResult{Attempt: 1}, nil
}

func (s *liveUpdateSteps) UpdateLoadBalancer(_ context.Context, in activities.UpdateLBInput) (activities.StepResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.updated == nil {
		s.updated = map[string]bool{}
	}
	s.updated[in.LB.Name] = true
	s.calls = append(s.calls, "Update "+in.LB.Name)
	return activities.StepResult{Attempt: 1}, nil
}

func (s *liveUpdateSteps) RestoreLoadBalancer(_ context.Context, in activities.UpdateLBInput) (activities.RestoreResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, "Restore "+in.LB.Name)
	return activities.RestoreResult{StepResult: activities.StepResult{Attempt: 1}}, nil
}
