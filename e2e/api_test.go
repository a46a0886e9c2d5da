package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dnsroll/dnsroll/api"
	"github.com/dnsroll/dnsroll/lab"
	"github.com/dnsroll/dnsroll/lb"
	"github.com/dnsroll/dnsroll/workflows"
)

const apiToken = "e2e-token-0123456789abcdef"

// startAPI runs `dnsroll api` against the lab until the test ends and
// returns a client with the token.
func (tl *testLab) startAPI(t *testing.T) *api.Client {
	t.Helper()
	port, err := lab.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	cmd := exec.Command(dnsrollBinary(t), "api", "--listen", addr, "--temporal-address", tl.TemporalAddress(), "--fleets", tl.fleetDir)
	cmd.Env = append(cleanEnv(), "DNSROLL_API_TOKEN="+apiToken)
	logf, err := os.Create(filepath.Join(tl.Dir(), "api.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
		logf.Close()
		if b, _ := os.ReadFile(logf.Name()); strings.Contains(string(b), apiToken) {
			t.Errorf("the API's log holds the token")
		}
	})
	c := &api.Client{URL: "http://" + addr, Token: apiToken}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(c.URL + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return c
			}
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(logf.Name())
			t.Fatalf("API not healthy: %v\n%s", err, b)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// cleanEnv is this process's environment without Temporal connection
// settings that could point a child at another cluster.
func cleanEnv() []string {
	return slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "TEMPORAL_") })
}

// waitPhase polls the API until the rollout reaches phase.
func waitPhase(t *testing.T, c *api.Client, id string, phase workflows.Phase) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		ro, err := c.Get(context.Background(), id)
		if err == nil && ro.Phase == phase {
			return
		}
		if err == nil && ro.State != "running" {
			t.Fatalf("rollout ended (%s: %s) before %s", ro.Phase, ro.Failure, phase)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s never reached %s", id, phase)
}

func apiStatus(err error) int {
	var e *api.Error
	if errors.As(err, &e) {
		return e.Status
	}
	return 0
}

// inOrder reports whether phases only move forward through a successful
// rollout's phases.
func inOrder(phases []workflows.Phase) bool {
	order := []workflows.Phase{workflows.PhasePlanning, workflows.PhaseCreating, workflows.PhaseProvisioning,
		workflows.PhaseVerifyGreen, workflows.PhaseStaging, workflows.PhaseAwaitingApproval, workflows.PhaseSwitching, workflows.PhaseVerifyLBs,
		workflows.PhaseBaking, workflows.PhaseDeletingBlue, workflows.PhaseRenaming, workflows.PhaseSucceeded}
	last := -1
	for _, p := range phases {
		i := slices.Index(order, p)
		if i <= last {
			return false
		}
		last = i
	}
	return true
}

// Through the API: a rollout with an approval gate runs to success with its
// phases in order, a second start gets 409 naming it, and later runs are
// aborted through the API and through `temporal workflow signal`.
func TestAPIRollouts(t *testing.T) {
	tl := startLab(t, nil)
	tl.startWorker(t)
	c := tl.startAPI(t)
	ctx := context.Background()

	resp, err := http.Get(c.URL + "/rollouts")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET /rollouts without a token → %d, want 401", resp.StatusCode)
	}

	tl.editFleet(t, "approval: auto", "approval: manual")
	// Twenty clients start the fleet's rollout at the same moment: exactly
	// one gets 201, and every other a 409 naming it.
	type result struct {
		started api.Started
		err     error
	}
	results := make(chan result, 20)
	gate := make(chan struct{})
	for range 20 {
		go func() {
			<-gate
			st, err := c.Start(ctx, api.StartRequest{Fleet: "lab", Revision: "A", Reason: "e2e"})
			results <- result{st, err}
		}()
	}
	close(gate)
	var first api.Started
	var conflicts []*api.Error
	for range 20 {
		r := <-results
		var e *api.Error
		switch {
		case r.err == nil && first.ID == "":
			first = r.started
		case r.err == nil:
			t.Errorf("a second concurrent start got 201: %s and %s", first.ID, r.started.ID)
		case errors.As(r.err, &e) && e.Status == http.StatusConflict:
			conflicts = append(conflicts, e)
		default:
			t.Errorf("concurrent start: %v, want 201 or 409", r.err)
		}
	}
	if first.ID == "" || len(conflicts) != 19 {
		t.Fatalf("20 concurrent starts: 201 for %q, %d conflicts; want one 201 and 19 × 409", first.ID, len(conflicts))
	}
	for _, e := range conflicts {
		if e.Body.RolloutID != first.ID {
			t.Errorf("409 names %q, want the started rollout %s", e.Body.RolloutID, first.ID)
		}
	}
	_, err = c.Start(ctx, api.StartRequest{Fleet: "lab", Revision: "B"})
	var conflict *api.Error
	if !errors.As(err, &conflict) || conflict.Status != http.StatusConflict || conflict.Body.RolloutID != first.ID || !strings.Contains(conflict.Body.Message, first.RunID) {
		t.Errorf("second start: %v, want 409 naming %s", err, first.ID)
	}

	var phases []workflows.Phase
	triedEarly, approved := false, false
	ro, err := c.Wait(ctx, first.ID, 100*time.Millisecond, func(ro api.Rollout) {
		if len(phases) == 0 || phases[len(phases)-1] != ro.Phase {
			phases = append(phases, ro.Phase)
		}
		switch {
		case ro.Phase == workflows.PhaseProvisioning && !triedEarly:
			triedEarly = true
			if _, err := c.Signal(ctx, first.ID, "approve", api.SignalRequest{}); apiStatus(err) != http.StatusConflict {
				t.Errorf("approve while provisioning: %v, want 409", err)
			}
		case ro.Phase == workflows.PhaseAwaitingApproval && !approved:
			// An approve for a gate not open is refused, naming the open one.
			if _, err := c.Signal(ctx, first.ID, "approve", api.SignalRequest{By: "e2e", Gate: ro.ApprovalGate + 1}); apiStatus(err) != http.StatusConflict ||
				!strings.Contains(err.Error(), fmt.Sprintf("gate %d is", ro.ApprovalGate)) {
				t.Errorf("approve for gate %d at gate %d: %v, want 409 naming the open gate", ro.ApprovalGate+1, ro.ApprovalGate, err)
			}
			if _, err := c.Signal(ctx, first.ID, "approve", api.SignalRequest{By: "e2e", Gate: ro.ApprovalGate}); err != nil {
				t.Errorf("approve: %v", err)
			}
			approved = true
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("phases seen: %v", phases)
	if ro.Phase != workflows.PhaseSucceeded || ro.State != "completed" {
		t.Fatalf("first rollout: %s/%s: %s", ro.State, ro.Phase, ro.Failure)
	}
	if !inOrder(phases) || !slices.Contains(phases, workflows.PhaseAwaitingApproval) || !slices.Contains(phases, workflows.PhaseProvisioning) {
		t.Errorf("phases %v: want provisioning … awaiting-approval … succeeded, in order", phases)
	}
	if len(ro.Steps) == 0 || ro.Steps[0].StartedAt.IsZero() || ro.Steps[0].Attempts < 1 || len(ro.Green) != 2 {
		t.Errorf("finished rollout lacks steps or servers: %+v", ro.Status)
	}

	// An abort through the API during provisioning leaves blue serving A.
	second, err := c.Start(ctx, api.StartRequest{Fleet: "lab", Revision: "B"})
	if err != nil {
		t.Fatal(err)
	}
	waitPhase(t, c, second.ID, workflows.PhaseProvisioning)
	if _, err := c.Signal(ctx, second.ID, "abort", api.SignalRequest{Reason: "api abort", By: "e2e"}); err != nil {
		t.Fatalf("abort: %v", err)
	}
	ro, err = c.Wait(ctx, second.ID, 200*time.Millisecond, nil)
	if err != nil || ro.Phase != workflows.PhaseAborted || !strings.Contains(ro.Failure, "api abort") {
		t.Fatalf("aborted rollout: %v %s: %q", err, ro.Phase, ro.Failure)
	}
	if _, err := c.Signal(ctx, second.ID, "abort", api.SignalRequest{}); apiStatus(err) != http.StatusConflict {
		t.Errorf("abort of an ended rollout: %v, want 409", err)
	}

	// The same through `temporal workflow signal`.
	third, err := c.Start(ctx, api.StartRequest{Fleet: "lab", Revision: "B"})
	if err != nil {
		t.Fatal(err)
	}
	waitPhase(t, c, third.ID, workflows.PhaseProvisioning)
	out, err := exec.Command(requireLab(t), "workflow", "signal", "--address", tl.TemporalAddress(),
		"--workflow-id", third.WorkflowID, "--name", "abort", "--input", `{"reason":"cli abort","by":"ci"}`).CombinedOutput()
	if err != nil {
		t.Fatalf("temporal workflow signal: %v: %s", err, out)
	}
	ro, err = c.Wait(ctx, third.ID, 200*time.Millisecond, nil)
	if err != nil || ro.Phase != workflows.PhaseAborted || !strings.Contains(ro.Failure, "cli abort") {
		t.Fatalf("aborted rollout: %v %s: %q", err, ro.Phase, ro.Failure)
	}
	tl.wantAnswers(t, "after the aborts", "revision A,revision A")

	// A load balancer update through the API, against the real Temporal and
	// the lab's nginx (a validated reload of each where it stands), listed
	// apart from the rollouts.
	upd, err := c.StartRun(ctx, api.LBUpdates, api.LBUpdateRequest{Fleet: "lab", Update: lb.Update{Kind: lb.UpdateConfig}, Reason: "e2e reload"})
	if err != nil {
		t.Fatal(err)
	}
	if run := waitLBUpdate(t, c, upd.ID); run.State != "completed" || run.Status.Phase != workflows.PhaseSucceeded {
		t.Fatalf("load balancer update %s: %s", upd.ID, run.State)
	}
	var listed []string
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		page, err := c.ListRuns(ctx, api.LBUpdates, api.ListOptions{Fleet: "lab", Status: "completed", Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		listed = listed[:0]
		for _, r := range page.Runs {
			listed = append(listed, r.ID+"="+r.State+"@"+r.Fleet)
		}
		if slices.Equal(listed, []string{upd.ID + "=completed@lab"}) {
			break
		}
	}
	if !slices.Equal(listed, []string{upd.ID + "=completed@lab"}) {
		t.Errorf("GET /load-balancer-updates?fleet=lab&status=completed: %v, want %s", listed, upd.ID)
	}
	if page, err := c.ListRuns(ctx, api.LBReplacements, api.ListOptions{Fleet: "lab", Limit: 10}); err != nil || len(page.Runs) != 0 {
		t.Errorf("GET /load-balancer-replacements?fleet=lab: %+v %v, want none", page, err)
	}

	// Malformed requests are the client's mistakes, also against the real
	// Temporal backend: 4xx naming the problem, never a 500.
	for _, req := range []struct{ method, path, body string }{
		{"GET", "/rollouts/rollout-lab:abc", ""},
		{"GET", "/rollouts/rollout-lab:00000000-0000-0000-0000-000000000000", ""},
		{"POST", "/rollouts/rollout-lab:abc/abort", "{}"},
		{"POST", "/rollouts/rollout-lab:abc/rollback", "{}"},
		{"POST", "/rollouts/rollout-lab:abc/approve", "{}"},
		{"POST", "/rollouts/rollout-lab:abc/retry", ""},
		{"POST", "/rollouts/rollout-lab:abc/cleanup", "{}"},
		{"GET", "/rollouts/rollout-nosuchfleet", ""},
		{"GET", "/rollouts?page_token=bm90LWEtdG9rZW4", ""},
		{"GET", "/rollouts?page_token=%25%25", ""},
		{"GET", "/rollouts?limit=-3", ""},
		{"POST", "/rollouts", `{"fleet":"nosuchfleet"}`},
		{"POST", "/rollouts", `{"fleet":"lab","revision":"../../etc"}`},
	} {
		r, err := http.NewRequest(req.method, c.URL+req.path, strings.NewReader(req.body))
		if err != nil {
			t.Fatal(err)
		}
		r.Header.Set("Authorization", "Bearer "+apiToken)
		r.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode < 400 || resp.StatusCode >= 500 {
			t.Errorf("%s %s → %d, want a 4xx", req.method, req.path, resp.StatusCode)
		}
	}

	// The list, newest first, and the search attributes behind it (Fleet,
	// Phase, Revision). The visibility store lags the workflows a little.
	want := []string{third.ID + "=aborted@B", second.ID + "=aborted@B", first.ID + "=succeeded@A"}
	var ids []string
	var out2 []byte
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		page, err := c.List(ctx, api.ListOptions{Fleet: "lab", Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		ids = ids[:0]
		for _, r := range page.Rollouts {
			ids = append(ids, r.ID+"="+string(r.Phase)+"@"+r.Revision)
		}
		out2, err = exec.Command(requireLab(t), "workflow", "list", "--output", "json", "--address", tl.TemporalAddress(), "--query", `Fleet="lab" AND Phase="aborted" AND Revision="B"`).CombinedOutput()
		if err != nil {
			t.Fatalf("temporal workflow list: %v: %s", err, out2)
		}
		aborted := string(out2)
		if slices.Equal(ids, want) && strings.Contains(aborted, second.RunID) && strings.Contains(aborted, third.RunID) && !strings.Contains(aborted, first.RunID) {
			return
		}
	}
	t.Errorf("GET /rollouts?fleet=lab: %v, want %v", ids, want)
	t.Errorf("temporal workflow list --query 'Fleet=\"lab\" AND Phase=\"aborted\" AND Revision=\"B\"' lists:\n%s", out2)
}

// waitLBUpdate follows load balancer update id through the API until it
// ends, for at most 3 minutes, and returns it as it ended.
func waitLBUpdate(t *testing.T, c *api.Client, id string) api.WorkflowRun[workflows.Status] {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	run, err := api.Poll(ctx, 200*time.Millisecond, func(ctx context.Context) (api.WorkflowRun[workflows.Status], string, error) {
		var r api.WorkflowRun[workflows.Status]
		err := c.ReadRun(ctx, api.LBUpdates, id, &r)
		return r, r.State, err
	}, nil)
	if err != nil || run.Status == nil {
		t.Fatalf("load balancer update %s: %v", id, err)
	}
	return run
}
