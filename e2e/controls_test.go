package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/activities"
	"github.com/dnsroll/dnsroll/config"
	"github.com/dnsroll/dnsroll/internal/testfiles"
	"github.com/dnsroll/dnsroll/progress"
	"github.com/dnsroll/dnsroll/rollouts"
	"github.com/dnsroll/dnsroll/workflows"
)

// editFleet rewrites the test fleet's config; workers read it afresh for
// every rollout.
func (tl *testLab) editFleet(t *testing.T, from, to string) {
	t.Helper()
	path := filepath.Join(tl.fleetDir, tl.fleet.Name+".yaml")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), from) {
		t.Fatalf("fleet config lacks %q", from)
	}
	testfiles.Write(t, path, strings.Replace(string(b), from, to, 1))
}

// waitStatus polls the status query until cond holds, and returns that
// status. It fails if the rollout ends first.
func (tl *testLab) waitStatus(t *testing.T, run rollouts.Run, what string, cond func(workflows.Status) bool) workflows.Status {
	t.Helper()
	deadline := time.Now().Add(4 * time.Minute)
	var last workflows.Status
	var lastErr error
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		st, err := rollouts.Status(ctx, tl.client, run)
		cancel()
		if err == nil && cond(st) {
			return st
		}
		if err == nil && st.Phase.Done() {
			t.Fatalf("rollout ended (%s: %s) before %s", st.Phase, st.Failure, what)
		}
		if err == nil {
			last = st
		}
		lastErr = err
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s; %s", what, whereItWas(last, lastErr))
	return workflows.Status{}
}

// whereItWas says where a rollout that a test waited on in vain was: its
// phase, its last steps and the retries pending, so that a timeout in CI
// can be read without a rerun.
func whereItWas(st workflows.Status, queryErr error) string {
	var b strings.Builder
	fmt.Fprintf(&b, "last status: phase %q", st.Phase)
	if queryErr != nil {
		fmt.Fprintf(&b, " (the last query failed: %v)", queryErr)
	}
	steps := st.Steps
	if len(steps) > 6 {
		steps = steps[len(steps)-6:]
	}
	for _, s := range steps {
		fmt.Fprintf(&b, "\n  step %s %s: %s, attempt %d", s.Name, s.Target, s.State, s.Attempts)
		if s.Error != "" {
			fmt.Fprintf(&b, ", error: %s", s.Error)
		}
	}
	for _, r := range st.Retrying {
		fmt.Fprintf(&b, "\n  retrying %+v", r)
	}
	return b.String()
}

// waitForPhase waits for the rollout to reach phase.
func (tl *testLab) waitForPhase(t *testing.T, run rollouts.Run, phase workflows.Phase) workflows.Status {
	t.Helper()
	return tl.waitStatus(t, run, string(phase), func(st workflows.Status) bool { return st.Phase == phase })
}

// One nameserver at a time: after lb1 has switched, a rollback leaves both
// load balancers on blue, blue answering, and green deleted. It runs per
// driver, since the rollback is the driver switching lb1 back.
func TestOneAtATimeRollbackAfterFirstSwitch(t *testing.T) {
	forEachDriver(t, testOneAtATimeRollbackAfterFirstSwitch)
}

func testOneAtATimeRollbackAfterFirstSwitch(t *testing.T, driver string) {
	tl, blue, run := startOneAtATimeUntilLB1Bakes(t, driver, "2m")
	tl.signal(t, run, workflows.SignalRollback, workflows.SignalInput{Reason: "e2e", By: "test"})
	st, err := tl.wait(t, run)
	if err == nil || st.Phase != workflows.PhaseRolledBack {
		t.Fatalf("phase %s err %v, want rolled back", st.Phase, err)
	}
	tl.wantAnswers(t, "after rollback", "revision A,revision A")
	tl.assertKept(t, blue)
	if len(st.OnGreen) != 0 {
		t.Errorf("on green after rollback: %v", st.OnGreen)
	}
}

// startOneAtATimeUntilLB1Bakes starts a lab on driver with blue serving
// revision A, and a one-at-a-time rollout of B baking each load balancer
// for bake; it returns once lb1 bakes on green, having checked that lb1
// answers B and lb2 still A. It returns blue's servers too.
func startOneAtATimeUntilLB1Bakes(t *testing.T, driver, bake string) (*testLab, map[string]dnsroll.Server, rollouts.Run) {
	t.Helper()
	tl := startBlue(t, driver, nil)
	blue := tl.assertOnly(t, "ns1", "ns2")
	tl.editFleet(t, "strategy: all-at-once", "strategy: one-at-a-time")
	tl.editFleet(t, "bake: 3s", "bake: "+bake)
	run := tl.start(t, workflows.RolloutInput{Revision: "B"})
	tl.waitStatus(t, run, "lb1 baking on green", func(st workflows.Status) bool {
		return st.Phase == workflows.PhaseBaking && slices.Equal(st.OnGreen, []string{"lb1"})
	})
	tl.wantAnswers(t, "while lb1 bakes", "revision B,revision A")
	return tl, blue, run
}

// One nameserver at a time, to the end, as DigitalOcean flipped its
// nameservers one by one: lb1 moves and bakes while lb2 still answers
// from blue, then lb2 moves, and the rollout ends with both on green's
// answers and only the renamed green servers left.
func TestOneAtATimeCutsOverEachLoadBalancerInTurn(t *testing.T) {
	tl, blue, run := startOneAtATimeUntilLB1Bakes(t, "nginx", "8s")
	st, err := tl.wait(t, run)
	if err != nil || st.Phase != workflows.PhaseSucceeded {
		t.Fatalf("phase %s err %v, want succeeded", st.Phase, err)
	}
	tl.wantAnswers(t, "after the rollout", "revision B,revision B")
	after := tl.assertOnly(t, "ns1", "ns2")
	for _, l := range []string{"ns1", "ns2"} {
		if after[l].ID == blue[l].ID {
			t.Errorf("%s is still blue's instance %d", l, blue[l].ID)
		}
	}
}

// A local webhook receiver sees a rollout's events, in order.
func TestWebhookReceivesEventsInOrder(t *testing.T) {
	var mu sync.Mutex
	var got []activities.Notification
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var n activities.Notification
		if err := json.NewDecoder(r.Body).Decode(&n); err != nil || r.Header.Get("X-Dnsroll-Event") != n.Event {
			http.Error(w, "bad notification", http.StatusBadRequest)
			return
		}
		mu.Lock()
		got = append(got, n)
		mu.Unlock()
	}))
	defer srv.Close()

	tl := startLab(t, nil)
	tl.startWorker(t)
	tl.editFleet(t, "lab:\n", "notifications:\n  webhooks:\n    - url: "+srv.URL+"/dnsroll\n\nlab:\n")
	tl.editFleet(t, "approval: auto", "approval: manual")
	run := tl.start(t, workflows.RolloutInput{Revision: "A"})
	tl.waitStatus(t, run, "awaiting approval", func(st workflows.Status) bool { return st.Phase == workflows.PhaseAwaitingApproval })
	tl.signal(t, run, workflows.SignalApprove, workflows.SignalInput{By: "test"})
	if _, err := tl.wait(t, run); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	var events []string
	for _, n := range got {
		events = append(events, n.Event)
		if n.Fleet != "lab" || n.RunID != run.RunID || n.RolloutID == "" || n.Phase == "" {
			t.Errorf("notification lacks fields: %+v", n)
		}
	}
	if want := "started,awaiting_approval,switched,succeeded"; strings.Join(events, ",") != want {
		t.Errorf("events = %v, want %s", events, want)
	}
}

// At the approval gate a rollout's status says what it changes against
// the live revision, the bundle of the fleet's last successful rollout,
// which rollouts.Start looks up in the dev server's visibility store:
// revision B bumps example.com's serial, adds and removes no zone, and
// deploys it with the same Ansible files.
func TestApprovalGateNamesChangesAgainstTheLiveRevision(t *testing.T) {
	tl := startBlue(t, "nginx", nil)
	// Visibility records A's end a moment after it ends.
	var live workflows.Status
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		st, ok, err := rollouts.LastSucceeded(context.Background(), tl.client, tl.fleet.Name)
		if err != nil {
			t.Fatal(err)
		}
		if live = st; ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("revision A's rollout succeeded but is not listed as completed")
		}
	}
	tl.editFleet(t, "approval: auto", "approval: manual")
	run := tl.start(t, workflows.RolloutInput{Revision: "B"})
	st := tl.waitForPhase(t, run, workflows.PhaseAwaitingApproval)
	c := st.Changes
	if c == nil || c.Live != live.Bundle || live.Bundle == "" || c.Unknown != "" {
		t.Fatalf("changes at the gate: %+v, want them against A's bundle %s", c, live.Bundle)
	}
	if c.ZonesChanged.String() != "example.com" || c.ZonesAdded.Count+c.ZonesRemoved.Count != 0 ||
		c.AnsibleChanged.Count+c.AnsibleAdded.Count+c.AnsibleRemoved.Count != 0 {
		t.Errorf("changes at the gate: %s", strings.Join(progress.ChangeLines(c), "; "))
	}
	tl.signal(t, run, workflows.SignalAbort, workflows.SignalInput{By: "test"})
	if st, err := tl.wait(t, run); err == nil || st.Phase != workflows.PhaseAborted {
		t.Errorf("after the abort: %s, %v", st.Phase, err)
	}
}

// A load balancer whose nginx died during the bake is brought back on blue
// by the rollback: its flip finds no nginx and runs the playbook, which
// starts it. Before, the flip failed round after round (no nginx answers
// over the channel) and the load balancer stayed down until
// cleanup_timeout.
func TestRollbackStartsALoadBalancerWhoseNginxDied(t *testing.T) {
	tl := startBlue(t, "nginx", nil)
	tl.editFleet(t, "bake: 3s", "bake: 2m")
	run := tl.start(t, workflows.RolloutInput{Revision: "B"})
	tl.waitForPhase(t, run, workflows.PhaseBaking)
	killNginx(t, tl, "lb1")
	tl.signal(t, run, workflows.SignalRollback, workflows.SignalInput{Reason: "lb1 died", By: "test"})
	tl.assertRolledBack(t, run)
}

// A load balancer whose nginx died before the switch is started on green
// by the switch's flip, with blue staged beside it, so that a rollback in
// the bake flips it back. Before, its playbook was pointed at green
// alone; the flip back found blue not staged, and the rollout ended
// cleanup-failed with the load balancer on green.
func TestRollbackAfterTheSwitchStartedALoadBalancer(t *testing.T) {
	tl := startBlue(t, "nginx", nil)
	tl.editFleet(t, "bake: 3s", "bake: 2m")
	tl.editFleet(t, "approval: auto", "approval: manual")
	run := tl.start(t, workflows.RolloutInput{Revision: "B"})
	tl.waitForPhase(t, run, workflows.PhaseAwaitingApproval)
	killNginx(t, tl, "lb1")
	tl.signal(t, run, workflows.SignalApprove, workflows.SignalInput{By: "test"})
	st := tl.waitForPhase(t, run, workflows.PhaseBaking)
	if !stepNoted(st, "started by its playbook") {
		t.Errorf("no step says lb1 was started by its playbook: %+v", st.Steps)
	}
	tl.signal(t, run, workflows.SignalRollback, workflows.SignalInput{Reason: "green is bad", By: "test"})
	tl.assertRolledBack(t, run)
}

// killNginx stops a lab load balancer's nginx, as a crash would; its
// workers go with it, as systemd would see to.
func killNginx(t *testing.T, tl *testLab, name string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(config.LabLBDir(tl.Dir(), name), "nginx.pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
}

// assertRolledBack waits for run to end rolled back, with both load
// balancers answering from blue (revision A).
func (tl *testLab) assertRolledBack(t *testing.T, run rollouts.Run) {
	t.Helper()
	st, err := tl.wait(t, run)
	if err == nil || st.Phase != workflows.PhaseRolledBack {
		t.Fatalf("phase %s (%s) err %v, want rolled back", st.Phase, st.Failure, err)
	}
	tl.wantAnswers(t, "after the rollback", "revision A,revision A")
}

func stepNoted(st workflows.Status, note string) bool {
	for _, s := range st.Steps {
		if strings.Contains(s.Note, note) {
			return true
		}
	}
	return false
}

// A rollback during the bake of a fleet's first rollout, which has no
// blue, is rejected and the rollout carries on. Before, the flip back to
// nothing failed round after round (dnsdist refuses a split with no
// weight) until steps.cleanup_timeout, an hour, the fleet locked all along.
func TestFirstRolloutRefusesARollback(t *testing.T) {
	tl := startLabDriver(t, "dnsdist", nil)
	tl.editFleet(t, "bake: 3s", "bake: 20s")
	tl.startWorker(t)
	run := tl.start(t, workflows.RolloutInput{Revision: "A"})
	tl.waitForPhase(t, run, workflows.PhaseBaking)
	tl.signal(t, run, workflows.SignalRollback, workflows.SignalInput{Reason: "e2e", By: "test"})
	st, err := tl.wait(t, run)
	if err != nil || st.Phase != workflows.PhaseSucceeded {
		t.Fatalf("phase %s (%s) err %v, want succeeded", st.Phase, st.Failure, err)
	}
	if !strings.Contains(eventsOf(st), "rollback rejected: the fleet's first rollout has no blue") {
		t.Errorf("no event says why the rollback was rejected: %v", st.Events)
	}
	tl.wantAnswers(t, "", "revision A,revision A")
}

func eventsOf(st workflows.Status) string {
	var b strings.Builder
	for _, e := range st.Events {
		b.WriteString(e.Message + "\n")
	}
	return b.String()
}
