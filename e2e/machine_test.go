package e2e

import (
	"context"
	"errors"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/api"
	"github.com/dnsroll/dnsroll/config"
	"github.com/dnsroll/dnsroll/internal/needlab"
	"github.com/dnsroll/dnsroll/internal/testfiles"
	"github.com/dnsroll/dnsroll/lab"
	"github.com/dnsroll/dnsroll/lab/machines"
	"github.com/dnsroll/dnsroll/lb"
	"github.com/dnsroll/dnsroll/workflows"
)

// The TestMachine… tests run the production path: the simulator's
// instances and the load balancers are Debian machines (lab/machines), the
// fleet is fleets/machines.yaml (connection ssh, port 53, systemd), and
// Ansible reaches every machine over SSH, as in production.

// startMachineLab starts a machine lab for fleets/machines.yaml with every
// load balancer on driver, and no worker.
func startMachineLab(t *testing.T, driver string, users ...string) *testLab {
	t.Helper()
	bin := requireLab(t)
	base := os.Getenv("DNSROLL_LAB_IMAGE")
	if base == "" {
		base = machines.DefaultBase
	}
	if err := machines.Check(base); err != nil {
		needlab.Missing(t, "%v (`make lab-image` builds the image)", err)
	}
	root := repoRoot(t)
	b, err := os.ReadFile(filepath.Join(root, "fleets", "machines.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	s := strings.ReplaceAll(string(b), "../ansible/", filepath.Join(root, "ansible")+"/")
	s = strings.ReplaceAll(s, "../lab/zones/", filepath.Join(root, "lab", "zones")+"/")
	s = strings.ReplaceAll(s, "driver: nginx", "driver: "+driver)
	fleetDir := t.TempDir()
	testfiles.Write(t, filepath.Join(fleetDir, "machines.yaml"), s)
	fleet, err := config.Load(filepath.Join(fleetDir, "machines.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	opts := lab.Options{TemporalBin: bin, BootDelay: time.Second, Machines: true, MachineBase: base, MachineUsers: users}
	return launchLab(t, fleetDir, fleet, opts, 4*time.Minute)
}

// A complete rollout on machines, for both drivers: blue is created, then
// replaced by green. dig from the host gets the new revision through each
// load balancer's port 53, and named listens on the nameserver's own
// address, port 53.
func TestMachineRollout(t *testing.T) {
	forEachDriver(t, func(t *testing.T, driver string) {
		tl := startMachineLab(t, driver)
		tl.startWorker(t)
		tl.rolloutOK(t, "A")
		blue := tl.assertOnly(t, "ns1", "ns2")
		tl.rolloutOK(t, "B")
		green := tl.assertOnly(t, "ns1", "ns2")
		for _, lb := range tl.fleet.LoadBalancers {
			host, port, _ := net.SplitHostPort(lb.Address)
			out, err := exec.Command("dig", "+short", "+time=2", "@"+host, "-p", port, "TXT", "release.example.com").CombinedOutput()
			if got := strings.TrimSpace(string(out)); err != nil || got != `"revision B"` {
				t.Errorf("dig @%s -p %s TXT release.example.com: %q (%v), want \"revision B\"", host, port, got, err)
			}
		}
		for _, l := range []string{"ns1", "ns2"} {
			if green[l].ID == blue[l].ID {
				t.Errorf("%s was not replaced", l)
			}
			ip := green[l].IPv4
			out, err := tl.SSH(context.Background(), ip, "ss -Hlnu; ss -Hlnt")
			if err != nil {
				t.Fatalf("ssh %s: %v: %s", ip, err, out)
			}
			for _, proto := range []string{"udp", "tcp"} {
				if !strings.Contains(out, ip+":53 ") {
					t.Errorf("%s (%s): nothing listens on %s:53/%s:\n%s", l, ip, ip, proto, out)
				}
			}
			assertNeverDefaultBIND(t, tl, l, ip)
		}
		assertSurvivesReboots(t, tl, driver, blue, green, "revision B")
	})
}

// rebootMark is a file in /run, which a reboot empties: a machine that
// still has it did not reboot.
const rebootMark = "/run/dnsroll-e2e-not-rebooted"

// rebooted is a machine of the lab that a test reboots: its address, the
// unit that serves on it, and how the lab reboots it.
type rebooted struct {
	name, addr, unit string
	reboot           func() error
}

// assertSurvivesReboots reboots the load balancers' and green's machines
// as Linode reboots VMs for host maintenance, keeping their disks and
// addresses: each alone, then all at once. After each reboot, systemd
// starts named, nginx or dnsdist by itself, the load balancers serve want
// through their own addresses, and at the end they point at green alone:
// not at blue, nor at an empty or default upstream.
func assertSurvivesReboots(t *testing.T, tl *testLab, driver string, blue, green map[string]dnsroll.Server, want string) {
	t.Helper()
	started := time.Now()
	var all []rebooted
	for _, b := range tl.fleet.LoadBalancers {
		host, _, _ := net.SplitHostPort(b.Address)
		all = append(all, rebooted{b.Name, host, driver, func() error { return tl.RebootLoadBalancer(b.Name) }})
	}
	for _, l := range slices.Sorted(maps.Keys(green)) {
		s := green[l]
		all = append(all, rebooted{l, s.IPv4, "named", func() error { return tl.RebootInstance(s.ID) }})
	}
	for _, m := range all {
		tl.reboot(t, want, m)
	}
	tl.reboot(t, want, all...)
	for _, b := range tl.fleet.LoadBalancers {
		host, _, _ := net.SplitHostPort(b.Address)
		backends := tl.runningBackends(t, driver, host)
		for _, l := range b.Fronts {
			if !slices.Contains(backends, green[l].DNSAddr()) {
				t.Errorf("%s after the reboots: backends %v, not green's %s (%s)", b.Name, backends, l, green[l].DNSAddr())
			}
		}
		for _, a := range backends {
			if !slices.ContainsFunc(b.Fronts, func(l string) bool { return green[l].DNSAddr() == a }) {
				t.Errorf("%s after the reboots: backend %s is not green (blue: %v)", b.Name, a, blue)
			}
		}
	}
	t.Logf("reboots took %s", time.Since(started).Round(time.Second))
}

// reboot reboots machines at once and waits until each has come back with
// its unit active and enabled, and until every load balancer answers want.
func (tl *testLab) reboot(t *testing.T, want string, ms ...rebooted) {
	t.Helper()
	ctx := context.Background()
	var names []string
	for _, m := range ms {
		names = append(names, m.name)
		if out, err := tl.SSH(ctx, m.addr, "touch "+rebootMark); err != nil {
			t.Fatalf("ssh %s: %v: %s", m.name, err, out)
		}
	}
	started := time.Now()
	errs := make([]error, len(ms))
	var wg sync.WaitGroup
	for i, m := range ms {
		wg.Go(func() { errs[i] = m.reboot() })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	when := "after rebooting " + strings.Join(names, ", ")
	deadline := time.Now().Add(2 * time.Minute)
	for _, m := range ms {
		check := "test ! -e " + rebootMark + " && systemctl is-active " + m.unit + " && systemctl is-enabled " + m.unit
		for {
			out, err := tl.SSH(ctx, m.addr, check)
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				status, _ := tl.SSH(ctx, m.addr, "ls "+rebootMark+"; systemctl status "+m.unit+" --no-pager; journalctl -b -u "+m.unit+" --no-pager -n 20")
				t.Fatalf("%s: %s (%s) did not come back with %s active and enabled: %v: %s\n%s", when, m.name, m.addr, m.unit, err, out, status)
			}
			time.Sleep(500 * time.Millisecond)
		}
	}
	for !slices.Equal(tl.answers(t), slices.Repeat([]string{want}, len(tl.fleet.LoadBalancers))) {
		if time.Now().After(deadline) {
			tl.wantAnswers(t, when, strings.Repeat(","+want, len(tl.fleet.LoadBalancers))[1:])
			t.FailNow()
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Logf("%s: serving again after %s", when, time.Since(started).Round(100*time.Millisecond))
}

// runningBackends returns the backends (ip:port) that the load balancer
// at addr sends traffic to: nginx's upstream as it runs its config file,
// dnsdist's default pool as its console says.
func (tl *testLab) runningBackends(t *testing.T, driver, addr string) []string {
	t.Helper()
	command := `nginx -T 2>/dev/null | sed -n '/upstream dnsroll_backend/,/}/s/^ *server \([^ ;]*\).*/\1/p'`
	if driver == "dnsdist" {
		command = `dnsdist -C /etc/dnsdist/dnsroll-console.conf -c -e 'local o = {} for _, s in ipairs(getPoolServers("")) do o[#o + 1] = s.name end return table.concat(o, " ")'`
	}
	out, err := tl.SSH(context.Background(), addr, command)
	if err != nil {
		t.Fatalf("ssh %s %q: %v: %s", addr, command, err, out)
	}
	return strings.Fields(out)
}

// assertNeverDefaultBIND checks a nameserver that was a brand-new VM (the
// image has no BIND; the role installed it with apt): named never ran
// Debian's default configuration. That one answers recursive queries from
// the local networks (on Linode, a /24 shared with other customers), and
// a recursive named logs its automatic empty zones at startup; dnsroll's
// configuration has recursion off, so it logs none.
func assertNeverDefaultBIND(t *testing.T, tl *testLab, label, ip string) {
	t.Helper()
	out, err := tl.SSH(context.Background(), ip, "journalctl -u named -o cat --no-pager")
	if err != nil {
		t.Fatalf("ssh %s: %v: %s", ip, err, out)
	}
	if i := strings.Index(out, "automatic empty zone"); i >= 0 {
		t.Errorf("%s (%s): named ran Debian's default, recursive configuration before dnsroll's: %s", label, ip, strings.SplitN(out[i:], "\n", 2)[0])
	}
	if !strings.Contains(out, "running") {
		t.Errorf("%s (%s): named's journal does not show it running:\n%s", label, ip, out)
	}
}

// The worker is killed with SIGKILL while Ansible provisions green over
// SSH; a new worker resumes, with no duplicate or orphaned machine.
func TestMachineWorkerKilledDuringProvisioning(t *testing.T) {
	tl := startMachineLab(t, "nginx")
	first := tl.startWorkerProcess(t)
	tl.rolloutOK(t, "A")
	run := tl.start(t, workflows.RolloutInput{Revision: "B"})
	tl.waitForActivity(t, run, "ProvisionNameservers")
	waitForPlaybook(t, first, filepath.Base(tl.fleet.Ansible.NameserverPlaybook))
	time.Sleep(2 * time.Second)
	killWorker(t, first)
	tl.startWorkerProcess(t)
	st, err := tl.wait(t, run)
	if err != nil {
		t.Fatalf("resumed rollout: %v (%s)", err, st.Failure)
	}
	tl.assertOnly(t, "ns1", "ns2")
	if n := len(tl.Sim().Instances()); n != 2 {
		t.Errorf("the simulator holds %d instances, want 2", n)
	}
	tl.wantAnswers(t, "", "revision B,revision B")
}

// An abort before the switch deletes green and leaves blue serving.
func TestMachineAbortBeforeSwitch(t *testing.T) {
	tl := startMachineLab(t, "nginx")
	tl.startWorker(t)
	blue, run := tl.startOverBlue(t)
	tl.waitForActivity(t, run, "ProvisionNameservers")
	tl.signal(t, run, workflows.SignalAbort, workflows.SignalInput{Reason: "e2e", By: "ci"})
	st, _ := tl.wait(t, run)
	if st.Phase != workflows.PhaseAborted {
		t.Fatalf("phase = %s (%s), want aborted", st.Phase, st.Failure)
	}
	tl.assertKept(t, blue)
	tl.wantAnswers(t, "", "revision A,revision A")
}

// A rollback during the bake puts every load balancer back on blue,
// confirmed over UDP and TCP, and deletes green.
func TestMachineRollbackDuringBake(t *testing.T) {
	tl := startMachineLab(t, "nginx")
	tl.startWorker(t)
	tl.rolloutOK(t, "A")
	blue := tl.assertOnly(t, "ns1", "ns2")
	tl.editFleet(t, "bake: 3s", "bake: 10m")
	run := tl.start(t, workflows.RolloutInput{Revision: "B"})
	st := tl.waitForPhase(t, run, workflows.PhaseBaking)
	tl.wantServing(t, st, "baking on green")
	tl.signal(t, run, workflows.SignalRollback, workflows.SignalInput{Reason: "e2e", By: "ci"})
	st, _ = tl.wait(t, run)
	if st.Phase != workflows.PhaseRolledBack {
		t.Fatalf("phase = %s (%s), want rolled-back", st.Phase, st.Failure)
	}
	tl.wantServing(t, st, "rolled back")
	tl.assertKept(t, blue)
}

// New VMs whose sshd answers 20 s after the API says running: provisioning
// waits for SSH instead of failing an attempt against a machine that is
// still starting, and its status says so meanwhile.
func TestMachineSlowSSH(t *testing.T) {
	tl := startMachineLab(t, "nginx")
	tl.SetSSHDelay(20 * time.Second)
	tl.startWorker(t)
	run := tl.start(t, workflows.RolloutInput{Revision: "A"})
	tl.waitStatus(t, run, "provisioning's progress: waiting for SSH", func(st workflows.Status) bool {
		for _, w := range st.Working {
			if w.Activity == "ProvisionNameservers" && strings.HasPrefix(w.Progress, "waiting for SSH on ") {
				return true
			}
		}
		return false
	})
	st, err := tl.wait(t, run)
	if err != nil {
		t.Fatalf("rollout A: %v (%s)", err, st.Failure)
	}
	for _, s := range st.Steps {
		if s.Name == "ProvisionNameservers" && s.Attempts != 1 {
			t.Errorf("provisioning took %d attempts; it should wait for SSH, not fail against a booting machine", s.Attempts)
		}
	}
	tl.wantAnswers(t, "", "revision A,revision A")
}

// A new VM's first-boot jobs may hold apt's package lists lock and dpkg's
// lock while its SSH already answers: the roles' package installs wait for
// them, within one attempt, instead of failing with "Could not get lock"
// (/var/lib/apt/lists/lock, /var/lib/dpkg/lock-frontend) and retrying until
// they are free.
func TestMachineFirstBootApt(t *testing.T) {
	tl := startMachineLab(t, "nginx")
	tl.SetAptBusy(45 * time.Second)
	tl.startWorker(t)
	st := tl.rolloutOK(t, "A")
	i := slices.IndexFunc(st.Steps, func(s *workflows.Step) bool { return s.Name == "ProvisionNameservers" })
	if i < 0 {
		t.Fatalf("no ProvisionNameservers step in %+v", st.Steps)
	}
	if n := st.Steps[i].Attempts; n != 1 {
		t.Errorf("provisioning took %d attempts; it should wait for the first-boot job's dpkg lock", n)
	}
}

// Hardened machines are provisioned as a non-root user with sudo: both
// roles escalate with become. The nameservers are made from a private
// image that has the user: one of Linode's has only root, and the fleet
// is refused (TestNonRootNameserverUserNeedsAPrivateImage).
func TestMachineNonRootUser(t *testing.T) {
	tl := startMachineLab(t, "nginx", "deploy")
	tl.editFleet(t, "ssh_user: root", "ssh_user: deploy")
	for range tl.fleet.Nameservers {
		tl.editFleet(t, "image: linode/debian12", "image: "+lab.PrivateImage)
	}
	tl.startWorker(t)
	for _, rev := range []string{"A", "B"} {
		if _, st, err := tl.rollout(t, rev); err != nil {
			t.Fatalf("rollout %s as deploy: %v (%s)", rev, err, st.Failure)
		}
	}
	tl.wantAnswers(t, "", "revision B,revision B")
}

// nginx on a machine, under Debian's systemd unit and the role's drop-in:
// a binary upgrade in place (USR2, then QUIT to the old master) leaves
// systemd following the new master, and a master killed after it (a
// crash, the OOM killer) comes back by itself, over the unix sockets the
// dead master left, which nginx does not bind over. Before the drop-in it
// served nothing until the next rollout, and a start by hand failed with
// "Address already in use".
func TestMachineNginxUnderSystemd(t *testing.T) {
	tl := startMachineLab(t, "nginx")
	tl.startWorker(t)
	tl.rolloutOK(t, "A")
	c := tl.startAPI(t)
	balancer := tl.fleet.LoadBalancers[0]
	host, port, _ := net.SplitHostPort(balancer.Address)
	ctx := context.Background()
	sh := func(command string) string {
		t.Helper()
		out, err := tl.SSH(ctx, host, command)
		if err != nil {
			t.Fatalf("ssh %s %q: %v: %s", balancer.Name, command, err, out)
		}
		return strings.TrimSpace(out)
	}
	revision := "A"
	answers := func() bool {
		out, err := exec.Command("dig", "+short", "+time=1", "+tries=1", "@"+host, "-p", port, "TXT", "release.example.com").CombinedOutput()
		return err == nil && strings.TrimSpace(string(out)) == `"revision `+revision+`"`
	}

	before := sh("cat /run/nginx.pid")
	// The master runs under the role's systemd drop-in from its first
	// start: Debian's would start nginx at install, before the drop-in
	// existed, and a reload or binary upgrade keeps the master's limits.
	if limit := sh("grep 'Max open files' /proc/" + before + "/limits"); !strings.Contains(limit, " 16384 ") {
		t.Errorf("nginx's master runs with %q, not the drop-in's LimitNOFILE=16384", limit)
	}
	upd, err := c.StartRun(ctx, api.LBUpdates, api.LBUpdateRequest{Fleet: tl.fleet.Name, LoadBalancers: []string{balancer.Name},
		Update: lb.Update{Kind: lb.UpdateBinary}, Reason: "e2e binary upgrade under systemd"})
	if err != nil {
		t.Fatal(err)
	}
	if run := waitLBUpdate(t, c, upd.ID); run.Status.Phase != workflows.PhaseSucceeded {
		t.Fatalf("binary upgrade of %s: %s: %s", balancer.Name, run.Status.Phase, run.Status.Failure)
	}
	upgraded := sh("cat /run/nginx.pid")
	if upgraded == before || sh("systemctl show --property=MainPID --value nginx") != upgraded || sh("systemctl is-active nginx") != "active" {
		t.Fatalf("after the upgrade: master %s (before %s), systemd: %s", upgraded, before, sh("systemctl status nginx --no-pager || true"))
	}
	if !answers() {
		t.Fatalf("%s does not answer after the upgrade", balancer.Name)
	}

	// A run killed after it wrote the drop-in but before systemd reloaded
	// it: the file is as the role writes it, and systemd runs without it.
	// The next run of the role must have systemd load it.
	const dropIn = "/etc/systemd/system/nginx.service.d/dnsroll.conf"
	sh("cp " + dropIn + " /root/drop-in && rm " + dropIn + " && systemctl daemon-reload && cp /root/drop-in " + dropIn)
	unit := func() string {
		return sh("systemctl show --property=Restart --value nginx") + " " + sh("systemctl show --property=NeedDaemonReload --value nginx")
	}
	if got := unit(); got != "no yes" {
		t.Fatalf("systemd, with the drop-in written but not loaded: Restart, NeedDaemonReload = %q", got)
	}
	tl.rolloutOK(t, "B")
	revision = "B"
	if got := unit(); got != "on-failure no" {
		t.Fatalf("after a rollout, systemd runs nginx with Restart, NeedDaemonReload = %q: the drop-in an earlier run wrote was never loaded", got)
	}

	// Every nginx process at once, as a crash of the master or the OOM
	// killer's cleanup leaves none to serve: a master killed alone leaves
	// its workers serving.
	sh("pkill -KILL -x nginx")
	killed := time.Now()
	for {
		// systemd removes the dead master's pid file, and the new master
		// writes it: cat fails in between, and says so on its output.
		master, err := tl.SSH(ctx, host, "cat /run/nginx.pid")
		master = strings.TrimSpace(master)
		if err == nil && master != "" && master != upgraded && answers() {
			if main := sh("systemctl show --property=MainPID --value nginx"); main != master {
				t.Errorf("systemd's main pid is %s, the master %s", main, master)
			}
			break
		}
		if time.Since(killed) > time.Minute {
			t.Fatalf("%s does not answer a minute after nginx was killed:\n%s", balancer.Name, sh("systemctl status nginx --no-pager || true; journalctl -u nginx --no-pager -n 20"))
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("%s answered again %s after nginx was killed", balancer.Name, time.Since(killed).Round(100*time.Millisecond))
}
