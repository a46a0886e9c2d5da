package e2e

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/dnsroll/dnsroll/config"
	"github.com/dnsroll/dnsroll/internal/proctable"
	"github.com/dnsroll/dnsroll/lb"
	"github.com/dnsroll/dnsroll/lb/dnsdist"
	"github.com/dnsroll/dnsroll/lb/nginx"
	"github.com/dnsroll/dnsroll/workflows"
)

// A worker killed with SIGKILL at each moment of a two-phase switch, for
// both drivers: while it stages green (its playbook running); between the
// stage and the flip (at the approval gate); mid-flip, having flipped lb1
// but not lb2; and mid-flip back, after a rollback signal, having flipped
// lb1 back but not lb2. The test leaves the half-flipped fleets itself,
// with the same driver the worker uses, since a flip takes milliseconds.
// Each time another worker resumes the rollout, and every load balancer
// ends on one side, the side the status reports, over UDP and TCP.
func TestWorkerKilledAroundFlip(t *testing.T) {
	forEachDriver(t, func(t *testing.T, driver string) { testWorkerKilledAroundFlip(t, driver) })
}

func testWorkerKilledAroundFlip(t *testing.T, driver string) {
	tl := startLabDriver(t, driver, nil)
	// A bake long enough to send the rollback signal during it.
	tl.editFleet(t, "bake: 3s", "bake: 60s")
	w := tl.startWorkerProcess(t)
	tl.rolloutOK(t, "A")
	blue := tl.assertOnly(t, "ns1", "ns2")
	tl.editFleet(t, "approval: auto", "approval: manual")

	run := tl.start(t, workflows.RolloutInput{Revision: "B"})
	// Killed while staging: while it runs a load balancer's playbook, the
	// first before the approval gate. Staging lasts a second or two, too
	// short to catch through the status query, which the worker answers
	// and which may take that long on a busy machine.
	waitForPlaybook(t, w, tl.lbPlaybook(driver))
	killWorker(t, w)
	w = tl.startWorkerProcess(t)

	// Killed between the stage and the flip, after flipping lb1 only.
	st := tl.waitForPhase(t, run, workflows.PhaseAwaitingApproval)
	tl.wantServing(t, st, "staged, before the flip")
	killWorker(t, w)
	tl.flip(t, driver, st, "lb1", 100)
	w = tl.startWorkerProcess(t)
	tl.signal(t, run, workflows.SignalApprove, workflows.SignalInput{By: "ci"})
	st = tl.waitForPhase(t, run, workflows.PhaseBaking)
	if len(st.OnGreen) != 2 || st.GreenShare != 100 {
		t.Errorf("baking with on green %v, green share %d; want both, 100", st.OnGreen, st.GreenShare)
	}
	tl.wantServing(t, st, "flipped to green after a worker died mid-flip")

	// Killed mid-flip back: lb1 is back on blue, lb2 is not.
	killWorker(t, w)
	tl.flip(t, driver, st, "lb1", 0)
	tl.signal(t, run, workflows.SignalRollback, workflows.SignalInput{Reason: "e2e", By: "ci"})
	tl.startWorkerProcess(t)
	st, err := tl.wait(t, run)
	if st.Phase != workflows.PhaseRolledBack {
		t.Fatalf("rollout ended %s (%v), want rolled-back", st.Phase, err)
	}
	tl.wantServing(t, st, "rolled back after a worker died mid-flip back")
	after := tl.assertOnly(t, "ns1", "ns2")
	for _, l := range []string{"ns1", "ns2"} {
		if after[l].ID != blue[l].ID {
			t.Errorf("%s is instance %d, want blue's %d", l, after[l].ID, blue[l].ID)
		}
	}
	retried := false
	for _, s := range st.Steps {
		if s.Name == "StageLoadBalancer" && s.Attempts >= 2 {
			retried = true
		}
	}
	if !retried {
		t.Errorf("no retried StageLoadBalancer step after the kill while staging: %+v", st.Steps)
	}
}

// flip does what a worker that died mid-flip did to load balancer name:
// it sends greenShare percent of its queries to green, through the same
// driver, from this process.
func (tl *testLab) flip(t *testing.T, driver string, st workflows.Status, name string, greenShare int) {
	t.Helper()
	var balancer config.LoadBalancer
	for _, b := range tl.fleet.LoadBalancers {
		if b.Name == name {
			balancer = b
		}
	}
	shares := []lb.Share{{Server: st.Green[balancer.Fronts[0]], Weight: greenShare}, {Server: st.Blue[balancer.Fronts[0]], Weight: 100 - greenShare}}
	var d interface {
		Flip(context.Context, *config.Fleet, config.LoadBalancer, []lb.Share) error
	}
	switch driver {
	case "nginx":
		d = &nginx.Driver{Reach: lb.Reach{Place: config.PlaceIn(tl.Dir())}}
	case "dnsdist":
		d = &dnsdist.Driver{Reach: lb.Reach{Place: config.PlaceIn(tl.Dir())}}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := d.Flip(ctx, tl.fleet, balancer, shares); err != nil {
		t.Fatalf("flip %s to green %d%%: %v", name, greenShare, err)
	}
	want := map[bool]string{true: "revision B", false: "revision A"}[greenShare == 100]
	if got := queryTXT(balancer.Address, "release.example.com."); got != want {
		t.Fatalf("%s answers %q after the test's flip, want %q", name, got, want)
	}
}

// killWorker freezes every playbook the worker runs, then kills the worker
// and those playbooks with SIGKILL, as a crash of the worker's machine
// would: nothing of the switch runs a moment longer.
func killWorker(t *testing.T, w *exec.Cmd) {
	t.Helper()
	groups := playbookGroups(w.Process.Pid)
	for _, g := range groups {
		_ = syscall.Kill(-g, syscall.SIGSTOP)
	}
	if err := w.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = w.Wait()
	for _, g := range groups {
		_ = syscall.Kill(-g, syscall.SIGKILL)
	}
}

// playbookGroups returns the process groups of the playbooks that worker
// runs: provision.Runner starts each under a supervising sh, as the leader
// of its own group, with "dnsroll-ansible" as its $0.
func playbookGroups(worker int) []int {
	var out []int
	for _, p := range proctable.List() {
		if p.PPID == worker && strings.Contains(p.Cmdline(), "dnsroll-ansible") {
			out = append(out, p.PID)
		}
	}
	return out
}

// waitForPlaybook blocks until worker runs the playbook whose file is
// named playbook.
func waitForPlaybook(t *testing.T, worker *exec.Cmd, playbook string) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for !runsPlaybook(worker.Process.Pid, playbook) {
		if time.Now().After(deadline) {
			t.Fatalf("the worker never ran %s", playbook)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// runsPlaybook reports whether worker runs the playbook named playbook.
func runsPlaybook(worker int, playbook string) bool {
	for _, p := range proctable.List() {
		if p.PPID == worker && strings.Contains(p.Cmdline(), "dnsroll-ansible") && strings.Contains(p.Cmdline(), "/"+playbook) {
			return true
		}
	}
	return false
}

// lbPlaybook is the file name of the playbook that driver's load
// balancers run.
func (tl *testLab) lbPlaybook(driver string) string {
	if driver == "dnsdist" {
		return dnsdist.PlaybookName
	}
	return filepath.Base(tl.fleet.Ansible.LoadBalancerPlaybook)
}

// wantServing checks that every load balancer answers, over UDP and TCP,
// from the side the status says it is on: green (revision B) for those in
// OnGreen, blue (revision A) for the others.
func (tl *testLab) wantServing(t *testing.T, st workflows.Status, when string) {
	t.Helper()
	onGreen := map[string]bool{}
	for _, n := range st.OnGreen {
		onGreen[n] = true
	}
	for _, lb := range tl.fleet.LoadBalancers {
		want := "revision A"
		if onGreen[lb.Name] {
			want = "revision B"
		}
		for _, proto := range []string{"udp", "tcp"} {
			if got := queryTXTOver(lb.Address, proto, "release.example.com."); got != want {
				t.Errorf("%s: %s answers %q over %s; the status (on green: %v) says %q", when, lb.Name, got, proto, st.OnGreen, want)
			}
		}
	}
}

func queryTXTOver(addr, proto, name string) string {
	m := new(dns.Msg)
	m.SetQuestion(name, dns.TypeTXT)
	r, _, err := (&dns.Client{Net: proto, Timeout: 2 * time.Second}).Exchange(m, addr)
	if err != nil {
		return "error: " + err.Error()
	}
	if r.Rcode != dns.RcodeSuccess || len(r.Answer) == 0 {
		return dns.RcodeToString[r.Rcode]
	}
	return strings.Join(r.Answer[0].(*dns.TXT).Txt, "")
}
