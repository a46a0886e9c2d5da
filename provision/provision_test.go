package provision

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/internal/needlab"
)

const marker = "not-on-the-command-line-4711"

func localHosts(names ...string) []Host {
	hosts := make([]Host, len(names))
	for i, n := range names {
		hosts[i] = Host{Name: n, Vars: map[string]any{"where": "host-" + n}}
	}
	return hosts
}

func TestRunSuccess(t *testing.T) {
	needlab.Programs(t, "ansible-playbook")
	var (
		mu       sync.Mutex
		calls    int
		sawPlay  bool
		leaked   []string
		runnerRx = "testdata/ok.yml"
	)
	progress := func(string) {
		mu.Lock()
		defer mu.Unlock()
		calls++
		for _, cmd := range cmdlines() {
			sawPlay = sawPlay || strings.Contains(cmd, runnerRx)
			if strings.Contains(cmd, marker) {
				leaked = append(leaked, cmd)
			}
		}
	}
	r := &Runner{ProgressInterval: 100 * time.Millisecond}
	res, err := r.Run(context.Background(), Request{
		Playbook:   "testdata/ok.yml",
		Hosts:      localHosts("h1", "h2"),
		Connection: "local",
		ExtraVars:  map[string]any{"marker": marker},
	}, progress)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	for _, h := range []string{"h1", "h2"} {
		if got, want := res.Hosts[h], (HostStats{OK: 2, Changed: 1}); got != want {
			t.Errorf("stats of %s = %+v, want %+v", h, got, want)
		}
	}
	if len(res.Failures) != 0 {
		t.Errorf("Failures = %+v, want none", res.Failures)
	}
	mu.Lock()
	defer mu.Unlock()
	if calls == 0 || !sawPlay {
		t.Errorf("progress calls = %d, saw ansible-playbook = %v; want both", calls, sawPlay)
	}
	if len(leaked) > 0 {
		t.Errorf("extra var on a command line: %q", leaked)
	}
}

// A long playbook says which task it is on: the progress names each task
// as Ansible starts it, as written (a variable in a task's name is not
// expanded, so no value reaches the progress), after the playbook's name.
func TestRunReportsTheTaskItIsOn(t *testing.T) {
	needlab.Programs(t, "ansible-playbook")
	var (
		mu   sync.Mutex
		msgs []string
	)
	r := &Runner{ProgressInterval: 100 * time.Millisecond}
	_, err := r.Run(context.Background(), Request{
		Playbook:   "testdata/tasks.yml",
		Hosts:      localHosts("h1"),
		Connection: "local",
		ExtraVars:  map[string]any{"secret_word": marker},
	}, func(msg string) {
		mu.Lock()
		defer mu.Unlock()
		msgs = append(msgs, msg)
	})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	all := strings.Join(msgs, "\n")
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^ansible-playbook tasks\.yml: First task, \{\{ secret_word \}\} untemplated$`),
		regexp.MustCompile(`(?m)^ansible-playbook tasks\.yml: slowrole : Second task$`),
	} {
		if !want.MatchString(all) {
			t.Errorf("no progress matches %s; got:\n%s", want, all)
		}
	}
	if strings.Contains(all, marker) {
		t.Errorf("a variable's value reached the progress:\n%s", all)
	}
}

func TestRunFailure(t *testing.T) {
	needlab.Programs(t, "ansible-playbook")
	r := &Runner{}
	res, err := r.Run(context.Background(), Request{
		Playbook:   "testdata/fail.yml",
		Hosts:      localHosts("h1", "h2", "h3"),
		Connection: "local",
		ExtraVars:  map[string]any{"marker": marker},
	}, nil)
	if err == nil {
		t.Fatal("Run succeeded, want an error")
	}
	t.Logf("error: %v", err)
	msg := err.Error()
	for _, want := range []string{
		`ansible: fail.yml failed on h1: task "Break h1 on purpose": h1 is broken on purpose`,
		`failed on h2: task "Break h2 with a command": non-zero return code: boom-on-stderr`,
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not contain %q", msg, want)
		}
	}
	for _, secret := range []string{marker, "ANSIBLE_", "extra-vars", "h3"} {
		if strings.Contains(msg, secret) {
			t.Errorf("error %q contains %q", msg, secret)
		}
	}
	if got := res.Hosts["h1"]; got.Failed != 1 || got.OK != 1 {
		t.Errorf("stats of h1 = %+v, want 1 ok and 1 failed", got)
	}
	if got := res.Hosts["h3"]; got.Failed != 0 {
		t.Errorf("stats of h3 = %+v, want the rescued failure not counted", got)
	}
	want := []Failure{
		{Host: "h1", Task: "Break h1 on purpose", Message: "h1 is broken on purpose"},
		{Host: "h2", Task: "Break h2 with a command", Message: "non-zero return code: boom-on-stderr"},
	}
	if fmt.Sprint(res.Failures) != fmt.Sprint(want) {
		t.Errorf("Failures = %+v, want %+v", res.Failures, want)
	}
}

func TestRunUnreachable(t *testing.T) {
	needlab.Programs(t, "ansible-playbook", "ssh")
	r := &Runner{}
	// Port 1 on loopback refuses connections at once.
	res, err := r.Run(context.Background(), Request{
		Playbook:   "testdata/ping.yml",
		Hosts:      []Host{{Name: "gone", Address: "127.0.0.1", Vars: map[string]any{"ansible_port": 1}}},
		Connection: "ssh",
	}, nil)
	t.Logf("error: %v", err)
	if err == nil || !strings.Contains(err.Error(), "failed on gone: host unreachable: ") {
		t.Fatalf("error = %v, want it to say gone is unreachable", err)
	}
	if res.Hosts["gone"].Unreachable != 1 {
		t.Errorf("stats = %+v, want gone unreachable", res.Hosts)
	}
}

func TestRunStderrInError(t *testing.T) {
	needlab.Programs(t, "ansible-playbook")
	_, err := (&Runner{}).Run(context.Background(), Request{
		Playbook:   "testdata/missing.yml",
		Hosts:      localHosts("h1"),
		Connection: "local",
	}, nil)
	t.Logf("error: %v", err)
	if err == nil || !strings.Contains(err.Error(), "missing.yml could not be found") {
		t.Errorf("error = %v, want ansible's stderr about the missing playbook", err)
	}
}

func TestRunBadRequest(t *testing.T) {
	r := &Runner{}
	for name, req := range map[string]Request{
		"no hosts":        {Playbook: "x.yml", Connection: "local"},
		"bad connection":  {Playbook: "x.yml", Connection: "winrm", Hosts: localHosts("a")},
		"pattern in name": {Playbook: "x.yml", Connection: "local", Hosts: localHosts("a,b")},
		"duplicate host":  {Playbook: "x.yml", Connection: "local", Hosts: localHosts("a", "a")},
		"ssh without ip":  {Playbook: "x.yml", Hosts: localHosts("a")},
	} {
		if _, err := r.Run(context.Background(), req, nil); err == nil {
			t.Errorf("%s: Run succeeded, want an error", name)
		}
	}
}

func TestRunCancelKillsGroup(t *testing.T) {
	needlab.Programs(t, "ansible-playbook")
	sleep := sleepArg()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	var progressed sync.WaitGroup
	progressed.Add(1)
	var once sync.Once
	go func() {
		r := &Runner{ProgressInterval: 100 * time.Millisecond}
		_, err := r.Run(ctx, Request{
			Playbook:   "testdata/sleep.yml",
			Hosts:      localHosts("h1"),
			Connection: "local",
			ExtraVars:  map[string]any{"sleep_for": sleep},
		}, func(string) { once.Do(progressed.Done) })
		done <- err
	}()
	waitFor(t, "the sleep task to start", func() bool { return len(matching("sleep "+sleep)) > 0 })
	progressed.Wait()
	start := time.Now()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Run error = %v, want context.Canceled", err)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("Run returned %s after cancel", d)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	waitFor(t, "the sleep and ansible to go away", func() bool {
		return len(matching("sleep "+sleep)) == 0 && len(matching("testdata/sleep.yml")) == 0
	})
}

// TestRunDiesWithWorker SIGKILLs a process that is running a playbook, as
// when a worker is kill -9ed, and checks that the playbook's commands die
// with it rather than running on as orphans.
func TestRunDiesWithWorker(t *testing.T) {
	needlab.Programs(t, "ansible-playbook")
	sleep := sleepArg()
	helper := exec.Command(os.Args[0], "-test.run=^$")
	// The killed helper cannot remove its inventory; keep it in a test dir.
	helper.Env = append(os.Environ(), "DNSROLL_HELPER_SLEEP="+sleep, "TMPDIR="+t.TempDir())
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	defer helper.Process.Kill()
	waitFor(t, "the sleep task to start", func() bool { return len(matching("sleep "+sleep)) > 0 })
	if err := helper.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = helper.Wait()
	waitFor(t, "the orphaned sleep and ansible to die", func() bool {
		return len(matching("sleep "+sleep)) == 0 && len(matching("testdata/sleep.yml")) == 0
	})
}

// TestMain runs the test binary as the worker that TestRunDiesWithWorker
// kills when DNSROLL_HELPER_SLEEP is set, and runs the tests otherwise.
func TestMain(m *testing.M) {
	if sleep := os.Getenv("DNSROLL_HELPER_SLEEP"); sleep != "" {
		runPlaybookHelper(sleep)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// runPlaybookHelper runs a playbook whose task sleeps, as a worker would.
func runPlaybookHelper(sleep string) {
	_, _ = (&Runner{}).Run(context.Background(), Request{
		Playbook:   "testdata/sleep.yml",
		Hosts:      localHosts("h1"),
		Connection: "local",
		ExtraVars:  map[string]any{"sleep_for": sleep},
	}, nil)
}

// sleepArg is a sleep duration unique to one test, so that its process can
// be told apart from every other sleep on the machine.
func sleepArg() string {
	return fmt.Sprintf("29.%06d", rand.IntN(1000000))
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

// matching returns the command lines that contain s, except this test's.
func matching(s string) []string {
	var out []string
	for _, c := range cmdlines() {
		if strings.Contains(c, s) && !strings.Contains(c, "-test.") {
			out = append(out, c)
		}
	}
	return out
}

// cmdlines reads every live process's command line from /proc. Zombies
// have an empty one, so they never match.
func cmdlines() []string {
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	var out []string
	for _, d := range dirs {
		if _, err := strconv.Atoi(filepath.Base(d)); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join(d, "cmdline"))
		if err == nil && len(b) > 0 {
			out = append(out, strings.ReplaceAll(string(b), "\x00", " "))
		}
	}
	return out
}

// ansible-playbook, and everything it starts, gets the worker's
// environment without its secrets, with the operator's Ansible settings.
func TestAnsibleEnvironmentHasNoSecrets(t *testing.T) {
	t.Setenv("LINODE_TOKEN", "sekret-linode")
	t.Setenv("DNSROLL_API_TOKEN", "sekret-api")
	t.Setenv("ANSIBLE_CONFIG", "/etc/dnsroll/ansible.cfg")
	env := strings.Join((&Runner{Env: []string{"EXTRA=1"}}).environ("local", nil), "\n")
	if strings.Contains(env, "sekret") {
		t.Errorf("ansible-playbook's environment carries a secret:\n%s", env)
	}
	for _, want := range []string{"ANSIBLE_CONFIG=/etc/dnsroll/ansible.cfg", "EXTRA=1", "PATH="} {
		if !strings.Contains(env, want) {
			t.Errorf("ansible-playbook's environment lacks %s", want)
		}
	}
}

// A worker without ansible-playbook fails the step for good: every retry
// would fail the same way while the VMs it created cost money.
func TestRunWithoutAnsibleIsNotRetried(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := (&Runner{}).Run(context.Background(), Request{
		Playbook: "testdata/ok.yml", Hosts: localHosts("h1"), Connection: "local",
	}, nil)
	if err == nil {
		t.Fatal("ran without ansible-playbook on PATH")
	}
	if code := dnsroll.ErrorCode(err); code != dnsroll.EINVALID {
		t.Errorf("code %q, want %q (not retried): %v", code, dnsroll.EINVALID, err)
	}
	for _, want := range []string{"ansible-playbook", "apt-get install ansible"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

// An ansible-playbook that exits 0 without a JSON result (another stdout
// callback, a wrapper script) does not pass for a run with no hosts'
// results: the step fails saying so.
func TestRunWithoutAResultFails(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "ansible-playbook")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\necho 'PLAY RECAP'\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := (&Runner{Binary: bin}).Run(context.Background(), Request{
		Playbook: "testdata/ok.yml", Hosts: localHosts("h1"), Connection: "local",
	}, nil)
	if err == nil || !strings.Contains(err.Error(), "no JSON result") {
		t.Fatalf("err = %v, want one saying there was no JSON result", err)
	}
}

// The operator's stdout callback, in the worker's environment or in
// Runner.Env, does not replace the JSON one that results are read from;
// Runner.Env overrides dnsroll's other defaults.
func TestRunKeepsTheJSONCallback(t *testing.T) {
	needlab.Programs(t, "ansible-playbook")
	t.Setenv("ANSIBLE_STDOUT_CALLBACK", "minimal")
	r := &Runner{Env: []string{"ANSIBLE_STDOUT_CALLBACK=yaml", "ANSIBLE_RETRY_FILES_ENABLED=True"}}
	if got, _ := lastValue(r.environ("local", nil), "ANSIBLE_RETRY_FILES_ENABLED"); got != "True" {
		t.Errorf("ANSIBLE_RETRY_FILES_ENABLED = %q, want Runner.Env's True", got)
	}
	res, err := r.Run(context.Background(), Request{
		Playbook:   "testdata/ok.yml",
		Hosts:      localHosts("h1"),
		Connection: "local",
		ExtraVars:  map[string]any{"marker": marker},
	}, nil)
	if err != nil || res.Hosts["h1"].OK != 2 {
		t.Fatalf("Run = %+v, %v; want h1's results", res, err)
	}
}
