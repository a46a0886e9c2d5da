package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dnsroll/dnsroll/api"
	"github.com/dnsroll/dnsroll/config"
	"github.com/dnsroll/dnsroll/internal/needlab"
	"github.com/dnsroll/dnsroll/lab"
	"github.com/dnsroll/dnsroll/lb"
	"github.com/dnsroll/dnsroll/workflows"
)

// Recognisable values for every secret a lab rollout handles are looked
// for everywhere they could leak: every workflow history (its failure
// messages and its decoded payloads), the worker's and the API's logs, the
// API's responses, and the environment of every process the lab started
// (Temporal, named, the load balancers). None is found. A second webhook,
// whose URL is in the worker's environment, answers 500 with the URL it was
// sent to, so that its errors are in history too; with dnsdist, the
// console keys are looked for as well.
func TestSecretsStayOut(t *testing.T) { forEachDriver(t, testSecretsStayOut) }

func testSecretsStayOut(t *testing.T, driver string) {
	nonce := strconv.FormatInt(time.Now().UnixNano(), 36)
	hookSecret := "sekret-hmac-" + nonce
	hookToken := "sekret-url-" + nonce
	failingToken := "sekret-failing-url-" + nonce
	t.Setenv("DNSROLL_E2E_HOOK_SECRET", hookSecret)
	delivered := make(chan string, 64)
	refused := make(chan string, 64)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.RawQuery, failingToken) {
			select {
			case refused <- r.Header.Get("X-Dnsroll-Event"):
			default:
			}
			http.Error(w, "refused "+r.URL.String(), http.StatusInternalServerError)
			return
		}
		delivered <- r.Header.Get("X-Dnsroll-Event")
	}))
	defer hook.Close()
	t.Setenv("DNSROLL_E2E_FAILING_HOOK", hook.URL+"/hook?key="+failingToken)

	// The key Ansible would log in with: the worker reads it to derive the
	// public key new VMs accept. Its private part must go nowhere.
	keyFile := filepath.Join(t.TempDir(), "id_ed25519")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "e2e", "-f", keyFile).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v: %s", err, out)
	}
	keyText, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	keyLines := strings.Split(strings.TrimSpace(string(keyText)), "\n")
	t.Setenv("ANSIBLE_PRIVATE_KEY_FILE", keyFile)

	var mu sync.Mutex
	var rootPasses []string
	needlab.Programs(t, driver)
	fleetDir := writeFleet(t, driver, nil)
	fleet, err := config.Load(filepath.Join(fleetDir, "lab.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	tl := launchLab(t, fleetDir, fleet, lab.Options{TemporalBin: requireLab(t), BootDelay: 200 * time.Millisecond,
		SeeRootPass: func(_, pass string) { mu.Lock(); rootPasses = append(rootPasses, pass); mu.Unlock() }}, 2*time.Minute)
	tl.editFleet(t, "lab:\n", "notifications:\n  webhooks:\n    - {url: \""+hook.URL+"/hook?key="+hookToken+"\", secret_env: DNSROLL_E2E_HOOK_SECRET}\n"+
		"    - {name: failing, url_env: DNSROLL_E2E_FAILING_HOOK, secret_env: DNSROLL_E2E_HOOK_SECRET}\n\nlab:\n")
	worker := tl.startWorkerProcess(t)
	c := tl.startAPI(t)
	secrets := map[string]string{
		"LINODE_TOKEN":             lab.Token,
		"DNSROLL_API_TOKEN":        apiToken,
		"the webhook's secret_env": hookSecret,
		"the webhook URL's token":  hookToken,
		"the url_env URL's token":  failingToken,
		// The middle of the private key's base64 body.
		"the SSH private key": keyLines[len(keyLines)/2],
	}
	ctx := context.Background()

	// A rollout that succeeds, and one aborted during provisioning.
	for _, rev := range []string{"A", "B"} {
		started, err := c.Start(ctx, api.StartRequest{Fleet: "lab", Revision: rev})
		if err != nil {
			t.Fatal(err)
		}
		if rev == "B" {
			waitPhase(t, c, started.ID, workflows.PhaseProvisioning)
			if _, err := c.Signal(ctx, started.ID, "abort", api.SignalRequest{Reason: "secrets scan"}); err != nil {
				t.Fatal(err)
			}
		}
		if ro, err := c.Wait(ctx, started.ID, 200*time.Millisecond, nil); err != nil || (rev == "A" && ro.Phase != workflows.PhaseSucceeded) {
			t.Fatalf("rollout %s: %v %s %s", rev, err, ro.Phase, ro.Failure)
		}
	}
	select {
	case <-delivered:
	case <-time.After(30 * time.Second):
		t.Fatal("the webhook received nothing: the scan would prove nothing about it")
	}
	select {
	case <-refused:
	case <-time.After(30 * time.Second):
		t.Fatal("the failing webhook was never called: no delivery error reached history")
	}

	// A plan, a load balancer update, and the CLI's view of the rollouts.
	answers := map[string]string{}
	plan, err := c.Plan(ctx, api.StartRequest{Fleet: "lab", Revision: "B"})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(plan)
	answers["POST /plans"] = string(b)
	upd := lb.Update{Kind: lb.UpdateConfig}
	if driver == "dnsdist" {
		upd = lb.Update{Kind: lb.UpdateConsole, Lua: "return 'scanned'", UndoLua: "return 'unscanned'"}
	}
	started, err := c.StartRun(ctx, api.LBUpdates, api.LBUpdateRequest{Fleet: "lab", Update: upd, Reason: "secrets scan"})
	if err != nil {
		t.Fatal(err)
	}
	if run := waitLBUpdate(t, c, started.ID); run.State != "completed" {
		t.Fatalf("load balancer update: %s", run.State)
	}
	for _, args := range [][]string{{"list"}, {"status", "rollout-lab"}} {
		out, _ := cli(t, c.URL, apiToken, args...)
		answers["dnsroll rollout "+strings.Join(args, " ")] = out
	}
	if driver == "dnsdist" {
		keys, _ := filepath.Glob(filepath.Join(tl.Dir(), "lb", "*", "console.key"))
		if len(keys) != len(fleet.LoadBalancers) {
			t.Fatalf("found console keys %v, want one per load balancer", keys)
		}
		for _, k := range keys {
			b, err := os.ReadFile(k)
			if err != nil || len(bytes.TrimSpace(b)) < 40 {
				t.Fatalf("console key %s: %v %d bytes", k, err, len(b))
			}
			secrets["the console key in "+k] = string(bytes.TrimSpace(b))
		}
	}

	mu.Lock()
	if len(rootPasses) < 4 {
		t.Fatalf("saw %d root passwords, want one per created instance (4)", len(rootPasses))
	}
	for i, p := range rootPasses {
		secrets[fmt.Sprintf("root password %d", i+1)] = p
	}
	mu.Unlock()

	scan := func(where, text string) {
		t.Helper()
		for name, v := range secrets {
			if strings.Contains(text, v) {
				t.Errorf("%s holds %s", where, name)
			}
		}
	}

	if decoded := scanHistories(t, tl, scan, `"fleet":"lab"`); decoded < 2 {
		t.Fatalf("read the inputs of %d histories, want both rollouts'", decoded)
	}

	// The API's and the CLI's answers.
	for where, text := range answers {
		scan(where, text)
	}
	for _, path := range []string{"/rollouts", "/rollouts/rollout-lab", "/rollouts?fleet=lab&limit=1", "/load-balancer-updates/" + started.ID} {
		req, _ := http.NewRequest("GET", c.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+apiToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %s", path, resp.Status)
		}
		scan("GET "+path, string(b))
	}

	// The logs, once the worker and the API have written everything.
	_ = worker.Process.Signal(os.Interrupt)
	for _, name := range []string{"worker.log", "api.log"} {
		b, err := os.ReadFile(filepath.Join(tl.Dir(), name))
		if err != nil || len(b) == 0 {
			t.Fatalf("%s: %v (%d bytes)", name, err, len(b))
		}
		scan(name, string(b))
	}

	// The environment of every process the lab started: those whose
	// command line or working directory is in the lab's directory.
	scanned := 0
	pids, _ := filepath.Glob("/proc/[0-9]*")
	for _, p := range pids {
		pid, _ := strconv.Atoi(filepath.Base(p))
		if pid == os.Getpid() || pid == worker.Process.Pid {
			continue
		}
		cmdline, _ := os.ReadFile(p + "/cmdline")
		cwd, _ := os.Readlink(p + "/cwd")
		if !strings.Contains(string(cmdline), tl.Dir()) && !strings.HasPrefix(cwd, tl.Dir()) {
			continue
		}
		env, err := os.ReadFile(p + "/environ")
		if err != nil {
			continue // it ended meanwhile
		}
		scanned++
		scan(fmt.Sprintf("the environment of %d (%s)", pid, strings.ReplaceAll(string(cmdline), "\x00", " ")), string(env))
	}
	// Temporal, two named and two load balancers at least.
	if scanned < 5 {
		t.Errorf("scanned the environment of %d lab processes, want at least 5", scanned)
	}
}

// historyPayloads is the text of every payload in a history as `temporal
// workflow show --output json` prints it: base64, which a scan of the raw
// output would never match. Only failure messages are plain there, while
// inputs, results, signals and memos are what the Web UI shows decoded.
func historyPayloads(history []byte) (string, error) {
	var doc any
	if err := json.Unmarshal(history, &doc); err != nil {
		return "", err
	}
	var b strings.Builder
	var walk func(v any) error
	walk = func(v any) error {
		switch v := v.(type) {
		case map[string]any:
			if data, ok := v["data"].(string); ok {
				if _, payload := v["metadata"]; payload {
					raw, err := base64.StdEncoding.DecodeString(data)
					if err != nil {
						return fmt.Errorf("payload data %.40q: %w", data, err)
					}
					b.Write(raw)
					b.WriteByte('\n')
				}
			}
			for _, e := range v {
				if err := walk(e); err != nil {
					return err
				}
			}
		case []any:
			for _, e := range v {
				if err := walk(e); err != nil {
					return err
				}
			}
		}
		return nil
	}
	err := walk(doc)
	return b.String(), err
}

// scanHistories has scan read every workflow history of the lab, as the
// temporal CLI shows it, with its payloads decoded, and returns how many
// of them hold fleetField (such as `"fleet":"lab"`): those whose inputs
// were read.
func scanHistories(t *testing.T, tl *testLab, scan func(where, text string), fleetField string) int {
	t.Helper()
	out, err := exec.Command(requireLab(t), "workflow", "list", "--address", tl.TemporalAddress(), "--output", "json").Output()
	if err != nil {
		t.Fatalf("temporal workflow list: %v", err)
	}
	var runs []struct {
		Execution struct {
			WorkflowID string `json:"workflowId"`
			RunID      string `json:"runId"`
		} `json:"execution"`
	}
	if err := json.Unmarshal(out, &runs); err != nil || len(runs) == 0 {
		t.Fatalf("temporal workflow list: %v, %d runs:\n%s", err, len(runs), out)
	}
	decoded := 0
	for _, r := range runs {
		h, err := exec.Command(requireLab(t), "workflow", "show", "--address", tl.TemporalAddress(), "--output", "json",
			"--workflow-id", r.Execution.WorkflowID, "--run-id", r.Execution.RunID).Output()
		if err != nil || len(h) < 1000 {
			t.Fatalf("temporal workflow show %s: %v (%d bytes)", r.Execution.RunID, err, len(h))
		}
		payloads, err := historyPayloads(h)
		if err != nil || payloads == "" {
			t.Fatalf("the payloads of %s %s: %v (%d bytes)", r.Execution.WorkflowID, r.Execution.RunID, err, len(payloads))
		}
		if strings.Contains(payloads, fleetField) {
			decoded++
		}
		scan("the history of "+r.Execution.WorkflowID+" "+r.Execution.RunID, string(h)+"\n"+payloads)
	}
	return decoded
}
