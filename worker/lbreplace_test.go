package worker

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/mock"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/activities"
	"github.com/dnsroll/dnsroll/config"
	"github.com/dnsroll/dnsroll/internal/dnstest"
	"github.com/dnsroll/dnsroll/internal/fleettest"
	"github.com/dnsroll/dnsroll/lab/route53sim"
	"github.com/dnsroll/dnsroll/registrar"
	"github.com/dnsroll/dnsroll/workflows"
)

// zoneServer is a load balancer as the replacement's checks see it: its
// own loopback address, answering the zone's NS with a 20 s TTL.
func zoneServer(t *testing.T, addr string) string {
	return dnstest.ServeUDPOn(t, addr, func(req, m *dns.Msg) {
		m.Authoritative = true
		m.Answer = append(m.Answer, &dns.NS{Hdr: dns.RR_Header{Name: "example.com.", Rrtype: dns.TypeNS, Class: dns.ClassINET, Ttl: 20}, Ns: "ns1.example.com."})
	})
}

func glue(a1, a2 string) []registrar.NameServer {
	return []registrar.NameServer{
		{Name: "ns1.example.com.", Addrs: []netip.Addr{netip.MustParseAddr(a1)}},
		{Name: "ns2.example.com.", Addrs: []netip.Addr{netip.MustParseAddr(a2)}},
	}
}

// replaceRun is how a replacement ended: its status, the load balancer
// servers it created and deleted, the registrar's account and the logs.
type replaceRun struct {
	st    workflows.LBReplaceStatus
	err   error
	calls []string
	sim   *route53sim.Sim
	logs  *bytes.Buffer
}

// lbReplaceRun runs LoadBalancerReplaceWorkflow with registrar reg through
// the worker's registrars and the real LoadFleet, CheckParent and SetGlue;
// the load balancers' servers are mocked (created at 127.0.0.3 and .4),
// and abortAt, when not zero, sends abort then.
func lbReplaceRun(t *testing.T, reg string, abortAt time.Duration) replaceRun {
	t.Helper()
	return lbReplaceRunWith(t, reg, abortAt, route53sim.Options{}, 0)
}

// lbReplaceRunWith is lbReplaceRun with the registrar simulator's options
// and, when abortInSetGlue is not zero, an abort sent that long (real
// time) after the first SetGlue began, while its operation is pending.
func lbReplaceRunWith(t *testing.T, reg string, abortAt time.Duration, opts route53sim.Options, abortInSetGlue time.Duration) replaceRun {
	t.Helper()
	oldLB1 := zoneServer(t, "127.0.0.1:0")
	newLB1 := zoneServer(t, "127.0.0.3:0")
	fleet, err := config.Parse([]byte(fleettest.YAML("glue", oldLB1, "127.0.0.2:53") + "ansible: {connection: local}\n"))
	if err != nil {
		t.Fatal(err)
	}
	sim, parent, cfg := route53WorldWith(t, opts, glue("127.0.0.1", "127.0.0.2"))
	acts := &activities.Activities{Registrars: cfg.Registrars(), Fleets: func(string) (*config.Fleet, error) { return fleet, nil }}
	logs := &bytes.Buffer{}
	env := loggedSuite(logs).NewTestWorkflowEnvironment()
	env.SetTestTimeout(time.Minute) // SetGlue waits out the registrar's operations
	workflows.Register(env)
	env.RegisterActivity(acts)

	var mu sync.Mutex
	var calls []string
	next := map[string]string{"lb1": newLB1, "lb2": "127.0.0.4:53"}
	env.OnActivity(acts.CreateLoadBalancer, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.LoadBalancerInput) (activities.NewLoadBalancer, error) {
		mu.Lock()
		defer mu.Unlock()
		calls = append(calls, "Create "+in.LB.Name)
		lb := in.LB
		lb.Name, lb.Address = dnsroll.NextLabel(in.LB.Name), next[in.LB.Name]
		host, _, _ := net.SplitHostPort(lb.Address)
		return activities.NewLoadBalancer{LB: lb, Server: dnsroll.Server{ID: 7, Label: lb.Name, IPv4: host}}, nil
	})
	env.OnActivity(acts.DeleteLoadBalancer, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.DeleteLoadBalancerInput) (activities.StepResult, error) {
		mu.Lock()
		defer mu.Unlock()
		calls = append(calls, "Delete "+in.Label)
		return activities.StepResult{}, nil
	})
	env.OnActivity(acts.VerifyLoadBalancer, mock.Anything, mock.Anything).Return(activities.StepResult{}, nil)
	// No counter (as nginx): the drain is the TTL alone.
	env.OnActivity(acts.LoadBalancerQueries, mock.Anything, mock.Anything).Return(activities.QueriesResult{}, nil)
	env.OnActivity(acts.LoadBalancersQueries, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.LoadBalancersInput) (activities.LoadBalancersQueriesResult, error) {
		res := activities.LoadBalancersQueriesResult{}
		for _, lb := range in.LBs {
			res.LBs = append(res.LBs, activities.LBQueries{Name: lb.Name})
		}
		return res, nil
	})
	if abortInSetGlue > 0 {
		var once sync.Once
		env.OnActivity(acts.SetGlue, mock.Anything, mock.Anything).Return(func(ctx context.Context, in activities.SetGlueInput) (activities.SetGlueResult, error) {
			once.Do(func() {
				time.AfterFunc(abortInSetGlue, func() {
					env.SignalWorkflow(workflows.SignalAbort, workflows.SignalInput{Reason: "test", By: "worker test"})
				})
			})
			return acts.SetGlue(ctx, in)
		})
	}
	if abortAt > 0 {
		env.RegisterDelayedCallback(func() {
			env.SignalWorkflow(workflows.SignalAbort, workflows.SignalInput{Reason: "test", By: "worker test"})
		}, abortAt)
	}
	env.ExecuteWorkflow(workflows.LoadBalancerReplaceWorkflow, workflows.LBReplaceInput{
		Fleet: "glue", Domain: "example.com", Parent: parent, Registrar: reg,
		Drain: workflows.DrainPolicy{Poll: config.Duration(time.Second)},
	})
	if !env.IsWorkflowCompleted() {
		t.Fatal("the replacement did not end")
	}
	run := replaceRun{calls: calls, sim: sim, logs: logs}
	run.err = env.GetWorkflowResult(&run.st)
	return run
}

// TestLBReplaceRoute53AbortRestoresGlue runs the whole replacement
// workflow with registrar "route53domains" through the worker's wiring:
// the glue at the simulator (and so at the parent) moves to the new load
// balancers, and the abort during the drain puts it back, before the new
// ones are deleted. No credential reaches the status or the logs.
func TestLBReplaceRoute53AbortRestoresGlue(t *testing.T) {
	r := lbReplaceRun(t, "route53domains", 20*time.Second)
	if r.st.Phase != workflows.PhaseAborted {
		t.Fatalf("phase %s (%s), want %s", r.st.Phase, r.st.Failure, workflows.PhaseAborted)
	}
	oldGlue, newGlue := glue("127.0.0.1", "127.0.0.2"), glue("127.0.0.3", "127.0.0.4")
	if r.st.Drain == nil || r.st.Glue.ServedSince.IsZero() || !registrar.Equal(r.st.Glue.New, newGlue) {
		t.Fatalf("glue %+v, drain %+v: want the new glue served and the drain begun before the abort", r.st.Glue, r.st.Drain)
	}
	ops := r.sim.Operations()
	if len(ops) != 2 || !registrar.Equal(ops[0].NS, newGlue) || !registrar.Equal(ops[1].NS, oldGlue) {
		t.Fatalf("registrar operations %+v, want the new glue, then the old", ops)
	}
	if got, _ := r.sim.Domain("example.com"); !registrar.Equal(got, oldGlue) {
		t.Errorf("after the abort the registrar holds %v, want the old glue %v", got, oldGlue)
	}
	if want := []string{"Create lb1", "Create lb2", "Delete lb1-next", "Delete lb2-next"}; !slices.Equal(slices.Sorted(slices.Values(r.calls)), want) {
		t.Errorf("load balancer calls %v, want %v", r.calls, want)
	}
	noSecrets(t, r.st, r.logs.String())
}

// An abort while the registrar's operation moving the glue to the new load
// balancers is still IN_PROGRESS: the parent serves the old glue yet, but
// the operation runs later. The glue is put back all the same, and the
// new load balancers are deleted only once the registrar holds the old
// glue; before, the restore was skipped ("nothing to restore"), the new
// load balancers were deleted, and the operation then moved the glue to
// them: the domain went dark under a clean "aborted".
func TestLBReplaceRoute53AbortWhileTheGlueOperationIsPending(t *testing.T) {
	const delay = 3 * time.Second
	r := lbReplaceRunWith(t, "route53domains", 0, route53sim.Options{Delay: delay}, 500*time.Millisecond)
	if r.st.Phase != workflows.PhaseAborted {
		t.Fatalf("phase %s (%s), want %s", r.st.Phase, r.st.Failure, workflows.PhaseAborted)
	}
	time.Sleep(delay + time.Second) // any operation still pending runs
	oldGlue := glue("127.0.0.1", "127.0.0.2")
	if got, _ := r.sim.Domain("example.com"); !registrar.Equal(got, oldGlue) {
		t.Errorf("after the abort the registrar holds %v, want the old glue %v (operations %+v, calls %v)", got, oldGlue, r.sim.Operations(), r.calls)
	}
}

// A registrar name the worker lacks ends the replacement at its first
// check, before any load balancer is created or glue asked for.
func TestLBReplaceUnknownRegistrarCreatesNothing(t *testing.T) {
	r := lbReplaceRun(t, "godaddy", 0)
	if r.err == nil || !strings.Contains(r.err.Error(), `registrar: "godaddy" is not a registrar this worker has`) {
		t.Errorf("err = %v, want the first check's refusal", r.err)
	}
	if len(r.calls) != 0 || len(r.sim.Operations()) != 0 {
		t.Fatalf("calls %v, registrar operations %d: want nothing created or asked for", r.calls, len(r.sim.Operations()))
	}
}
