package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	enumspb "go.temporal.io/api/enums/v1"

	"github.com/dnsroll/dnsroll/lab/linodesim"
	"github.com/dnsroll/dnsroll/rollouts"
	"github.com/dnsroll/dnsroll/workflows"
)

// TestChaos runs rollouts back to back on the cluster lab (the real
// Temporal server on PostgreSQL) with the dnsdist driver and two worker
// processes, each rollout with random faults at random times: a worker
// killed with SIGKILL (the other one carries on; the dead one is started
// again only after the rollout), a restart of the Temporal server or of
// PostgreSQL, abort and rollback signals, and the cloud answering 429, 5xx
// bursts, slowly, or losing responses. After each rollout it checks the invariants: the
// rollout ended; exactly one fleet instance per label and no -next left;
// every load balancer answers the one revision the outcome says; and a
// steady probe through the load balancers lost no query.
//
// `make test` runs 5 rollouts; `make chaos` runs 30. DNSROLL_CHAOS_SEED
// replays a run.
func TestChaos(t *testing.T) {
	n := 5
	if v := os.Getenv("DNSROLL_CHAOS_ROLLOUTS"); v != "" {
		n, _ = strconv.Atoi(v)
	}
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("DNSROLL_CHAOS_SEED"); v != "" {
		seed, _ = strconv.ParseUint(v, 10, 64)
	}
	rng := rand.New(rand.NewPCG(seed, seed))
	t.Logf("chaos: %d rollouts, seed %d (DNSROLL_CHAOS_SEED=%d replays it)", n, seed, seed)

	tl, cl := startClusterLab(t, "dnsdist")
	restarts := map[string]func(context.Context) error{"restart Temporal": cl.RestartServer, "restart PostgreSQL": cl.RestartPostgres}
	workers := []*exec.Cmd{tl.startWorkerProcess(t), tl.startWorkerProcess(t)}
	if _, st, err := tl.rolloutWait(t, "A"); err != nil {
		t.Fatalf("first rollout: %v (%s)", err, st.Phase)
	}
	probe := startSteadyProbe(tl)
	defer probe.stop()

	current := "A"
	timed := []string{"kill a worker", "restart Temporal", "abort", "restart PostgreSQL", "rollback", "none"}
	clouds := []string{"429s on create", "5xx burst on reads", "slow reads", "lost create response", "lost delete response", "lost rename response", "none"}
	converged, violations := 0, 0
	var injected []string
	for i := range n {
		for w := range workers {
			if workers[w] == nil {
				workers[w] = tl.startWorkerProcess(t)
			}
		}
		target := map[string]string{"A": "B", "B": "A"}[current]
		event, cloud := timed[i%len(timed)], clouds[rng.IntN(len(clouds))]
		if i >= len(timed) {
			event = timed[rng.IntN(len(timed))]
		}
		at := time.Duration(2+rng.IntN(28)) * time.Second
		tl.Sim().ClearFaults()
		injectCloudFault(tl.Sim(), cloud)
		probe.reset()

		// Revisions A and B alternate, so every other one goes back to
		// an older serial on purpose.
		run, err := rollouts.Start(context.Background(), tl.client, workflows.RolloutInput{Fleet: "lab", Revision: target, AllowSerialDecrease: true})
		if err != nil {
			t.Fatalf("rollout %d: %v", i+1, err)
		}
		done := make(chan struct{})
		fired := make(chan string, 1)
		go func() {
			select {
			case <-done:
				fired <- event + " (never: the rollout had ended)"
				return
			case <-time.After(at):
			}
			fired <- fireChaos(t, tl, run, event, workers, restarts)
		}()
		ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
		st, werr := waitThroughRestarts(ctx, tl, run)
		stuck := ctx.Err() != nil
		cancel()
		close(done)
		what := <-fired
		if strings.HasPrefix(what, "killed worker ") {
			w, _ := strconv.Atoi(strings.TrimPrefix(what, "killed worker "))
			workers[w] = nil
		}
		tl.Sim().ClearFaults()
		desc := fmt.Sprintf("rollout %d (%s → %s): %s at %s, cloud: %s", i+1, current, target, what, at, cloud)
		injected = append(injected, desc)

		var broken []string
		switch {
		case stuck:
			broken = append(broken, "never ended")
		case st.Phase == workflows.PhaseSucceeded:
			current = target
		case st.Phase == workflows.PhaseAborted || st.Phase == workflows.PhaseRolledBack:
		default:
			broken = append(broken, fmt.Sprintf("ended %s: %v", st.Phase, werr))
		}
		broken = append(broken, checkFleet(tl, current)...)
		if lost, sent := probe.lost(); lost > 0 {
			broken = append(broken, fmt.Sprintf("the steady probe lost %d of %d queries", lost, sent))
		}
		if len(broken) == 0 {
			converged++
			t.Logf("%s: %s, ok", desc, st.Phase)
		} else {
			violations += len(broken)
			t.Errorf("%s: %s: %s", desc, st.Phase, strings.Join(broken, "; "))
			if stuck {
				break
			}
		}
	}
	t.Logf("%d rollouts, %d converged, %d invariant violations", n, converged, violations)
	fmt.Printf("%d rollouts, %d converged, %d invariant violations\nfaults injected:\n  %s\n", n, converged, violations, strings.Join(injected, "\n  "))
}

// waitThroughRestarts waits for the rollout to end, polling, since the
// Temporal server may be down for a while meanwhile; then reads its final
// status.
func waitThroughRestarts(ctx context.Context, tl *testLab, run rollouts.Run) (workflows.Status, error) {
	for ctx.Err() == nil {
		d, err := tl.client.DescribeWorkflowExecution(ctx, run.WorkflowID, run.RunID)
		if err == nil && d.GetWorkflowExecutionInfo().GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
			werr := rollouts.Outcome(tl.client.GetWorkflow(ctx, run.WorkflowID, run.RunID).Get(ctx, nil))
			st, qerr := rollouts.Status(ctx, tl.client, run)
			if qerr != nil {
				return st, fmt.Errorf("%v; status: %v", werr, qerr)
			}
			return st, werr
		}
		time.Sleep(500 * time.Millisecond)
	}
	return workflows.Status{}, ctx.Err()
}

// rolloutWait runs one rollout to its end.
func (tl *testLab) rolloutWait(t *testing.T, rev string) (rollouts.Run, workflows.Status, error) {
	t.Helper()
	run := tl.start(t, workflows.RolloutInput{Revision: rev})
	st, err := tl.wait(t, run)
	return run, st, err
}

func injectCloudFault(sim *linodesim.Sim, what string) {
	const inst = "/v4/linode/instances"
	switch what {
	case "429s on create":
		sim.InjectFault(linodesim.Fault{Method: "POST", PathPrefix: inst, Status: 429, RetryAfter: 1, Count: 3})
	case "5xx burst on reads":
		sim.InjectFault(linodesim.Fault{Method: "GET", PathPrefix: inst, Status: 503, Count: 8})
	case "slow reads":
		sim.InjectFault(linodesim.Fault{Method: "GET", PathPrefix: inst, Delay: 4 * time.Second, Count: 3})
	case "lost create response":
		sim.InjectFault(linodesim.Fault{Method: "POST", PathPrefix: inst, LoseResponse: true})
	case "lost delete response":
		sim.InjectFault(linodesim.Fault{Method: "DELETE", PathPrefix: inst, LoseResponse: true})
	case "lost rename response":
		sim.InjectFault(linodesim.Fault{Method: "PUT", PathPrefix: inst, LoseResponse: true})
	}
}

// fireChaos does event to the running rollout and says what it did.
func fireChaos(t *testing.T, tl *testLab, run rollouts.Run, event string, workers []*exec.Cmd, restarts map[string]func(context.Context) error) string {
	switch event {
	case "kill a worker":
		// The worker running the current step, if one can be told, else the first.
		for i, w := range workers {
			if w != nil && len(playbookGroups(w.Process.Pid)) > 0 {
				killWorker(t, w)
				return fmt.Sprintf("killed worker %d", i)
			}
		}
		if workers[0] != nil {
			killWorker(t, workers[0])
			return "killed worker 0"
		}
	case "restart Temporal", "restart PostgreSQL":
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := restarts[event](ctx); err != nil {
			return event + " failed: " + err.Error()
		}
		return strings.Replace(event, "restart", "restarted", 1)
	case "abort", "rollback":
		name := map[string]string{"abort": workflows.SignalAbort, "rollback": workflows.SignalRollback}[event]
		if err := rollouts.Signal(context.Background(), tl.client, run, name, workflows.SignalInput{Reason: "chaos", By: "chaos"}); err != nil {
			return event + " not sent: " + err.Error()
		}
		return "sent " + event
	}
	return event
}

// checkFleet is the invariants of the fleet at rest: exactly one fleet
// instance per nameserver label and none other, and every load balancer
// answering rev. Deletions finish in the simulator a moment after the
// rollout ends, so it looks for a few seconds.
func checkFleet(tl *testLab, rev string) []string {
	var broken []string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(500 * time.Millisecond) {
		broken = broken[:0]
		count := map[string]int{}
		for _, s := range tl.Servers() {
			if s.HasTag(tl.fleet.Tag()) {
				count[s.Label]++
			}
		}
		var labels []string
		for l, c := range count {
			labels = append(labels, fmt.Sprintf("%s×%d", l, c))
		}
		sort.Strings(labels)
		if got := strings.Join(labels, " "); got != "ns1×1 ns2×1" {
			broken = append(broken, "fleet instances "+got+", want ns1×1 ns2×1")
		}
		for _, lb := range tl.fleet.LoadBalancers {
			if got := queryTXT(lb.Address, "release.example.com."); got != "revision "+rev {
				broken = append(broken, fmt.Sprintf("%s answers %q, want revision %s", lb.Name, got, rev))
			}
		}
		if len(broken) == 0 || time.Now().After(deadline) {
			return broken
		}
	}
}

// steadyProbe asks every load balancer a question every 25 ms over UDP,
// as a resolver would, and counts the questions left unanswered.
type steadyProbe struct {
	quit       chan struct{}
	wg         sync.WaitGroup
	sent, fail atomic.Int64
}

func startSteadyProbe(tl *testLab) *steadyProbe {
	p := &steadyProbe{quit: make(chan struct{})}
	for _, lb := range tl.fleet.LoadBalancers {
		p.wg.Add(1)
		go func(addr string) {
			defer p.wg.Done()
			c := &dns.Client{Net: "udp", Timeout: 2 * time.Second}
			tick := time.NewTicker(25 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-p.quit:
					return
				case <-tick.C:
				}
				m := new(dns.Msg)
				m.SetQuestion("release.example.com.", dns.TypeTXT)
				p.sent.Add(1)
				if r, _, err := c.Exchange(m, addr); err != nil || r.Rcode != dns.RcodeSuccess || len(r.Answer) == 0 {
					p.fail.Add(1)
				}
			}
		}(lb.Address)
	}
	return p
}

func (p *steadyProbe) reset() { p.sent.Store(0); p.fail.Store(0) }

func (p *steadyProbe) lost() (lost, sent int64) { return p.fail.Load(), p.sent.Load() }

func (p *steadyProbe) stop() { close(p.quit); p.wg.Wait() }
