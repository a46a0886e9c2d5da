package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/activities"
	"github.com/dnsroll/dnsroll/api"
	"github.com/dnsroll/dnsroll/internal/testfiles"
	"github.com/dnsroll/dnsroll/workflows"
	"github.com/dnsroll/dnsroll/zone"
)

// cliDeadline is well past the longest command a test runs through cli
// (about a second).
const cliDeadline = 20 * time.Second

// cli runs dnsroll in process with args, as main does, and returns what
// it wrote to its standard output and error, and its exit status. It is
// interrupted at cliDeadline: a worker or API that starts where the test
// wants a refusal then ends, and the test fails on its exit status,
// rather than running until the package's timeout.
func cli(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), cliDeadline)
	defer cancel()
	var out, errb bytes.Buffer
	if err := run(ctx, streams{out: &out, err: &errb}, args); err != nil {
		code = report(&errb, err)
	}
	return out.String(), errb.String(), code
}

func TestCLIVersionAndUsage(t *testing.T) {
	out, errOut, code := cli(t, "version")
	if code != 0 || !strings.HasPrefix(out, "dnsroll ") || errOut != "" {
		t.Errorf("version: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	for _, args := range [][]string{nil, {"nosuch"}} {
		out, errOut, code := cli(t, args...)
		if code != 1 || out != "" || !strings.Contains(errOut, "Usage: dnsroll <command>") {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit 1 and the usage on stderr", args, code, out, errOut)
		}
	}
	// Help asked for goes to stdout, so that it pipes into a pager, and
	// exits 0.
	for _, args := range [][]string{{"--help"}, {"help"}, {"rollout", "list", "--help"}, {"rollout", "list", "--fleet", "lab", "-h"}} {
		out, errOut, code = cli(t, args...)
		if code != 0 || errOut != "" || !strings.Contains(out, "Usage: dnsroll ") {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want the usage on stdout", args, code, out, errOut)
		}
	}
}

// The usage names each command's subcommands from the command's own usage,
// and each of them is routed: its --help exits 0 with its usage.
func TestCLISubcommandsListedAreRouted(t *testing.T) {
	_, usage, _ := cli(t)
	for _, name := range []string{"lb", "rollout"} {
		subs := subcommands(commands[name].subUsage)
		if len(subs) < 5 || !strings.Contains(usage, "("+strings.Join(subs, "|")+")") {
			t.Errorf("dnsroll's usage does not list %s's subcommands %v:\n%s", name, subs, usage)
		}
		for _, sub := range subs {
			out, errOut, code := cli(t, name, sub, "--help")
			if code != 0 || errOut != "" || !strings.Contains(out, "Usage: dnsroll "+name+" "+sub) {
				t.Errorf("%s %s --help: exit %d, stdout %q, stderr %q", name, sub, code, out, errOut)
			}
		}
	}
	if _, errOut, code := cli(t, "lb", "nosuch"); code == 0 || !strings.Contains(errOut, "nosuch") {
		t.Errorf("lb nosuch: exit %d, stderr %q; want an error naming it", code, errOut)
	}
}

func TestCLIFleetValidate(t *testing.T) {
	out, errOut, code := cli(t, "fleet", "validate", "../../fleets/lab.yaml", "--revision", "A")
	if code != 0 {
		t.Fatalf("exit %d, stderr %s", code, errOut)
	}
	wantAll(t, "stdout", out, "ok: fleet lab: 2 nameservers, 2 load balancers, 1 zone\n", "ok: playbooks ", "ok: zone example.com", "skipped: live checks")

	// The lab fleet copied elsewhere: its relative playbook paths miss.
	moved := filepath.Join(t.TempDir(), "lab.yaml")
	b := repoFile(t, "fleets/lab.yaml")
	testfiles.Write(t, moved, string(b))
	out, errOut, code = cli(t, "fleet", "validate", moved)
	if code != 1 || out != "" || !strings.Contains(errOut, "ansible.nameserver_playbook: ") {
		t.Errorf("missing playbooks: exit %d, stdout %q, stderr %q; want exit 1 naming the field", code, out, errOut)
	}

	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, bytes.Replace(b, []byte("fleet: lab"), []byte("fleet: Lab_1"), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	out, errOut, code = cli(t, "fleet", "validate", bad)
	if code != 1 || out != "" || !strings.Contains(errOut, "fleet: must be") {
		t.Errorf("bad fleet name: exit %d, stdout %q, stderr %q; want exit 1 naming the field", code, out, errOut)
	}
}

// With a zone file path that holds no {revision}, every revision deploys
// the same files, and rolling back to an earlier revision deploys the
// current ones: validate --revision says so, and still passes.
func TestCLIFleetValidateWarnsOfAFixedZonePath(t *testing.T) {
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	b := repoFile(t, "fleets/lab.yaml")
	zone := repoFile(t, "lab/zones/A/example.com.zone")
	dir := t.TempDir()
	if err := os.Symlink(filepath.Join(repo, "ansible"), filepath.Join(dir, "ansible")); err != nil {
		t.Fatal(err)
	}
	testfiles.Write(t, filepath.Join(dir, "zones", "example.com.zone"), string(zone))
	fixed := filepath.Join(dir, "fleets", "lab.yaml")
	testfiles.Write(t, fixed, strings.Replace(string(b), "../lab/zones/{revision}/example.com.zone", "../zones/example.com.zone", 1))
	out, errOut, code := cli(t, "fleet", "validate", fixed, "--revision", "B")
	if code != 0 {
		t.Fatalf("exit %d, stderr %s", code, errOut)
	}
	wantAll(t, "stdout", out, "ok: zone example.com", "warning: --revision B: no zone file path holds {revision}")
	if out, _, _ := cli(t, "fleet", "validate", "../../fleets/lab.yaml", "--revision", "B"); strings.Contains(out, "no zone file path") {
		t.Errorf("warned of a fleet whose zone files depend on the revision:\n%s", out)
	}
}

// fleet validate DIR checks every fleet file in the directory, as a worker
// started with --fleets DIR would, and fails if any fails, naming each.
func TestCLIFleetValidateDirectory(t *testing.T) {
	out, errOut, code := cli(t, "fleet", "validate", "../../fleets", "--revision", "A")
	if code != 0 {
		t.Fatalf("the repository's fleets: exit %d, stderr %s", code, errOut)
	}
	wantAll(t, "stdout", out, "== ../../fleets/lab.yaml", "ok: fleet lab:", "== ../../fleets/machines.yaml", "ok: fleet machines:")

	dir := t.TempDir()
	b := repoFile(t, "fleets/lab.yaml")
	testfiles.Write(t, filepath.Join(dir, "lab.yaml"), string(b))
	testfiles.Write(t, filepath.Join(dir, "other.yml"), string(b))
	out, errOut, code = cli(t, "fleet", "validate", dir)
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	wantAll(t, "stdout", out, "== "+filepath.Join(dir, "lab.yaml"), "== "+filepath.Join(dir, "other.yml"))
	wantAll(t, "stderr", errOut, "lab.yaml: ", "ansible.nameserver_playbook: ", "other.yml: fleet files are named <fleet>.yaml", "2 of 2 fleet files failed")

	empty := t.TempDir()
	if _, errOut, code = cli(t, "fleet", "validate", empty); code != 1 || !strings.Contains(errOut, "no fleet files (*.yaml) in "+empty) {
		t.Errorf("an empty directory: exit %d, stderr %q", code, errOut)
	}
}

// A worker reads its fleets directory from $DNSROLL_FLEETS, as the API
// does, so that one environment file steers both; it checks it before it
// dials Temporal.
func TestWorkerFleetsFromTheEnvironment(t *testing.T) {
	empty := t.TempDir()
	t.Setenv("DNSROLL_FLEETS", empty)
	t.Setenv("DNSROLL_STATE_DIR", t.TempDir())
	if _, errOut, code := cli(t, "worker", "--temporal-address", "127.0.0.1:1"); code != 1 || !strings.Contains(errOut, "no fleet files (*.yaml) in "+empty) {
		t.Errorf("worker with $DNSROLL_FLEETS empty: exit %d, stderr %q", code, errOut)
	}
}

// repoFile is the file at path in the repository.
func repoFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("../..", path))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// wantAll checks that got, which is what, contains every one of wants.
func wantAll(t *testing.T, what, got string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(got, w) {
			t.Errorf("%s lacks %q:\n%s", what, w, got)
		}
	}
}

// wantErr checks err: none when wants is empty, else one that says each.
func wantErr(t *testing.T, err error, wants ...string) {
	t.Helper()
	switch {
	case len(wants) == 0 && err != nil:
		t.Errorf("err = %v, want none", err)
	case len(wants) > 0 && err == nil:
		t.Errorf("no error, want one saying %q", wants)
	case err != nil:
		wantAll(t, "the error", err.Error(), wants...)
	}
}

// fakeAPI answers the dnsroll API's rollout calls with canned rollouts: a
// start of fleet lab, then rollout-lab:r1 running for polls reads and
// failed afterwards.
type fakeAPI struct {
	t     *testing.T
	token string
	polls int

	mu    sync.Mutex
	reads int
	// fail is how many reads of the rollout answer 502, as a proxy
	// in front of a restarting API does.
	fail int
	// failStarts is how many starts answer 502 after they started, as a
	// proxy whose API restarted once it had started the rollout; keys are
	// the starts' Idempotency-Keys.
	failStarts int
	keys       []string
	requests   []string
	// more answers the requests the rollout routes do not: the body to
	// send, or nil for a 404. It is called with the request's body.
	more func(method, path string, body []byte) any
	// end, when set, changes the rollout as it ended (cleanup-failed).
	end func(*api.Rollout)
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, r.Method+" "+r.URL.String())
	if r.Header.Get("Authorization") != "Bearer "+f.token {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	step := &workflows.Step{Name: "EnsureServer", Target: "ns1-next", State: workflows.StepRunning, StartedAt: t0}
	ro := api.Rollout{ID: "rollout-lab:r1", WorkflowID: "rollout-lab", RunID: "r1", State: "running",
		Status: workflows.Status{Fleet: "lab", Revision: "B", Bundle: "sha256:" + strings.Repeat("ab", 32), Run: workflows.Run{Phase: workflows.PhaseProvisioning, StartedAt: t0, Steps: []*workflows.Step{step}},
			Changes:  &activities.Changes{Live: "sha256:" + strings.Repeat("cd", 32), ZonesChanged: activities.Names{Count: 21, Names: []string{"example.com"}}, Unknown: "unknown: this worker has no manifest of sha256:cdcdcdcdcdcd…"},
			Backends: map[string][]workflows.Backend{"lb1": {{Server: "ns1", Weight: 100}}, "lb2": {{Server: "ns2", Weight: 100}, {Server: "ns2-next"}}}}}
	var body any
	switch r.Method + " " + r.URL.Path {
	case "POST /rollouts":
		f.keys = append(f.keys, r.Header.Get("Idempotency-Key"))
		if f.failStarts > 0 {
			f.failStarts--
			http.Error(w, "<html><body>502 Bad Gateway</body></html>", http.StatusBadGateway)
			return
		}
		var req api.StartRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Fleet != "lab" || req.Revision != "B" {
			f.t.Errorf("start request %+v (%v), want fleet lab, revision B", req, err)
		}
		body = api.Started{ID: ro.ID, WorkflowID: ro.WorkflowID, RunID: ro.RunID, Fleet: "lab", Revision: "B"}
	case "GET /rollouts/rollout-lab:r1":
		if f.fail > 0 {
			f.fail--
			http.Error(w, "<html><body>502 Bad Gateway</body></html>", http.StatusBadGateway)
			return
		}
		if f.reads++; f.reads > f.polls {
			step.State, step.EndedAt, step.Error = workflows.StepFailed, t0.Add(3*time.Second), "linode: 503"
			ro.State, ro.Phase, ro.Failure, ro.EndedAt = "failed", workflows.PhaseCleanupFailed, "EnsureServer ns1-next failed", t0.Add(4*time.Second)
			ro.Cleanup = &workflows.Cleanup{Left: []workflows.Leftover{{Kind: "server", Name: "ns1-next", ID: 42, Action: "delete it"}}}
			if f.end != nil {
				f.end(&ro)
			}
		}
		body = ro
	case "GET /rollouts":
		if got := r.URL.Query().Get("fleet"); got != "lab" {
			f.t.Errorf("list for fleet %q, want lab", got)
		}
		page := api.Page{Rollouts: []api.Summary{{ID: ro.ID, Fleet: "lab", Revision: "B", Phase: ro.Phase, State: ro.State, StartedAt: t0}}}
		switch q := r.URL.Query(); {
		case q.Get("page_token") == "page-2":
			page.Rollouts[0].ID = "rollout-lab:r0"
		case q.Get("phase") != "":
			page.Rollouts[0].ID = "rollout-lab:r-" + q.Get("phase")
		default:
			page.NextPageToken = "page-2"
		}
		body = page
	case "POST /rollouts/rollout-lab:r1/abort":
		body = api.Accepted{ID: ro.ID, Signal: "abort"}
	default:
		if f.more != nil {
			b, _ := io.ReadAll(r.Body)
			body = f.more(r.Method, r.URL.Path, b)
		}
		if body == nil {
			http.NotFound(w, r)
			return
		}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(body)
}

// newFakeAPI serves a fakeAPI and points the CLI at it through the
// environment, as a user would.
func newFakeAPI(t *testing.T, polls int) *fakeAPI {
	f := &fakeAPI{t: t, token: "s3cret-token", polls: polls}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	t.Setenv("DNSROLL_API_URL", srv.URL)
	t.Setenv("DNSROLL_API_TOKEN", f.token)
	return f
}

// start --wait follows a rollout step by step and exits 3 with the reason
// when it leaves something to undo, listing it.
func TestCLIRolloutStartWait(t *testing.T) {
	f := newFakeAPI(t, 2)
	out, errOut, code := cli(t, "rollout", "start", "--fleet", "lab", "--revision", "B", "--wait", "--poll", "100ms")
	if code != 3 {
		t.Fatalf("exit %d, want 3; stdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	wantAll(t, "stdout", out,
		"started rollout-lab:r1 (revision B)",
		"==> provisioning",
		"EnsureServer ns1-next    running",
		"EnsureServer ns1-next    failed",
		"error: linode: 503",
		"left to undo:\n  server        ns1-next (Linode 42): delete it",
		"dnsroll rollout cleanup --id rollout-lab:r1",
	)
	if want := "rollout rollout-lab:r1 cleanup-failed: EnsureServer ns1-next failed"; !strings.Contains(errOut, want) {
		t.Errorf("stderr lacks %q:\n%s", want, errOut)
	}
	// Every line once: the printer prints only what changed between polls.
	if n := strings.Count(out, "EnsureServer ns1-next    running"); n != 1 {
		t.Errorf("the running step printed %d times:\n%s", n, out)
	}
	if strings.Contains(out+errOut, f.token) {
		t.Error("the token was printed")
	}
	if f.reads != 3 {
		t.Errorf("%d reads of the rollout, want 3 (two running, one ended)", f.reads)
	}
}

// --wait's exit status tells CI whether a person must act: 3 for a rollout
// that left things to undo or ended past its point of no return, 2 for one
// that failed with blue serving, 0 for success.
func TestCLIWaitExitStatus(t *testing.T) {
	// ended ends the rollout in state and phase with no cleanup to do,
	// and then makes the changes of more.
	ended := func(state string, phase workflows.Phase, failure string, more ...func(*api.Rollout)) func(*api.Rollout) {
		return func(ro *api.Rollout) {
			ro.State, ro.Phase, ro.Cleanup, ro.Failure = state, phase, nil, failure
			for _, m := range more {
				m(ro)
			}
		}
	}
	blueNS1 := func(ro *api.Rollout) { ro.Blue = map[string]dnsroll.Server{"ns1": {ID: 11, Label: "ns1"}} }
	for _, tc := range []struct {
		name string
		end  func(*api.Rollout)
		code int
		// says is what stderr must say, if anything.
		says string
	}{
		{"cleanup-failed", nil, 3, ""},
		{"failed past the point of no return", func(ro *api.Rollout) {
			ro.Phase, ro.Cleanup, ro.NoWayBack = workflows.PhaseFailed, nil, "blue servers are being deleted"
		}, 3, ""},
		{"failed with blue serving", func(ro *api.Rollout) { ro.Phase, ro.Cleanup = workflows.PhaseFailed, nil }, 2, ""},
		{"aborted", func(ro *api.Rollout) { ro.Phase, ro.Cleanup = workflows.PhaseAborted, nil }, 2, ""},
		// Terminated or reset mid-bake: the load balancers are on green
		// with blue alive, and no undo ran: a cleanup puts them back.
		{"terminated mid-bake", ended("terminated", workflows.PhaseBaking, "", blueNS1), 3, "dnsroll rollout cleanup --id rollout-lab:r1"},
		// Before its Plan recorded blue, a cleanup has nothing to point
		// the load balancers back at, and the API refuses one.
		{"terminated while planning", ended("terminated", workflows.PhasePlanning, ""), 3, "none of its undo steps ran; see where it stopped"},
		// Past its point of no return, only a person can finish it.
		{"terminated deleting blue", ended("terminated", workflows.PhaseDeletingBlue, ""), 3, "rename each <label>-next to <label>"},
		{"terminated renaming", ended("terminated", workflows.PhaseRenaming, "", blueNS1), 3, "rename each <label>-next to <label>"},
		// A first rollout's switch has no blue to go back to.
		{"first rollout terminated mid-bake", ended("terminated", workflows.PhaseBaking, "", func(ro *api.Rollout) {
			ro.NoWayBack = "point of no return: there is no blue to go back to"
		}), 3, "rename each <label>-next to <label>"},
		{"succeeded", ended("completed", workflows.PhaseSucceeded, ""), 0, ""},
		// What cleanup --wait follows: the cleanup-only run's success.
		{"cleaned up", ended("completed", workflows.PhaseCleanedUp, "cleaned up after rollout-lab:r0"), 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeAPI(t, 0)
			f.end = tc.end
			out, errOut, code := cli(t, "rollout", "start", "--fleet", "lab", "--revision", "B", "--wait", "--poll", "100ms")
			if code != tc.code {
				t.Errorf("exit %d, want %d; stdout:\n%s\nstderr:\n%s", code, tc.code, out, errOut)
			}
			if !strings.Contains(errOut, tc.says) {
				t.Errorf("stderr lacks %q:\n%s", tc.says, errOut)
			}
		})
	}
}

// status --json --follow keeps standard output one JSON document, the
// rollout as it ended, for CI to parse: the progress goes to standard
// error.
func TestCLIRolloutStatusJSONFollow(t *testing.T) {
	newFakeAPI(t, 2)
	out, errOut, code := cli(t, "rollout", "status", "--id", "rollout-lab:r1", "--json", "--follow", "--poll", "100ms")
	if code != 3 {
		t.Fatalf("exit %d, want 3; stdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	var ro api.Rollout
	dec := json.NewDecoder(strings.NewReader(out))
	if err := dec.Decode(&ro); err != nil || dec.More() {
		t.Fatalf("stdout is not one JSON document (%v):\n%s", err, out)
	}
	if ro.Phase != workflows.PhaseCleanupFailed {
		t.Errorf("stdout's rollout is %s, want the ended one (cleanup-failed)", ro.Phase)
	}
	wantAll(t, "stderr", errOut, "EnsureServer ns1-next    failed", "rollout rollout-lab:r1 cleanup-failed")
}

// status prints its times in the local zone, naming it: the deadlines
// beside them (approve by, a bake's end, a cleanup's next round) come in
// UTC, and an unnamed local time read beside them misleads by hours.
func TestCLIStatusTimesNameTheirZone(t *testing.T) {
	local := time.Local
	time.Local = time.FixedZone("EST", -5*60*60)
	t.Cleanup(func() { time.Local = local })
	newFakeAPI(t, 0)
	out, _, _ := cli(t, "rollout", "status", "--id", "rollout-lab:r1")
	wantAll(t, "rollout status", out, "started   2026-12-01 05:00:00 EST\n", "ended     2026-12-01 05:00:04 EST (4s)\n")
	newLBAPI(t)
	out, _, _ = cli(t, "lb", "status", "--id", "lbupdate-lab:r2")
	wantAll(t, "lb status", out, "started   2026-12-01 05:00:00 EST\n", "ended     2026-12-01 05:00:05 EST (5s)\n")
}

func TestCLIRolloutStatusListAbort(t *testing.T) {
	newFakeAPI(t, 0)
	out, _, code := cli(t, "rollout", "status", "--id", "rollout-lab:r1")
	if code != 0 {
		t.Errorf("status: exit %d", code)
	}
	wantAll(t, "status", out, "rollout   rollout-lab:r1", "fleet     lab (revision B)", "bundle    sha256:"+strings.Repeat("ab", 32),
		"changes against the live revision sha256:cdcdcdcdcdcd…:\n          zones whose serial differs from blue's: 21 (example.com and 20 more)\n          zones added or removed, and Ansible files changed: unknown: this worker has no manifest of sha256:cdcdcdcdcdcd…\n",
		"backends  lb1 → ns1\n          lb2 → ns2, ns2-next (staged)\n",
		"state     failed, phase cleanup-failed", "failure: EnsureServer ns1-next failed", "left to undo:")

	out, _, code = cli(t, "rollout", "status", "--id", "rollout-lab:r1", "--json")
	var ro api.Rollout
	if err := json.Unmarshal([]byte(out), &ro); err != nil || code != 0 || ro.Failure != "EnsureServer ns1-next failed" {
		t.Errorf("status --json: exit %d, %v, failure %q:\n%s", code, err, ro.Failure, out)
	}

	out, _, code = cli(t, "rollout", "list", "--fleet", "lab")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 2 || !strings.HasPrefix(lines[0], "ID") || !strings.Contains(lines[1], "rollout-lab:r1  lab    B") {
		t.Errorf("list: exit %d:\n%s", code, out)
	}

	out, _, code = cli(t, "rollout", "abort", "--id", "rollout-lab:r1", "--reason", "test")
	if code != 0 || out != "sent abort to rollout-lab:r1; follow it with: dnsroll rollout status --id rollout-lab:r1\n" {
		t.Errorf("abort: exit %d, stdout %q", code, out)
	}
}

// status of a rollout whose workflow ended mid-way (terminated) says, as
// --wait does, that no undo ran and what to do: run the cleanup before its
// point of no return, finish by hand past it. The operator who terminated
// it reads status, not --wait.
func TestCLIStatusOfATerminatedRolloutSaysWhatToDo(t *testing.T) {
	for _, tc := range []struct {
		name      string
		end       func(*api.Rollout)
		says, not string
	}{
		{"terminated mid-bake", func(ro *api.Rollout) {
			ro.State, ro.Phase, ro.Cleanup, ro.Failure = "terminated", workflows.PhaseBaking, nil, ""
			ro.Blue = map[string]dnsroll.Server{"ns1": {ID: 11, Label: "ns1"}}
		}, "none of its undo steps ran; `dnsroll rollout cleanup --id rollout-lab:r1`", "rename each"},
		// No blue recorded: a cleanup would point the load balancers at
		// no server, and the API refuses it.
		{"terminated planning", func(ro *api.Rollout) {
			ro.State, ro.Phase, ro.Cleanup, ro.Failure = "terminated", workflows.PhasePlanning, nil, ""
			ro.Blue = nil
		}, "none of its undo steps ran; see where it stopped", "dnsroll rollout cleanup"},
		{"terminated deleting blue", func(ro *api.Rollout) {
			ro.State, ro.Phase, ro.Cleanup, ro.Failure = "terminated", workflows.PhaseDeletingBlue, nil, ""
		}, "none of its undo steps ran; it had passed its point of no return", "dnsroll rollout cleanup"},
		{"aborted", func(ro *api.Rollout) {
			ro.State, ro.Phase, ro.Cleanup, ro.Failure = "failed", workflows.PhaseAborted, nil, "aborted"
		}, "failure: aborted", "undo steps"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeAPI(t, 0)
			f.end = tc.end
			out, errOut, code := cli(t, "rollout", "status", "--id", "rollout-lab:r1")
			if code != 0 || !strings.Contains(out, tc.says) || strings.Contains(out, tc.not) {
				t.Errorf("status: exit %d, want 0, saying %q and not %q; stdout:\n%s\nstderr:\n%s", code, tc.says, tc.not, out, errOut)
			}
		})
	}
}

// approve --gate names the approval gate it is for, so that an approval
// given on a status read before another operator approved does not open
// the next gate; the other signals take no gate.
func TestCLIApproveNamesItsGate(t *testing.T) {
	f := newFakeAPI(t, 0)
	var sent string
	f.more = func(method, path string, body []byte) any {
		if method == "POST" && path == "/rollouts/rollout-lab:r1/approve" {
			sent = string(body)
			return api.Accepted{ID: "rollout-lab:r1", Signal: "approve"}
		}
		return nil
	}
	// Each run numbers its gates from 1: without the run, gate 2 could
	// be another run's, one started since the status was read.
	if out, errOut, code := cli(t, "rollout", "approve", "--fleet", "lab", "--gate", "2"); code != 1 || !strings.Contains(errOut, "--id rollout-lab:<run id>") || sent != "" {
		t.Errorf("approve --fleet --gate 2: exit %d, stdout %q, stderr %q, sent %q; want exit 1 asking for the run, nothing sent", code, out, errOut, sent)
	}
	if out, errOut, code := cli(t, "rollout", "approve", "--id", "rollout-lab", "--gate", "2"); code != 1 || !strings.Contains(errOut, "--id rollout-lab:<run id>") || sent != "" {
		t.Errorf("approve --id without run --gate 2: exit %d, stdout %q, stderr %q, sent %q; want exit 1 asking for the run, nothing sent", code, out, errOut, sent)
	}
	if out, errOut, code := cli(t, "rollout", "approve", "--id", "rollout-lab:r1", "--gate", "2", "--by", "alice"); code != 0 || !strings.HasPrefix(out, "sent approve to rollout-lab:r1") {
		t.Fatalf("approve --gate 2: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if !strings.Contains(sent, `"gate":2`) || !strings.Contains(sent, `"by":"alice"`) {
		t.Errorf("approve sent %s, want gate 2 by alice", sent)
	}
	if _, errOut, code := cli(t, "rollout", "abort", "--fleet", "lab", "--gate", "2"); code != 1 || !strings.Contains(errOut, "flag provided but not defined: -gate") {
		t.Errorf("abort --gate: exit %d, stderr %q; want a usage error", code, errOut)
	}
}

// A signal sent with no worker to answer for the rollout says so, as the
// API's warning tells what was left for the rollout to check.
func TestCLISignalWarnsWhenNoWorkerAnswered(t *testing.T) {
	f := newFakeAPI(t, 0)
	f.more = func(method, path string, body []byte) any {
		if method == "POST" && path == "/rollouts/rollout-lab:r1/approve" {
			return api.Accepted{ID: "rollout-lab:r1", Signal: "approve", Warning: "no worker answered the status query of rollout rollout-lab:r1"}
		}
		return nil
	}
	out, errOut, code := cli(t, "rollout", "approve", "--id", "rollout-lab:r1", "--gate", "1")
	if code != 0 || !strings.HasPrefix(out, "sent approve to rollout-lab:r1") || !strings.Contains(errOut, "warning: no worker answered the status query") {
		t.Errorf("approve: exit %d, stdout %q, stderr %q; want it sent, with the warning on stderr", code, out, errOut)
	}
}

// The ID may be given as the one argument, as in `dnsroll rollout status
// rollout-lab:r1`, with flags before or after it; given twice it is
// refused.
func TestCLIIDAsArgument(t *testing.T) {
	f := newFakeAPI(t, 0)
	out, errOut, code := cli(t, "rollout", "status", "rollout-lab:r1", "--json")
	var ro api.Rollout
	if err := json.Unmarshal([]byte(out), &ro); err != nil || code != 0 || ro.ID != "rollout-lab:r1" {
		t.Errorf("status ID --json: exit %d, %v, stderr %q:\n%s", code, err, errOut, out)
	}
	out, errOut, code = cli(t, "rollout", "abort", "--reason", "test", "rollout-lab:r1")
	if code != 0 || !strings.HasPrefix(out, "sent abort to rollout-lab:r1") {
		t.Errorf("abort --reason test ID: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if !slices.Contains(f.requests, "POST /rollouts/rollout-lab:r1/abort") {
		t.Errorf("requests %v, want the abort of rollout-lab:r1", f.requests)
	}
	for _, args := range [][]string{
		{"rollout", "status", "--id", "rollout-lab:r1", "rollout-lab:r2"},
		{"rollout", "status", "rollout-lab:r1", "rollout-lab:r2"},
		{"rollout", "status", "rollout-lab:r1", "--id", "rollout-lab:r2"},
		{"rollout", "list", "rollout-lab:r1"},
	} {
		if _, errOut, code := cli(t, args...); code == 0 || !strings.Contains(errOut, "rollout-lab:r") {
			t.Errorf("%v: exit %d, stderr %q; want an error naming the argument", args, code, errOut)
		}
	}
}

// A flag given twice is refused, before any request, with the ID
// argument between the two as well: `approve --gate 1 ID --gate 2` would
// approve gate 2 alone, and the last --reason would be the one recorded.
func TestCLIFlagTwiceAroundTheIDArgument(t *testing.T) {
	f, _ := newLBAPI(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"rollout", "approve", "--gate", "1", "rollout-lab:r1", "--gate", "2"}, `--gate is given twice ("1" and "2")`},
		{[]string{"rollout", "abort", "--reason", "a", "rollout-lab:r1", "--reason=b"}, `--reason is given twice ("a" and "b")`},
		{[]string{"lb", "approve", "--gate", "1", "lbreplace-lab:r1", "--gate", "2"}, `--gate is given twice ("1" and "2")`},
	} {
		f.requests = nil
		_, errOut, code := cli(t, tc.args...)
		if code != 1 || !strings.Contains(errOut, tc.want) || len(f.requests) != 0 {
			t.Errorf("%v: exit %d, stderr %q, requests %v; want exit 1 saying %q, before any request", tc.args, code, errOut, f.requests, tc.want)
		}
	}
}

// A token or an API URL (which may hold a password) given twice, or
// with three dashes, is refused without quoting either: the error goes to a terminal or a CI
// log.
func TestCLIFlagTwiceQuotesNoSecret(t *testing.T) {
	f := newFakeAPI(t, 0)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"rollout", "status", "--fleet", "lab", "--token", "hunter2", "--token", "hunter3"}, "--token is given twice"},
		{[]string{"rollout", "status", "--fleet", "lab", "--api-url", "http://ci:hunter2@127.0.0.1:1", "--api-url=http://ci:hunter3@127.0.0.1:1"}, "--api-url is given twice"},
		{[]string{"rollout", "abort", "--token", "hunter2", "rollout-lab:r1", "--token", "hunter3"}, "--token is given twice"},
		// The flag package quotes a malformed flag whole.
		{[]string{"rollout", "status", "---token=hunter2", "rollout-lab:r1"}, "bad flag syntax: ---token=… (value not shown): give it as --token"},
		{[]string{"rollout", "abort", "rollout-lab:r1", "---api-url=http://ci:hunter2@127.0.0.1:1"}, "bad flag syntax: ---api-url=… (value not shown): give it as --api-url"},
	} {
		f.requests = nil
		out, errOut, code := cli(t, tc.args...)
		if code != 1 || !strings.Contains(errOut, tc.want) || strings.Contains(out+errOut, "hunter") || len(f.requests) != 0 {
			t.Errorf("%v: exit %d, stdout %q, stderr %q, requests %v; want exit 1 saying %q, quoting neither value", tc.args, code, out, errOut, f.requests, tc.want)
		}
	}
}

// A start or plan without the fleet, or with an --expect-changes that is
// neither true nor false, is refused naming the flag, before any request:
// a misspelt --expect-changes must not leave the fleet's default in force.
func TestCLIRolloutInputMistakes(t *testing.T) {
	f := newFakeAPI(t, 0)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"rollout", "start", "--revision", "B"}, "--fleet is required"},
		{[]string{"rollout", "plan", "--revision", "B"}, "--fleet is required"},
		{[]string{"rollout", "start", "--fleet", "lab", "--revision", "B", "--expect-changes", "yes"}, `--expect-changes must be true or false, got "yes"`},
		{[]string{"rollout", "plan", "--fleet", "lab", "--expect-changes", "no"}, `--expect-changes must be true or false, got "no"`},
	} {
		f.requests = nil
		out, errOut, code := cli(t, tc.args...)
		if code != 1 || !strings.Contains(errOut, tc.want) || out != "" || len(f.requests) != 0 {
			t.Errorf("%v: exit %d, stdout %q, stderr %q, requests %v; want exit 1 saying %q, before any request", tc.args, code, out, errOut, f.requests, tc.want)
		}
	}
}

// The status of a rollout under way says nothing of its workflow having
// ended, nor of undoing it: that is for one whose workflow ended mid-way.
func TestCLIStatusOfARunningRollout(t *testing.T) {
	newFakeAPI(t, 1)
	out, errOut, code := cli(t, "rollout", "status", "--id", "rollout-lab:r1")
	if code != 0 || !strings.Contains(out, "state     running, phase provisioning") {
		t.Fatalf("exit %d, stdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	for _, not := range []string{"ended", "undo", "cleanup"} {
		if strings.Contains(out, not) {
			t.Errorf("the status of a running rollout says %q:\n%s", not, out)
		}
	}
}

// retry --force asks the API to force it, and cleanup --wait follows the
// run it started, exiting as start --wait does (3: cleanup-failed).
func TestCLIRetryForceAndCleanupWait(t *testing.T) {
	f := newFakeAPI(t, 0)
	f.more = func(method, path string, body []byte) any {
		if method == "POST" && (path == "/rollouts/rollout-lab:r0/retry" || path == "/rollouts/rollout-lab:r0/cleanup") {
			return api.Started{ID: "rollout-lab:r1", WorkflowID: "rollout-lab", RunID: "r1", Fleet: "lab", Revision: "B"}
		}
		return nil
	}
	if out, errOut, code := cli(t, "rollout", "retry", "--id", "rollout-lab:r0", "--force"); code != 0 || !slices.Contains(f.requests, "POST /rollouts/rollout-lab:r0/retry?force=true") {
		t.Errorf("retry --force: exit %d, stdout %q, stderr %q, requests %v; want the retry forced", code, out, errOut, f.requests)
	}
	out, errOut, code := cli(t, "rollout", "cleanup", "--id", "rollout-lab:r0", "--reason", "x", "--wait", "--poll", "100ms")
	if code != exitNeedsHands || !strings.Contains(out, "cleaning up after rollout-lab:r0 as rollout-lab:r1") || !strings.Contains(errOut, "rollout rollout-lab:r1 cleanup-failed") {
		t.Errorf("cleanup --wait: exit %d, stdout %q, stderr %q; want exit %d and the run followed to its end", code, out, errOut, exitNeedsHands)
	}
}

// An ID of another fleet's run than --fleet names is refused before any
// request: it would abort a fleet other than the one the operator named.
// Both naming the same fleet's run is fine.
func TestCLIIDOfAnotherFleet(t *testing.T) {
	f, _ := newLBAPI(t)
	for _, args := range [][]string{
		{"rollout", "abort", "--fleet", "prod", "--id", "rollout-lab:r1"},
		{"rollout", "status", "--fleet", "prod", "rollout-lab:r1"},
		{"lb", "abort", "--fleet", "prod", "--id", "lbreplace-lab:r1"},
		{"lb", "abort", "--fleet", "lab", "--update", "--id", "lbreplace-lab:r1"},
	} {
		f.requests = nil
		_, errOut, code := cli(t, args...)
		if code == 0 || !strings.Contains(errOut, "--id") || len(f.requests) != 0 {
			t.Errorf("%v: exit %d, stderr %q, requests %v; want a refusal naming --id, before any request", args, code, errOut, f.requests)
		}
	}
	if _, errOut, code := cli(t, "rollout", "abort", "--fleet", "lab", "--id", "rollout-lab:r1"); code != 0 {
		t.Errorf("--fleet lab --id rollout-lab:r1: exit %d, stderr %q", code, errOut)
	}
}

// A wrong token is the API's 401, reported as an error, with nothing on
// standard output.
func TestCLIRolloutUnauthorized(t *testing.T) {
	newFakeAPI(t, 0)
	t.Setenv("DNSROLL_API_TOKEN", "wrong")
	out, errOut, code := cli(t, "rollout", "list", "--fleet", "lab")
	if code != 1 || out != "" || !strings.Contains(errOut, "401") {
		t.Errorf("exit %d, stdout %q, stderr %q; want exit 1 and the API's 401", code, out, errOut)
	}
}

// A password in $DNSROLL_API_URL is shown neither in an error nor in
// --help's defaults, and a base URL with a query is refused naming where
// it came from.
func TestCLIAPIURLSecret(t *testing.T) {
	t.Setenv("DNSROLL_API_URL", "http://ci:hunter2@127.0.0.1:1")
	for _, args := range [][]string{
		{"rollout", "status", "--fleet", "lab"},
		{"rollout", "status", "--help"},
		{"lb", "list", "--fleet", "lab"},
	} {
		out, errOut, _ := cli(t, args...)
		if strings.Contains(out+errOut, "hunter2") {
			t.Errorf("%v shows the password:\n%s%s", args, out, errOut)
		}
	}
	if _, errOut, _ := cli(t, "rollout", "status", "--fleet", "lab"); !strings.Contains(errOut, "http://ci:xxxxx@127.0.0.1:1") {
		t.Errorf("stderr %q, want the URL with its password masked", errOut)
	}
	t.Setenv("DNSROLL_API_URL", "http://127.0.0.1:1/?token=hunter2")
	_, errOut, code := cli(t, "rollout", "list")
	if code != 1 || strings.Contains(errOut, "hunter2") || !strings.Contains(errOut, "--api-url") || !strings.Contains(errOut, "query") {
		t.Errorf("exit %d, stderr %q; want exit 1 naming --api-url and the query, without the token", code, errOut)
	}
}

// A --poll under 100ms would flood the API (each read is a Temporal
// describe and query), and a --limit under 1 would be dropped: both are
// refused, naming the flag, before any request.
func TestCLIRefusesPollAndLimit(t *testing.T) {
	f := newFakeAPI(t, 0)
	for _, args := range [][]string{
		{"rollout", "status", "--id", "rollout-lab:r1", "--follow", "--poll", "0"},
		{"rollout", "status", "--id", "rollout-lab:r1", "--follow", "--poll", "-1s"},
		{"rollout", "start", "--fleet", "lab", "--revision", "B", "--wait", "--poll", "99ms"},
		{"lb", "status", "--fleet", "lab", "--follow", "--poll", "1ms"},
		{"rollout", "list", "--limit", "0"},
		{"lb", "list", "--limit", "-5"},
	} {
		flagName := strings.TrimPrefix(args[len(args)-2], "-")
		_, errOut, code := cli(t, args...)
		if code != 1 || !strings.Contains(errOut, flagName) {
			t.Errorf("%v: exit %d, stderr %q; want exit 1 naming %s", args, code, errOut, flagName)
		}
	}
	if len(f.requests) != 0 {
		t.Errorf("requests %v, want none", f.requests)
	}
}

// --wait rides out a proxy's 502s, saying on stderr that it retries, and
// ends as the rollout does.
func TestCLIWaitRetriesTransientErrors(t *testing.T) {
	f := newFakeAPI(t, 1)
	f.fail = 2
	out, errOut, code := cli(t, "rollout", "start", "--fleet", "lab", "--revision", "B", "--wait", "--poll", "100ms")
	if code != 3 || !strings.Contains(out, "EnsureServer ns1-next    failed") {
		t.Fatalf("exit %d, want 3 as the rollout ended cleanup-failed; stdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	if n := strings.Count(errOut, "HTTP 502"); n != 2 || strings.Count(errOut, "; retrying in ") != 2 {
		t.Errorf("stderr, want two 502s each retried:\n%s", errOut)
	}
}

// A start whose answer is lost (a proxy's 502) is sent again with the same
// Idempotency-Key, which makes it safe: the API answers the rollout the
// first one started. --idempotency-key sets the key, for a CI job's rerun.
func TestCLIStartRetriesWithItsKey(t *testing.T) {
	f := newFakeAPI(t, 1)
	f.failStarts = 1
	out, errOut, code := cli(t, "rollout", "start", "--fleet", "lab", "--revision", "B")
	if code != 0 || !strings.Contains(out, "started rollout-lab:r1") || !strings.Contains(errOut, "HTTP 502") {
		t.Fatalf("exit %d; stdout:\n%s\nstderr:\n%s; want the start retried after the 502", code, out, errOut)
	}
	if len(f.keys) != 2 || f.keys[0] == "" || f.keys[0] != f.keys[1] {
		t.Errorf("Idempotency-Keys %q; want the same key on both starts", f.keys)
	}
	f.keys = nil
	if _, errOut, code := cli(t, "rollout", "start", "--fleet", "lab", "--revision", "B", "--idempotency-key", "ci-job-7"); code != 0 || len(f.keys) != 1 || f.keys[0] != "ci-job-7" {
		t.Errorf("exit %d, keys %q (%s); want the key given", code, f.keys, errOut)
	}
}

// When the API stays unreachable past the retry window, following ends
// with exit 1, saying the rollout goes on and how to follow it again; a
// 4xx ends it at once.
func TestCLIFollowGivesUp(t *testing.T) {
	f := newFakeAPI(t, 0)
	f.fail = 1000
	var out, errOut bytes.Buffer
	c := &apiCmd{client: api.Client{URL: os.Getenv("DNSROLL_API_URL"), Token: f.token}, out: &out, stderr: &errOut, retryFor: 300 * time.Millisecond}
	_, err := c.follow(context.Background(), "rollout-lab:r1", 100*time.Millisecond)
	wantErr(t, err, "HTTP 502", "goes on", "dnsroll rollout status --id rollout-lab:r1 --follow")
	if code := exitCode(err); code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	if !strings.Contains(errOut.String(), "retrying") {
		t.Errorf("stderr %q, want it to say it retries", errOut.String())
	}

	// Ctrl-C: the rollout goes on, and the error says how to follow it again.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = c.follow(ctx, "rollout-lab:r1", 100*time.Millisecond)
	wantErr(t, err, "stopped following rollout-lab:r1; it goes on", "dnsroll rollout status --id rollout-lab:r1 --follow")

	errOut.Reset()
	_, err = c.follow(context.Background(), "rollout-lab:nosuch", 100*time.Millisecond)
	wantErr(t, err, "404")
	if err != nil && strings.Contains(err.Error(), "goes on") || errOut.Len() != 0 {
		t.Errorf("a 404: err %v, stderr %q; want it at once, without retries", err, errOut.String())
	}
}

// A command without its subcommand is a usage error, as dnsroll without
// a command is; --help is not, and prints the whole help; a bad flag's
// error is printed once.
func TestCLIExitCodesAndHelp(t *testing.T) {
	t.Setenv("DNSROLL_API_TOKEN", "")
	for _, tc := range []struct {
		args  []string
		code  int
		wants []string
	}{
		{nil, 1, []string{"Usage: dnsroll <command>", "no command given"}},
		{[]string{"rollout"}, 1, []string{"Usage: dnsroll rollout <command>", "no rollout command given"}},
		{[]string{"lb"}, 1, []string{"Usage: dnsroll lb <command>", "no lb command given"}},
		{[]string{"fleet"}, 1, []string{"Usage: dnsroll fleet validate FILE", "Checks a fleet file", "-revision", "no fleet command given"}},
		{[]string{"fleet", "nosuch"}, 1, []string{"Usage: dnsroll fleet validate FILE", `unknown fleet command "nosuch"`}},
		{[]string{"rollout", "--help"}, 0, []string{"Usage: dnsroll rollout <command>"}},
		{[]string{"fleet", "--help"}, 0, []string{"Usage: dnsroll fleet validate FILE", "Checks a fleet file", "-revision"}},
		{[]string{"fleet", "validate", "--help"}, 0, []string{"Usage: dnsroll fleet validate FILE", "Checks a fleet file", "-revision"}},
		{[]string{"fleet", "validate"}, 1, []string{"Usage: dnsroll fleet validate FILE", "no fleet file given"}},
		{[]string{"fleet", "validate", "a.yaml", "b.yaml"}, 1, []string{"unexpected arguments [b.yaml]"}},
		{[]string{"rollout", "list", "--bogus"}, 1, []string{"flag provided but not defined: -bogus"}},
		{[]string{"fleet", "validate", "a.yaml", "--bogus"}, 1, []string{"flag provided but not defined: -bogus"}},
		{[]string{"demo", "--bogus"}, 1, []string{"flag provided but not defined: -bogus"}},
		// The flag package keeps a repeated flag's last value: --lb lb1
		// --lb lb2 would update lb2 alone, and a --revision appended to a
		// CI job's shared flags would quietly win.
		{[]string{"lb", "update", "--fleet", "lab", "--kind", "config", "--lb", "lb1", "--lb=lb2"}, 1, []string{`--lb is given twice ("lb1" and "lb2"): give it once; several go in one, comma-separated`}},
		{[]string{"rollout", "start", "--fleet", "lab", "--revision", "B", "-revision", "A"}, 1, []string{`--revision is given twice ("B" and "A"): give it once`}},
		{[]string{"fleet", "validate", "a.yaml", "--revision", "B", "--revision", "B"}, 1, []string{`--revision is given twice ("B" and "B"): give it once`}},
		{[]string{"worker", "--fleets", "a", "--fleets", "b"}, 1, []string{`--fleets is given twice ("a" and "b"): give it once`}},
		// A flag that takes no value does not take the next one's name,
		// nor does one given with its value (=) take the next flag.
		{[]string{"rollout", "start", "--fleet", "lab", "--wait", "--revision", "B", "--revision", "A"}, 1, []string{`--revision is given twice ("B" and "A"): give it once`}},
		{[]string{"rollout", "start", "--fleet", "lab", "--revision=B", "--revision=A"}, 1, []string{`--revision is given twice ("B" and "A"): give it once`}},
		// Commands that take flags alone refuse a word left over, before
		// they start anything.
		{[]string{"worker", "fleets/"}, 1, []string{`unexpected argument "fleets/": dnsroll worker takes flags only`}},
		{[]string{"api", "--listen", ":8080", "extra"}, 1, []string{`unexpected argument "extra": dnsroll api takes flags only`}},
		{[]string{"dev", "extra"}, 1, []string{`unexpected argument "extra": dnsroll dev takes flags only`}},
		{[]string{"demo", "extra"}, 1, []string{`unexpected argument "extra": dnsroll demo takes flags only`}},
		{[]string{"cluster", "extra"}, 1, []string{`unexpected argument "extra": dnsroll cluster takes flags only`}},
		// Without a token the API does not start, on loopback too,
		// unless --insecure-no-auth asks for it.
		{[]string{"api", "--listen", "127.0.0.1:18080", "--temporal-address", "127.0.0.1:1"}, 1, []string{"DNSROLL_API_TOKEN is not set"}},
		// Without a token, only this machine may reach the API.
		{[]string{"api", "--insecure-no-auth", "--listen", ":18080", "--temporal-address", "127.0.0.1:1"}, 1, []string{`--insecure-no-auth serves without a token on loopback only, and --listen ":18080" is not`}},
		{[]string{"api", "--insecure-no-auth", "--listen", "0.0.0.0:18080", "--temporal-address", "127.0.0.1:1"}, 1, []string{`--insecure-no-auth serves without a token on loopback only, and --listen "0.0.0.0:18080" is not`}},
		{[]string{"api", "--listen", "8080"}, 1, []string{`--listen (or DNSROLL_API_ADDR) "8080": must be host:port, such as 127.0.0.1:8080 or :8080`}},
		{[]string{"api", "--default-revision", "v1 final"}, 1, []string{`--default-revision (or DNSROLL_DEFAULT_REVISION) "v1 final": must be 1-64 letters, digits, dots, dashes or underscores`}},
	} {
		out, errOut, code := cli(t, tc.args...)
		// Help asked for goes to stdout; a mistake, with the usage, to
		// stderr.
		printed, other, where := errOut, out, "stderr"
		if tc.code == 0 {
			printed, other, where = out, errOut, "stdout"
		}
		if code != tc.code || other != "" {
			t.Errorf("%v: exit %d, and %q beside %s; want exit %d, all on %s", tc.args, code, other, where, tc.code, where)
		}
		wantAll(t, fmt.Sprintf("%v's %s", tc.args, where), printed, tc.wants...)
		// The error is the last of wants.
		if w := tc.wants[len(tc.wants)-1]; tc.code != 0 && strings.Count(errOut, w) > 1 {
			t.Errorf("%v: stderr says %q more than once:\n%s", tc.args, w, errOut)
		}
	}
}

// rollout plan prints what the Plan step found; the request carries
// start's flags. (e2e TestCLIStartWait: a refusal exits 1.)
func TestCLIRolloutPlan(t *testing.T) {
	f := newFakeAPI(t, 0)
	var asked api.StartRequest
	f.more = func(method, path string, body []byte) any {
		if method+" "+path != "POST /plans" {
			return nil
		}
		if err := json.Unmarshal(body, &asked); err != nil {
			t.Errorf("plan request %s: %v", body, err)
		}
		return api.Planned{WorkflowID: "plan-lab-0a1b", RunID: "r9", PlanReport: workflows.PlanReport{Fleet: "lab", Revision: asked.Revision, Zones: 2,
			Blue:    map[string]dnsroll.Server{"ns2": {ID: 12, Label: "ns2", IPv4: "192.0.2.2", DNSPort: 53}, "ns1": {ID: 11, Label: "ns1", IPv4: "192.0.2.1", DNSPort: 53}},
			Changes: &activities.Changes{ZonesChanged: activities.Names{Count: 1, Names: []string{"example.com"}}, Unknown: "no earlier rollout succeeded"},
			Diffs: []activities.ZoneChange{{Zone: "example.com", Diff: zone.ZoneDiff{OldSerial: 7, NewSerial: 8, SerialChanged: true, MoreChanged: 3,
				Changed: []zone.RRsetChange{{Name: "www.example.com.", Type: "A", Old: []string{"www.example.com. 300 IN A 192.0.2.10"}, New: []string{"www.example.com. 300 IN A 192.0.2.20"}}}}}},
			MoreDiffs: 4,
			Warnings:  []string{"reusing ns1-next left by an earlier rollout"}}}
	}
	out, errOut, code := cli(t, "rollout", "plan", "--fleet", "lab", "--revision", "B", "--expect-changes", "false")
	if code != 0 {
		t.Fatalf("exit %d, stderr %s", code, errOut)
	}
	if asked.Fleet != "lab" || asked.Revision != "B" || asked.ExpectChanges == nil || *asked.ExpectChanges {
		t.Errorf("plan request %+v, want fleet lab, revision B, expect_changes false", asked)
	}
	wantAll(t, "stdout", out, "plan      fleet lab, revision B, 2 zones",
		"blue      ns1: Linode 11, 192.0.2.1:53\n          ns2: Linode 12, 192.0.2.2:53",
		"zones whose serial differs from blue's: 1 (example.com)",
		"diff      example.com, serial 7 → 8: 0 added, 0 removed, 4 changed\n            changed www.example.com. A: [192.0.2.10] → [192.0.2.20]\n            and 3 more\n",
		"diff      and 4 more zones whose files changed",
		"warning   reusing ns1-next left by an earlier rollout", "workflow  plan-lab-0a1b", "nothing was created")
	wantAll(t, "stderr", errOut, "planning a rollout of fleet lab to revision B on a worker...")
	if slices.ContainsFunc(f.requests, func(r string) bool { return strings.HasPrefix(r, "POST /rollouts") }) {
		t.Errorf("a plan started a rollout: %v", f.requests)
	}
	// A plan the API refuses exits 1, printing no plan.
	f.more = func(string, string, []byte) any { return nil }
	out, errOut, code = cli(t, "rollout", "plan", "--fleet", "lab", "--revision", "B")
	if code != 1 || strings.Contains(out, "nothing was created") {
		t.Errorf("a refused plan: exit %d, want 1 and no plan; stdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
}

// A token with the newline a file or a Kubernetes secret leaves on it is
// sent without it, as the API trims its own.
func TestCLITrimsTheAPIToken(t *testing.T) {
	var got string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Get("Authorization")
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"rollouts":[]}`))
	}))
	t.Cleanup(srv.Close)
	t.Setenv("DNSROLL_API_URL", srv.URL)
	t.Setenv("DNSROLL_API_TOKEN", "s3cret\n")
	if _, errOut, code := cli(t, "rollout", "list"); code != 0 || got != "Bearer s3cret" {
		t.Errorf("exit %d, stderr %q, Authorization %q; want Bearer s3cret", code, errOut, got)
	}
}

// rollout list filters by phase, and says how to read the next page when
// there is one, on standard error so that the table stays a table.
func TestCLIRolloutListPhaseAndPages(t *testing.T) {
	newFakeAPI(t, 0)
	out, errOut, code := cli(t, "rollout", "list", "--fleet", "lab")
	if code != 0 || !strings.Contains(out, "rollout-lab:r1") || !strings.Contains(errOut, "more: the next page is --page-token page-2") || strings.Contains(out, "page-2") {
		t.Errorf("first page: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	out, errOut, code = cli(t, "rollout", "list", "--fleet", "lab", "--page-token", "page-2")
	if code != 0 || !strings.Contains(out, "rollout-lab:r0") || errOut != "" {
		t.Errorf("last page: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	out, _, code = cli(t, "rollout", "list", "--fleet", "lab", "--phase", "baking")
	if code != 0 || !strings.Contains(out, "rollout-lab:r-baking") {
		t.Errorf("--phase baking: exit %d, stdout %q", code, out)
	}
}

// A subcommand's --help says what it does, in the words of its group's
// command list.
func TestSubcommandHelpDescribesIt(t *testing.T) {
	for _, tt := range []struct{ group, sub, want string }{
		{"rollout", "start", "start a rollout of a fleet; --wait follows it, printing each step, and exits non-zero unless it succeeds, printing the reason: 2 with blue serving, 3 when a person must act (cleanup-failed, failed past the point of no return, or terminated mid-way)"},
		{"rollout", "cleanup", "finish the cleanup of a cleanup-failed rollout, or undo one whose workflow ended mid-way (terminated)"},
		{"lb", "update", "update the fleet's load balancers where they stand, one at a time"},
		{"lb", "approve", "let a replacement waiting at its approval gate (rollout.approval: manual or each) move the glue"},
	} {
		out, _, code := cli(t, tt.group, tt.sub, "--help")
		if code != 0 || !strings.Contains(out, "Usage: dnsroll "+tt.group+" "+tt.sub+" [flags]\n\n"+tt.want) {
			t.Errorf("dnsroll %s %s --help: exit %d, output\n%s\nwant the description %q", tt.group, tt.sub, code, out, tt.want)
		}
	}
}

// The API and the worker refuse a Web UI URL with a password before they
// dial Temporal, without quoting it: their links go into webhook payloads.
func TestWebUIURLWithAPasswordIsRefused(t *testing.T) {
	t.Setenv("DNSROLL_WEB_UI_URL", "https://ops:s3cr3t@temporal.example.net")
	t.Setenv("DNSROLL_API_TOKEN", "0123456789abcdef0123")
	t.Setenv("DNSROLL_STATE_DIR", t.TempDir())
	for _, args := range [][]string{{"api", "--temporal-address", "127.0.0.1:1"}, {"worker", "--temporal-address", "127.0.0.1:1", "--fleets", "../../fleets"}} {
		_, errOut, code := cli(t, args...)
		if code != 1 || !strings.Contains(errOut, "DNSROLL_WEB_UI_URL") || !strings.Contains(errOut, "must not carry a user or password") || strings.Contains(errOut, "s3cr3t") {
			t.Errorf("%s: exit %d, stderr %q; want a refusal naming the variable, not quoting it", args[0], code, errOut)
		}
	}
}

// A --metrics-addr without a port is refused naming the flag and the form.
func TestWorkerMetricsAddrWithoutAPort(t *testing.T) {
	t.Setenv("DNSROLL_STATE_DIR", t.TempDir())
	t.Setenv("LINODE_TOKEN", "t0k")
	t.Setenv("DNSROLL_LINODE_URL", "http://127.0.0.1:1/v4")
	fleets := t.TempDir()
	b := repoFile(t, "fleets/lab.yaml")
	root, _ := filepath.Abs("../..")
	testfiles.Write(t, filepath.Join(fleets, "lab.yaml"), strings.ReplaceAll(string(b), "../", root+"/"))
	_, errOut, code := cli(t, "worker", "--temporal-address", "127.0.0.1:1", "--fleets", fleets, "--metrics-addr", "9090")
	if code != 1 || !strings.Contains(errOut, "--metrics-addr (or DNSROLL_METRICS_ADDR) 9090") || !strings.Contains(errOut, "host:port") {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
	// A stop grace of nothing would cut every running step off at SIGTERM.
	_, errOut, code = cli(t, "worker", "--temporal-address", "127.0.0.1:1", "--fleets", fleets, "--stop-grace", "0s")
	if code != 1 || !strings.Contains(errOut, "--stop-grace 0s: want a duration above 0") {
		t.Errorf("--stop-grace 0s: exit %d, stderr %q", code, errOut)
	}
	// A negative age would keep every bundle snapshot, as 0 does, unsaid.
	_, errOut, code = cli(t, "worker", "--temporal-address", "127.0.0.1:1", "--fleets", fleets, "--bundle-max-age", "-1h")
	if code != 1 || !strings.Contains(errOut, "--bundle-max-age -1h0m0s: want 0 (keep every snapshot) or more") {
		t.Errorf("--bundle-max-age -1h: exit %d, stderr %q", code, errOut)
	}
	// 0 keeps every snapshot: the worker goes on to dial Temporal.
	_, errOut, _ = cli(t, "worker", "--temporal-address", "127.0.0.1:1", "--fleets", fleets, "--bundle-max-age", "0")
	if !strings.Contains(errOut, "connect to Temporal at 127.0.0.1:1") {
		t.Errorf("--bundle-max-age 0: stderr %q, want it taken and Temporal dialled", errOut)
	}
}

// What the CLI prints comes in part from others: a signal's reason sent
// with Temporal's CLI, a step's error. A control character in it is
// printed escaped, so that it cannot clear the screen, retitle the
// terminal or hide a line; --json output is JSON as ever.
func TestCLIPrintsNoControlCharacters(t *testing.T) {
	f := newFakeAPI(t, 0)
	const evil = "wrong zone\x1b[2J\x1b]0;owned\x07\r"
	f.end = func(ro *api.Rollout) {
		ro.Failure = "aborted by ops: " + evil
		ro.Events = append(ro.Events, workflows.Event{Message: "abort requested by ops: " + evil})
	}
	out, errOut, code := cli(t, "rollout", "status", "--id", "rollout-lab:r1")
	if code != 0 {
		t.Fatalf("status: exit %d: %s", code, errOut)
	}
	if strings.ContainsAny(out, "\x1b\x07\r") {
		t.Errorf("status printed control characters:\n%q", out)
	}
	wantAll(t, "status", out, `wrong zone\x1b[2J\x1b]0;owned\x07\x0d`)
	out, _, _ = cli(t, "rollout", "status", "--id", "rollout-lab:r1", "--json")
	var ro api.Rollout
	if err := json.Unmarshal([]byte(out), &ro); err != nil || !strings.HasSuffix(ro.Failure, evil) {
		t.Errorf("status --json: %v, failure %q", err, ro.Failure)
	}
	// The last line of a followed rollout that failed, the error itself.
	_, errOut, code = cli(t, "rollout", "start", "--fleet", "lab", "--revision", "B", "--wait", "--poll", "100ms")
	if code == 0 || strings.ContainsAny(errOut, "\x1b\x07\r") || !strings.Contains(errOut, `wrong zone\x1b[2J`) {
		t.Errorf("start --wait: exit %d, stderr %q", code, errOut)
	}
}

// rollout list --phase offers a rollout's phases, not those only a load
// balancer update or replacement has: filtering on one finds nothing.
func TestRolloutListOffersRolloutPhases(t *testing.T) {
	out, _, code := cli(t, "rollout", "list", "--help")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, p := range []string{"planning", "baking", "rolling-back", "cleaned-up"} {
		if !strings.Contains(out, p) {
			t.Errorf("--help does not offer the rollout phase %s:\n%s", p, out)
		}
	}
	for _, p := range []string{"updating-load-balancers", "restoring-load-balancer", "checking-parent", "awaiting-glue", "draining"} {
		if strings.Contains(out, p) {
			t.Errorf("--help offers %s, which no rollout has:\n%s", p, out)
		}
	}
}

// worker and api --help name every TEMPORAL_* setting they read, as the
// README's table does: a TLS cluster with its own CA needs the last ones.
func TestTemporalHelpNamesEveryVariable(t *testing.T) {
	for _, cmd := range []string{"worker", "api"} {
		out, _, code := cli(t, cmd, "--help")
		if code != 0 {
			t.Fatalf("%s --help: exit %d", cmd, code)
		}
		out = strings.Join(strings.Fields(out), " ")
		for _, v := range []string{"TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE", "TEMPORAL_API_KEY", "TEMPORAL_TLS_CLIENT_CERT_PATH", "TEMPORAL_TLS_CLIENT_KEY_PATH",
			"TEMPORAL_TLS_SERVER_CA_CERT_PATH", "TEMPORAL_TLS_SERVER_NAME", "TEMPORAL_TLS=true", "TEMPORAL_PROFILE", "TEMPORAL_CONFIG_FILE"} {
			if !strings.Contains(out, v) {
				t.Errorf("%s --help does not name %s", cmd, v)
			}
		}
	}
}

// status --fleet --follow follows the rollout it shows, to its end, even
// when the fleet starts another before the next poll: before, each poll
// read the fleet's latest, so the command went on with the new run and
// exited with its outcome (0 for a failed rollout that a retry followed
// and that succeeded), with or without --json.
func TestCLIStatusFollowsTheRolloutItShows(t *testing.T) {
	for _, asJSON := range []bool{false, true} {
		f := newFakeAPI(t, 1)
		latest := 0
		f.more = func(method, path string, _ []byte) any {
			if method != "GET" || path != "/rollouts/rollout-lab" {
				return nil
			}
			// The first read is rollout-lab:r1, running; then a
			// retry, rollout-lab:r2, runs and succeeds.
			latest++
			if latest == 1 {
				return api.Rollout{ID: "rollout-lab:r1", WorkflowID: "rollout-lab", RunID: "r1", State: "running",
					Status: workflows.Status{Fleet: "lab", Run: workflows.Run{Phase: workflows.PhaseProvisioning, Steps: []*workflows.Step{}}}}
			}
			return api.Rollout{ID: "rollout-lab:r2", WorkflowID: "rollout-lab", RunID: "r2", State: "completed",
				Status: workflows.Status{Fleet: "lab", Run: workflows.Run{Phase: workflows.PhaseSucceeded, Steps: []*workflows.Step{}}}}
		}
		args := []string{"rollout", "status", "--fleet", "lab", "--follow", "--poll", "100ms"}
		if asJSON {
			args = append(args, "--json")
		}
		out, errOut, code := cli(t, args...)
		if code != 3 || strings.Contains(out+errOut, "rollout-lab:r2") {
			t.Errorf("--json %v: exit %d, want 3 (rollout-lab:r1 cleanup-failed), and no word of rollout-lab:r2; stdout:\n%s\nstderr:\n%s", asJSON, code, out, errOut)
		}
	}
}

// An API that refuses connections is retried as any transient error, but
// each retry line says already what the final error says: the API may not
// be running at that URL. A first-time user should not wait out the retry
// window to learn it.
func TestCLIRetriesSayTheAPIMayNotRun(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + l.Addr().String()
	l.Close()
	var out, errOut bytes.Buffer
	c := &apiCmd{client: api.Client{URL: url, Token: "t"}, out: &out, stderr: &errOut, retryFor: 300 * time.Millisecond}
	const hint = "is dnsroll api running there?"
	_, err = c.follow(context.Background(), "rollout-lab:r1", 100*time.Millisecond)
	if err == nil || !strings.Contains(errOut.String(), "retrying") || strings.Count(errOut.String(), hint) != strings.Count(errOut.String(), "retrying") {
		t.Errorf("follow: err %v, stderr:\n%s\nwant every retry line to say %q", err, errOut.String(), hint)
	}

	errOut.Reset()
	fs := flag.NewFlagSet("start", flag.ContinueOnError)
	c.fleet = "lab"
	start := c.startFlags(fs)
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	err = start(context.Background())
	if err == nil || !strings.Contains(errOut.String(), "retrying") || strings.Count(errOut.String(), hint) != strings.Count(errOut.String(), "retrying") {
		t.Errorf("start: err %v, stderr:\n%s\nwant every retry line to say %q", err, errOut.String(), hint)
	}
}

// A --fleet that is no fleet name is refused before any request, naming
// the flag and the fix: the API would answer a status, abort or approve
// of rollout-Lab with a 404 that says only that no such rollout exists.
func TestCLIRefusesAFleetThatIsNoFleetName(t *testing.T) {
	f := newFakeAPI(t, 0)
	for _, args := range [][]string{
		{"rollout", "status", "--fleet", "Lab"},
		{"rollout", "abort", "--fleet", "Lab"},
		{"rollout", "approve", "--fleet", "Lab"},
		{"lb", "status", "--fleet", "Lab"},
	} {
		_, errOut, code := cli(t, args...)
		if code != 1 || !strings.Contains(errOut, `--fleet "Lab": must be 1-32 lowercase letters`) || !strings.Contains(errOut, "fleet names are lower case: lab") {
			t.Errorf("%v: exit %d, stderr %q; want exit 1 naming --fleet and the fix", args, code, errOut)
		}
	}
	if len(f.requests) != 0 {
		t.Errorf("requests %v, want none", f.requests)
	}
}

// A token of white space alone is trimmed to none: the API says it is
// blank, not that the variable is unset, which the operator can see it is.
func TestAPIRefusesABlankToken(t *testing.T) {
	t.Setenv("DNSROLL_API_TOKEN", " \n")
	_, errOut, code := cli(t, "api", "--listen", "127.0.0.1:18080", "--temporal-address", "127.0.0.1:1")
	if code != 1 || !strings.Contains(errOut, "DNSROLL_API_TOKEN is blank") {
		t.Errorf("exit %d, stderr %q; want exit 1 saying the token is blank", code, errOut)
	}
}
