package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dnsroll/dnsroll/api"
	"github.com/dnsroll/dnsroll/config"
	"github.com/dnsroll/dnsroll/workflows"
)

// lbAPI answers the load balancer routes: a replacement lbreplace-lab:r1
// that waits for the glue, drains and succeeds over three reads, and an
// update lbupdate-lab:r2 that failed. It records each request's body by
// "METHOD path".
type lbAPI struct {
	reads  int
	bodies map[string]string
	// end, when set, ends the replacement as it says instead of succeeding.
	end func(run *api.WorkflowRun[workflows.LBReplaceStatus])
}

func newLBAPI(t *testing.T) (*fakeAPI, *lbAPI) {
	f := newFakeAPI(t, 0)
	l := &lbAPI{bodies: map[string]string{}}
	f.more = l.answer
	return f, l
}

func (l *lbAPI) answer(method, path string, body []byte) any {
	l.bodies[method+" "+path] = string(body)
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	replace := api.WorkflowRun[workflows.LBReplaceStatus]{ID: "lbreplace-lab:r1", WorkflowID: "lbreplace-lab", RunID: "r1", Fleet: "lab", State: "running",
		Status: &workflows.LBReplaceStatus{Fleet: "lab", Domain: "example.com", Run: workflows.Run{Phase: workflows.PhaseAwaitingGlue, StartedAt: t0, Steps: []*workflows.Step{{Name: "CreateLoadBalancer", Target: "lb1-next", State: workflows.StepSucceeded, StartedAt: t0, EndedAt: t0.Add(2 * time.Second), Attempts: 1}}},
			Glue: workflows.GlueStatus{Instructions: "set lb1.example.com to 192.0.2.10\nset lb2.example.com to 192.0.2.11"}}}
	update := api.WorkflowRun[workflows.Status]{ID: "lbupdate-lab:r2", WorkflowID: "lbupdate-lab", RunID: "r2", Fleet: "lab", State: "failed",
		Status: &workflows.Status{Fleet: "lab", Run: workflows.Run{Phase: workflows.PhaseRolledBack, StartedAt: t0, EndedAt: t0.Add(5 * time.Second), Steps: []*workflows.Step{{Name: "Update", Target: "lb1", State: workflows.StepFailed, StartedAt: t0, EndedAt: t0.Add(time.Second), Attempts: 1, Error: "nginx -t: bad directive"}}},
			Failure: "Update lb1 failed; lb1 has its previous config back"}}
	switch method + " " + path {
	case "POST /load-balancer-replacements":
		return api.LBStarted{ID: replace.ID, WorkflowID: replace.WorkflowID, RunID: replace.RunID, Fleet: "lab"}
	case "POST /load-balancer-updates":
		return api.LBStarted{ID: update.ID, WorkflowID: update.WorkflowID, RunID: update.RunID, Fleet: "lab"}
	case "GET /load-balancer-replacements/lbreplace-lab:r1":
		st := replace.Status
		switch l.reads++; {
		case l.reads == 2:
			st.Phase, st.Glue.Instructions = workflows.PhaseDraining, ""
			st.Drain = &workflows.DrainStatus{QPS: map[string]float64{"lb1": 12.5, "lb2": 0}, TimeLeft: config.Duration(30 * time.Second),
				Until: t0.Add(5 * time.Minute), GiveUpAt: t0.Add(24 * time.Hour)}
		case l.reads > 2:
			replace.State, st.Phase, st.EndedAt = "completed", workflows.PhaseSucceeded, t0.Add(90*time.Second)
			st.Warnings = []string{"update the fleet config: load_balancers lb1 address is now 192.0.2.10 (was 192.0.2.1)"}
			if l.end != nil {
				l.end(&replace)
			}
		}
		return replace
	case "GET /load-balancer-updates/lbupdate-lab", "GET /load-balancer-updates/lbupdate-lab:r2":
		return update
	case "GET /load-balancer-replacements/lbreplace-gate:r3":
		gate := replace
		gate.ID, gate.WorkflowID, gate.RunID = "lbreplace-gate:r3", "lbreplace-gate", "r3"
		st := *replace.Status
		st.Phase, st.Glue, st.ApproveBy, st.ApprovalGate = workflows.PhaseAwaitingApproval, workflows.GlueStatus{}, t0.Add(time.Hour), 1
		st.Steps = append(st.Steps, &workflows.Step{Name: "AwaitApproval", Target: "lab", State: workflows.StepRunning, StartedAt: t0, Phase: workflows.PhaseAwaitingApproval})
		gate.Status = &st
		return gate
	case "GET /load-balancer-updates":
		return api.RunPage{Runs: []api.RunSummary{{ID: update.ID, Fleet: "lab", State: update.State, StartedAt: t0, EndedAt: t0.Add(5 * time.Second)}}}
	case "GET /load-balancer-replacements":
		return api.RunPage{Runs: []api.RunSummary{{ID: replace.ID, Fleet: "lab", State: replace.State, StartedAt: t0}}}
	}
	if name, ok := strings.CutPrefix(path, "/load-balancer-"); ok && method == "POST" {
		i := strings.LastIndex(name, "/")
		acc := api.LBAccepted{ID: "latest", Signal: name[i+1:]}
		if strings.Contains(name, "lbupdate-idle") {
			acc.Warning = "no worker answered the status query of load balancer update lbupdate-idle"
		}
		return acc
	}
	return nil
}

// --quiet-qps takes a rate: a word that parses as a float but is not one
// (NaN, Inf), a negative rate or 0 (which the workflow would read as the
// default) is refused at the flag, before any request.
func TestCLILBReplaceQuietQPS(t *testing.T) {
	for _, v := range []string{"NaN", "Inf", "-1", "0", "lots"} {
		_, errOut, code := cli(t, "lb", "replace", "--fleet", "lab", "--domain", "example.com", "--quiet-qps", v)
		if code == 0 || !strings.Contains(errOut, "for flag -quiet-qps: must be a rate in queries per second above 0, such as 0.5") {
			t.Errorf("--quiet-qps %s: exit %d, stderr %q", v, code, errOut)
		}
	}
}

// replace --wait sends what the flags say, prints the glue to set and the
// drain as they change, and exits 0 when the replacement succeeds.
func TestCLILBReplaceWait(t *testing.T) {
	f, l := newLBAPI(t)
	// A space after a comma is the list's, not the server's.
	out, errOut, code := cli(t, "lb", "replace", "--fleet", "lab", "--domain", "example.com", "--parent", "127.0.0.1:5399, 127.0.0.2:53",
		"--quiet", "30s", "--reason", "kernel 6.12", "--wait", "--poll", "100ms")
	if code != 0 {
		t.Fatalf("exit %d; stdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	var req api.LBReplaceRequest
	if err := json.Unmarshal([]byte(l.bodies["POST /load-balancer-replacements"]), &req); err != nil {
		t.Fatal(err)
	}
	if req.Fleet != "lab" || req.Domain != "example.com" || strings.Join(req.Parent, " ") != "127.0.0.1:5399 127.0.0.2:53" ||
		req.Drain.Quiet != config.Duration(30*time.Second) || req.GlueWait != 0 || req.Reason != "kernel 6.12" {
		t.Errorf("request %+v", req)
	}
	wantAll(t, "stdout", out,
		"started load balancer replacement lbreplace-lab:r1",
		"==> awaiting-glue",
		"at the registrar:\n      set lb1.example.com to 192.0.2.10\n      set lb2.example.com to 192.0.2.11\n    then: dnsroll lb glue-updated --fleet lab",
		"==> draining",
		"drain: lb1 12.5 q/s, lb2 0.0 q/s; 30s left",
		// The drain's time left is the least; how long it may last, and
		// how to end it, once.
		"drain: unless the old load balancers fall quiet first, it ends at 2026-12-02 10:00:00 UTC (max_wait); to end it now: dnsroll lb force-drain --fleet lab --reason '...'\n",
		// What the operator must do next, from the status's warnings.
		"warning: update the fleet config: load_balancers lb1 address is now 192.0.2.10 (was 192.0.2.1)\n",
		"load balancer replacement lbreplace-lab:r1 succeeded in 1m30s",
	)
	if n := strings.Count(out, "at the registrar:"); n != 1 {
		t.Errorf("the glue instructions printed %d times:\n%s", n, out)
	}
	if l.reads != 3 || strings.Contains(out+errOut, f.token) {
		t.Errorf("%d reads (want 3), or the token printed:\n%s", l.reads, out)
	}
}

// replace --wait exits as rollout --wait does: 3 when a person must act
// (cleanup-failed, or failed once the old load balancers were being
// deleted), 2 when the old ones serve.
func TestCLILBReplaceWaitExitStatus(t *testing.T) {
	for _, tc := range []struct {
		name      string
		phase     workflows.Phase
		noWayBack string
		code      int
	}{
		{"cleanup-failed", workflows.PhaseCleanupFailed, "", 3},
		{"failed past the point of no return", workflows.PhaseFailed, "the old load balancers are being deleted", 3},
		{"failed with the old ones serving", workflows.PhaseFailed, "", 2},
		{"aborted", workflows.PhaseAborted, "", 2},
		// Terminated mid-drain: no undo ran, both sets of load balancers.
		{"terminated mid-way", workflows.PhaseDraining, "", 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, l := newLBAPI(t)
			l.end = func(run *api.WorkflowRun[workflows.LBReplaceStatus]) {
				run.State, run.Status.Phase, run.Status.NoWayBack, run.Status.Failure = "failed", tc.phase, tc.noWayBack, "Delete lb2 failed"
			}
			out, errOut, code := cli(t, "lb", "replace", "--fleet", "lab", "--domain", "example.com", "--wait", "--poll", "100ms")
			if code != tc.code || !strings.Contains(errOut, "Delete lb2 failed") {
				t.Errorf("exit %d, want %d; stdout:\n%s\nstderr:\n%s", code, tc.code, out, errOut)
			}
			if midway := !tc.phase.Done(); midway != strings.Contains(errOut, "none of its undo steps ran") {
				t.Errorf("ended mid-way %v, but stderr says otherwise:\n%s", midway, errOut)
			}
		})
	}
}

// lb list asks for the kind --update picks, with the filters given, and
// prints one row a run.
func TestCLILBList(t *testing.T) {
	f, _ := newLBAPI(t)
	for _, tt := range []struct {
		args    []string
		request string
		row     string
	}{
		{[]string{"lb", "list"}, "GET /load-balancer-replacements?limit=20", "lbreplace-lab:r1  lab    running"},
		{[]string{"lb", "list", "--update", "--fleet", "lab", "--status", "failed", "--limit", "5"},
			"GET /load-balancer-updates?fleet=lab&limit=5&status=failed", "lbupdate-lab:r2  lab    failed"},
	} {
		f.requests = nil
		out, errOut, code := cli(t, tt.args...)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if code != 0 || len(lines) != 2 || !strings.HasPrefix(lines[0], "ID") || !strings.HasPrefix(lines[1], tt.row) {
			t.Errorf("%v: exit %d, stdout:\n%s\nstderr:\n%s", tt.args, code, out, errOut)
		}
		if len(f.requests) != 1 || f.requests[0] != tt.request {
			t.Errorf("%v asked %q, want %q", tt.args, f.requests, tt.request)
		}
	}
}

func TestCLILBUpdateStatusAndSignals(t *testing.T) {
	f, l := newLBAPI(t)
	out, errOut, code := cli(t, "lb", "update", "--fleet", "lab", "--lb", "lb1, lb2", "--kind", "console", "--lua", "setMaxUDPOutstanding(65535)", "--undo-lua", "setMaxUDPOutstanding(10240)")
	if code != 0 || out != "started load balancer update lbupdate-lab:r2\n" {
		t.Errorf("update: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	var req api.LBUpdateRequest
	if err := json.Unmarshal([]byte(l.bodies["POST /load-balancer-updates"]), &req); err != nil ||
		strings.Join(req.LoadBalancers, " ") != "lb1 lb2" || req.Update.Kind != "console" || req.Update.UndoLua != "setMaxUDPOutstanding(10240)" {
		t.Errorf("update request %+v (%v)", req, err)
	}

	out, _, code = cli(t, "lb", "status", "--fleet", "lab", "--update")
	if code != 0 {
		t.Errorf("status: exit %d", code)
	}
	wantAll(t, "status", out, "load balancer update lbupdate-lab:r2", "state     failed, phase rolled-back", "Update lb1", "error: nginx -t: bad directive", "failure: Update lb1 failed")

	_, errOut, code = cli(t, "lb", "status", "--id", "lbupdate-lab:r2", "--follow", "--poll", "100ms")
	if code != 2 || !strings.Contains(errOut, "load balancer update lbupdate-lab:r2 rolled-back: Update lb1 failed") {
		t.Errorf("status --follow of a failed update: exit %d, stderr %q; want 2 and the failure", code, errOut)
	}

	for _, tt := range []struct {
		args    []string
		request string // "" for none sent
		body    string // in the request's body
		errText string // in stderr, when it fails
	}{
		{args: []string{"force-drain", "--fleet", "lab"}, errText: "force-drain needs --reason"},
		{args: []string{"force-drain", "--fleet", "lab", "--reason", " "}, errText: "force-drain needs --reason"},
		{args: []string{"force-drain", "--fleet", "lab", "--reason", "resolvers checked", "--by", "alice"},
			request: "POST /load-balancer-replacements/lbreplace-lab/force-drain", body: `{"reason":"resolvers checked","by":"alice"}`},
		{args: []string{"glue-updated", "--id", "lbreplace-lab:r1"}, request: "POST /load-balancer-replacements/lbreplace-lab:r1/glue-updated"},
		{args: []string{"zone-revision", "--fleet", "lab", "--revision", "8f3c2e1"}, request: "POST /load-balancer-replacements/lbreplace-lab/zone-revision", body: `"revision":"8f3c2e1"`},
		{args: []string{"zone-revision", "--id", "lbupdate-lab:r2", "--revision", "r2"}, errText: "a load balancer update takes only abort, not zone-revision"},
		{args: []string{"abort", "--fleet", "lab", "--update"}, request: "POST /load-balancer-updates/lbupdate-lab/abort"},
		{args: []string{"rollback", "--fleet", "lab"}, request: "POST /load-balancer-replacements/lbreplace-lab/rollback"},
		{args: []string{"rollback", "--id", "lbupdate-lab:r2"}, errText: "a load balancer update takes only abort, not rollback"},
		{args: []string{"approve", "--fleet", "lab", "--by", "alice"}, request: "POST /load-balancer-replacements/lbreplace-lab/approve", body: `"by":"alice"`},
		{args: []string{"approve", "--fleet", "lab", "--gate", "1"}, errText: "--id lbreplace-lab:<run id>"},
		{args: []string{"approve", "--id", "lbreplace-lab:r1", "--gate", "1"}, request: "POST /load-balancer-replacements/lbreplace-lab:r1/approve", body: `"gate":1`},
		{args: []string{"approve", "--id", "lbupdate-lab:r2"}, errText: "a load balancer update takes only abort, not approve"},
		{args: []string{"abort"}, errText: "--fleet or --id is required"},
	} {
		f.requests, l.bodies = nil, map[string]string{}
		out, errOut, code := cli(t, append([]string{"lb"}, tt.args...)...)
		switch {
		case tt.errText != "" && (code != 1 || !strings.Contains(errOut, tt.errText) || len(f.requests) != 0):
			t.Errorf("%v: exit %d, stderr %q, requests %v; want exit 1 saying %q and no request", tt.args, code, errOut, f.requests, tt.errText)
		case tt.request == "":
		case code != 0 || !strings.HasPrefix(out, "sent "+tt.args[0]+" to "):
			t.Errorf("%v: exit %d, stdout %q, stderr %q", tt.args, code, out, errOut)
		case !strings.Contains(l.bodies[tt.request], tt.body):
			t.Errorf("%v: sent %v, want %s with body %s", tt.args, l.bodies, tt.request, tt.body)
		}
	}
}

// A signal the API sent without a worker to check the run's phase is
// reported as sent, with the API's warning on stderr.
func TestCLILBSignalWithNoWorker(t *testing.T) {
	newLBAPI(t)
	out, errOut, code := cli(t, "lb", "abort", "--id", "lbupdate-idle", "--reason", "workers down")
	if code != 0 || !strings.Contains(out, "sent abort to latest") {
		t.Fatalf("exit %d; stdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	wantAll(t, "stderr", errOut, "warning: no worker answered the status query")
}

// An empty --config-file is refused, not sent as "reload the config in
// place", which an empty config means to the API.
func TestCLILBUpdateEmptyConfigFile(t *testing.T) {
	_, l := newLBAPI(t)
	empty := filepath.Join(t.TempDir(), "nginx.conf")
	if err := os.WriteFile(empty, []byte(" \n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, errOut, code := cli(t, "lb", "update", "--fleet", "lab", "--kind", "config", "--config-file", empty)
	if code == 0 || !strings.Contains(errOut, "--config-file: "+empty+" is empty") {
		t.Errorf("exit %d, stderr %q; want a refusal naming the empty file", code, errOut)
	}
	if body, ok := l.bodies["POST /load-balancer-updates"]; ok {
		t.Errorf("an update was started: %s", body)
	}
}

// An update or a replacement without the fleet, or a --config-file for
// an update of another kind, is refused naming the flag, before any
// request.
func TestCLILBStartMistakes(t *testing.T) {
	f, _ := newLBAPI(t)
	conf := filepath.Join(t.TempDir(), "nginx.conf")
	if err := os.WriteFile(conf, []byte("events {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"lb", "update", "--kind", "config"}, "--fleet is required"},
		{[]string{"lb", "replace", "--domain", "example.com"}, "--fleet is required"},
		{[]string{"lb", "update", "--fleet", "lab", "--kind", "binary", "--config-file", conf}, "--config-file is only for --kind config"},
	} {
		f.requests = nil
		out, errOut, code := cli(t, tc.args...)
		if code != 1 || !strings.Contains(errOut, tc.want) || out != "" || len(f.requests) != 0 {
			t.Errorf("%v: exit %d, stdout %q, stderr %q, requests %v; want exit 1 saying %q, before any request", tc.args, code, out, errOut, f.requests, tc.want)
		}
	}
}

// A replacement at its approval gate shows its deadline and the lb
// commands that approve or abort it, not a rollout's.
func TestCLILBReplacementAtTheGate(t *testing.T) {
	newLBAPI(t)
	out, errOut, code := cli(t, "lb", "status", "--id", "lbreplace-gate:r3")
	if code != 0 {
		t.Fatalf("exit %d, stderr %s", code, errOut)
	}
	wantAll(t, "status", out, "approve by 2026-12-01 11:00:00 UTC, or it is aborted",
		"approve: dnsroll lb approve --id lbreplace-gate:r3 --gate 1 --reason '...'", "abort:   dnsroll lb abort --id lbreplace-gate:r3 --reason '...'")
	if strings.Contains(out, "dnsroll rollout") {
		t.Errorf("a replacement's gate names rollout commands:\n%s", out)
	}
}

// A reason on several lines, such as a commit message, is sent as one
// line, which the API wants (it refuses control characters).
func TestCLIReasonOnOneLine(t *testing.T) {
	_, l := newLBAPI(t)
	_, errOut, code := cli(t, "lb", "replace", "--fleet", "lab", "--domain", "example.com", "--reason", "kernel 6.12\n\nfixes the\tdrain")
	var req api.LBReplaceRequest
	if err := json.Unmarshal([]byte(l.bodies["POST /load-balancer-replacements"]), &req); err != nil || code != 0 {
		t.Fatalf("exit %d, %v: %s", code, err, errOut)
	}
	if req.Reason != "kernel 6.12 fixes the drain" {
		t.Errorf("reason %q, want it on one line", req.Reason)
	}
}

// lb status --json --follow of a fleet's latest run follows the run it
// read first, not one the fleet started since, as rollout status does.
func TestCLILBStatusFollowsTheRunItShows(t *testing.T) {
	f := newFakeAPI(t, 0)
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	run := func(id, state string, phase workflows.Phase) api.WorkflowRun[workflows.Status] {
		return api.WorkflowRun[workflows.Status]{ID: "lbupdate-lab:" + id, WorkflowID: "lbupdate-lab", RunID: id, Fleet: "lab", State: state,
			Status: &workflows.Status{Fleet: "lab", Run: workflows.Run{Phase: phase, StartedAt: t0, Steps: []*workflows.Step{}}}}
	}
	latest := 0
	f.more = func(method, path string, _ []byte) any {
		switch method + " " + path {
		case "GET /load-balancer-updates/lbupdate-lab":
			// The first read is r1, running; then r2 runs and succeeds.
			if latest++; latest == 1 {
				return run("r1", "running", workflows.PhaseUpdatingLBs)
			}
			return run("r2", "completed", workflows.PhaseSucceeded)
		case "GET /load-balancer-updates/lbupdate-lab:r1":
			return run("r1", "failed", workflows.PhaseRolledBack)
		}
		return nil
	}
	out, errOut, code := cli(t, "lb", "status", "--fleet", "lab", "--update", "--json", "--follow", "--poll", "100ms")
	if code != 2 || strings.Contains(out+errOut, "lbupdate-lab:r2") {
		t.Errorf("exit %d, want 2 (lbupdate-lab:r1 rolled back), and no word of lbupdate-lab:r2; stdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
}

// A drain ends at the latest at max_wait, or once the TTLs have passed
// when they run past it: the line says the later of the two.
func TestDrainEndSaysTheLaterOfMaxWaitAndTheTTLs(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		until, giveUp time.Time
		want          string
	}{
		{t0.Add(time.Hour), t0.Add(24 * time.Hour), "it ends at 2026-12-02 10:00:00 UTC (max_wait)"},
		{t0.Add(48 * time.Hour), t0.Add(24 * time.Hour), "it ends at 2026-12-03 10:00:00 UTC (max_wait)"},
	} {
		got := drainEnd(&workflows.LBReplaceStatus{Fleet: "lab", Drain: &workflows.DrainStatus{Until: tc.until, GiveUpAt: tc.giveUp}})
		if !strings.Contains(got, tc.want) || !strings.Contains(got, "dnsroll lb force-drain --fleet lab") {
			t.Errorf("TTLs until %s, max_wait at %s: %q; want %q and the force-drain command", tc.until, tc.giveUp, got, tc.want)
		}
	}
}
