package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"

	"github.com/dnsroll/dnsroll/config"
	"github.com/dnsroll/dnsroll/internal/needlab"
	"github.com/dnsroll/dnsroll/lab"
	"github.com/dnsroll/dnsroll/lab/cluster"
	"github.com/dnsroll/dnsroll/rollouts"
	"github.com/dnsroll/dnsroll/workflows"
)

// startClusterLab starts a self-hosted Temporal cluster (lab/cluster: the
// real server on PostgreSQL) and a process lab that uses it, with no worker.
func startClusterLab(t *testing.T, driver string) (*testLab, *cluster.Cluster) {
	t.Helper()
	bin := requireLab(t)
	binDir := filepath.Dir(bin)
	if _, err := os.Stat(filepath.Join(binDir, "temporal-server")); err != nil {
		needlab.Missing(t, "the cluster lab needs %s (run `make temporal-server`)", filepath.Join(binDir, "temporal-server"))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	start := time.Now()
	c, err := cluster.Start(ctx, cluster.Options{BinDir: binDir, Log: testWriter{t}})
	if err != nil {
		t.Fatal(err)
	}
	// Logs survive a failure: Stop removes the cluster's directory.
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := exec.Command("tail", "-n", "40", filepath.Join(c.Dir(), "server.log")).CombinedOutput()
			t.Logf("server.log:\n%s", out)
		}
		c.Stop()
	})
	t.Logf("cluster up in %s at %s", time.Since(start).Round(100*time.Millisecond), c.Address())
	// Revision C follows B (a later serial), for a third rollout.
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "lab", "zones", "B", "example.com.zone"))
	if err != nil {
		t.Fatal(err)
	}
	zoneC := strings.NewReplacer("2026112302 ; serial", "2026112303 ; serial", `"revision B"`, `"revision C"`).Replace(string(b))
	fleetDir := writeFleet(t, driver, map[string]string{"C": zoneC})
	fleet, err := config.Load(filepath.Join(fleetDir, "lab.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	tl := launchLab(t, fleetDir, fleet, lab.Options{TemporalAddress: c.Address(), BootDelay: 200 * time.Millisecond}, 2*time.Minute)
	return tl, c
}

// On a self-hosted cluster with three workers on one task queue, a kill -9
// of the worker that runs ProvisionNameservers is survived with no restart
// of anything: the step's next attempt starts on another worker once the
// heartbeat timeout notices the death, and the rollout completes. Then a
// restart of the Temporal server mid-rollout is survived too.
func TestClusterWorkerFailoverAndServerRestart(t *testing.T) {
	tl, c := startClusterLab(t, "nginx")
	workers := map[int]*exec.Cmd{}
	for range 3 {
		w := tl.startWorkerProcess(t)
		workers[w.Process.Pid] = w
	}
	blue, run := tl.startOverBlue(t)
	tl.waitForActivity(t, run, "ProvisionNameservers")
	time.Sleep(500 * time.Millisecond)
	first := tl.pendingActivity(t, run, "ProvisionNameservers")
	if first == nil {
		t.Fatal("ProvisionNameservers finished within 500ms; nothing to kill")
	}
	pid := identityPID(first.GetLastWorkerIdentity())
	victim, ok := workers[pid]
	if !ok {
		t.Fatalf("ProvisionNameservers runs on %q, not one of the workers %v", first.GetLastWorkerIdentity(), workers)
	}
	if err := victim.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	_ = victim.Wait()
	t.Logf("killed worker %d (attempt %d of ProvisionNameservers); no restart", pid, first.GetAttempt())

	// The next attempt, on a surviving worker.
	var next *workflow.PendingActivityInfo
	for deadline := time.Now().Add(2 * time.Minute); next == nil; {
		p := tl.pendingActivity(t, run, "ProvisionNameservers")
		switch {
		case p == nil:
			t.Fatal("ProvisionNameservers is no longer pending, yet no attempt was seen on another worker")
		case p.GetAttempt() > first.GetAttempt() && p.GetState() == enumspb.PENDING_ACTIVITY_STATE_STARTED:
			next = p
		case time.Now().After(deadline):
			t.Fatalf("no new attempt of ProvisionNameservers 2m after the kill: %v", p)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if identityPID(next.GetLastWorkerIdentity()) == pid {
		t.Fatalf("attempt %d ran on the killed worker %q", next.GetAttempt(), next.GetLastWorkerIdentity())
	}
	failover := next.GetLastStartedTime().AsTime().Sub(killed)
	t.Logf("kill -9 -> attempt %d started on %s: %s (heartbeat timeout %s)", next.GetAttempt(),
		next.GetLastWorkerIdentity(), failover.Round(100*time.Millisecond), tl.fleet.Steps.HeartbeatTimeout.D())
	// Without heartbeats, the retry would wait for the step's deadline
	// (provision_timeout, 5m in the lab fleet).
	if limit := tl.fleet.Steps.HeartbeatTimeout.D() + 20*time.Second; failover > limit {
		t.Errorf("failover took %s, want under %s (heartbeat timeout + 20s)", failover, limit)
	}
	st, err := tl.wait(t, run)
	if err != nil {
		t.Fatalf("rollout B after the kill: %v", err)
	}
	tl.assertReplaced(t, blue, st, "B")

	// A restart of the Temporal server mid-rollout.
	run = tl.start(t, workflows.RolloutInput{Revision: "C"})
	tl.waitForActivity(t, run, "ProvisionNameservers")
	restart := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := c.RestartServer(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("Temporal server restarted mid-provisioning in %s", time.Since(restart).Round(100*time.Millisecond))
	st, err = tl.wait(t, run)
	if err != nil {
		t.Fatalf("rollout C across the server restart: %v", err)
	}
	if st.Phase != workflows.PhaseSucceeded {
		t.Errorf("phase = %s", st.Phase)
	}
	tl.assertOnly(t, "ns1", "ns2")
	tl.wantAnswers(t, "", "revision C,revision C")
	// Rollouts are listed by search attribute on SQL visibility.
	resp, err := tl.client.ListWorkflow(context.Background(), &workflowservice.ListWorkflowExecutionsRequest{Query: `Fleet="lab"`})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(resp.Executions); n != 3 {
		t.Errorf("Fleet=\"lab\" lists %d rollouts, want 3", n)
	}
}

// pendingActivity returns the run's pending attempt of activity, or nil.
func (tl *testLab) pendingActivity(t *testing.T, run rollouts.Run, activity string) *workflow.PendingActivityInfo {
	t.Helper()
	d, err := tl.client.DescribeWorkflowExecution(context.Background(), run.WorkflowID, run.RunID)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range d.PendingActivities {
		if p.ActivityType.GetName() == activity {
			return p
		}
	}
	return nil
}

// identityPID is the process ID in a Temporal SDK worker's default
// identity, "pid@host@".
func identityPID(identity string) int {
	pid, _ := strconv.Atoi(strings.SplitN(identity, "@", 2)[0])
	return pid
}

// testWriter sends progress lines to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}
