package workflows

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
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
	"go.temporal.io/sdk/workflow"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/activities"
	"github.com/dnsroll/dnsroll/config"
	"github.com/dnsroll/dnsroll/internal/temporaltest"
	"github.com/dnsroll/dnsroll/registrar"
)

// lbFleet is the test fleet with dnsdist load balancers on port 53 of
// addresses of their own, as glue records need.
var lbFleet = strings.NewReplacer(
	`{name: lb1, address: "127.0.0.1:5301", fronts: ns1}`, `{name: lb1, address: "198.51.100.1:53", fronts: ns1, driver: dnsdist}`,
	`{name: lb2, address: "127.0.0.1:5302", fronts: ns2}`, `{name: lb2, address: "198.51.100.2:53", fronts: ns2, driver: dnsdist}`,
).Replace(labFleet)

// TTLs the fake parent and zone serve: the zone's own NS TTL is the
// longest, so the drain must wait it out.
const (
	fakeNSTTL     = 60 * time.Second
	fakeGlueTTL   = 120 * time.Second
	fakeZoneNSTTL = 300 * time.Second
)

// maxChecksAtOnce is more parent checks than any replacement makes
// without time passing between them (parentCheckAttempts and a few).
const maxChecksAtOnce = 200

// runaway holds a parent check that came past maxChecksAtOnce at one
// simulated instant: a loop that lets no time pass would otherwise run
// until the test's deadline, as no run timeout stops it. Held, it has the
// test environment panic within seconds (its idle timeout), with the
// workflow's stack, which shows the loop.
func (w *world) runaway() {
	w.mu.Lock()
	if now := w.env.Now(); now.Equal(w.checkedAt) {
		w.checksAt++
	} else {
		w.checksAt, w.checkedAt = 1, now
	}
	n := w.checksAt
	w.mu.Unlock()
	if n > maxChecksAtOnce {
		select {}
	}
}

func glueTo(a, b string) []registrar.NameServer {
	return []registrar.NameServer{
		{Name: "ns1.example.com.", Addrs: []netip.Addr{netip.MustParseAddr(a)}},
		{Name: "ns2.example.com.", Addrs: []netip.Addr{netip.MustParseAddr(b)}},
	}
}

var (
	oldGlue = glueTo("198.51.100.1", "198.51.100.2")
	newGlue = glueTo("203.0.113.1", "203.0.113.2")
)

// world is the fake registrar, parent zone, cloud and load balancer
// counters behind the mocked activities.
type world struct {
	mu     sync.Mutex
	env    *testsuite.TestWorkflowEnvironment
	calls  []string
	at     map[string]time.Time // first time of each call
	parent []registrar.NameServer
	// manual makes SetGlue return instructions and change nothing.
	manual bool
	// servedAt is when the parent began serving the new glue.
	servedAt time.Time
	// busyFor is how long after servedAt the old load balancers still get
	// 100 queries/s; negative: forever.
	busyFor time.Duration
	// burst, when its end is set, is a while after servedAt (from, to)
	// when the old load balancers get 100 queries/s again.
	burst   [2]time.Duration
	queries map[string]uint64
	lastQ   map[string]time.Time
	// uncounted makes the load balancers' drivers keep no counter (nginx).
	uncounted bool
	// unoffered, when set, is the cloud's refusal of the new load
	// balancers' region, plan or image.
	unoffered string
	// offersNote is the note of the offers' check: the old load
	// balancers the replacement will not delete.
	offersNote string
	// zoneNSTTL is the TTL of the zone's own NS records (fakeZoneNSTTL
	// unless a test sets another).
	zoneNSTTL time.Duration
	// zoneNSTTLServed, when set, is the zone's NS TTL once the parent
	// serves the new glue: a revision lowered it meanwhile.
	zoneNSTTLServed time.Duration
	// publishAfter is how long the parent takes to serve glue that SetGlue
	// changed; pending holds that glue meanwhile.
	publishAfter time.Duration
	pending      []registrar.NameServer
	pendingAt    time.Time
	// newGlueLost makes the registrar apply the new glue and then fail
	// the request, as a timeout after the change would.
	newGlueLost bool
	// deleteFails names a load balancer whose delete fails for good.
	deleteFails string
	// queriesFail makes every reading of the old load balancers' counters
	// fail; unreadable, those of the load balancer it names.
	queriesFail bool
	// readingsFail makes that many LoadBalancersQueries steps fail.
	readingsFail int
	unreadable   string
	// countersLack names a load balancer that LoadBalancersQueries
	// leaves out of its result, which it lists in reverse order.
	countersLack string
	// createAfter is how long each CreateLoadBalancer takes to report
	// back. commitLate, when set, is how long after its request the fake
	// Linode commits a create, whatever became of the step; next holds
	// each <lb>-next it has, with when it appears. (A test that sets its
	// own activity listener has each appear as its create reports back.)
	createAfter time.Duration
	commitLate  time.Duration
	// slow makes one step take an hour, fails one step fail at once:
	// "Create lb1", "Verify lb2-next".
	slow, fails string
	next        map[string]time.Time
	// nextSSH makes each <lb>-next reached over SSH at 192.0.2.<n>, not
	// at its address, as one at an IPv6 address is.
	nextSSH bool
	// deletedIDs are the server IDs DeleteLoadBalancer was given.
	deletedIDs []int
	// checksAt counts the parent checks at checkedAt, a simulated
	// instant: past maxChecksAtOnce, a loop that lets no time pass.
	checksAt  int
	checkedAt time.Time
	// sibling makes the parent delegate to ns.provider.net too, with an
	// address for it (sibling glue from its own zone), which no registrar
	// takes.
	sibling bool
	// siblingAddr, when valid, is the address the parent gives
	// ns.provider.net instead of provider's.
	siblingAddr netip.Addr
	// zoneAddrs are the zone's own address records of its name servers,
	// as a load balancer answers them.
	zoneAddrs []registrar.NameServer
	// zoneAddrsAt, where it has the load balancer asked, is what that one
	// answers instead.
	zoneAddrsAt map[string][]registrar.NameServer
	// deadChild is a load balancer address that answers nothing: a
	// CheckParent that must ask the zone there alone fails.
	deadChild string
	// parentFails makes that many CheckParent calls from the first one
	// after parentFailsAt fail, as parent servers that disagree mid-publish do.
	parentFails   int
	parentFailsAt time.Time
}

// provider is the out-of-domain name server of world.sibling.
var provider = registrar.NameServer{Name: "ns.provider.net.", Addrs: []netip.Addr{netip.MustParseAddr("192.0.2.99")}}

// inDomain is ns without its name servers outside example.com.
func inDomain(ns []registrar.NameServer) []registrar.NameServer {
	return slices.DeleteFunc(slices.Clone(ns), func(n registrar.NameServer) bool { return !registrar.InDomain(n.Name, "example.com") })
}

// count is how many calls began with call.
func (w *world) count(call string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return countPrefixed(w.calls, call)
}

func (w *world) add(call string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.calls = append(w.calls, call)
	if _, ok := w.at[call]; !ok {
		w.at[call] = w.env.Now()
	}
}

func (w *world) setParent(ns []registrar.NameServer) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.parent = inDomain(ns)
	if registrar.Equal(w.parent, newGlue) && w.servedAt.IsZero() {
		w.servedAt = w.env.Now()
	}
}

func (w *world) index(call string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	for i, c := range w.calls {
		if c == call {
			return i
		}
	}
	return -1
}

func newLBReplaceEnv(t *testing.T, manual bool) (*testsuite.TestWorkflowEnvironment, *world) {
	t.Helper()
	return newLBReplaceEnvWith(t, manual, "rollout: {bake: 0s}")
}

// newLBReplaceEnvWith replaces the test fleet's rollout settings with
// controls.
func newLBReplaceEnvWith(t *testing.T, manual bool, controls string) (*testsuite.TestWorkflowEnvironment, *world) {
	t.Helper()
	return newLBReplaceEnvFleet(t, manual, strings.Replace(lbFleet, "rollout: {bake: 0s}", controls, 1))
}

// newLBReplaceEnvFleet replaces the fleet described by text.
func newLBReplaceEnvFleet(t *testing.T, manual bool, text string) (*testsuite.TestWorkflowEnvironment, *world) {
	t.Helper()
	var suite testsuite.WorkflowTestSuite
	fleet, env := testEnv(t, &suite, text)
	w := &world{env: env, at: map[string]time.Time{}, parent: oldGlue, manual: manual, busyFor: 400 * time.Second, queries: map[string]uint64{}, lastQ: map[string]time.Time{}, next: map[string]time.Time{}}
	env.OnActivity(a.LoadFleet, mock.Anything, mock.Anything).Return(func(_ context.Context, name string) (*config.Fleet, error) {
		w.add("LoadFleet")
		return fleet, nil
	})
	env.OnActivity(a.CheckParent, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.ParentInput) (activities.ParentResult, error) {
		w.add("CheckParent")
		w.runaway()
		w.mu.Lock()
		fail := w.parentFails > 0 && !w.parentFailsAt.IsZero() && !env.Now().Before(w.parentFailsAt)
		if fail {
			w.parentFails--
		}
		w.mu.Unlock()
		if fail {
			return activities.ParentResult{}, temporal.NewNonRetryableApplicationError("the parent servers disagree: still publishing?", "StepFailed", nil)
		}
		if in.Child != "" && in.Child == w.deadChild {
			return activities.ParentResult{}, temporal.NewNonRetryableApplicationError("zone NS TTL: ask "+in.Child+": i/o timeout", "StepFailed", nil)
		}
		w.mu.Lock()
		pending := w.pending != nil && !env.Now().Before(w.pendingAt.Add(w.publishAfter))
		w.mu.Unlock()
		if pending {
			w.setParent(w.pending)
		}
		w.mu.Lock()
		defer w.mu.Unlock()
		res := activities.ParentResult{Attempt: 1, NS: w.parent, NSTTL: fakeNSTTL, GlueTTL: fakeGlueTTL}
		if w.sibling {
			p := provider
			if w.siblingAddr.IsValid() {
				p.Addrs = []netip.Addr{w.siblingAddr}
			}
			res.NS = append(slices.Clone(w.parent), p)
		}
		if in.Child != "" || len(in.AddrsFrom) > 0 {
			res.ZoneNSTTL = fakeZoneNSTTL
			if w.zoneNSTTL > 0 {
				res.ZoneNSTTL = w.zoneNSTTL
			}
			if w.zoneNSTTLServed > 0 && registrar.Equal(inDomain(w.parent), newGlue) {
				res.ZoneNSTTL = w.zoneNSTTLServed
			}
			res.ZoneAddrs, res.ZoneAddrTTL = w.zoneAddrs, 24*time.Hour
			if at, ok := w.zoneAddrsAt[in.Child+strings.Join(in.AddrsFrom, ",")]; ok {
				res.ZoneAddrs = at
			}
		}
		return res, nil
	})
	env.OnActivity(a.SetGlue, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.SetGlueInput) (activities.SetGlueResult, error) {
		to := "old"
		if err := registrar.Validate(in.Domain, in.NS); err != nil {
			return activities.SetGlueResult{}, temporal.NewNonRetryableApplicationError(err.Error(), activities.ErrInvalid, nil)
		}
		if w.sibling && !slices.ContainsFunc(in.NS, func(n registrar.NameServer) bool { return n.Name == provider.Name }) {
			return activities.SetGlueResult{}, fmt.Errorf("SetGlue dropped %s: %v", provider.Name, in.NS)
		}
		if registrar.Equal(inDomain(in.NS), newGlue) {
			to = "new"
		} else if !registrar.Equal(inDomain(in.NS), oldGlue) {
			return activities.SetGlueResult{}, fmt.Errorf("SetGlue to unexpected %v", in.NS)
		}
		w.add("SetGlue " + to)
		if to == "new" && w.newGlueLost {
			w.setParent(in.NS)
			return activities.SetGlueResult{}, temporal.NewNonRetryableApplicationError("the registrar's answer was lost", "RegistrarLost", nil)
		}
		if w.manual {
			return activities.SetGlueResult{Attempt: 1, Instructions: "set the glue to " + to}, nil
		}
		if w.publishAfter > 0 {
			w.mu.Lock()
			w.pending, w.pendingAt = in.NS, env.Now()
			w.mu.Unlock()
			return activities.SetGlueResult{Attempt: 1}, nil
		}
		w.setParent(in.NS)
		return activities.SetGlueResult{Attempt: 1}, nil
	})
	env.OnActivity(a.CheckNewLoadBalancerOffers, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.CheckOffersInput) (activities.StepResult, error) {
		w.add("CheckOffers")
		if w.unoffered != "" {
			return activities.StepResult{}, temporal.NewNonRetryableApplicationError(w.unoffered, activities.ErrInvalid, nil)
		}
		return activities.StepResult{Attempt: 1, Note: w.offersNote}, nil
	})
	env.SetOnActivityStartedListener(func(info *activity.Info, _ context.Context, args converter.EncodedValues) {
		var in activities.LoadBalancerInput
		if info.ActivityType.Name != "CreateLoadBalancer" || args.Get(&in) != nil {
			return
		}
		w.mu.Lock()
		defer w.mu.Unlock()
		w.next[dnsroll.NextLabel(in.LB.Name)] = env.Now().Add(w.commitLate)
	})
	isSlow := func(step string) any {
		return mock.MatchedBy(func(in activities.LoadBalancerInput) bool { return w.slow == step+" "+in.LB.Name })
	}
	create := func(_ context.Context, in activities.LoadBalancerInput) (activities.NewLoadBalancer, error) {
		w.add("Create " + in.LB.Name)
		if w.fails == "Create "+in.LB.Name {
			return activities.NewLoadBalancer{}, temporal.NewNonRetryableApplicationError(in.LB.Name+" create exploded", "LinodeRefused", nil)
		}
		next := in.LB
		next.Name = dnsroll.NextLabel(in.LB.Name)
		n := strings.TrimPrefix(in.LB.Name, "lb")
		next.Address, next.SSHHost = "203.0.113."+n+":53", ""
		w.mu.Lock()
		if w.nextSSH {
			next.SSHHost = "192.0.2." + n
		}
		w.next[next.Name] = env.Now() // reported back: committed
		w.mu.Unlock()
		id, _ := strconv.Atoi(n)
		return activities.NewLoadBalancer{Attempt: 1, LB: next, Server: dnsroll.Server{ID: 10 + id, Label: next.Name, IPv4: "203.0.113." + n}}, nil
	}
	env.OnActivity(a.CreateLoadBalancer, mock.Anything, isSlow("Create")).After(time.Hour).Return(create)
	env.OnActivity(a.CreateLoadBalancer, mock.Anything, mock.Anything).AfterFn(func() time.Duration { return w.createAfter }).Return(create)
	verify := func(_ context.Context, in activities.LoadBalancerInput) (activities.StepResult, error) {
		w.add("Verify " + in.LB.Name)
		if w.fails == "Verify "+in.LB.Name {
			return activities.StepResult{}, temporal.NewNonRetryableApplicationError(in.LB.Name+" does not answer", "StepFailed", nil)
		}
		return activities.StepResult{Attempt: 1}, nil
	}
	env.OnActivity(a.VerifyLoadBalancer, mock.Anything, isSlow("Verify")).After(time.Hour).Return(verify)
	env.OnActivity(a.VerifyLoadBalancer, mock.Anything, mock.Anything).Return(verify)
	env.OnActivity(a.LoadBalancerQueries, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.LoadBalancerInput) (activities.QueriesResult, error) {
		q := w.readQueries(in.LB.Name)
		if q.Error != "" {
			return activities.QueriesResult{}, temporal.NewNonRetryableApplicationError(q.Error, "StatsDown", nil)
		}
		return activities.QueriesResult{Attempt: 1, Counted: q.Counted, Queries: q.Queries}, nil
	})
	env.OnActivity(a.LoadBalancersQueries, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.LoadBalancersInput) (activities.LoadBalancersQueriesResult, error) {
		w.mu.Lock()
		fail := w.readingsFail > 0
		w.readingsFail -= min(w.readingsFail, 1)
		w.mu.Unlock()
		if fail {
			w.add("Queries failed")
			return activities.LoadBalancersQueriesResult{}, temporal.NewNonRetryableApplicationError("the stats endpoints do not answer", "StatsDown", nil)
		}
		res := activities.LoadBalancersQueriesResult{Attempt: 1}
		for _, lb := range in.LBs {
			res.LBs = append(res.LBs, w.readQueries(lb.Name))
		}
		if w.countersLack != "" {
			res.LBs = slices.DeleteFunc(res.LBs, func(q activities.LBQueries) bool { return q.Name == w.countersLack })
			slices.Reverse(res.LBs)
		}
		return res, nil
	})
	env.OnActivity(a.DeleteLoadBalancer, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.DeleteLoadBalancerInput) (activities.StepResult, error) {
		w.add("Delete " + in.Label)
		if in.Label == w.deleteFails {
			return activities.StepResult{}, temporal.NewNonRetryableApplicationError("Linode refused the delete", "LinodeRefused", nil)
		}
		w.mu.Lock()
		defer w.mu.Unlock()
		// What the fake Linode has now goes; what it commits later stays.
		if at, ok := w.next[in.Label]; ok && (in.ID != 0 || !at.After(env.Now())) {
			delete(w.next, in.Label)
		}
		if in.ID != 0 {
			w.deletedIDs = append(w.deletedIDs, in.ID)
		}
		return activities.StepResult{Attempt: 1}, nil
	})
	env.OnActivity(a.RenameServer, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.RenameInput) (activities.StepResult, error) {
		w.add("Rename " + in.Server.Label + " " + in.To)
		return activities.StepResult{Attempt: 1}, nil
	})
	env.OnActivity(a.Notify, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.NotifyInput) (activities.StepResult, error) {
		w.add("Notify " + in.Event + " " + in.Phase)
		return activities.StepResult{Attempt: 1}, nil
	})
	return env, w
}

// readQueries reads the fake counter of load balancer name: 100 queries
// a second while it is busy.
func (w *world) readQueries(name string) activities.LBQueries {
	w.add("Queries " + name)
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.queriesFail || w.unreadable == name {
		return activities.LBQueries{Name: name, Error: "load balancer " + name + ": the stats endpoint does not answer"}
	}
	now := w.env.Now()
	busy := w.servedAt.IsZero() || w.busyFor < 0 || now.Before(w.servedAt.Add(w.busyFor)) ||
		(!now.Before(w.servedAt.Add(w.burst[0])) && now.Before(w.servedAt.Add(w.burst[1])))
	if last, ok := w.lastQ[name]; ok && busy {
		w.queries[name] += uint64(100 * now.Sub(last).Seconds())
	}
	w.lastQ[name] = now
	return activities.LBQueries{Name: name, Counted: !w.uncounted, Queries: w.queries[name]}
}

// notified lists the webhook events sent, in order.
func (w *world) notified() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for _, c := range w.calls {
		if ev, ok := strings.CutPrefix(c, "Notify "); ok {
			out = append(out, ev)
		}
	}
	return out
}

func lbInput() LBReplaceInput {
	return LBReplaceInput{Fleet: "test", Domain: "example.com", Parent: []string{"192.0.2.53:53"},
		Drain: DrainPolicy{Quiet: config.Duration(time.Minute), Poll: config.Duration(5 * time.Second)}}
}

func signalAt(env *testsuite.TestWorkflowEnvironment, d time.Duration, name string, in any, before ...func()) {
	env.RegisterDelayedCallback(func() {
		for _, f := range before {
			f()
		}
		env.SignalWorkflow(name, in)
	}, d)
}

// runLBReplace runs a replacement to its end and checks that it ends in
// phase want.
func runLBReplace(t *testing.T, env *testsuite.TestWorkflowEnvironment, in LBReplaceInput, want Phase) LBReplaceStatus {
	t.Helper()
	env.ExecuteWorkflow(LoadBalancerReplaceWorkflow, in)
	st := lbResult(t, env)
	if st.Phase != want {
		t.Fatalf("phase %s, want %s; failure %q", st.Phase, want, st.Failure)
	}
	return st
}

func lbResult(t *testing.T, env *testsuite.TestWorkflowEnvironment) LBReplaceStatus {
	t.Helper()
	if !env.IsWorkflowCompleted() {
		t.Fatal("workflow did not complete")
	}
	var st LBReplaceStatus
	if err := env.GetWorkflowResult(&st); err != nil {
		t.Fatalf("workflow failed: %v", err)
	}
	return st
}

func hasEvent(st LBReplaceStatus, substr string) bool {
	for _, e := range st.Events {
		if strings.Contains(e.Message, substr) {
			return true
		}
	}
	return false
}

// The manual registrar: a glue-updated sent before the parent serves the
// new glue is refused and the wait goes on; the one after is accepted;
// the old load balancers are deleted only after the TTLs (the zone's own
// NS TTL, the longest here) and a quiet period of their counters; then the
// new ones are renamed.
// A fleet whose load balancers glue cannot tell apart is refused before
// anything is created, naming the field: glue carries an IP address and no
// port, so each load balancer needs an address of its own. Before, the
// replacement created lb*-next on one address and port 53, and the second
// retried for minutes on the port its sibling held, with a hint about nginx.
func TestLBReplaceRefusesLoadBalancersGlueCannotTellApart(t *testing.T) {
	for _, c := range []struct{ name, from, to, want string }{
		{"an address two share", `address: "198.51.100.2:53"`, `address: "198.51.100.1:5302"`, "load_balancers[1].address: 198.51.100.1 is load_balancers[0]'s address too"},
		// On nginx, which resolves names; a dnsdist fleet at one is refused
		// when its config loads.
		{"a host name", `address: "198.51.100.2:53", fronts: ns2, driver: dnsdist}`, `address: "lb2.example.net:53", fronts: ns2, driver: nginx}`, "load_balancers[1].address: lb2.example.net:53 is not an IP address and port"},
	} {
		t.Run(c.name, func(t *testing.T) {
			env, w := newLBReplaceEnvFleet(t, false, strings.Replace(lbFleet, c.from, c.to, 1))
			env.ExecuteWorkflow(LoadBalancerReplaceWorkflow, lbInput())
			if err := env.GetWorkflowError(); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want one saying %q", err, c.want)
			}
			if w.index("CheckParent") >= 0 || w.index("Create lb1") >= 0 || w.index("Create lb2") >= 0 {
				t.Errorf("it went on before refusing: %v", w.calls)
			}
		})
	}
}

// New load balancers the cloud cannot make (the region of the nameserver
// each is made as, say) are refused before any is created: before, lb1-next
// was created before lb2-next's create failed.
func TestLBReplaceRefusesWhatTheCloudDoesNotOffer(t *testing.T) {
	env, w := newLBReplaceEnv(t, false)
	w.unoffered = `load_balancers[1] (lb2-next is made as nameserver ns2, the first it fronts): nameservers[1].region: Linode has no region "mars-1"`
	env.ExecuteWorkflow(LoadBalancerReplaceWorkflow, lbInput())
	if err := env.GetWorkflowError(); err == nil || !strings.Contains(err.Error(), w.unoffered) {
		t.Errorf("error %v, want the cloud's refusal", err)
	}
	if w.index("CheckOffers") < 0 || w.index("Create lb1") >= 0 || w.index("Create lb2") >= 0 || w.index("SetGlue old") >= 0 {
		t.Errorf("calls %v: want the offers checked and nothing created", w.calls)
	}
	if st := queryLBStatus(t, env); st.Phase != PhaseFailed {
		t.Errorf("phase %s, want failed", st.Phase)
	}
	// The failure carries the status, for readers without a worker.
	if st := failureStatus[LBReplaceStatus](t, env.GetWorkflowError()); st.Phase != PhaseFailed || st.Fleet != "test" || !strings.Contains(st.Failure, "mars-1") {
		t.Errorf("the failure's status: phase %s, fleet %q, failure %q; want failed, test, the refusal", st.Phase, st.Fleet, st.Failure)
	}
}

// An old load balancer the replacement will not delete (no Linode has
// its label: it is not one of the account's) is named in the status's
// warnings from the start, so that the operator takes it down once
// drained: before, only DeleteLoadBalancer's note said so, at the end.
func TestLBReplaceWarnsOfOldLoadBalancersItLeaves(t *testing.T) {
	env, w := newLBReplaceEnv(t, false)
	w.offersNote = "lb2: no Linode this token can see is labelled lb2, so the replacement will not delete the old load balancer at 198.51.100.2:53"
	var early LBReplaceStatus
	env.RegisterDelayedCallback(func() { early = queryLBStatus(t, env) }, time.Minute)
	st := runLBReplace(t, env, lbInput(), PhaseSucceeded)
	for _, s := range []LBReplaceStatus{early, st} {
		if !slices.Contains(s.Warnings, w.offersNote) || !hasEvent(s, w.offersNote) {
			t.Errorf("phase %s: warnings %q, events %+v; want the check's note in both", s.Phase, s.Warnings, s.Events)
		}
	}
}

func TestLBReplaceManualGlueOrderAndDrain(t *testing.T) {
	env, w := newLBReplaceEnv(t, true)
	signalAt(env, 10*time.Minute, SignalGlueUpdated, SignalInput{By: "alice"})
	signalAt(env, 20*time.Minute, SignalGlueUpdated, SignalInput{By: "alice"}, func() { w.setParent(newGlue) })
	st := runLBReplace(t, env, lbInput(), PhaseSucceeded)
	if !hasEvent(st, "glue-updated refused: the parent still serves") {
		t.Errorf("the premature glue-updated was not refused; events: %+v", st.Events)
	}
	order := []string{"LoadFleet", "CheckParent", "Create lb1", "Verify lb1-next", "SetGlue new", "Queries lb1", "Delete lb1", "Rename lb1-next lb1"}
	for i := 1; i < len(order); i++ {
		if a, b := w.index(order[i-1]), w.index(order[i]); a < 0 || b < 0 || a > b {
			t.Errorf("%s (at %d) must come before %s (at %d); calls: %v", order[i-1], a, order[i], b, w.calls)
		}
	}
	if w.index("SetGlue old") >= 0 || w.index("Delete lb1-next") >= 0 {
		t.Errorf("a successful replacement undid something: %v", w.calls)
	}
	deleted := w.at["Delete lb1"]
	if min := w.servedAt.Add(fakeZoneNSTTL); deleted.Before(min) {
		t.Errorf("old load balancer deleted at %s, before the zone NS TTL ran out at %s", deleted, min)
	}
	if min := w.servedAt.Add(w.busyFor + time.Minute); deleted.Before(min) {
		t.Errorf("old load balancer deleted at %s, before its counters were quiet for a minute (%s)", deleted, min)
	}
	if max := w.servedAt.Add(w.busyFor + 2*time.Minute); deleted.After(max) {
		t.Errorf("old load balancer deleted at %s, long after it was drained (%s)", deleted, max)
	}
	if st.Drain == nil || st.Drain.Ended != "drained" || st.Drain.TTL.D() != fakeZoneNSTTL {
		t.Errorf("drain status %+v, want ended drained with TTL %s", st.Drain, fakeZoneNSTTL)
	}
	if st.Glue.ServedSince.IsZero() || st.Glue.ServedSince.Before(w.servedAt) {
		t.Errorf("glue served since %s, but the parent began serving it at %s", st.Glue.ServedSince, w.servedAt)
	}
	if len(st.New) != 2 || st.New[0].Name != "lb1" || st.New[0].Address != "203.0.113.1:53" {
		t.Errorf("new load balancers %+v", st.New)
	}
}

// The status shows each old load balancer's rate and the time left while
// the drain waits.
func TestLBReplaceDrainStatusShowsRateAndTimeLeft(t *testing.T) {
	env, _ := newLBReplaceEnv(t, false)
	var seen *DrainStatus
	env.RegisterDelayedCallback(func() {
		v, err := env.QueryWorkflow(QueryStatus)
		if err != nil {
			t.Error(err)
			return
		}
		var st LBReplaceStatus
		if err := v.Get(&st); err != nil {
			t.Error(err)
			return
		}
		seen = st.Drain
	}, 3*time.Minute)
	env.ExecuteWorkflow(LoadBalancerReplaceWorkflow, lbInput())
	lbResult(t, env)
	if seen == nil {
		t.Fatal("no drain status 3 minutes in")
	}
	if q := seen.QPS["lb1"]; q < 90 || q > 110 {
		t.Errorf("lb1 at %.1f queries/s in the status, want about 100", q)
	}
	if seen.TimeLeft.D() <= 0 || seen.TimeLeft.D() > fakeZoneNSTTL {
		t.Errorf("time left %s", seen.TimeLeft.D())
	}
}

// Abort during the drain puts the old glue back, waits its TTL, and only
// then deletes the new load balancers; the old ones stay.
func TestLBReplaceAbortRestoresGlueAndDeletesNew(t *testing.T) {
	env, w := newLBReplaceEnv(t, false)
	w.busyFor = -1
	signalAt(env, 2*time.Minute, SignalAbort, SignalInput{Reason: "kernel regression", By: "bob"})
	st := runLBReplace(t, env, lbInput(), PhaseAborted)
	if !registrar.Equal(w.parent, oldGlue) {
		t.Errorf("the parent serves %v after the abort, want the old glue", w.parent)
	}
	restored, deleted := w.at["SetGlue old"], w.at["Delete lb1-next"]
	if restored.IsZero() || deleted.IsZero() {
		t.Fatalf("abort did not restore the glue and delete the new load balancers: %v", w.calls)
	}
	if deleted.Before(restored.Add(fakeZoneNSTTL)) {
		t.Errorf("new load balancers deleted at %s, before the TTL after the restore (%s)", deleted, restored.Add(fakeZoneNSTTL))
	}
	if w.index("Delete lb1") >= 0 || w.index("Delete lb2") >= 0 || w.index("Rename lb1-next lb1") >= 0 {
		t.Errorf("abort touched the old load balancers: %v", w.calls)
	}
	if !strings.Contains(st.Failure, "kernel regression") {
		t.Errorf("failure %q does not record the reason", st.Failure)
	}
}

// An undo whose delete of a new load balancer fails ends cleanup-failed,
// saying which: the run must not end aborted with lb1-next still running
// and billed.
func TestLBReplaceUndoThatCannotDeleteANewLoadBalancerFails(t *testing.T) {
	env, w := newLBReplaceEnv(t, false)
	w.deleteFails = "lb1-next"
	signalAt(env, 2*time.Minute, SignalAbort, SignalInput{Reason: "kernel regression", By: "bob"})
	env.ExecuteWorkflow(LoadBalancerReplaceWorkflow, lbInput())
	st := failureStatus[LBReplaceStatus](t, env.GetWorkflowError())
	if st.Phase != PhaseCleanupFailed || !strings.Contains(st.Failure, "Linode refused the delete") {
		t.Errorf("phase %s, failure %q; want cleanup-failed, for the delete of lb1-next", st.Phase, st.Failure)
	}
}

// A create cut short by an abort may still be committed by Linode after
// the undo's first sweep of the new load balancers; the undo sweeps again
// once such a create has settled, as a rollout's does, so that no
// <lb>-next is left running. Before, the replacement ended aborted and
// lb1-next and lb2-next appeared after it.
func TestLBReplaceAbortDuringCreateLeavesNoNewLoadBalancer(t *testing.T) {
	env, w := newLBReplaceEnv(t, false)
	w.createAfter, w.commitLate = time.Hour, time.Minute+time.Second
	signalAt(env, time.Minute, SignalAbort, SignalInput{Reason: "wrong kernel", By: "alice"})
	runLBReplace(t, env, lbInput(), PhaseAborted)
	if len(w.next) != 0 {
		t.Errorf("left at Linode after the abort: %v (calls %v)", w.next, w.calls)
	}
}

// The undo deletes a new load balancer whose create reported back by its
// ID, which Linode's lists may not show yet, and sweeps no second time:
// every create is known.
func TestLBReplaceUndoDeletesKnownNewLoadBalancersByID(t *testing.T) {
	env, w := newLBReplaceEnv(t, false)
	w.busyFor = -1
	signalAt(env, 2*time.Minute, SignalAbort, SignalInput{Reason: "kernel regression", By: "bob"})
	runLBReplace(t, env, lbInput(), PhaseAborted)
	if slices.Sort(w.deletedIDs); !slices.Equal(w.deletedIDs, []int{11, 12}) {
		t.Errorf("deleted IDs %v, want lb1-next's and lb2-next's, 11 and 12", w.deletedIDs)
	}
	if n := w.count("Delete lb1-next"); n != 1 {
		t.Errorf("lb1-next deleted %d times, want once: its create reported back", n)
	}
	if len(w.next) != 0 {
		t.Errorf("left at Linode after the abort: %v", w.next)
	}
}

// A parent that delegates to a name server outside the domain too gives
// its address from its own zone (sibling glue), which no registrar sets:
// the glue the replacement asks for keeps that name server without it,
// and the parent's referral with it counts as serving the new glue.
// Before, SetGlue was refused for glue outside the domain, and the new
// load balancers deleted.
func TestLBReplaceWithSiblingGlue(t *testing.T) {
	env, w := newLBReplaceEnv(t, false)
	w.sibling = true
	st := runLBReplace(t, env, lbInput(), PhaseSucceeded)
	if !registrar.Equal(w.parent, newGlue) || w.index("Rename lb1-next lb1") < 0 {
		t.Errorf("the parent serves %v; calls %v", w.parent, w.calls)
	}
	for _, ns := range st.Glue.New {
		if !registrar.InDomain(ns.Name, "example.com") && len(ns.Addrs) > 0 {
			t.Errorf("the new glue gives %s an address: %v", ns.Name, st.Glue.New)
		}
	}
}

// A load balancer that the parent reaches only as the address of a name
// server outside the domain (sibling glue) is glue no registrar holds:
// the replacement could not move it, and would delete it while the
// parent still gives its address. It is refused before anything is
// created.
func TestLBReplaceRefusesALoadBalancerOnlySiblingGlueNames(t *testing.T) {
	env, w := newLBReplaceEnv(t, false)
	w.sibling, w.siblingAddr = true, netip.MustParseAddr("198.51.100.2")
	w.parent = oldGlue[:1]
	env.ExecuteWorkflow(LoadBalancerReplaceWorkflow, lbInput())
	st := failureStatus[LBReplaceStatus](t, env.GetWorkflowError())
	if st.Phase != PhaseFailed || !strings.Contains(st.Failure, "198.51.100.2") || !strings.Contains(st.Failure, "ns.provider.net") {
		t.Errorf("phase %s, failure %q; want a refusal naming the address and the name server", st.Phase, st.Failure)
	}
	if w.count("Create") > 0 {
		t.Errorf("load balancers were created: %v", w.calls)
	}
}

// A replacement that fails once the old load balancers are being deleted
// says in its status that there is no way back, as a rollout does, so that
// the API refuses an abort and a follower exits as for a person to act.
func TestLBReplaceFailedPastThePointOfNoReturn(t *testing.T) {
	env, w := newLBReplaceEnv(t, false)
	w.deleteFails = "lb2"
	env.ExecuteWorkflow(LoadBalancerReplaceWorkflow, lbInput())
	st := failureStatus[LBReplaceStatus](t, env.GetWorkflowError())
	if st.Phase != PhaseFailed || !strings.Contains(st.Failure, "Linode refused the delete") {
		t.Fatalf("phase %s, failure %q: want failed, for the delete", st.Phase, st.Failure)
	}
	if !strings.Contains(st.NoWayBack, "the old load balancers are being deleted") {
		t.Errorf("no_way_back = %q, want why there is no way back", st.NoWayBack)
	}
	if w.index("SetGlue old") >= 0 {
		t.Errorf("the glue went back to load balancers being deleted: %v", w.calls)
	}
	// The glue names the new load balancers and lb1 is gone: the fleet
	// config must change as after a success, and what is left be
	// finished by hand. Before, the status said nothing of either.
	for _, want := range []string{
		"update the fleet config: load_balancers lb1 address is now 203.0.113.1:53 (was 198.51.100.1:53)",
		"update the fleet config: load_balancers lb2 address is now 203.0.113.2:53 (was 198.51.100.2:53)",
		"the parent serves the new glue and the old load balancers were being deleted: delete those still running (lb1 198.51.100.1:53, lb2 198.51.100.2:53) and give each new one still labelled <lb>-next (lb1-next, lb2-next) its load balancer's label",
	} {
		if !slices.ContainsFunc(st.Warnings, func(w string) bool { return strings.HasPrefix(w, want) }) {
			t.Errorf("warnings %q lack %q", st.Warnings, want)
		}
	}
}

// An abort that comes while a failed replacement is being undone does not
// turn the failure into an abort: the run still fails, so that failed-run
// alerts and --status failed find it. Before, it ended aborted, with no
// error.
func TestLBReplaceAbortDuringTheUndoOfAFailureStillFails(t *testing.T) {
	env, w := newLBReplaceEnv(t, false)
	w.newGlueLost = true
	signalAt(env, 2*time.Minute, SignalAbort, "stop it")
	env.ExecuteWorkflow(LoadBalancerReplaceWorkflow, lbInput())
	if deleted := w.at["Delete lb1-next"]; deleted.Before(w.at["LoadFleet"].Add(2 * time.Minute)) {
		t.Fatalf("the undo ended at %s, before the abort came: %v", deleted, w.calls)
	}
	var failure *temporal.ApplicationError
	if !errors.As(env.GetWorkflowError(), &failure) {
		t.Fatalf("error %v, want the replacement to fail", env.GetWorkflowError())
	}
	var st LBReplaceStatus
	if err := failure.Details(&st); err != nil {
		t.Fatal(err)
	}
	if st.Phase != PhaseFailed || !strings.Contains(st.Failure, "the registrar's answer was lost") {
		t.Errorf("phase %s, failure %q: want failed, for the registrar's error", st.Phase, st.Failure)
	}
	if !hasEvent(st, "abort ignored: the replacement is already being undone") {
		t.Errorf("no event says the abort was ignored: %+v", st.Events)
	}
}

// One new load balancer's create (or verify) fails at once while the
// other's takes an hour; an abort sent meanwhile cuts the wait short, but
// the replacement had already failed: it ends failed, for that step, with
// the failed webhook, and the abort is in the events.
func TestLBReplaceFailureBeforeAnAbortIsTheOutcome(t *testing.T) {
	for _, c := range []struct{ fails, slow, failure string }{
		{"Create lb1", "Create lb2", "CreateLoadBalancer lb1-next: lb1 create exploded"},
		{"Create lb2", "Create lb1", "CreateLoadBalancer lb2-next: lb2 create exploded"},
		{"Verify lb1-next", "Verify lb2-next", "VerifyLoadBalancer lb1-next: lb1-next does not answer"},
		{"Verify lb2-next", "Verify lb1-next", "VerifyLoadBalancer lb2-next: lb2-next does not answer"},
	} {
		t.Run(c.fails, func(t *testing.T) {
			env, w := newLBReplaceEnvWith(t, false, "rollout: {bake: 0s}\nnotifications: {webhooks: [{url: 'https://h.example.net/x'}]}")
			w.fails, w.slow = c.fails, c.slow
			signalAt(env, 30*time.Minute, SignalAbort, SignalInput{Reason: "stuck", By: "op"})
			env.ExecuteWorkflow(LoadBalancerReplaceWorkflow, lbInput())
			if env.GetWorkflowError() == nil {
				st := lbResult(t, env)
				t.Fatalf("ended %s, %q, with no error, notified %v; want failed, %q", st.Phase, st.Failure, w.notified(), c.failure)
			}
			st := failureStatus[LBReplaceStatus](t, env.GetWorkflowError())
			if st.Phase != PhaseFailed || st.Failure != c.failure {
				t.Errorf("phase %s, failure %q; want failed, %q", st.Phase, st.Failure, c.failure)
			}
			if n := w.notified(); !slices.Contains(n, "failed failed") || slices.ContainsFunc(n, func(e string) bool { return strings.HasPrefix(e, "aborted") }) {
				t.Errorf("notified %v", n)
			}
			if !hasEvent(st, "abort requested by op: stuck") {
				t.Errorf("events %+v lack the abort", st.Events)
			}
			if w.index("Delete lb1-next") < 0 || w.index("Delete lb2-next") < 0 {
				t.Errorf("the new load balancers were not deleted: %v", w.calls)
			}
		})
	}
}

// Runs from before versionLBFailedBeforeStop keep their outcome, and the
// webhook they send: aborted.
func TestLBReplaceRunFromBeforeFailedBeforeStopStaysAborted(t *testing.T) {
	env, w := newLBReplaceEnv(t, false)
	env.OnGetVersion(versionLBFailedBeforeStop, workflow.DefaultVersion, 1).Return(workflow.DefaultVersion)
	w.fails, w.slow = "Create lb1", "Create lb2"
	signalAt(env, 30*time.Minute, SignalAbort, SignalInput{Reason: "stuck", By: "op"})
	if st := runLBReplace(t, env, lbInput(), PhaseAborted); st.Failure != "abort by op: stuck" {
		t.Errorf("failure %q", st.Failure)
	}
}

// A parent check that failed and was asked again while the new glue was
// awaited is not the outcome of an abort that comes later: the
// replacement ends aborted.
func TestLBReplaceAbortAfterAFailedParentCheckIsAborted(t *testing.T) {
	env, w := newLBReplaceEnv(t, true)
	w.parentFails, w.parentFailsAt = 1, w.env.Now().Add(5*time.Minute)
	signalAt(env, 10*time.Minute, SignalGlueUpdated, SignalInput{By: "alice"})
	signalAt(env, 12*time.Minute, SignalAbort, SignalInput{Reason: "wrong plan", By: "bob"})
	signalAt(env, 20*time.Minute, SignalGlueUpdated, SignalInput{By: "bob"})
	st := runLBReplace(t, env, lbInput(), PhaseAborted)
	if !hasEvent(st, "the parent could not be checked") || !strings.Contains(st.Failure, "wrong plan") {
		t.Errorf("failure %q events %+v; want aborted for wrong plan, after a failed parent check", st.Failure, st.Events)
	}
}

// Nor is a reading of the counters that failed during the drain, which
// goes on without it.
func TestLBReplaceAbortAfterAFailedReadingIsAborted(t *testing.T) {
	env, w := newLBReplaceEnv(t, false)
	w.busyFor, w.readingsFail = -1, 1
	signalAt(env, 2*time.Minute, SignalAbort, SignalInput{Reason: "kernel regression", By: "bob"})
	st := runLBReplace(t, env, lbInput(), PhaseAborted)
	if w.index("Queries failed") < 0 || !strings.Contains(st.Failure, "kernel regression") {
		t.Errorf("failure %q calls %v; want aborted for kernel regression, after a failed reading", st.Failure, w.calls)
	}
}

// The glue is never updated: a premature glue-updated is refused, abort
// then finds the parent still on the old glue, changes nothing there and
// deletes the new load balancers.
func TestLBReplaceGlueNeverUpdatedAbortRestores(t *testing.T) {
	env, w := newLBReplaceEnv(t, true)
	signalAt(env, 5*time.Minute, SignalGlueUpdated, "done, I think")
	signalAt(env, 30*time.Minute, SignalAbort, "registrar is down")
	st := runLBReplace(t, env, lbInput(), PhaseAborted)
	if !hasEvent(st, "glue-updated refused") {
		t.Errorf("the premature glue-updated was not refused; events: %+v", st.Events)
	}
	if w.index("Queries lb1") >= 0 {
		t.Errorf("drained although the parent never served the new glue: %v", w.calls)
	}
	if w.index("SetGlue old") >= 0 {
		t.Errorf("asked the operator to restore glue that the parent never stopped serving: %v", w.calls)
	}
	if w.index("Delete lb1-next") < 0 || w.index("Delete lb2-next") < 0 {
		t.Errorf("abort did not delete the new load balancers: %v", w.calls)
	}
	if st.Glue.Instructions != "" {
		t.Errorf("stale instructions left in the status: %q", st.Glue.Instructions)
	}
}

// force-drain without a reason is refused; with one, it ends the drain of
// counters that never fall quiet and is recorded.
func TestLBReplaceForceDrainRecorded(t *testing.T) {
	env, w := newLBReplaceEnv(t, false)
	w.busyFor = -1
	signalAt(env, 8*time.Minute, SignalForceDrain, SignalInput{})
	signalAt(env, 8*time.Minute+30*time.Second, SignalForceDrain, SignalInput{Reason: " \t"})
	signalAt(env, 9*time.Minute, SignalForceDrain, SignalInput{Reason: "a resolver ignores TTLs", By: "carol"})
	st := runLBReplace(t, env, lbInput(), PhaseSucceeded)
	if n := strings.Count(fmt.Sprint(st.Events), "force-drain refused: give a reason"); n != 2 {
		t.Errorf("%d force-drains refused, want 2 (no reason, blank reason): %+v", n, st.Events)
	}
	if !hasEvent(st, "force-drain refused: give a reason") {
		t.Errorf("force-drain without a reason was not refused: %+v", st.Events)
	}
	if st.Drain == nil || st.Drain.Ended != "forced" || st.Drain.Forced != "a resolver ignores TTLs" {
		t.Errorf("drain status %+v, want forced with the reason", st.Drain)
	}
	if d := w.at["Delete lb1"]; d.Before(w.at["LoadFleet"].Add(9 * time.Minute)) {
		t.Errorf("old load balancer deleted at %s, before force-drain", d)
	}
}

// Counters that never fall quiet end the drain at max_wait, with a warning;
// never before the TTL.
func TestLBReplaceDrainMaxWait(t *testing.T) {
	env, w := newLBReplaceEnv(t, false)
	w.busyFor = -1
	st := drainToMaxWait(t, env, w, 20*time.Minute)
	if len(st.Warnings) == 0 || !strings.Contains(st.Warnings[0], "max_wait") {
		t.Errorf("warnings %v: want one about max_wait", st.Warnings)
	}
}

// A long drain, whose readings are spaced out, still ends at max_wait,
// not at the next reading an hour later.
func TestLBReplaceLongDrainEndsAtMaxWait(t *testing.T) {
	env, w := newLBReplaceEnv(t, false)
	w.busyFor = -1
	st := drainToMaxWait(t, env, w, 24*time.Hour)
	if d, by := w.at["Delete lb1"], st.Drain.GiveUpAt.Add(time.Minute); d.After(by) {
		t.Errorf("lb1 deleted %s after max_wait ended, want within a minute", d.Sub(st.Drain.GiveUpAt))
	}
}

// A long drain, whose readings are spaced out, still ends once the quiet
// period under way has passed, not at the next reading up to an hour later.
func TestLBReplaceLongDrainEndsWithTheQuietPeriod(t *testing.T) {
	env, w := newLBReplaceEnv(t, false)
	w.zoneNSTTL, w.busyFor = 48*time.Hour, 49*time.Hour
	in := lbInput()
	in.Drain.MaxWait = config.Duration(72 * time.Hour)
	st := runLBReplace(t, env, in, PhaseSucceeded)
	quiet := in.Drain.Quiet.D()
	if st.Drain.QuietSince.IsZero() || w.at["Delete lb1"].After(st.Drain.QuietSince.Add(quiet+time.Minute)) {
		t.Errorf("lb1 deleted %s after the quiet period began, want within a minute of its end (%s); drain %+v", w.at["Delete lb1"].Sub(st.Drain.QuietSince), quiet, st.Drain)
	}
}

// A TTL longer than any resolver keeps a delegation (BIND's max-cache-ttl,
// 7 days) is waited for 7 days, and the drain's event says so: an
// operator reading "TTL 168h" beside a zone NS TTL of 720h would think
// the replacement misread it.
func TestLBReplaceDrainCapsATTLNoResolverKeeps(t *testing.T) {
	env, w := newLBReplaceEnv(t, false)
	w.zoneNSTTL, w.busyFor = 30*24*time.Hour, 0
	in := lbInput()
	in.Drain.MaxWait = config.Duration(MaxReplacementWait)
	st := runLBReplace(t, env, in, PhaseSucceeded)
	if st.Drain.TTL.D() != maxDelegationTTL || st.Drain.Ended != "drained" {
		t.Fatalf("drain %+v: want a TTL of %s, drained", st.Drain, maxDelegationTTL)
	}
	if d := w.at["Delete lb1"]; d.After(w.servedAt.Add(maxDelegationTTL + in.Drain.Quiet.D() + time.Hour)) {
		t.Errorf("lb1 deleted %s after the glue was served, want within an hour of the 7-day cap and the quiet period", d.Sub(w.servedAt))
	}
	if !slices.ContainsFunc(st.Events, func(e Event) bool {
		return strings.Contains(e.Message, "TTL 168h0m0s") && strings.Contains(e.Message, "capped at 7 days")
	}) {
		t.Errorf("no drain event says the TTL was capped: %+v", st.Events)
	}
}

// Resolvers cached the zone's NS records before the glue moved, for the
// TTL they had then: a revision that lowered it since does not shorten
// the drain.
func TestLBReplaceDrainWaitsTheTTLsResolversCached(t *testing.T) {
	env, w := newLBReplaceEnv(t, false)
	w.zoneNSTTL, w.zoneNSTTLServed, w.busyFor = 2*time.Hour, time.Minute, 0
	st := runLBReplace(t, env, lbInput(), PhaseSucceeded)
	if st.Drain.TTL.D() != 2*time.Hour {
		t.Errorf("drain TTL %s, want 2h0m0s, the zone NS TTL resolvers cached before the glue moved", st.Drain.TTL.D())
	}
	if d := w.at["Delete lb1"]; d.Before(w.servedAt.Add(2 * time.Hour)) {
		t.Errorf("lb1 deleted %s after the glue was served, before the 2h zone NS TTL resolvers may hold", d.Sub(w.servedAt))
	}
}

// drainToMaxWait runs a replacement with a drain.max_wait of maxWait,
// checks that its drain ran to max_wait, and so deleted lb1 no sooner,
// and returns its status.
func drainToMaxWait(t *testing.T, env *testsuite.TestWorkflowEnvironment, w *world, maxWait time.Duration) LBReplaceStatus {
	t.Helper()
	in := lbInput()
	in.Drain.MaxWait = config.Duration(maxWait)
	env.ExecuteWorkflow(LoadBalancerReplaceWorkflow, in)
	st := lbResult(t, env)
	if st.Drain == nil || st.Drain.Ended != "max-wait" {
		t.Fatalf("drain %+v: want ended at max-wait", st.Drain)
	}
	if d := w.at["Delete lb1"]; d.Before(w.servedAt.Add(maxWait)) {
		t.Errorf("deleted at %s, before max_wait", d)
	}
	return st
}

// A load balancer whose counters cannot be read is not known quiet: the
// drain runs to max_wait, not the TTLs and a quiet period that nothing
// measured.
func TestLBReplaceUnreadableCountersDrainToMaxWait(t *testing.T) {
	env, w := newLBReplaceEnv(t, false)
	w.queriesFail = true
	drainToMaxWait(t, env, w, 2*time.Hour)
}

// drainWithLB2Unknown runs a replacement whose lb1 falls quiet at once
// and whose lb2 cannot be told quiet (fault, a field of w, names it), with
// a max_wait of 2 hours, and checks that it succeeded, its drain run to
// max_wait (drainToMaxWait).
func drainWithLB2Unknown(t *testing.T, env *testsuite.TestWorkflowEnvironment, w *world, fault *string) LBReplaceStatus {
	t.Helper()
	w.busyFor = 0
	*fault = "lb2"
	st := drainToMaxWait(t, env, w, 2*time.Hour)
	if st.Phase != PhaseSucceeded {
		t.Fatalf("phase %s, want %s; failure %q", st.Phase, PhaseSucceeded, st.Failure)
	}
	return st
}

// The counters are read in one step a round; one load balancer whose
// counter cannot be read, the other quiet, is still not known quiet: the
// drain runs to max_wait, and the round's step says which was not read.
func TestLBReplaceOneUnreadableCounterDrainsToMaxWait(t *testing.T) {
	env, w := newLBReplaceEnv(t, false)
	st := drainWithLB2Unknown(t, env, w, &w.unreadable)
	i := slices.IndexFunc(st.Steps, func(s *Step) bool { return s.Name == "LoadBalancersQueries" })
	if i < 0 || st.Steps[i].Target != "lb1,lb2" || !strings.Contains(st.Steps[i].Note, "not read: load balancer lb2: the stats endpoint does not answer") {
		t.Errorf("first reading's step %+v, want one step for lb1,lb2 whose note says lb2 was not read", st.Steps[max(i, 0)])
	}
}

// A replacement started before the drain read every counter in one step
// reads each in a step of its own, and one that fails is not known
// quiet either.
func TestLBReplaceOldDrainOneUnreadableCounterDrainsToMaxWait(t *testing.T) {
	env, w := newLBReplaceEnv(t, false)
	env.OnGetVersion(versionDrainReadsInOneStep, workflow.DefaultVersion, 1).Return(workflow.DefaultVersion)
	st := drainWithLB2Unknown(t, env, w, &w.unreadable)
	if slices.ContainsFunc(st.Steps, func(s *Step) bool { return s.Name == "LoadBalancersQueries" }) ||
		!slices.ContainsFunc(st.Steps, func(s *Step) bool { return s.Name == "LoadBalancerQueries" && s.Target == "lb2" }) {
		t.Errorf("steps %v; want a reading of each load balancer's counter, one at a time", st.Steps)
	}
}

// A reading is matched to its load balancer by name: one the result
// leaves out, its order aside, is not read, and not known quiet.
func TestLBReplaceCounterLeftOutOfTheReadingDrainsToMaxWait(t *testing.T) {
	env, w := newLBReplaceEnv(t, false)
	st := drainWithLB2Unknown(t, env, w, &w.countersLack)
	i := slices.IndexFunc(st.Steps, func(s *Step) bool { return s.Name == "LoadBalancersQueries" })
	if i < 0 || !strings.HasPrefix(st.Steps[i].Note, "not read: ") {
		t.Errorf("first reading's step %+v, want a note that a load balancer was not read", st.Steps[max(i, 0)])
	}
}

// A force-drain sent before the drain is ignored, not kept for it: it
// would end a drain that had not begun, whatever it then measured.
func TestLBReplaceForceDrainBeforeTheDrainIsIgnored(t *testing.T) {
	env, w := newLBReplaceEnv(t, false)
	w.busyFor = 0
	signalAt(env, time.Second, SignalForceDrain, SignalInput{Reason: "hurry", By: "carol"})
	st := runLBReplace(t, env, lbInput(), PhaseSucceeded)
	if !hasEvent(st, "force-drain ignored: the replacement is") {
		t.Errorf("events %+v; want the early force-drain ignored", st.Events)
	}
	if st.Drain == nil || st.Drain.Ended != "drained" {
		t.Errorf("drain %+v; want it drained, not forced", st.Drain)
	}
}

// Quiet counters do not end the drain early: the TTLs since the parent
// began serving the new glue bound it from below.
func TestLBReplaceDrainWaitsTTLWhenQuiet(t *testing.T) {
	env, w := newLBReplaceEnv(t, false)
	w.busyFor = 0
	env.ExecuteWorkflow(LoadBalancerReplaceWorkflow, lbInput())
	st := lbResult(t, env)

	if st.Drain == nil || st.Drain.Ended != "drained" {
		t.Fatalf("drain %+v", st.Drain)
	}
	deleted := w.at["Delete lb1"]
	if min := w.servedAt.Add(fakeZoneNSTTL); deleted.Before(min) {
		t.Errorf("old load balancer deleted at %s, before the zone NS TTL ran out at %s", deleted, min)
	}
	if max := w.servedAt.Add(fakeZoneNSTTL + 30*time.Second); deleted.After(max) {
		t.Errorf("old load balancer deleted at %s, long after the TTL (%s)", deleted, max)
	}
	// Every counter was read: no reading says one was not.
	for _, s := range st.Steps {
		if s.Name == "LoadBalancersQueries" && s.Note != "" {
			t.Errorf("reading %+v has a note; want none, every counter read", s)
		}
	}
}

// Queries that come back after a lull start the quiet period over: the
// old load balancers go a full quiet period after the last of them, not
// after the first lull (a resolver whose cached referral ran out later
// than the others', or one that ignores TTLs).
func TestLBReplaceQuietPeriodStartsOverAfterABurst(t *testing.T) {
	env, w := newLBReplaceEnv(t, false)
	w.busyFor, w.burst = 400*time.Second, [2]time.Duration{430 * time.Second, 500 * time.Second}
	st := runLBReplace(t, env, lbInput(), PhaseSucceeded)
	quiet := lbInput().Drain.Quiet.D()
	if d, min := w.at["Delete lb1"], w.servedAt.Add(w.burst[1]+quiet); d.Before(min) {
		t.Errorf("lb1 deleted %s after the glue moved, before a quiet period after the burst that ended at %s (%s); drain %+v",
			d.Sub(w.servedAt), w.burst[1], min.Sub(w.servedAt), st.Drain)
	}
}

// The quiet period is measured: it starts at the first rate, which takes
// two readings of a counter, not at the first reading, which shows none.
// With a quiet period longer than the TTLs it alone decides when the old
// load balancers go.
func TestLBReplaceQuietPeriodStartsAtTheFirstRate(t *testing.T) {
	env, w := newLBReplaceEnv(t, false)
	w.busyFor = 0
	in := lbInput()
	in.Drain.Quiet = config.Duration(10 * time.Minute)
	runLBReplace(t, env, in, PhaseSucceeded)
	first := w.at["Queries lb1"]
	if d, min := w.at["Delete lb1"], first.Add(in.Drain.Poll.D()+in.Drain.Quiet.D()); d.Before(min) {
		t.Errorf("lb1 deleted %s after its first reading, before the quiet period (%s) from the first rate, a poll (%s) later",
			d.Sub(first), in.Drain.Quiet.D(), in.Drain.Poll.D())
	}
}

// Load balancers without counters drain for the TTL and then the quiet
// period, since nothing shows that the last cached referral has run out:
// in the lab, resolvers still asked the old one a second after the TTL.
// The status says they are uncounted.
func TestLBReplaceUncountedDrainIsTheTTLThenQuiet(t *testing.T) {
	env, w := newLBReplaceEnv(t, false)
	w.busyFor = -1
	w.uncounted = true
	env.ExecuteWorkflow(LoadBalancerReplaceWorkflow, lbInput())
	st := lbResult(t, env)

	if st.Drain == nil || st.Drain.Ended != "drained" || len(st.Drain.Uncounted) != 2 {
		t.Fatalf("drain %+v: want drained, both load balancers uncounted", st.Drain)
	}
	deleted := w.at["Delete lb1"]
	quiet := lbInput().Drain.Quiet.D()
	if deleted.Before(w.servedAt.Add(fakeZoneNSTTL+quiet)) || deleted.After(w.servedAt.Add(fakeZoneNSTTL+quiet+30*time.Second)) {
		t.Errorf("deleted %s after the glue moved, want just after the TTL %s and the quiet period %s", deleted.Sub(w.servedAt), fakeZoneNSTTL, quiet)
	}
}

// Long waits poll less as they go on, so that a replacement fits in its
// workflow history, which Temporal caps at 51,200 events: a parent that
// takes a day to publish the glue and a .com-like 2-day TTL, with counters
// that never fall quiet, once took 17,280 parent checks and 34,560
// counter readings a load balancer, about 900,000 events. The end of each
// wait is still seen within a poll of the wait's length over 20.
func TestLBReplaceLongWaitsPollLess(t *testing.T) {
	env, w := newLBReplaceEnv(t, false)
	w.busyFor = -1
	w.zoneNSTTL = 48 * time.Hour
	w.publishAfter = 24 * time.Hour
	st := drainToMaxWait(t, env, w, 24*time.Hour)
	if served := w.servedAt.Sub(w.at["SetGlue new"]); served < 24*time.Hour || served > 25*time.Hour+12*time.Minute {
		t.Errorf("the parent's new glue was seen %s after it was set, want within the poll after 24h", served)
	}
	if d := w.at["Delete lb1"].Sub(w.servedAt); d < 48*time.Hour || d > 48*time.Hour+time.Hour {
		t.Errorf("deleted %s after the glue was served, want just after the 48h TTL", d)
	}
	checks, readings := w.count("CheckParent"), w.count("Queries lb1")
	if checks > 500 || readings > 800 {
		t.Errorf("%d parent checks and %d readings of lb1's counter, want at most 500 and 800", checks, readings)
	}
	t.Logf("%d parent checks, %d readings of lb1, %d steps in the status", checks, readings, len(st.Steps))
}

// runLongestWaits runs a replacement at the longest waits the API takes
// (glue_wait and drain.max_wait of MaxReplacementWait), against a parent
// that publishes the glue a day before glue_wait ends, a 30-day TTL and
// counters that never fall quiet, and returns its status.
func runLongestWaits(t *testing.T, env *testsuite.TestWorkflowEnvironment, w *world) LBReplaceStatus {
	t.Helper()
	w.busyFor = -1
	w.zoneNSTTL = 30 * 24 * time.Hour
	w.publishAfter = 13 * 24 * time.Hour
	in := lbInput()
	in.GlueWait = config.Duration(MaxReplacementWait)
	in.Drain.MaxWait = config.Duration(MaxReplacementWait)
	env.ExecuteWorkflow(LoadBalancerReplaceWorkflow, in)
	return lbResult(t, env)
}

// A TTL longer than any resolver caches a delegation (BIND's
// max-cache-ttl, 7 days; Unbound's and PowerDNS's, 1 day) is waited for 7
// days, and the longest waits the API takes (glue_wait and max_wait of 14
// days) check the parent at most 500 times and read the counters at most
// 700, some 11 events each, under 14,000 of Temporal's 51,200 however
// many load balancers (TestLBReplaceManyLoadBalancersFitTheHistory).
// Before, a 30-day TTL was waited out in full, and the readings passed
// the cap.
func TestLBReplaceLongestWaitsFitTheHistory(t *testing.T) {
	env, w := newLBReplaceEnv(t, false)
	st := runLongestWaits(t, env, w)

	if st.Drain == nil || st.Drain.TTL.D() != 7*24*time.Hour {
		t.Errorf("drain %+v: want the TTL waited capped at 7 days", st.Drain)
	}
	checks, readings := w.count("CheckParent"), w.count("Queries lb1")
	if checks > 500 || readings > 700 {
		t.Errorf("%d parent checks and %d readings of lb1's counter, want at most 500 and 700", checks, readings)
	}
	t.Logf("%d parent checks, %d readings of lb1, %d steps in the status", checks, readings, len(st.Steps))
}

const lbControls = "rollout: {approval: manual, approval_timeout: 2h}\nnotifications: {webhooks: [{url: 'http://127.0.0.1:9/hook'}]}"

// With approval: manual the glue does not move until an operator
// approves, and each decision goes to the webhooks, as for rollouts.
func TestLBReplaceWaitsForApproval(t *testing.T) {
	env, w := newLBReplaceEnvWith(t, false, lbControls)
	var waiting LBReplaceStatus
	env.RegisterDelayedCallback(func() { waiting = queryLBStatus(t, env) }, 20*time.Minute)
	signalAt(env, 30*time.Minute, SignalApprove, SignalInput{Reason: "kernel 6.1.115", By: "alice"})
	st := runLBReplace(t, env, lbInput(), PhaseSucceeded)

	if waiting.Phase != PhaseAwaitingApproval || waiting.ApproveBy.IsZero() {
		t.Errorf("20 minutes in: phase %s, approve_by %s; want awaiting approval with a deadline", waiting.Phase, waiting.ApproveBy)
	}
	if at, ok := w.at["SetGlue new"]; !ok || at.Sub(w.at["LoadFleet"]) < 30*time.Minute {
		t.Errorf("glue moved %s after the start, before the approval at 30m", at.Sub(w.at["LoadFleet"]))
	}
	if !hasEvent(st, "approved by alice") {
		t.Errorf("events lack the approval: %+v", st.Events)
	}
	want := []string{"started planning", "awaiting_approval awaiting-approval", "switched updating-glue", "succeeded succeeded"}
	if got := w.notified(); !slices.Equal(got, want) {
		t.Errorf("webhooks got %q, want %q", got, want)
	}
}

// An approve sent before the gate opens is ignored, not kept for it: it
// approved nothing the operator had been shown.
func TestLBReplaceApproveBeforeTheGateIsIgnored(t *testing.T) {
	env, w := newLBReplaceEnvWith(t, false, lbControls)
	w.createAfter = 10 * time.Minute
	signalAt(env, time.Minute, SignalApprove, SignalInput{By: "alice"})
	st := runLBReplace(t, env, lbInput(), PhaseAborted)
	if !hasEvent(st, "approve ignored: the replacement is") || w.index("SetGlue new") >= 0 {
		t.Errorf("events %+v, calls %v; want the early approve ignored and the glue never moved", st.Events, w.calls)
	}
}

// The replacement has one gate, numbered 1: an approve for another is
// ignored, one for gate 1 moves the glue.
func TestLBReplaceApproveNamesItsGate(t *testing.T) {
	env, w := newLBReplaceEnvWith(t, false, lbControls)
	var waiting LBReplaceStatus
	env.RegisterDelayedCallback(func() { waiting = queryLBStatus(t, env) }, 20*time.Minute)
	signalAt(env, 30*time.Minute, SignalApprove, SignalInput{By: "bob", Gate: 2})
	signalAt(env, 40*time.Minute, SignalApprove, SignalInput{By: "alice", Gate: 1})
	st := runLBReplace(t, env, lbInput(), PhaseSucceeded)
	if waiting.ApprovalGate != 1 {
		t.Errorf("approval_gate while waiting = %d, want 1", waiting.ApprovalGate)
	}
	if !hasEvent(st, "approve ignored: it is for approval gate 2, but gate 1 is open") || hasEvent(st, "approved by bob") || !hasEvent(st, "approved by alice") {
		t.Errorf("events %+v; want bob's approve for gate 2 ignored, alice's taken", st.Events)
	}
	if at := w.at["SetGlue new"]; at.Sub(w.at["LoadFleet"]) < 40*time.Minute {
		t.Errorf("glue moved %s after the start, before the approval for gate 1 at 40m", at.Sub(w.at["LoadFleet"]))
	}
}

// Without an approval in time the replacement is aborted: the glue never
// moves and the new load balancers are deleted.
func TestLBReplaceApprovalTimesOut(t *testing.T) {
	env, w := newLBReplaceEnvWith(t, false, lbControls)
	st := runLBReplace(t, env, lbInput(), PhaseAborted)

	if !strings.Contains(st.Failure, "not approved within 2h0m0s") {
		t.Errorf("failure %q does not say the approval timed out", st.Failure)
	}
	if w.index("SetGlue new") >= 0 {
		t.Errorf("the glue moved without approval: %v", w.calls)
	}
	if w.index("Delete lb1-next") < 0 || w.index("Delete lb2-next") < 0 {
		t.Errorf("the new load balancers were not deleted: %v", w.calls)
	}
	if got := w.notified(); len(got) == 0 || got[len(got)-1] != "aborted aborted" {
		t.Errorf("webhooks got %q, want aborted last", got)
	}
}

func queryLBStatus(t *testing.T, env *testsuite.TestWorkflowEnvironment) LBReplaceStatus {
	t.Helper()
	v, err := env.QueryWorkflow(QueryStatus)
	return temporaltest.Value[LBReplaceStatus](t, v, err)
}

// A name server glued to an old load balancer by IPv4 and IPv6 (Linode
// gives every machine both): the replacement knows only the new load
// balancer's IPv4, so the new glue names that alone. Before, it kept the
// old IPv6, which resolvers asking over IPv6 followed to a deleted
// machine, or to whoever Linode gave the address next.
func TestNewGlueDropsTheOldLoadBalancersOtherAddresses(t *testing.T) {
	r := &lbReplace{dropOldAddrs: true}
	r.st.Old = []config.LoadBalancer{{Name: "lb1", Address: "198.51.100.1:53"}, {Name: "lb2", Address: "198.51.100.2:53"}}
	r.st.New = []config.LoadBalancer{{Name: "lb1-next", Address: "203.0.113.1:53"}, {Name: "lb2-next", Address: "203.0.113.2:53"}}
	old := []registrar.NameServer{
		{Name: "ns1.example.com.", Addrs: []netip.Addr{netip.MustParseAddr("198.51.100.1"), netip.MustParseAddr("2600:3c00::1")}},
		// A second IPv4 is another machine's (anycast, a secondary): kept.
		{Name: "ns2.example.com.", Addrs: []netip.Addr{netip.MustParseAddr("198.51.100.2"), netip.MustParseAddr("192.0.2.22")}},
		// Not a load balancer of the fleet: its glue stays as it is.
		{Name: "ns3.example.com.", Addrs: []netip.Addr{netip.MustParseAddr("192.0.2.3"), netip.MustParseAddr("2001:db8::3")}},
	}
	got, dropped := r.newGlue(old)
	want := []registrar.NameServer{
		{Name: "ns1.example.com.", Addrs: []netip.Addr{netip.MustParseAddr("203.0.113.1")}},
		{Name: "ns2.example.com.", Addrs: []netip.Addr{netip.MustParseAddr("203.0.113.2"), netip.MustParseAddr("192.0.2.22")}},
		old[2],
	}
	if !registrar.Equal(got, want) {
		t.Errorf("new glue %s, want %s", registrar.Text(got), registrar.Text(want))
	}
	if len(dropped) != 1 || !strings.Contains(dropped[0], "2600:3c00::1") || !strings.Contains(dropped[0], "ns1.example.com.") {
		t.Errorf("dropped %q, want ns1's IPv6 named", dropped)
	}
	// Glued to an old load balancer of each family: an address of either
	// family beside them is another machine's, and kept.
	r.st.Old = append(r.st.Old, config.LoadBalancer{Name: "lb3", Address: "[2001:db8:1::3]:53"}, config.LoadBalancer{Name: "lb4", Address: "198.51.100.4:53"})
	r.st.New = append(r.st.New, config.LoadBalancer{Name: "lb3-next", Address: "[2001:db8:2::3]:53"}, config.LoadBalancer{Name: "lb4-next", Address: "203.0.113.4:53"})
	both := []registrar.NameServer{{Name: "ns4.example.com.", Addrs: []netip.Addr{netip.MustParseAddr("2001:db8:1::3"), netip.MustParseAddr("198.51.100.4"),
		netip.MustParseAddr("192.0.2.44"), netip.MustParseAddr("2001:db8::44")}}}
	wantBoth := []registrar.NameServer{{Name: "ns4.example.com.", Addrs: []netip.Addr{netip.MustParseAddr("2001:db8:2::3"), netip.MustParseAddr("203.0.113.4"),
		netip.MustParseAddr("192.0.2.44"), netip.MustParseAddr("2001:db8::44")}}}
	if got, dropped := r.newGlue(both); !registrar.Equal(got, wantBoth) || len(dropped) != 0 {
		t.Errorf("new glue %s, dropped %q; want %s, none dropped", registrar.Text(got), dropped, registrar.Text(wantBoth))
	}
	// Runs from before versionGlueDropsOldAddrs keep the other addresses.
	r.dropOldAddrs = false
	if got, _ := r.newGlue(old); !slices.Contains(got[0].Addrs, netip.MustParseAddr("2600:3c00::1")) {
		t.Errorf("an older run's glue %s lost ns1's IPv6", registrar.Text(got))
	}
}

// A zone that names its name servers inside it holds their addresses too,
// which resolvers take over the glue. Where the zone gives the new load
// balancers' addresses already, nothing is said; where it gives an old
// machine's other address that the glue never had, the warning names it.
func TestLBReplaceWarnsOfTheZonesOwnOldAddresses(t *testing.T) {
	env, w := newLBReplaceEnv(t, false)
	// The new addresses, and a name server the replacement does not move,
	// with an IPv6 its glue never had: nothing to say.
	w.zoneAddrs = append(glueTo("203.0.113.1", "203.0.113.2"), registrar.NameServer{Name: "ns3.example.com.", Addrs: []netip.Addr{netip.MustParseAddr("2001:db8::3")}})
	if st := runLBReplace(t, env, lbInput(), PhaseSucceeded); strings.Contains(strings.Join(st.Warnings, "\n"), "roll out a revision") {
		t.Errorf("a zone that names the new addresses: warnings %q", st.Warnings)
	}
	// The old machine's IPv6 in the zone, though the glue never had it:
	// once the machine goes, it is as stale as its IPv4.
	env, w = newLBReplaceEnv(t, false)
	w.zoneAddrs = glueTo("203.0.113.1", "203.0.113.2")
	w.zoneAddrs[0].Addrs = append(w.zoneAddrs[0].Addrs, netip.MustParseAddr("2600:3c00::1"))
	if st := runLBReplace(t, env, lbInput(), PhaseSucceeded); !strings.Contains(strings.Join(st.Warnings, "\n"), "ns1.example.com. 2600:3c00::1") {
		t.Errorf("the zone's AAAA of a moved name server: warnings %q", st.Warnings)
	}
}

// An abort while a person is to change the glue (the manual registrar),
// the parent still serving the old glue: the person may have asked the
// registrar for the new glue already, and the registry may publish it
// after the abort. The new load balancers are kept until the person says
// the registrar holds the old glue (glue-updated), and the parent is
// checked again then; before, they were deleted at once, and a change
// published later delegated the domain to deleted machines.
func TestLBReplaceManualAbortKeepsNewUntilTheRegistrarIsConfirmed(t *testing.T) {
	env, w := newLBReplaceEnv(t, true)
	signalAt(env, 10*time.Minute, SignalAbort, SignalInput{Reason: "wrong plan", By: "bob"})
	var during LBReplaceStatus
	env.RegisterDelayedCallback(func() { during = queryLBStatus(t, env) }, 2*time.Hour)
	// The registry publishes the change the person made before the abort.
	env.RegisterDelayedCallback(func() { w.setParent(newGlue) }, 3*time.Hour)
	signalAt(env, 4*time.Hour, SignalGlueUpdated, SignalInput{By: "bob"}, func() { w.setParent(oldGlue) })
	runLBReplace(t, env, lbInput(), PhaseAborted)
	deleted := w.at["Delete lb1-next"]
	if deleted.IsZero() || deleted.Before(w.at["Create lb1"].Add(4*time.Hour)) {
		t.Errorf("new load balancers deleted at %s, before the person confirmed the old glue at the registrar; calls %v", deleted, w.calls)
	}
	if during.Phase != PhaseRestoringGlue || !strings.Contains(during.Glue.Instructions, "198.51.100.1") || !strings.Contains(during.Glue.Instructions, SignalGlueUpdated) {
		t.Errorf("while waiting: phase %s, instructions %q; want restoring-glue, the old glue and the signal to send", during.Phase, during.Glue.Instructions)
	}
}

// The registry published the new glue after the abort, and the person
// says so: the old glue is put back as after a served change, and the
// new load balancers go only after its TTL.
func TestLBReplaceManualAbortPublishedLaterPutsTheOldGlueBack(t *testing.T) {
	env, w := newLBReplaceEnv(t, true)
	signalAt(env, 10*time.Minute, SignalAbort, SignalInput{Reason: "wrong plan", By: "bob"})
	signalAt(env, time.Hour, SignalGlueUpdated, SignalInput{By: "bob"}, func() { w.setParent(newGlue) })
	signalAt(env, 2*time.Hour, SignalGlueUpdated, SignalInput{By: "bob"}, func() { w.setParent(oldGlue) })
	runLBReplace(t, env, lbInput(), PhaseAborted)
	restored, deleted := w.at["SetGlue old"], w.at["Delete lb1-next"]
	if restored.IsZero() || deleted.IsZero() || deleted.Before(w.at["Create lb1"].Add(2*time.Hour+fakeZoneNSTTL)) {
		t.Errorf("set old glue at %s, deleted lb1-next at %s; want the old glue asked for, then the TTL after it serves; calls %v", restored, deleted, w.calls)
	}
}

// A glue-updated sent at once after the abort confirms the old glue: the
// new load balancers go then, not at the end of glue_wait.
func TestLBReplaceManualAbortConfirmedAtOnce(t *testing.T) {
	env, w := newLBReplaceEnv(t, true)
	signalAt(env, 10*time.Minute, SignalAbort, SignalInput{Reason: "wrong plan", By: "bob"})
	signalAt(env, 10*time.Minute+time.Millisecond, SignalGlueUpdated, SignalInput{By: "bob"})
	runLBReplace(t, env, lbInput(), PhaseAborted)
	if deleted := w.at["Delete lb1-next"]; deleted.IsZero() || deleted.After(w.at["Create lb1"].Add(time.Hour)) {
		t.Errorf("lb1-next deleted at %s, want soon after the confirmation at +10m; calls %v", deleted, w.calls)
	}
}

// A glue-updated that comes with the abort, in one workflow task (as
// when the worker was busy or down), confirms the registrar for the undo.
// Before, the wait for the new glue, cancelled by the abort, took it: the
// undo kept the new load balancers and the fleet for glue_wait (72h),
// waiting for another, then deleted them with a warning.
func TestLBReplaceManualAbortConfirmedWithTheAbort(t *testing.T) {
	env, w := newLBReplaceEnv(t, true)
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(SignalAbort, SignalInput{Reason: "wrong plan", By: "bob"})
		env.SignalWorkflow(SignalGlueUpdated, SignalInput{By: "bob"})
	}, 10*time.Minute)
	st := runLBReplace(t, env, lbInput(), PhaseAborted)
	if deleted := w.at["Delete lb1-next"]; deleted.IsZero() || deleted.After(w.at["Create lb1"].Add(time.Hour)) || len(st.Warnings) != 0 {
		t.Errorf("lb1-next deleted at %s, warnings %q; want soon after the confirmation at +10m; calls %v", deleted, st.Warnings, w.calls)
	}
}

// No confirmation within glue_wait, and meanwhile the registry published
// the new glue: the parent is checked before anything is deleted, and
// the new load balancers stay while it delegates to them.
func TestLBReplaceManualAbortUnconfirmedChecksTheParent(t *testing.T) {
	env, w := newLBReplaceEnv(t, true)
	signalAt(env, 10*time.Minute, SignalAbort, SignalInput{Reason: "wrong plan", By: "bob"})
	env.RegisterDelayedCallback(func() { w.setParent(newGlue) }, 5*time.Hour)
	env.ExecuteWorkflow(LoadBalancerReplaceWorkflow, lbInput())
	st := queryLBStatus(t, env)
	if w.index("Delete lb1-next") >= 0 && registrar.Equal(w.parent, newGlue) {
		t.Errorf("lb1-next deleted while the parent delegates to it; phase %s, calls %v", st.Phase, w.calls)
	}
	if w.index("SetGlue old") < 0 {
		t.Errorf("the old glue was not asked for again once the parent served the new; calls %v", w.calls)
	}
}

// A manual replacement that fails because the glue never came (no one
// acted within glue_wait) does not wait glue_wait again for a
// confirmation: nobody is there to send it. It checks the parent and
// deletes the new load balancers.
func TestLBReplaceGlueTimeoutDoesNotWaitAgain(t *testing.T) {
	env, w := newLBReplaceEnv(t, true)
	in := lbInput()
	in.GlueWait = config.Duration(6 * time.Hour)
	executeWithin(env, in, gaveUpBy)
	endedBy(t, env, w)
	st := failureStatus[LBReplaceStatus](t, env.GetWorkflowError())
	deleted := w.at["Delete lb1-next"]
	if st.Phase != PhaseFailed || deleted.IsZero() || deleted.After(w.at["Create lb1"].Add(7*time.Hour)) {
		t.Errorf("phase %s, lb1-next deleted at %s; want failed, deleted soon after glue_wait (6h); calls %v", st.Phase, deleted, w.calls)
	}
	// No one said the registrar holds the old glue: the operator is told
	// to check it.
	if want := "the new load balancers were deleted with no word that the registrar holds the old glue; check that it does (ns1.example.com. (198.51.100.1)"; !slices.ContainsFunc(st.Warnings, func(w string) bool { return strings.HasPrefix(w, want) }) {
		t.Errorf("warnings %q; want one starting %q", st.Warnings, want)
	}
}

// A registrar that takes the change (not the manual one) and a parent that
// does not serve the new glue within glue_wait: the wait ends there, and
// the replacement is undone, the old glue asked for again and the new load
// balancers deleted; the old ones stay.
func TestLBReplaceGlueNotServedWithinGlueWaitIsUndone(t *testing.T) {
	env, w := newLBReplaceEnv(t, false)
	w.publishAfter = 1000 * time.Hour
	in := lbInput()
	in.Registrar, in.GlueWait = "route53domains", config.Duration(6*time.Hour)
	executeWithin(env, in, gaveUpBy)
	gaveUp(t, env, w)
	if w.index("SetGlue old") < 0 {
		t.Errorf("calls %v; want the old glue asked for again, in case the registry publishes the new one late", w.calls)
	}
}

// gaveUpBy bounds, in simulated time, a replacement with a glue_wait of
// 6h: it has given up and been undone well before.
const gaveUpBy = 12 * time.Hour

// executeWithin runs the replacement with its run cut off at d of
// simulated time, so that a wait that does not end fails the test there,
// at once, rather than polling until the test's deadline.
func executeWithin(env *testsuite.TestWorkflowEnvironment, in LBReplaceInput, d time.Duration) {
	env.SetWorkflowRunTimeout(d)
	env.ExecuteWorkflow(LoadBalancerReplaceWorkflow, in)
}

// endedBy fails the test at once when the replacement was still running
// at gaveUpBy (executeWithin).
func endedBy(t *testing.T, env *testsuite.TestWorkflowEnvironment, w *world) {
	t.Helper()
	if err := env.GetWorkflowError(); temporal.IsTimeoutError(err) {
		t.Fatalf("still running %s after it started, with a glue_wait of 6h: %v; %d calls, the last %v", gaveUpBy, err, len(w.calls), w.calls[max(0, len(w.calls)-4):])
	}
}

// gaveUp checks that a replacement with a glue_wait of 6h failed for the
// glue not served by then, and was undone then: the new load balancers
// deleted, the old ones kept.
func gaveUp(t *testing.T, env *testsuite.TestWorkflowEnvironment, w *world) {
	t.Helper()
	endedBy(t, env, w)
	st := failureStatus[LBReplaceStatus](t, env.GetWorkflowError())
	if st.Phase != PhaseFailed || !strings.Contains(st.Failure, "the parent did not serve the glue within 6h0m0s (glue_wait)") {
		t.Errorf("phase %s, failure %q; want failed at glue_wait", st.Phase, st.Failure)
	}
	if deleted, by := w.at["Delete lb1-next"], w.at["SetGlue new"].Add(6*time.Hour+10*time.Minute); deleted.IsZero() || deleted.After(by) || w.index("Delete lb1") >= 0 {
		t.Errorf("lb1-next deleted %s after the glue was asked for, want soon after glue_wait (6h), the old load balancers kept; calls %v", deleted.Sub(w.at["SetGlue new"]), w.calls)
	}
}

// A glue-updated refused (the parent does not serve the glue yet) has the
// parent checked again, but only until glue_wait: the replacement is then
// undone as if none had come.
func TestLBReplaceManualEarlyGlueUpdatedStillEndsAtGlueWait(t *testing.T) {
	env, w := newLBReplaceEnv(t, true)
	in := lbInput()
	in.GlueWait = config.Duration(6 * time.Hour)
	signalAt(env, 10*time.Minute, SignalGlueUpdated, SignalInput{By: "alice"})
	executeWithin(env, in, gaveUpBy)
	gaveUp(t, env, w)
}

// A parent check that fails during the confirmation (the parent servers
// disagree while a change publishes) is asked again; before, the undo
// stopped there and left the new load balancers running, cleanup-failed.
func TestLBReplaceManualAbortParentCheckRetried(t *testing.T) {
	env, w := newLBReplaceEnv(t, true)
	w.parentFails, w.parentFailsAt = 3, w.env.Now().Add(11*time.Minute)
	signalAt(env, 10*time.Minute, SignalAbort, SignalInput{Reason: "wrong plan", By: "bob"})
	signalAt(env, 20*time.Minute, SignalGlueUpdated, SignalInput{By: "bob"})
	runLBReplace(t, env, lbInput(), PhaseAborted)
	if w.index("Delete lb1-next") < 0 {
		t.Errorf("lb1-next not deleted; calls %v", w.calls)
	}
}

// A glue-updated sent before the abort (twice while the glue was awaited,
// one still queued when the abort came) says nothing about the registrar
// after it, and does not confirm the old glue: the new load balancers wait
// for one sent after the stop.
func TestLBReplaceManualAbortIgnoresGlueSignalsFromBefore(t *testing.T) {
	env, w := newLBReplaceEnv(t, true)
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(SignalGlueUpdated, SignalInput{By: "bob"})
		env.SignalWorkflow(SignalGlueUpdated, SignalInput{By: "bob"})
		env.SignalWorkflow(SignalAbort, SignalInput{Reason: "wrong plan", By: "bob"})
	}, 10*time.Minute)
	signalAt(env, 5*time.Hour, SignalGlueUpdated, SignalInput{By: "bob"})
	runLBReplace(t, env, lbInput(), PhaseAborted)
	if deleted := w.at["Delete lb1-next"]; deleted.IsZero() || deleted.Before(w.at["Create lb1"].Add(5*time.Hour)) {
		t.Errorf("lb1-next deleted at %s, before a glue-updated sent after the abort; calls %v", deleted, w.calls)
	}
}

// Putting the old glue back asks the zone at any old load balancer that
// answers, and not at a new one: a dead lb1, or lb1-next, perhaps why the
// replacement was stopped, does not keep the check from passing nor the
// new load balancers from going. Before, every check asked lb1 alone, and
// the undo ended cleanup-failed after glue_wait.
func TestLBReplaceRestoreWithADeadLoadBalancer(t *testing.T) {
	for _, dead := range []string{"198.51.100.1:53", "203.0.113.1:53"} {
		t.Run(dead, func(t *testing.T) {
			env, w := newLBReplaceEnv(t, false)
			w.busyFor = -1
			signalAt(env, 2*time.Minute, SignalAbort, SignalInput{Reason: dead + " died", By: "bob"}, func() {
				w.mu.Lock()
				defer w.mu.Unlock()
				w.deadChild = dead
			})
			runLBReplace(t, env, lbInput(), PhaseAborted)
			if !registrar.Equal(w.parent, oldGlue) || w.index("Delete lb1-next") < 0 {
				t.Errorf("parent %v, calls %v; want the old glue back and the new load balancers deleted", w.parent, w.calls)
			}
		})
	}
}

// A rollback ends the replacement rolled back, not aborted: followers and
// webhooks tell the two apart, as for rollouts.
func TestLBReplaceRollbackEndsRolledBack(t *testing.T) {
	env, w := newLBReplaceEnv(t, false)
	w.busyFor = -1
	signalAt(env, 2*time.Minute, SignalRollback, SignalInput{Reason: "resolvers see SERVFAIL", By: "bob"})
	st := runLBReplace(t, env, lbInput(), PhaseRolledBack)
	if !strings.Contains(st.Failure, "resolvers see SERVFAIL") || w.index("SetGlue old") < 0 || w.index("Delete lb1-next") < 0 || w.index("Delete lb1") >= 0 {
		t.Errorf("failure %q, calls %v; want the reason recorded, the old glue back, the new load balancers deleted and the old kept", st.Failure, w.calls)
	}
}

// Resolvers that took the new glue hold the zone's NS records for the TTL
// they had then: the undo keeps the new load balancers that long after
// the old glue is back, though the old zone gives a shorter one.
func TestLBReplaceRollbackWaitsTheTTLsServedWithTheNewGlue(t *testing.T) {
	env, w := newLBReplaceEnv(t, false)
	w.zoneNSTTL, w.zoneNSTTLServed, w.busyFor = time.Minute, 2*time.Hour, -1
	signalAt(env, 2*time.Minute, SignalRollback, SignalInput{Reason: "resolvers see SERVFAIL", By: "bob"})
	runLBReplace(t, env, lbInput(), PhaseRolledBack)
	restored, deleted := w.at["SetGlue old"], w.at["Delete lb1-next"]
	if restored.IsZero() || deleted.Before(restored.Add(2*time.Hour)) {
		t.Errorf("old glue back at %s, lb1-next deleted %s after; want at least the 2h TTL served with the new glue; calls %v", restored, deleted.Sub(restored), w.calls)
	}
}

// A parent whose glue names none of the fleet's load balancers (a typo in
// domain or an address) is refused before anything is created.
func TestLBReplaceRefusesGlueNamingNoLoadBalancer(t *testing.T) {
	env, w := newLBReplaceEnv(t, false)
	w.parent = glueTo("192.0.2.1", "192.0.2.2")
	env.ExecuteWorkflow(LoadBalancerReplaceWorkflow, lbInput())
	st := failureStatus[LBReplaceStatus](t, env.GetWorkflowError())
	if st.Phase != PhaseFailed || !strings.Contains(st.Failure, "names none of the load balancers' addresses") || w.count("Create") > 0 {
		t.Errorf("phase %s, failure %q, calls %v; want a refusal before anything is created", st.Phase, st.Failure, w.calls)
	}
}

// The registry published the new glue after a manual abort, and the
// person put the old glue back before confirming: resolvers that asked
// the parent meanwhile hold the new glue for its TTL, so the new load
// balancers stay that long after the confirmation. Before, they were
// deleted at once, and those resolvers asked deleted machines.
func TestLBReplaceManualAbortWaitsTheTTLAfterTheConfirmation(t *testing.T) {
	env, w := newLBReplaceEnv(t, true)
	signalAt(env, 10*time.Minute, SignalAbort, SignalInput{Reason: "wrong plan", By: "bob"})
	env.RegisterDelayedCallback(func() { w.setParent(newGlue) }, 3*time.Hour)
	signalAt(env, 4*time.Hour, SignalGlueUpdated, SignalInput{By: "bob"}, func() { w.setParent(oldGlue) })
	runLBReplace(t, env, lbInput(), PhaseAborted)
	confirmed := w.at["Create lb1"].Add(4 * time.Hour)
	if deleted := w.at["Delete lb1-next"]; deleted.IsZero() || deleted.Before(confirmed.Add(fakeZoneNSTTL)) {
		t.Errorf("lb1-next deleted at %s, before the TTL after the confirmation (%s); calls %v", deleted, confirmed.Add(fakeZoneNSTTL), w.calls)
	}
}

// A glue-updated sent as soon as the person set the glue at the registrar
// comes before the registry publishes it: refused then, it still says the
// change was made, so the parent is checked again until it serves the new
// glue. Before, the wait went on for another signal, which nothing asked
// for, and the replacement was undone at glue_wait with the glue in place.
func TestLBReplaceManualEarlyGlueUpdatedChecksTheParentAgain(t *testing.T) {
	env, w := newLBReplaceEnv(t, true)
	in := lbInput()
	in.GlueWait = config.Duration(6 * time.Hour)
	signalAt(env, 10*time.Minute, SignalGlueUpdated, SignalInput{By: "alice"})
	env.RegisterDelayedCallback(func() { w.setParent(newGlue) }, 15*time.Minute)
	st := runLBReplace(t, env, in, PhaseSucceeded)
	if !hasEvent(st, "glue-updated refused: the parent still serves") {
		t.Errorf("the premature glue-updated was not refused; events: %+v", st.Events)
	}
	if served := st.Glue.ServedSince; served.IsZero() || served.After(w.servedAt.Add(time.Minute)) {
		t.Errorf("new glue seen served at %s, want within a minute of %s", served, w.servedAt)
	}

	// Or its servers disagree, part way through publishing it.
	env, w = newLBReplaceEnv(t, true)
	w.parentFails, w.parentFailsAt = 1, w.env.Now().Add(5*time.Minute)
	signalAt(env, 10*time.Minute, SignalGlueUpdated, SignalInput{By: "alice"})
	env.RegisterDelayedCallback(func() { w.setParent(newGlue) }, 15*time.Minute)
	runLBReplace(t, env, in, PhaseSucceeded)
}

// The manual registrar's instructions say by when the parent must serve
// the glue: past glue_wait the replacement is undone, and before, the
// person was not told when that was.
func TestLBReplaceManualInstructionsGiveTheDeadline(t *testing.T) {
	env, w := newLBReplaceEnv(t, true)
	in := lbInput()
	in.GlueWait = config.Duration(6 * time.Hour)
	var during LBReplaceStatus
	env.RegisterDelayedCallback(func() { during = queryLBStatus(t, env) }, time.Hour)
	signalAt(env, 2*time.Hour, SignalGlueUpdated, SignalInput{By: "alice"}, func() { w.setParent(newGlue) })
	runLBReplace(t, env, in, PhaseSucceeded)
	deadline := w.at["SetGlue new"].Add(6 * time.Hour).UTC().Format(time.RFC3339)
	if during.Phase != PhaseAwaitingGlue || !strings.Contains(during.Glue.Instructions, deadline) {
		t.Errorf("while awaiting the glue: phase %s, instructions %q; want the deadline %s", during.Phase, during.Glue.Instructions, deadline)
	}
}

// The drain reads every old load balancer's counter in one step a round,
// so that a replacement's history does not grow with its load balancers
// round after round: at the longest waits the API takes, twelve load
// balancers, whose readings one step each passed Temporal's cap of
// 51,200 events (some 52,000, with 607 rounds of 5 + 6×12), fit in half
// of it, and so do the most a fleet may have, with a history's inputs
// well within its 50 MB and a status (the result) within 1 MiB.
// (historyCount says how the events are counted.)
func TestLBReplaceManyLoadBalancersFitTheHistory(t *testing.T) {
	for _, lbs := range []int{12, config.MaxLoadBalancers} {
		t.Run(strconv.Itoa(lbs), func(t *testing.T) {
			env, w := newLBReplaceEnvFleet(t, false, lbFleetOf(lbs))
			h := countHistory(env)
			st := runLongestWaits(t, env, w)

			if st.Drain == nil || st.Drain.Ended != "max-wait" || len(st.Drain.QPS) != lbs {
				t.Fatalf("drain %+v: want it ended at max_wait with the rates of all %d load balancers", st.Drain, lbs)
			}
			if got := w.count("Delete lb"); got != lbs {
				t.Errorf("%d old load balancers deleted, want %d", got, lbs)
			}
			status, _ := json.Marshal(st)
			if n := h.events(); n > temporalHistoryCap/2 || h.inputBytes > 50<<20/4 || len(status) > 1<<20 {
				t.Errorf("about %d events, %d bytes of inputs and a status of %d bytes, want at most %d (half of Temporal's cap), 12.5 MB and 1 MiB; %s",
					n, h.inputBytes, len(status), temporalHistoryCap/2, h)
			}
			t.Logf("about %d events: %s; %d steps in the status, %d KB", h.events(), h, len(st.Steps), len(status)/1024)
		})
	}
}

// The last warning says what to write in the fleet config for each new
// load balancer: its address, and its ssh_host where it is reached over
// SSH elsewhere (one at an IPv6 address is reached at its IPv4 one); an
// old ssh_host is the old machine's and goes.
func TestLBReplaceWarnsOfTheNewSSHHost(t *testing.T) {
	text := strings.Replace(lbFleet, `address: "198.51.100.2:53",`, `address: "198.51.100.2:53", ssh_host: 198.51.100.22,`, 1)
	env, w := newLBReplaceEnvFleet(t, false, text)
	w.nextSSH = true
	st := runLBReplace(t, env, lbInput(), PhaseSucceeded)
	for _, want := range []string{
		"update the fleet config: load_balancers lb1 address is now 203.0.113.1:53 (was 198.51.100.1:53), ssh_host 192.0.2.1",
		"update the fleet config: load_balancers lb2 address is now 203.0.113.2:53 (was 198.51.100.2:53), ssh_host 192.0.2.2 (was 198.51.100.22)",
	} {
		if !slices.Contains(st.Warnings, want) {
			t.Errorf("warnings %q lack %q", st.Warnings, want)
		}
	}
	env, _ = newLBReplaceEnvFleet(t, false, text)
	st = runLBReplace(t, env, lbInput(), PhaseSucceeded)
	if want := "update the fleet config: load_balancers lb2 address is now 203.0.113.2:53 (was 198.51.100.2:53), without ssh_host (was 198.51.100.22)"; !slices.Contains(st.Warnings, want) {
		t.Errorf("warnings %q lack %q", st.Warnings, want)
	}
}

// A load balancer whose address the fleet writes IPv4-mapped
// ([::ffff:198.51.100.1]:53) is the one glued at 198.51.100.1, as the
// config takes it: its glue moves with the others, rather than staying
// on the machine the replacement drains and deletes.
func TestLBReplaceMovesTheGlueOfAnIPv4MappedAddress(t *testing.T) {
	text := strings.Replace(lbFleet, `address: "198.51.100.1:53"`, `address: "[::ffff:198.51.100.1]:53"`, 1)
	env, w := newLBReplaceEnvFleet(t, false, text)
	runLBReplace(t, env, lbInput(), PhaseSucceeded)
	if w.count("SetGlue new") == 0 {
		t.Errorf("calls %v: want the glue moved to %s", w.calls, registrar.Text(newGlue))
	}
}
