// Package e2e runs rollouts end to end in the local lab: a real Temporal dev
// server, real named and nginx processes, real ansible-playbook, and the
// Linode API simulator behind the unmodified linodego client.
package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/config"
	"github.com/dnsroll/dnsroll/internal/freeport"
	"github.com/dnsroll/dnsroll/internal/needlab"
	"github.com/dnsroll/dnsroll/internal/testfiles"
	"github.com/dnsroll/dnsroll/lab"
	"github.com/dnsroll/dnsroll/rollouts"
	"github.com/dnsroll/dnsroll/worker"
	"github.com/dnsroll/dnsroll/workflows"
)

// testLab is a lab of its own per test: temp state, free ports.
type testLab struct {
	*lab.Lab
	fleet    *config.Fleet
	fleetDir string
	client   client.Client
	// lastWorker is the worker process started last, whose log a failing
	// test shows.
	lastWorker *exec.Cmd
}

func repoRoot(t testing.TB) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// requireLab skips (or, under `make test`, fails) when the lab's programs
// are missing.
func requireLab(t testing.TB) string {
	t.Helper()
	bin := os.Getenv("DNSROLL_TEMPORAL_BIN")
	if bin == "" {
		bin = filepath.Join(repoRoot(t), "bin", "temporal")
	}
	if _, err := os.Stat(bin); err != nil {
		needlab.Missing(t, "the lab needs Temporal's CLI at %s (run `make tools`)", bin)
	}
	needlab.Programs(t, "named", "nginx", "ansible-playbook")
	needlab.Slow(t, "the lab")
	return bin
}

// writeFleet writes a copy of fleets/lab.yaml with free load balancer
// ports, its own lab port range, absolute paths, and every load balancer on
// driver.
func writeFleet(t *testing.T, driver string, extraZones map[string]string) string {
	t.Helper()
	root := repoRoot(t)
	b, err := os.ReadFile(filepath.Join(root, "fleets", "lab.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for _, lb := range []string{"127.0.0.1:5301", "127.0.0.1:5302"} {
		p, err := lab.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		s = strings.Replace(s, lb, fmt.Sprintf("127.0.0.1:%d", p), 1)
	}
	s = strings.ReplaceAll(s, "../ansible/", filepath.Join(root, "ansible")+"/")
	s = strings.ReplaceAll(s, "driver: nginx", "driver: "+driver)
	zonesDir := t.TempDir()
	for _, rev := range []string{"A", "B"} {
		copyFile(t, filepath.Join(root, "lab", "zones", rev, "example.com.zone"), filepath.Join(zonesDir, rev, "example.com.zone"))
	}
	for rev, text := range extraZones {
		testfiles.Write(t, filepath.Join(zonesDir, rev, "example.com.zone"), text)
	}
	s = strings.ReplaceAll(s, "../lab/zones/", zonesDir+"/")
	base, err := freeport.TestBases.Pick(40)
	if err != nil {
		t.Fatal(err)
	}
	s = strings.Replace(s, "dns_port_base: 15300", fmt.Sprintf("dns_port_base: %d", base), 1)
	dir := t.TempDir()
	testfiles.Write(t, filepath.Join(dir, "lab.yaml"), s)
	return dir
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	testfiles.Write(t, to, string(b))
}

// lbDrivers are the load balancer drivers that the rollout tests run with.
var lbDrivers = []string{"nginx", "dnsdist"}

// forEachDriver runs test once per load balancer driver, as a subtest named
// after the driver.
func forEachDriver(t *testing.T, test func(t *testing.T, driver string)) {
	for _, d := range lbDrivers {
		t.Run(d, func(t *testing.T) { test(t, d) })
	}
}

// startLab starts a lab with no worker and the fleet's own (nginx) load
// balancers.
func startLab(t *testing.T, extraZones map[string]string) *testLab {
	t.Helper()
	return startLabDriver(t, "nginx", extraZones)
}

// startBlue starts a lab as startLabDriver does, with a worker in this
// process, and rolls revision A out: blue, where most tests begin.
func startBlue(t *testing.T, driver string, extraZones map[string]string) *testLab {
	t.Helper()
	tl := startLabDriver(t, driver, extraZones)
	tl.startWorker(t)
	tl.rolloutOK(t, "A")
	return tl
}

// startLabDriver starts a lab with no worker whose load balancers all use
// driver.
func startLabDriver(t *testing.T, driver string, extraZones map[string]string) *testLab {
	t.Helper()
	return startLabRewritten(t, driver, extraZones, strings.NewReplacer())
}

// startLabRewritten starts a lab as startLabDriver does, for the fleet
// file as rewrite changes it (another topology, say).
func startLabRewritten(t *testing.T, driver string, extraZones map[string]string, rewrite *strings.Replacer) *testLab {
	t.Helper()
	bin := requireLab(t)
	needlab.Programs(t, driver)
	fleetDir := writeFleet(t, driver, extraZones)
	path := filepath.Join(fleetDir, "lab.yaml")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	testfiles.Write(t, path, rewrite.Replace(string(b)))
	fleet, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return launchLab(t, fleetDir, fleet, lab.Options{TemporalBin: bin, BootDelay: 200 * time.Millisecond}, 2*time.Minute)
}

// launchLab starts a lab for fleet (read from fleetDir) with opts, in a
// directory of its own, and a client of its Temporal; both stop when the
// test ends.
func launchLab(t *testing.T, fleetDir string, fleet *config.Fleet, opts lab.Options, timeout time.Duration) *testLab {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	// The lab's directory goes with the test: its Temporal need not shut
	// down gracefully.
	opts.Dir, opts.Fleet, opts.Headless, opts.Disposable = labDir(t), fleet, true, true
	// Deleted servers still show "deleting", their labels taken, for
	// some polls of the steps that wait them out (200 ms apart), not the
	// lab's 2 s that every rollout waited through once or twice.
	if opts.DeleteDelay == 0 {
		opts.DeleteDelay = 600 * time.Millisecond
	}
	l, err := lab.Start(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Stop)
	c, err := client.Dial(client.Options{HostPort: l.TemporalAddress(), Logger: lab.QuietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return &testLab{Lab: l, fleet: fleet, fleetDir: fleetDir, client: c}
}

// labDir is a new directory for a lab, removed when the test ends, after
// the lab has stopped. Removal is retried for a while, in case a process
// the test killed still holds a file. ("directory not empty" in CI came
// from a machine the lab was still destroying in the background when it
// stopped; machines.Host.Close now waits for those.)
func labDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "dnsroll-e2e-lab-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for tries := 1; ; tries++ {
			err := os.RemoveAll(dir)
			if err == nil {
				return
			}
			if tries == 50 {
				t.Errorf("removing the lab directory: %v", err)
				return
			}
			time.Sleep(200 * time.Millisecond)
		}
	})
	return dir
}

func (tl *testLab) workerConfig() worker.Config {
	return tl.WorkerConfig(tl.fleetDir)
}

// startWorker runs an in-process worker until the test ends.
func (tl *testLab) startWorker(t *testing.T) sdkworker.Worker {
	t.Helper()
	acts, err := worker.NewActivities(tl.workerConfig())
	if err != nil {
		t.Fatal(err)
	}
	w := worker.New(tl.client, acts, worker.Options{})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	return w
}

// start starts a rollout of the lab's fleet (unless in names another)
// without waiting for it.
func (tl *testLab) start(t *testing.T, in workflows.RolloutInput) rollouts.Run {
	t.Helper()
	if in.Fleet == "" {
		in.Fleet = tl.fleet.Name
	}
	run, err := rollouts.Start(context.Background(), tl.client, in)
	if err != nil {
		t.Fatal(err)
	}
	return run
}

// rollout starts a rollout and waits for its end.
func (tl *testLab) rollout(t *testing.T, rev string) (rollouts.Run, workflows.Status, error) {
	t.Helper()
	run := tl.start(t, workflows.RolloutInput{Revision: rev})
	st, err := tl.wait(t, run)
	return run, st, err
}

// signal sends the rollout a signal (workflows.SignalApprove, ...).
func (tl *testLab) signal(t *testing.T, run rollouts.Run, name string, in workflows.SignalInput) {
	t.Helper()
	if err := rollouts.Signal(context.Background(), tl.client, run, name, in); err != nil {
		t.Fatal(err)
	}
}

// rolloutOK rolls rev out and fails the test unless the rollout succeeds.
func (tl *testLab) rolloutOK(t *testing.T, rev string) workflows.Status {
	t.Helper()
	_, st, err := tl.rollout(t, rev)
	if err != nil {
		t.Fatalf("rollout %s: %v (%s)", rev, err, st.Failure)
	}
	return st
}

func (tl *testLab) wait(t *testing.T, run rollouts.Run) (workflows.Status, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	return rollouts.Wait(ctx, tl.client, run, 200*time.Millisecond, nil)
}

// answers returns the release TXT through each load balancer.
func (tl *testLab) answers(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, lb := range tl.fleet.LoadBalancers {
		out = append(out, queryTXT(lb.Address, "release.example.com."))
	}
	return out
}

// wantAnswers fails t unless the load balancers, in the fleet's order,
// answer release.example.com. with want, their TXT records joined by
// commas ("revision B,revision A"); when says at what point of the test.
// It reports whether they did.
func (tl *testLab) wantAnswers(t *testing.T, when, want string) bool {
	t.Helper()
	got := strings.Join(tl.answers(t), ",")
	if got != want {
		if when != "" {
			when += ": "
		}
		t.Errorf("%sanswers through the load balancers = %s, want %s", when, got, want)
	}
	return got == want
}

func queryTXT(addr, name string) string {
	m := new(dns.Msg)
	m.SetQuestion(name, dns.TypeTXT)
	r, _, err := (&dns.Client{Timeout: 2 * time.Second}).Exchange(m, addr)
	if err != nil {
		return "error"
	}
	if r.Rcode != dns.RcodeSuccess || len(r.Answer) == 0 {
		return dns.RcodeToString[r.Rcode]
	}
	return strings.Join(r.Answer[0].(*dns.TXT).Txt, "")
}

// fleetServers returns the fleet-tagged servers in the simulator by label,
// failing on a duplicate label.
func (tl *testLab) fleetServers(t *testing.T) map[string]dnsroll.Server {
	t.Helper()
	out := map[string]dnsroll.Server{}
	for _, s := range tl.Servers() {
		if !s.HasTag(tl.fleet.Tag()) {
			continue
		}
		if _, dup := out[s.Label]; dup {
			t.Errorf("duplicate instance label %s in the simulator", s.Label)
		}
		out[s.Label] = s
	}
	return out
}

// assertOnly checks the simulator holds exactly the given labels.
func (tl *testLab) assertOnly(t *testing.T, labels ...string) map[string]dnsroll.Server {
	t.Helper()
	got := tl.fleetServers(t)
	if len(got) != len(labels) {
		t.Errorf("simulator has %d fleet instances %v, want %v", len(got), keys(got), labels)
	}
	for _, l := range labels {
		if _, ok := got[l]; !ok {
			t.Errorf("simulator lacks %s; has %v", l, keys(got))
		}
	}
	return got
}

// assertKept checks that a stopped rollout left blue in place: the
// simulator holds exactly ns1 and ns2, and they are blue's instances.
func (tl *testLab) assertKept(t *testing.T, blue map[string]dnsroll.Server) {
	t.Helper()
	after := tl.assertOnly(t, "ns1", "ns2")
	for _, l := range []string{"ns1", "ns2"} {
		if after[l].ID != blue[l].ID {
			t.Errorf("%s is instance %d, want blue's %d", l, after[l].ID, blue[l].ID)
		}
	}
}

// startOverBlue rolls out revision A, which becomes blue, then starts a
// rollout of revision B without waiting for it: the opening of every test
// that acts during a rollout.
func (tl *testLab) startOverBlue(t *testing.T) (map[string]dnsroll.Server, rollouts.Run) {
	t.Helper()
	tl.rolloutOK(t, "A")
	blue := tl.assertOnly(t, "ns1", "ns2")
	run := tl.start(t, workflows.RolloutInput{Revision: "B"})
	return blue, run
}

// assertReplaced checks that the rollout that ended with st replaced blue:
// the simulator holds exactly ns1 and ns2, both new and both the
// rollout's green, no other instance ever remained, and both load
// balancers answer rev.
func (tl *testLab) assertReplaced(t *testing.T, blue map[string]dnsroll.Server, st workflows.Status, rev string) {
	t.Helper()
	green := tl.assertOnly(t, "ns1", "ns2")
	for _, l := range []string{"ns1", "ns2"} {
		if green[l].ID == blue[l].ID || green[l].ID != st.Green[l].ID {
			t.Errorf("%s: simulator has %d, blue was %d, rollout's green %d", l, green[l].ID, blue[l].ID, st.Green[l].ID)
		}
	}
	if n := len(tl.Sim().Instances()); n != 2 {
		t.Errorf("simulator holds %d instances, want 2", n)
	}
	tl.wantAnswers(t, "after the rollout", "revision "+rev+",revision "+rev)
}

func keys(m map[string]dnsroll.Server) []string {
	var out []string
	for k, v := range m {
		out = append(out, fmt.Sprintf("%s(%d)", k, v.ID))
	}
	return out
}
