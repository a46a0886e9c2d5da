// Package machines runs the machine lab's machines: full Debian 12 systems
// with systemd and sshd, booted by systemd-nspawn from one shared base image
// through an overlay each, on a private bridge. They stand in for Linode
// VMs and load balancers, so the production path (SSH to a new machine,
// apt, systemd, port 53 on the machine's own address) runs on every test.
//
// The bridge has the network Subnet and the host HostAddr on it. Nothing
// routes it anywhere: no NAT, no forwarding. A machine reaches the host
// and the other machines, and nothing else.
package machines

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/dnsroll/dnsroll/internal/childenv"
	"github.com/dnsroll/dnsroll/internal/proctable"
)

// The machine lab's network. Documented in docs/lab.md; never routed.
const (
	Bridge   = "dnsroll0"
	Subnet   = "10.231.0.0/24"
	HostAddr = "10.231.0.1"
)

// DefaultBase is where `make lab-image` builds the base image: outside any
// clone, so every checkout on the machine shares it.
const DefaultBase = "/var/cache/dnsroll/base-bookworm"

// RepoDir is the base image's local package repository, its only apt
// source (lab/machines/build-base.sh): the packages the roles install.
const RepoDir = "srv/dnsroll-lab-repo"

// lockFile keeps two machine labs from sharing the bridge and addresses.
const lockFile = "/run/dnsroll-machine-lab.lock"

// Options configure a Host.
type Options struct {
	// Dir holds one directory per machine (overlay layers and logs).
	Dir string
	// Base is the base image, built by lab/machines/build-base.sh.
	Base string
	// Log receives a line per machine started or stopped.
	Log io.Writer
}

// Spec is one machine to boot.
type Spec struct {
	// Name is the machine's hostname and directory name.
	Name string
	// Addr is its address on the lab network.
	Addr netip.Addr
	// AuthorizedKeys are installed for root, as Linode installs the
	// authorized_keys of a create request. None means nobody can log in.
	AuthorizedKeys []string
	// RootPass, when set, becomes root's password.
	RootPass string
	// SSHDelay starts sshd this long after the machine boots, as on a
	// slow VM whose API status says running long before SSH answers.
	SSHDelay time.Duration
	// AptBusy holds apt's package lists lock and dpkg's lock for this long
	// after the machine boots, as a first-boot job (unattended-upgrades,
	// cloud-init's packages) may on a new VM while its SSH already answers.
	AptBusy time.Duration
	// Users are extra login users, each with the keys and passwordless
	// sudo, as a hardened image would have instead of root logins.
	Users []string
	// UserData is the cloud-init user data Linode's Metadata service
	// serves the VM, decoded. Of it the lab does what cloud-init's cc_ssh
	// module does with the host keys (cloudInitHostKeys); with none, the
	// machine makes its host keys as a first boot does (ssh-keygen -A).
	UserData []byte
}

// Host runs the machines of one machine lab.
type Host struct {
	opts Options
	lock *os.File

	mu       sync.Mutex
	machines map[string]*machine
	// destroying counts machines taken out of the table and not yet
	// shut down and removed, which Close waits for.
	destroying sync.WaitGroup
}

type machine struct {
	spec Spec
	dir  string
	log  io.Writer

	// life serializes a reboot with the machine's destruction; gone says
	// it was destroyed.
	life sync.Mutex
	gone bool
	cmd  *exec.Cmd
	done chan struct{}
}

// Open prepares the lab network and takes the machine lab's lock. It
// cleans up what a lab that crashed left: machines, mounts and the bridge.
func Open(opts Options) (*Host, error) {
	if opts.Log == nil {
		opts.Log = io.Discard
	}
	if opts.Base == "" {
		opts.Base = DefaultBase
	}
	if err := Check(opts.Base); err != nil {
		return nil, err
	}
	lock, err := os.OpenFile(lockFile, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("machines: %w", err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		return nil, fmt.Errorf("machines: another machine lab runs on this host (%s is locked); stop it first", lockFile)
	}
	h := &Host{opts: opts, lock: lock, machines: map[string]*machine{}}
	cleanupStale()
	if err := setupBridge(); err != nil {
		h.Close()
		return nil, err
	}
	return h, nil
}

// Check says what is missing for machines to run here: root, the
// programs, or the base image.
func Check(base string) error {
	if os.Geteuid() != 0 {
		return errors.New("machines: the machine lab needs root (mounts, bridges, containers)")
	}
	for _, p := range []string{"systemd-nspawn", "ip", "ssh-keygen", "chroot"} {
		if _, err := exec.LookPath(p); err != nil {
			return fmt.Errorf("machines: %s is not installed (run `make deps`)", p)
		}
	}
	if _, err := os.Stat(filepath.Join(base, "etc", "dnsroll-base")); err != nil {
		return fmt.Errorf("machines: no base image in %s (run `make lab-image`)", base)
	}
	// Images from before the local repository have the roles' packages
	// installed, so the roles' apt tasks would never run on them.
	if _, err := os.Stat(filepath.Join(base, RepoDir, "Packages")); err != nil {
		return fmt.Errorf("machines: the base image in %s predates its package repository (run `make lab-image` to rebuild it)", base)
	}
	return nil
}

// Boot prepares the machine's root file system and starts it. It returns
// once systemd-nspawn runs; the machine boots on its own, and its sshd
// answers a few seconds later (see WaitSSH).
func (h *Host) Boot(spec Spec) error {
	if !validName(spec.Name) {
		return fmt.Errorf("machines: bad machine name %q", spec.Name)
	}
	if !inSubnet(spec.Addr) {
		return fmt.Errorf("machines: %s is not on the lab network %s", spec.Addr, Subnet)
	}
	h.mu.Lock()
	if _, ok := h.machines[spec.Name]; ok {
		h.mu.Unlock()
		return fmt.Errorf("machines: %s already runs", spec.Name)
	}
	m := &machine{spec: spec, dir: filepath.Join(h.opts.Dir, spec.Name), log: h.opts.Log}
	h.machines[spec.Name] = m
	h.mu.Unlock()
	if err := m.start(h.opts.Base); err != nil {
		h.mu.Lock()
		delete(h.machines, spec.Name)
		h.mu.Unlock()
		m.teardown()
		return fmt.Errorf("machines: boot %s: %w", spec.Name, err)
	}
	fmt.Fprintf(h.opts.Log, "lab: machine %s booting at %s\n", spec.Name, spec.Addr)
	return nil
}

// Destroy shuts the machine down and removes its file system, as deleting
// a VM does. A machine that does not run is not an error.
func (h *Host) Destroy(name string) {
	h.mu.Lock()
	m := h.machines[name]
	delete(h.machines, name)
	if m != nil {
		h.destroying.Add(1)
		defer h.destroying.Done()
	}
	h.mu.Unlock()
	if m == nil {
		return
	}
	m.life.Lock()
	m.gone = true
	m.stop()
	m.teardown()
	m.life.Unlock()
	fmt.Fprintf(h.opts.Log, "lab: machine %s destroyed\n", name)
}

// Reboot shuts the machine down and boots it again from the same file
// system, with the same name, address and host keys, as a cloud reboots a
// VM for host maintenance: what it wrote to disk stays, what it held in
// memory or /run does not. It returns once systemd-nspawn runs again, as
// Boot does.
func (h *Host) Reboot(name string) error {
	h.mu.Lock()
	m := h.machines[name]
	h.mu.Unlock()
	if m == nil {
		return fmt.Errorf("machines: reboot %s: no such machine", name)
	}
	m.life.Lock()
	defer m.life.Unlock()
	if m.gone {
		return fmt.Errorf("machines: reboot %s: destroyed", name)
	}
	m.stop()
	if err := m.launch(); err != nil {
		return fmt.Errorf("machines: reboot %s: %w", name, err)
	}
	fmt.Fprintf(h.opts.Log, "lab: machine %s rebooting at %s\n", name, m.spec.Addr)
	return nil
}

// Close destroys every machine, waits for those already being destroyed
// (the lab destroys a deleted VM in the background), removes the bridge
// and releases the lock.
func (h *Host) Close() {
	h.mu.Lock()
	names := make([]string, 0, len(h.machines))
	for n := range h.machines {
		names = append(names, n)
	}
	h.mu.Unlock()
	var wg sync.WaitGroup
	for _, n := range names {
		wg.Add(1)
		go func() { defer wg.Done(); h.Destroy(n) }()
	}
	wg.Wait()
	h.destroying.Wait()
	_ = run("ip", "link", "del", Bridge)
	if h.lock != nil {
		h.lock.Close()
	}
}

func (m *machine) start(base string) error {
	upper, work, root := filepath.Join(m.dir, "upper"), filepath.Join(m.dir, "work"), filepath.Join(m.dir, "root")
	for _, d := range []string{upper, work, root} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	if err := run("mount", "-t", "overlay", "overlay", "-o", "lowerdir="+base+",upperdir="+upper+",workdir="+work, root); err != nil {
		return err
	}
	if err := m.configure(root); err != nil {
		return err
	}
	return m.launch()
}

// launch boots the machine's root file system, mounted and configured.
func (m *machine) launch() error {
	root := filepath.Join(m.dir, "root")
	// The host side of the machine's network link, left behind when an
	// earlier machine of this name was killed rather than shut down.
	_ = run("ip", "link", "del", vethName(m.spec.Name))
	logPath := filepath.Join(m.dir, "console.log")
	log, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	// Earlier boots' output stays in the log, before this boot's.
	earlier, _ := log.Seek(0, io.SeekEnd)
	m.done = make(chan struct{})
	m.cmd = exec.Command("systemd-nspawn", "--register=no", "--keep-unit", "-q", "-D", root,
		"--machine="+m.spec.Name, "--network-bridge="+Bridge, "-b")
	m.cmd.Stdout, m.cmd.Stderr = log, log
	m.cmd.Env = childenv.Minimal()
	// If the lab dies, its machines shut down with it.
	m.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := m.cmd.Start(); err != nil {
		log.Close()
		return err
	}
	cmd, done := m.cmd, m.done
	go func() { _ = cmd.Wait(); log.Close(); close(done) }()
	// systemd-nspawn fails fast when it cannot set the machine up (a
	// network link or a mount in the way); say so now, with its words,
	// rather than leave a "running" VM that never answers.
	select {
	case <-m.done:
		b, _ := os.ReadFile(logPath)
		return fmt.Errorf("systemd-nspawn exited at once: %s", strings.TrimSpace(string(b[min(earlier, int64(len(b))):])))
	case <-time.After(time.Second):
		return nil
	}
}

// vethName is the host side of a machine's link, as systemd-nspawn names
// it for --network-bridge: "vb-" and the machine name, for names that fit
// an interface name.
func vethName(machine string) string {
	return "vb-" + machine
}

// configure writes what a VM gets from its cloud: hostname, address, host
// keys (cloud-init's, when it has user data), root's keys and password.
func (m *machine) configure(root string) error {
	s := m.spec
	files := map[string]string{
		"etc/hostname": s.Name + "\n",
		"etc/hosts":    "127.0.0.1 localhost\n" + s.Addr.String() + " " + s.Name + "\n",
		"etc/network/interfaces": "auto lo\niface lo inet loopback\n\nauto host0\niface host0 inet static\n" +
			"    address " + s.Addr.String() + "/24\n",
	}
	if s.SSHDelay > 0 {
		files["etc/systemd/system/ssh.service.d/dnsroll-lab-delay.conf"] = fmt.Sprintf(
			"# The machine lab's slow SSH, as on a VM that is running before sshd answers.\n[Service]\nExecStartPre=/bin/sleep %d\nTimeoutStartSec=infinity\n", int(s.SSHDelay.Seconds()))
	}
	if s.AptBusy > 0 {
		// lockf: dpkg and apt take fcntl locks, which flock(1) would not
		// conflict with. Both locks: such a job refreshes the package lists
		// (apt-get update, which fails at once on a held lists lock) before
		// it installs.
		files["etc/systemd/system/dnsroll-lab-apt-busy.service"] = fmt.Sprintf(
			"# The machine lab's first-boot apt job: apt's lists lock and dpkg's lock held, as unattended-upgrades or cloud-init's package_update may on a new VM.\n"+
				"[Service]\nExecStart=/usr/bin/python3 -c \"import fcntl, time; l = open('/var/lib/apt/lists/lock', 'w'); f = open('/var/lib/dpkg/lock-frontend', 'w'); fcntl.lockf(l, fcntl.LOCK_EX); fcntl.lockf(f, fcntl.LOCK_EX); time.sleep(%d)\"\n"+
				"[Install]\nWantedBy=multi-user.target\n", int(s.AptBusy.Seconds()))
	}
	for path, text := range files {
		p := filepath.Join(root, path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			return err
		}
	}
	if s.AptBusy > 0 {
		if err := chroot(root, "", "systemctl", "enable", "dnsroll-lab-apt-busy.service"); err != nil {
			return err
		}
	}
	if err := m.hostKeys(root); err != nil {
		return err
	}
	// Package lists days old, as on a cloud image, and no mirror to
	// refresh them from: a role that refreshes them needlessly fails here.
	old := time.Now().Add(-72 * time.Hour)
	for _, p := range []string{"var/lib/apt/lists", "var/lib/apt/periodic/update-success-stamp"} {
		_ = os.Chtimes(filepath.Join(root, p), old, old)
	}
	keys := usableLines(s.AuthorizedKeys)
	if err := installKeys(root, "root", 0, 0, keys); err != nil {
		return err
	}
	for i, u := range s.Users {
		uid := 2000 + i
		if err := chroot(root, "", "useradd", "--create-home", "--shell", "/bin/bash", "--uid", strconv.Itoa(uid), "--user-group", u); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(root, "etc/sudoers.d", u), []byte(u+" ALL=(ALL) NOPASSWD:ALL\n"), 0o440); err != nil {
			return err
		}
		if err := installKeys(root, u, uid, uid, keys); err != nil {
			return err
		}
	}
	if s.RootPass != "" {
		return chroot(root, "root:"+s.RootPass+"\n", "chpasswd")
	}
	return nil
}

// hostKeys makes the machine's SSH host keys: cloud-init's from the user
// data, if it has any, with what cloud-init would log in the lab's log.
func (m *machine) hostKeys(root string) error {
	if m.spec.UserData == nil {
		return run("ssh-keygen", "-A", "-f", root)
	}
	return cloudInitHostKeys(root, m.spec.UserData, func(format string, args ...any) {
		fmt.Fprintf(m.log, "lab: machine %s: cloud-init: %s\n", m.spec.Name, fmt.Sprintf(format, args...))
	})
}

func installKeys(root, user string, uid, gid int, keys []string) error {
	home := "/root"
	if user != "root" {
		home = "/home/" + user
	}
	dir := filepath.Join(root, home, ".ssh")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	text := ""
	if len(keys) > 0 {
		text = strings.Join(keys, "\n") + "\n"
	}
	f := filepath.Join(dir, "authorized_keys")
	if err := os.WriteFile(f, []byte(text), 0o600); err != nil {
		return err
	}
	for _, p := range []string{dir, f} {
		if err := os.Chown(p, uid, gid); err != nil {
			return err
		}
	}
	return nil
}

func usableLines(lines []string) []string {
	var out []string
	for _, l := range lines {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// stop shuts the machine down (SIGTERM makes systemd-nspawn power its
// container off) and kills it if that takes too long.
func (m *machine) stop() {
	if m.cmd == nil || m.cmd.Process == nil {
		return
	}
	_ = m.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-m.done:
	case <-time.After(30 * time.Second):
		_ = syscall.Kill(-m.cmd.Process.Pid, syscall.SIGKILL)
		<-m.done
		_ = run("ip", "link", "del", vethName(m.spec.Name))
	}
}

func (m *machine) teardown() {
	root := filepath.Join(m.dir, "root")
	for range 20 {
		if err := syscall.Unmount(root, 0); err == nil || errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.ENOENT) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	_ = os.RemoveAll(m.dir)
}

// cleanupStale stops machines and unmounts roots that a machine lab which
// died left behind, found by the bridge they are attached to.
func cleanupStale() {
	for _, p := range proctable.List() {
		if len(p.Args) > 0 && filepath.Base(p.Args[0]) == "systemd-nspawn" && slices.Contains(p.Args, "--network-bridge="+Bridge) {
			_ = syscall.Kill(p.PID, syscall.SIGKILL)
		}
	}
	mounts, _ := os.ReadFile("/proc/self/mounts")
	for _, line := range strings.Split(string(mounts), "\n") {
		f := strings.Fields(line)
		if len(f) > 2 && f[2] == "overlay" && strings.Contains(f[3], "lowerdir=") && strings.HasSuffix(f[1], "/root") && strings.Contains(f[1], "/machines/") {
			for range 20 {
				if syscall.Unmount(f[1], 0) == nil {
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
		}
	}
}

func setupBridge() error {
	_ = run("ip", "link", "del", Bridge)
	// Links of machines that were killed, not shut down, can outlive
	// them: a machine's link ("vb-<name>") on no bridge and with no
	// carrier is one of those, never another program's.
	out, _ := exec.Command("ip", "-o", "link", "show", "type", "veth").Output()
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) > 2 && strings.HasPrefix(f[1], "vb-") && strings.Contains(f[2], "NO-CARRIER") && !strings.Contains(line, " master ") {
			_ = run("ip", "link", "del", strings.SplitN(strings.TrimSuffix(f[1], ":"), "@", 2)[0])
		}
	}
	for _, args := range [][]string{
		{"link", "add", Bridge, "type", "bridge"},
		{"addr", "add", HostAddr + "/24", "dev", Bridge},
		{"link", "set", Bridge, "up"},
	} {
		if err := run("ip", args...); err != nil {
			return fmt.Errorf("machines: bridge: %w", err)
		}
	}
	return nil
}

func validName(n string) bool {
	if n == "" || len(n) > 63 {
		return false
	}
	for _, c := range n {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

func inSubnet(a netip.Addr) bool {
	p := netip.MustParsePrefix(Subnet)
	return p.Contains(a) && a != p.Addr() && a.String() != HostAddr && !a.Is4In6() && a.As4()[3] != 255
}

func run(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

func chroot(root, stdin string, args ...string) error {
	c := exec.Command("chroot", append([]string{root}, args...)...)
	c.Stdin = strings.NewReader(stdin)
	out, err := c.CombinedOutput()
	if err != nil {
		return fmt.Errorf("chroot %s: %v: %s", args[0], err, strings.TrimSpace(string(out)))
	}
	return nil
}
