package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/rollouts"
	"github.com/dnsroll/dnsroll/workflows"
)

func TestFullRollout(t *testing.T) { forEachDriver(t, testFullRollout) }

func testFullRollout(t *testing.T, driver string) {
	tl := startLabDriver(t, driver, nil)
	tl.startWorker(t)

	// The fleet's first rollout creates blue.
	tl.rolloutOK(t, "A")
	if !tl.wantAnswers(t, "", "revision A,revision A") {
		t.FailNow()
	}
	blue := tl.assertOnly(t, "ns1", "ns2")

	run := tl.start(t, workflows.RolloutInput{Revision: "B"})
	// A second rollout of the fleet is refused, naming the running one.
	_, err := rollouts.Start(context.Background(), tl.client, workflows.RolloutInput{Fleet: "lab", Revision: "B"})
	if dnsroll.ErrorCode(err) != dnsroll.ECONFLICT || !strings.Contains(err.Error(), run.RunID) {
		t.Errorf("second start: err = %v, want a conflict naming run %s", err, run.RunID)
	}
	st, err := tl.wait(t, run)
	if err != nil {
		t.Fatalf("rollout B: %v", err)
	}
	if st.Phase != workflows.PhaseSucceeded {
		t.Errorf("phase = %s", st.Phase)
	}
	tl.wantAnswers(t, "", "revision B,revision B")
	green := tl.assertOnly(t, "ns1", "ns2")
	for _, l := range []string{"ns1", "ns2"} {
		if green[l].ID == blue[l].ID {
			t.Errorf("%s is still instance %d: not replaced", l, blue[l].ID)
		}
		// The deleted blue VM's nameserver is gone with it.
		if got := queryTXT(blue[l].DNSAddr(), "release.example.com."); got != "error" {
			t.Errorf("deleted blue %s still answers: %s", l, got)
		}
	}
	names := map[string]bool{}
	for _, s := range st.Steps {
		names[s.Name] = true
	}
	for _, want := range []string{"Plan", "EnsureServer", "ProvisionNameservers", "VerifyGreen", "StageLoadBalancer", "FlipLoadBalancer", "VerifyLoadBalancers", "ReleaseBlue", "DeleteServer", "RenameServer"} {
		if !names[want] {
			t.Errorf("status lacks step %s", want)
		}
	}
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

func dnsrollBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "dnsroll-e2e")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "dnsroll")
		out, err := exec.Command("go", "build", "-o", binPath, "../cmd/dnsroll").CombinedOutput()
		if err != nil {
			buildErr = err
			t.Logf("%s", out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// startWorkerProcess runs `dnsroll worker` as a separate process, so the
// test can kill -9 it.
func (tl *testLab) startWorkerProcess(t *testing.T) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(dnsrollBinary(t), "worker", "--fleets", tl.fleetDir, "--lab-dir", tl.Dir(),
		"--linode-url", tl.SimURL(), "--temporal-address", tl.TemporalAddress())
	// A worker told to stop lets its running steps finish for 3 minutes,
	// not 30 s: a loaded machine may take longer than 30 s to provision.
	cmd.Env = append(append(os.Environ(), tl.WorkerEnv()...), "DNSROLL_STOP_GRACE=3m")
	// Appended to, so the log of a killed worker stays beside its successor's.
	logf, err := os.OpenFile(filepath.Join(tl.Dir(), "worker.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Whether it is still running, read before the kill below.
		alive := cmd.ProcessState == nil && cmd.Process.Signal(syscall.Signal(0)) == nil
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		logf.Close()
		if t.Failed() && tl.lastWorker == cmd {
			t.Logf("the last worker process, %d, was alive at the end: %v; the end of %s, the log of every worker:\n%s", cmd.Process.Pid, alive, logf.Name(), tailOf(logf.Name(), 40))
		}
	})
	tl.lastWorker = cmd
	return cmd
}

// tailOf returns the last n lines of the file at path, for a failing
// test's log: the worker processes' logs are gone with the lab.
func tailOf(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// waitForActivity waits until the run has a started attempt of activity.
func (tl *testLab) waitForActivity(t *testing.T, run rollouts.Run, activity string) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		d, err := tl.client.DescribeWorkflowExecution(context.Background(), run.WorkflowID, run.RunID)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range d.PendingActivities {
			if p.ActivityType.GetName() == activity && p.State == enumspb.PENDING_ACTIVITY_STATE_STARTED {
				return
			}
		}
		if d.WorkflowExecutionInfo.Status != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
			t.Fatalf("rollout ended before %s started", activity)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s never started", activity)
}

// A worker killed with SIGKILL while Ansible provisions green: a new worker
// resumes the same rollout, which completes with no duplicate and no
// orphaned instance.
func TestWorkerCrashDuringProvisioningResumes(t *testing.T) {
	forEachDriver(t, testWorkerCrashDuringProvisioningResumes)
}

func testWorkerCrashDuringProvisioningResumes(t *testing.T, driver string) {
	if attempts := signalWorkerDuringProvisioning(t, driver, syscall.SIGKILL); attempts < 2 {
		t.Errorf("provisioning attempts = %d, want a retry after the crash", attempts)
	}
}

// A worker told to stop (SIGTERM, as systemd and docker stop send) while
// Ansible provisions green lets the step finish before it exits, rather
// than cut it off for the next worker to run again.
func TestWorkerStoppedDuringProvisioningFinishesTheStep(t *testing.T) {
	if attempts := signalWorkerDuringProvisioning(t, "nginx", syscall.SIGTERM); attempts != 1 {
		t.Errorf("provisioning attempts = %d, want 1: the stopped worker should have finished it", attempts)
	}
}

// signalWorkerDuringProvisioning sends sig to the worker process while
// Ansible provisions green, starts a new worker once it has exited, checks
// that the rollout completes with blue replaced, and returns how many
// attempts provisioning took.
func signalWorkerDuringProvisioning(t *testing.T, driver string, sig syscall.Signal) int32 {
	t.Helper()
	tl := startLabDriver(t, driver, nil)
	first := tl.startWorkerProcess(t)
	blue, run := tl.startOverBlue(t)
	tl.waitForActivity(t, run, "ProvisionNameservers")
	time.Sleep(500 * time.Millisecond)
	sent := time.Now()
	if err := first.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	_ = first.Wait()
	t.Logf("the worker exited %s after signal %d (%s) during ProvisionNameservers; starting a new one", time.Since(sent).Round(100*time.Millisecond), sig, sig)

	tl.startWorkerProcess(t)
	st, err := tl.wait(t, run)
	if err != nil {
		t.Fatalf("resumed rollout: %v", err)
	}
	tl.assertReplaced(t, blue, st, "B")
	for _, s := range st.Steps {
		if s.Name == "ProvisionNameservers" {
			return s.Attempts
		}
	}
	t.Fatalf("no ProvisionNameservers step: %+v", st.Steps)
	return 0
}

// `temporal workflow signal --name abort` during the rollout leaves blue
// serving and green deleted.
func TestAbortSignalFromTemporalCLI(t *testing.T) { forEachDriver(t, testAbortSignalFromTemporalCLI) }

func testAbortSignalFromTemporalCLI(t *testing.T, driver string) {
	tl := startLabDriver(t, driver, nil)
	tl.startWorker(t)
	blue, run := tl.startOverBlue(t)
	tl.waitForActivity(t, run, "ProvisionNameservers")
	out, err := exec.Command(requireLab(t), "workflow", "signal", "--address", tl.TemporalAddress(),
		"--workflow-id", run.WorkflowID, "--name", "abort", "--input", `{"reason":"e2e abort","by":"ci"}`).CombinedOutput()
	if err != nil {
		t.Fatalf("temporal workflow signal: %v: %s", err, out)
	}
	st, err := tl.wait(t, run)
	if err == nil || !strings.Contains(err.Error(), "e2e abort") {
		t.Fatalf("aborted rollout: err = %v", err)
	}
	if st.Phase != workflows.PhaseAborted {
		t.Errorf("phase = %s, want aborted", st.Phase)
	}
	tl.assertKept(t, blue)
	tl.wantAnswers(t, "", "revision A,revision A")
}

// An abort reaches a long step within seconds, not at the step's next
// heartbeat that the SDK lets through: by default four fifths of the
// heartbeat timeout, 24 s of the default 30 s. Here green's analysis would
// run 40 rounds a second apart; the abort comes a few rounds in.
func TestAbortStopsALongStepPromptly(t *testing.T) {
	tl := startLabRewritten(t, "nginx", nil, strings.NewReplacer(
		"heartbeat_timeout: 10s", "heartbeat_timeout: 30s",
		"  attempts: 3\n", "  attempts: 3\n  rounds: 40\n  consecutive_successes: 40\n  interval: 1s\n"))
	tl.startWorker(t)
	run := tl.start(t, workflows.RolloutInput{Revision: "A"})
	tl.waitForActivity(t, run, "VerifyGreen")
	time.Sleep(4 * time.Second)
	tl.signal(t, run, workflows.SignalAbort, workflows.SignalInput{By: "ci", Reason: "stop the analysis"})
	st, err := tl.wait(t, run)
	if err == nil || st.Phase != workflows.PhaseAborted {
		t.Fatalf("phase %s (%v), want aborted", st.Phase, err)
	}
	var asked time.Time
	for _, e := range st.Events {
		if strings.HasPrefix(e.Message, "abort requested") {
			asked = e.At
		}
	}
	for _, s := range st.Steps {
		if s.Name != "VerifyGreen" {
			continue
		}
		if s.State != workflows.StepCanceled {
			t.Errorf("VerifyGreen %s, want canceled by the abort", s.State)
		}
		// 10 s: the heartbeat throttle would be 24 s; a loaded machine
		// may take a few seconds over the expected two.
		if took := s.EndedAt.Sub(asked); asked.IsZero() || took > 10*time.Second {
			t.Errorf("VerifyGreen ended %s after the abort (at %s), want within a few seconds", took, asked.Format(time.TimeOnly))
		}
	}
	tl.assertOnly(t)
}
