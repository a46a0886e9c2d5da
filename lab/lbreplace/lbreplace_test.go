// Package lbreplace_test runs LoadBalancerReplaceWorkflow on a Temporal dev
// server against a real delegation (lab/delegation): a root, a registry
// BIND serving the parent zone, a recursive resolver. The load balancers
// are stand-ins: small DNS servers on their own loopback addresses that
// count the queries they get, as dnsdist's counters would.
package lbreplace_test

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/activities"
	"github.com/dnsroll/dnsroll/config"
	"github.com/dnsroll/dnsroll/internal/freeport"
	"github.com/dnsroll/dnsroll/internal/needlab"
	"github.com/dnsroll/dnsroll/lab/delegation"
	"github.com/dnsroll/dnsroll/registrar"
	"github.com/dnsroll/dnsroll/workflows"
)

// fakeLB answers for example.com on addr:53, www with its own address
// (TTL 1 s, so the resolver asks again every second), and counts queries.
type fakeLB struct {
	addr    netip.Addr
	queries atomic.Uint64
	last    atomic.Int64 // unix nanos of the last query
	srv     *dns.Server
	added   bool
}

func startLB(t *testing.T, addr netip.Addr) *fakeLB {
	t.Helper()
	l := &fakeLB{addr: addr}
	if out, err := exec.Command("ip", "addr", "add", addr.String()+"/32", "dev", "lo").CombinedOutput(); err == nil {
		l.added = true
	} else if !strings.Contains(string(out), "File exists") {
		t.Fatalf("ip addr add %s: %v: %s", addr, err, out)
	}
	mux := dns.NewServeMux()
	mux.HandleFunc("example.com.", func(w dns.ResponseWriter, q *dns.Msg) {
		l.queries.Add(1)
		l.last.Store(time.Now().UnixNano())
		m := new(dns.Msg)
		m.SetReply(q)
		m.Authoritative = true
		name := strings.ToLower(q.Question[0].Name)
		switch {
		case name == "www.example.com." && q.Question[0].Qtype == dns.TypeA:
			rr, _ := dns.NewRR("www.example.com. 1 IN A " + addr.String())
			m.Answer = append(m.Answer, rr)
		case name == "example.com." && q.Question[0].Qtype == dns.TypeNS:
			rr, _ := dns.NewRR("example.com. 5 IN NS ns1.example.com.")
			m.Answer = append(m.Answer, rr)
		default:
			rr, _ := dns.NewRR("example.com. 1 IN SOA ns1.example.com. hostmaster.example.com. 1 60 60 600 1")
			m.Ns = append(m.Ns, rr)
		}
		_ = w.WriteMsg(m)
	})
	started := make(chan struct{})
	l.srv = &dns.Server{Addr: netip.AddrPortFrom(addr, 53).String(), Net: "udp", Handler: mux, NotifyStartedFunc: func() { close(started) }}
	errc := make(chan error, 1)
	go func() { errc <- l.srv.ListenAndServe() }()
	select {
	case <-started:
	case err := <-errc:
		t.Fatalf("load balancer stand-in on %s: %v", addr, err)
	}
	t.Cleanup(l.stop)
	return l
}

func (l *fakeLB) stop() {
	if l.srv != nil {
		_ = l.srv.Shutdown()
		l.srv = nil
	}
	if l.added {
		_ = exec.Command("ip", "addr", "del", l.addr.String()+"/32", "dev", "lo").Run()
		l.added = false
	}
}

// devServer starts `temporal server start-dev` and returns a client.
func devServer(t *testing.T) client.Client {
	t.Helper()
	bin := os.Getenv("DNSROLL_TEMPORAL_BIN")
	if bin == "" {
		bin, _ = filepath.Abs("../../bin/temporal")
	}
	if _, err := os.Stat(bin); err != nil {
		needlab.Missing(t, "needs the temporal CLI at $DNSROLL_TEMPORAL_BIN or bin/temporal (make tools)")
	}
	if _, err := exec.LookPath("named"); err != nil || os.Geteuid() != 0 {
		needlab.Missing(t, "needs root and named (make deps)")
	}
	port, err := freeport.Loopback()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cmd := exec.Command(bin, "server", "start-dev", "--headless", "--ip", "127.0.0.1", "--port", strconv.Itoa(port),
		"--db-filename", filepath.Join(dir, "t.db"), "--log-level", "error")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM); _ = cmd.Wait() })
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	deadline := time.Now().Add(90 * time.Second)
	for {
		c, err := client.Dial(client.Options{HostPort: addr, Logger: quiet{}})
		if err == nil {
			if _, err = c.CheckHealth(context.Background(), &client.CheckHealthRequest{}); err == nil {
				t.Cleanup(c.Close)
				return c
			}
			c.Close()
		}
		if time.Now().After(deadline) {
			t.Fatalf("temporal dev server not ready: %v", err)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

type quiet struct{}

func (quiet) Debug(string, ...any) {}
func (quiet) Info(string, ...any)  {}
func (quiet) Warn(string, ...any)  {}
func (quiet) Error(string, ...any) {}

// replaceLab is a delegation of example.com to ns1.example.com at the old
// load balancer, a worker with the replacement's activities (the parent
// checks and the manual registrar real, the load balancers stand-ins),
// and a client resolving www.example.com through the lab's resolver.
type replaceLab struct {
	t        *testing.T
	lab      *delegation.Lab
	cl       client.Client
	old, new netip.Addr
	oldLB    *fakeLB
	mu       sync.Mutex
	newLB    *fakeLB
	deleted  map[string]time.Time
	// resolver outcomes
	answers  map[netip.Addr]int
	failures []string
	lastOld  time.Time // last answer from the old load balancer
}

func startReplaceLab(t *testing.T) *replaceLab {
	cl := devServer(t)
	dir := t.TempDir()
	l, err := delegation.Start(delegation.Options{Dir: dir, Domain: "example.com",
		NS: []registrar.NameServer{{Name: "ns1.example.com", Addrs: []netip.Addr{netip.MustParseAddr("127.0.0.1")}}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Stop)
	r := &replaceLab{t: t, lab: l, cl: cl, old: l.Host(delegation.FirstHost), new: l.Host(delegation.FirstHost + 1),
		deleted: map[string]time.Time{}, answers: map[netip.Addr]int{}}
	r.oldLB = startLB(t, r.old)
	if err := l.SetGlue(context.Background(), "example.com", glue(r.old)); err != nil {
		t.Fatal(err)
	}
	fleet, err := config.Parse([]byte(fmt.Sprintf(`
fleet: glue
nameservers:
  - {label: ns1, region: us-east, type: g6-nanode-1, image: linode/debian12}
load_balancers:
  - {name: lb1, address: "%s:53", fronts: ns1, driver: dnsdist}
zones:
  - {name: example.com, file: zones/example.com.zone}
ansible: {connection: local}
`, r.old)))
	if err != nil {
		t.Fatal(err)
	}
	w := worker.New(cl, workflows.TaskQueue, worker.Options{})
	w.RegisterWorkflow(workflows.LoadBalancerReplaceWorkflow)
	acts := &activities.Activities{}
	reg := func(fn any, name string) { w.RegisterActivityWithOptions(fn, activity.RegisterOptions{Name: name}) }
	reg(acts.CheckParent, "CheckParent")
	reg(acts.SetGlue, "SetGlue")
	reg(func(context.Context, string) (*config.Fleet, error) { return fleet, nil }, "LoadFleet")
	reg(func(_ context.Context, in activities.LoadBalancerInput) (activities.NewLoadBalancer, error) {
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.newLB == nil {
			r.newLB = startLB(t, r.new)
		}
		next := in.LB
		next.Name = dnsroll.NextLabel(in.LB.Name)
		next.Address = netip.AddrPortFrom(r.new, 53).String()
		return activities.NewLoadBalancer{Attempt: 1, LB: next, Server: dnsroll.Server{ID: 2, Label: next.Name, IPv4: r.new.String()}}, nil
	}, "CreateLoadBalancer")
	reg(func(ctx context.Context, in activities.LoadBalancerInput) (activities.StepResult, error) {
		m := new(dns.Msg)
		m.SetQuestion("www.example.com.", dns.TypeA)
		resp, _, err := (&dns.Client{Timeout: time.Second}).ExchangeContext(ctx, m, in.LB.Address)
		if err != nil || len(resp.Answer) != 1 {
			return activities.StepResult{}, fmt.Errorf("no answer through %s: %v", in.LB.Address, err)
		}
		return activities.StepResult{Attempt: 1}, nil
	}, "VerifyLoadBalancer")
	reg(func(_ context.Context, in activities.LoadBalancerInput) (activities.QueriesResult, error) {
		lb := r.oldLB
		if in.LB.Address != netip.AddrPortFrom(r.old, 53).String() {
			return activities.QueriesResult{}, fmt.Errorf("counters asked of %s", in.LB.Address)
		}
		return activities.QueriesResult{Attempt: 1, Counted: true, Queries: lb.queries.Load()}, nil
	}, "LoadBalancerQueries")
	reg(func(_ context.Context, in activities.DeleteLoadBalancerInput) (activities.StepResult, error) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.deleted[in.Label] = time.Now()
		switch in.Label {
		case "lb1":
			r.oldLB.stop()
		case "lb1-next":
			if r.newLB != nil {
				r.newLB.stop()
			}
		}
		return activities.StepResult{Attempt: 1}, nil
	}, "DeleteLoadBalancer")
	reg(func(context.Context, activities.RenameInput) (activities.StepResult, error) {
		return activities.StepResult{Attempt: 1}, nil
	}, "RenameServer")
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	return r
}

func glue(a netip.Addr) []registrar.NameServer {
	return []registrar.NameServer{{Name: "ns1.example.com.", Addrs: []netip.Addr{a}}}
}

// resolveLoop asks the resolver for www.example.com every 100 ms until
// ctx ends, recording which load balancer answered and every failure.
func (r *replaceLab) resolveLoop(ctx context.Context) (wait func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		c := &dns.Client{Timeout: 3 * time.Second}
		for ctx.Err() == nil {
			m := new(dns.Msg)
			m.SetQuestion("www.example.com.", dns.TypeA)
			resp, _, err := c.Exchange(m, r.lab.Resolver().String())
			r.mu.Lock()
			switch {
			case err != nil:
				r.failures = append(r.failures, err.Error())
			case resp.Rcode != dns.RcodeSuccess || len(resp.Answer) != 1:
				r.failures = append(r.failures, dns.RcodeToString[resp.Rcode])
			default:
				a, _ := netip.AddrFromSlice(resp.Answer[0].(*dns.A).A.To4())
				r.answers[a]++
				if a == r.old {
					r.lastOld = time.Now()
				}
			}
			r.mu.Unlock()
			time.Sleep(100 * time.Millisecond)
		}
	}()
	return func() { <-done }
}

func (r *replaceLab) status(ctx context.Context, id string) workflows.LBReplaceStatus {
	var st workflows.LBReplaceStatus
	v, err := r.cl.QueryWorkflow(ctx, id, "", workflows.QueryStatus)
	if err == nil {
		_ = v.Get(&st)
	}
	return st
}

// waitFor polls the status until ok or the deadline.
func (r *replaceLab) waitFor(ctx context.Context, id, what string, ok func(workflows.LBReplaceStatus) bool) workflows.LBReplaceStatus {
	r.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		st := r.status(ctx, id)
		if ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("waiting for %s; status: %+v", what, st)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func hasEvent(st workflows.LBReplaceStatus, s string) bool {
	for _, e := range st.Events {
		if strings.Contains(e.Message, s) {
			return true
		}
	}
	return false
}

func (r *replaceLab) start(ctx context.Context) (string, client.WorkflowRun) {
	id := workflows.LBReplaceWorkflowID("glue") + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	parent := make([]string, 0)
	for _, p := range r.lab.ParentServers() {
		parent = append(parent, p.String())
	}
	run, err := r.cl.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: workflows.TaskQueue}, workflows.LoadBalancerReplaceWorkflow,
		workflows.LBReplaceInput{Fleet: "glue", Domain: "example.com", Parent: parent,
			Drain: workflows.DrainPolicy{QuietQPS: 0.5, Quiet: config.Duration(3 * time.Second), Poll: config.Duration(time.Second), MaxWait: config.Duration(2 * time.Minute)}})
	if err != nil {
		r.t.Fatal(err)
	}
	return id, run
}

// TestLoadBalancerReplaceGlueMovesWithoutFailures: the manual registrar's
// instructions appear, a premature glue-updated is refused, the glue moves
// at the registry, and the old load balancer is deleted only after the
// delegation's TTL, once the resolver stopped asking it; a client of the
// resolver gets an answer every time, and the new load balancer's at the end.
func TestLoadBalancerReplaceGlueMovesWithoutFailures(t *testing.T) {
	r := startReplaceLab(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	rctx, stopResolving := context.WithCancel(ctx)
	wait := r.resolveLoop(rctx)
	time.Sleep(2 * time.Second) // the resolver caches the old delegation

	id, run := r.start(ctx)
	r.waitFor(ctx, id, "the manual registrar's instructions", func(st workflows.LBReplaceStatus) bool {
		return st.Phase == workflows.PhaseAwaitingGlue && strings.Contains(st.Glue.Instructions, r.new.String())
	})
	if err := r.cl.SignalWorkflow(ctx, id, "", workflows.SignalGlueUpdated, "done"); err != nil {
		t.Fatal(err)
	}
	r.waitFor(ctx, id, "the premature glue-updated refused", func(st workflows.LBReplaceStatus) bool { return hasEvent(st, "glue-updated refused") })
	if err := r.lab.SetGlue(ctx, "example.com", glue(r.new)); err != nil {
		t.Fatal(err)
	}
	servedAt := time.Now()
	if err := r.cl.SignalWorkflow(ctx, id, "", workflows.SignalGlueUpdated, "done now"); err != nil {
		t.Fatal(err)
	}
	var st workflows.LBReplaceStatus
	if err := run.Get(ctx, &st); err != nil {
		t.Fatalf("replacement failed: %v", err)
	}
	time.Sleep(3 * time.Second) // answers after the deletion
	stopResolving()
	wait()

	r.mu.Lock()
	defer r.mu.Unlock()
	t.Logf("answers %v, failures %d, parent served the new glue at +0, last answer from the old LB at +%s, old LB deleted at +%s; drain %+v",
		r.answers, len(r.failures), r.lastOld.Sub(servedAt).Round(100*time.Millisecond), r.deleted["lb1"].Sub(servedAt).Round(100*time.Millisecond), st.Drain)
	if st.Phase != workflows.PhaseSucceeded {
		t.Fatalf("phase %s: %s", st.Phase, st.Failure)
	}
	if len(r.failures) != 0 {
		t.Errorf("%d resolver failures, want 0: %v", len(r.failures), r.failures)
	}
	if del := r.deleted["lb1"]; del.Sub(servedAt) < delegation.DefaultTTL {
		t.Errorf("old load balancer deleted %s after the parent served the new glue, before the TTL %s", del.Sub(servedAt), delegation.DefaultTTL)
	}
	// When the resolver moves within the TTL depends on when it cached the
	// delegation, so only the order is asserted: its last answer from the
	// old load balancer came before the deletion.
	if !r.lastOld.Before(r.deleted["lb1"]) {
		t.Errorf("an answer came from the old load balancer at %s, after its deletion at %s", r.lastOld, r.deleted["lb1"])
	}
	if r.answers[r.new] == 0 {
		t.Errorf("no answers from the new load balancer: %v", r.answers)
	}
	if _, ok := r.deleted["lb1-next"]; ok {
		t.Errorf("the new load balancer was deleted")
	}
}

// TestGlueNeverUpdatedAbortRestores: the operator claims the glue is
// updated but the registry still serves the old: the check at the parent
// refuses it, abort deletes the new load balancer, the parent keeps the old
// glue and the resolver keeps answering through the old load balancer.
func TestGlueNeverUpdatedAbortRestores(t *testing.T) {
	r := startReplaceLab(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	rctx, stopResolving := context.WithCancel(ctx)
	wait := r.resolveLoop(rctx)

	id, run := r.start(ctx)
	r.waitFor(ctx, id, "the manual registrar's instructions", func(st workflows.LBReplaceStatus) bool {
		return st.Phase == workflows.PhaseAwaitingGlue
	})
	if err := r.cl.SignalWorkflow(ctx, id, "", workflows.SignalGlueUpdated, "done"); err != nil {
		t.Fatal(err)
	}
	r.waitFor(ctx, id, "the premature glue-updated refused", func(st workflows.LBReplaceStatus) bool { return hasEvent(st, "glue-updated refused") })
	if err := r.cl.SignalWorkflow(ctx, id, "", workflows.SignalAbort, workflows.SignalInput{Reason: "registrar down"}); err != nil {
		t.Fatal(err)
	}
	var st workflows.LBReplaceStatus
	if err := run.Get(ctx, &st); err != nil {
		t.Fatalf("abort failed: %v", err)
	}
	time.Sleep(time.Second)
	stopResolving()
	wait()

	if st.Phase != workflows.PhaseAborted {
		t.Fatalf("phase %s: %s", st.Phase, st.Failure)
	}
	ref, err := registrar.Check(ctx, r.lab.ParentServers(), "example.com")
	if err != nil {
		t.Fatal(err)
	}
	if !registrar.Equal(ref.NS, glue(r.old)) {
		t.Errorf("the parent serves %v after the abort, want the old glue", ref.NS)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.deleted["lb1-next"]; !ok {
		t.Errorf("abort did not delete the new load balancer")
	}
	if _, ok := r.deleted["lb1"]; ok {
		t.Errorf("abort deleted the old load balancer")
	}
	if len(r.failures) != 0 || r.answers[r.new] != 0 {
		t.Errorf("resolver: %d failures, answers %v; want every answer from the old load balancer", len(r.failures), r.answers)
	}
}
