package e2e

import (
	"errors"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dnsroll/dnsroll/workflows"
)

// brokenZone is one that named refuses to load: an NS name inside the
// zone without an address record. Planning reads zones as BIND does, so it
// is refused before anything is created.
const brokenZone = `$ORIGIN example.com.
$TTL 300
@       IN SOA  ns1.example.com. hostmaster.example.com. 2026112302 3600 600 1209600 300
        IN NS   ns1
        IN NS   ns2
        IN NS   ns3
ns1     IN A    192.0.2.53
ns2     IN A    198.51.100.53
www     IN A    192.0.2.10
mail    IN A    192.0.2.25
        IN MX   10 mail
release IN TXT  "revision broken"
`

// cli runs `dnsroll rollout …` against the API and returns its output and
// exit status.
func cli(t *testing.T, url, token string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(dnsrollBinary(t), append([]string{"rollout"}, args...)...)
	cmd.Env = append(cleanEnv(), "DNSROLL_API_URL="+url, "DNSROLL_API_TOKEN="+token)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return string(out), exit.ExitCode()
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(out), 0
}

// `dnsroll rollout start --wait` exits 0 on success, and non-zero with the
// reason on a rollout whose zone breaks on green, while blue keeps serving.
func TestCLIStartWait(t *testing.T) {
	older := strings.Replace(brokenZone, "2026112302", "2026112201", 1)
	older = strings.Replace(older, "        IN NS   ns3\n", "", 1)
	tl := startLab(t, map[string]string{"broken": brokenZone, "older": older})
	tl.startWorker(t)
	c := tl.startAPI(t)

	if out, code := cli(t, c.URL, "wrong-token", "list"); code != 1 || !strings.Contains(out, "wrong bearer token") {
		t.Errorf("list with a wrong token: exit %d, want 1:\n%s", code, out)
	}
	out, code := cli(t, c.URL, apiToken, "start", "--fleet", "lab", "--revision", "A", "--wait", "--poll", "200ms")
	if code != 0 || !strings.Contains(out, "==> succeeded") || !strings.Contains(out, "ProvisionNameservers green") {
		t.Fatalf("rollout A: exit %d, want 0 with its steps:\n%s", code, out)
	}

	// A plan (a dry run) of B on a real worker: blue as it is, the zone
	// whose serial changes and its RRsets that do, and nothing created; of
	// a revision behind blue's serial, the Plan step's refusal (exit 1).
	out, code = cli(t, c.URL, apiToken, "plan", "--fleet", "lab", "--revision", "B")
	t.Logf("dnsroll rollout plan --revision B (exit %d):\n%s", code, out)
	if code != 0 || !strings.Contains(out, "blue      ns1: Linode ") || !strings.Contains(out, "ns2: Linode ") ||
		!strings.Contains(out, "zones whose serial differs from blue's: 1 (example.com)") || !strings.Contains(out, "nothing was created") ||
		!strings.Contains(out, `changed release.example.com. TXT: ["revision A"] → ["revision B"]`) {
		t.Errorf("plan of B: exit %d, want 0 with blue and the changed zone:\n%s", code, out)
	}
	out, code = cli(t, c.URL, apiToken, "plan", "--fleet", "lab", "--revision", "older")
	if code != 1 || !strings.Contains(out, "example.com") || !strings.Contains(out, "2026112201") {
		t.Errorf("plan of a serial behind blue's: exit %d, want 1 with the Plan step's refusal:\n%s", code, out)
	}
	tl.assertOnly(t, "ns1", "ns2")

	// A zone named would refuse: refused at the start (exit 1), naming
	// the file's problem, with nothing created.
	out, code = cli(t, c.URL, apiToken, "start", "--fleet", "lab", "--revision", "broken", "--wait", "--poll", "200ms")
	if code != 1 || !strings.Contains(out, "zones[0].file") || !strings.Contains(out, "ns3.example.com") {
		t.Errorf("broken zone: exit %d, want 1 naming zones[0].file and ns3.example.com:\n%s", code, out)
	}
	tl.assertOnly(t, "ns1", "ns2")

	// Zone files that change a record in a rollout that must change
	// nothing: stopped at Plan, against the live revision's snapshot
	// (exit 2, with the reason), nothing created, blue serving.
	out, code = cli(t, c.URL, apiToken, "start", "--fleet", "lab", "--revision", "B", "--expect-changes", "false", "--wait", "--poll", "200ms")
	t.Logf("dnsroll rollout start --revision B --expect-changes false --wait (exit %d):\n%s", code, out)
	if code != 2 {
		t.Errorf("a revision that changes records: exit %d, want 2", code)
	}
	for _, want := range []string{"Plan lab", "==> failed", "probe.expect_changes is false, but this revision changes zone example.com"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	tl.wantAnswers(t, "", "revision A,revision A")
	tl.assertOnly(t, "ns1", "ns2")

	out, code = cli(t, c.URL, apiToken, "status", "--fleet", "lab")
	if code != 0 || !strings.Contains(out, "phase failed") || !strings.Contains(out, "failure: ") {
		t.Errorf("status: exit %d:\n%s", code, out)
	}
	out, code = cli(t, c.URL, apiToken, "abort", "--fleet", "lab")
	if code != 1 || !strings.Contains(out, "has ended (failed)") {
		t.Errorf("abort of an ended rollout: exit %d, want 1 with the reason:\n%s", code, out)
	}
}

// At the approval gate, `dnsroll rollout start --wait` puts the decision in
// front of the operator: green's changes against blue, the deadline and the
// exact commands, with a time on every line. Approving with the printed
// command lets the rollout finish.
func TestCLIApprovalGateShowsTheDecision(t *testing.T) {
	tl := startBlue(t, "nginx", nil)
	c := tl.startAPI(t)
	tl.editFleet(t, "approval: auto", "approval: manual")

	out := &syncWriter{}
	cmd := exec.Command(dnsrollBinary(t), "rollout", "start", "--fleet", "lab", "--revision", "B", "--wait", "--poll", "200ms")
	cmd.Env = append(cleanEnv(), "DNSROLL_API_URL="+c.URL, "DNSROLL_API_TOKEN="+apiToken)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	started := regexp.MustCompile(`started (rollout-lab:\S+)`)
	var id string
	for deadline := time.Now().Add(time.Minute); id == "" && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if m := started.FindStringSubmatch(out.String()); m != nil {
			id = m[1]
		}
	}
	if id == "" {
		t.Fatalf("start printed no rollout ID:\n%s", out.String())
	}
	waitPhase(t, c, id, workflows.PhaseAwaitingApproval)
	// The printer may be some polls behind the phase (a status read can
	// wait out Temporal's 2 s sticky timeout): approve once it printed the gate.
	gate := "abort:   dnsroll rollout abort --id " + id
	for deadline := time.Now().Add(time.Minute); !strings.Contains(out.String(), gate) && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
	}
	if o, code := cli(t, c.URL, apiToken, "approve", "--id", id, "--gate", "1", "--reason", "diff reviewed"); code != 0 {
		t.Fatalf("approve: exit %d:\n%s", code, o)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("start --wait: %v\n%s", err, out.String())
	}
	got := out.String()
	t.Logf("dnsroll rollout start --wait:\n%s", got)
	for _, want := range []string{
		"==> awaiting-approval",
		"zone example.com. on ns1-next against blue ns1: ",
		"changed: ",
		"or it is aborted",
		"approve: dnsroll rollout approve --id rollout-lab:",
		"--gate 1 --reason '...'",
		"abort:   dnsroll rollout abort --id rollout-lab:",
		"==> succeeded",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if !regexp.MustCompile(`(?m)^\d\d:\d\d:\d\d ==> awaiting-approval$`).MatchString(got) {
		t.Errorf("the gate's line carries no time")
	}
}

// syncWriter lets a command's stdout and stderr share one builder.
type syncWriter struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String is what was written so far.
func (s *syncWriter) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
