package lab

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/config"
	"github.com/dnsroll/dnsroll/hostkeys"
	"github.com/dnsroll/dnsroll/lab/linodesim"
	"github.com/dnsroll/dnsroll/lab/machines"
	"github.com/dnsroll/dnsroll/provision"
	"github.com/dnsroll/dnsroll/worker"
)

// firstVMHost is the host part of the first address the simulator hands a
// new instance; lower ones are the host's and the load balancers'.
const firstVMHost = 10

// machineLab is the part of a lab in machine mode: real Debian machines for
// the simulator's instances and for the load balancers, an SSH key that
// logs into all of them, and the addresses handed out so far.
type machineLab struct {
	host    *machines.Host
	keyFile string // private key; the public key is keyFile.pub
	pubKey  string

	mu     sync.Mutex
	nextIP int
	// sshDelay and aptBusy are the SSH delay and dpkg lock time
	// (machines.Spec) of the machines created from now on.
	sshDelay, aptBusy time.Duration
	// ignoreUserData drops the user data of the machines created from now
	// on (SetIgnoreUserData).
	ignoreUserData bool
	// users are extra sudo users on the load balancers and on instances
	// from PrivateImage (Options.MachineUsers).
	users []string
}

// startMachines opens the machine host and makes the lab's SSH key.
func (l *Lab) startMachines() error {
	h, err := machines.Open(machines.Options{Dir: filepath.Join(l.opts.Dir, "machines"), Base: l.opts.MachineBase, Log: l.opts.Log})
	if err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	key := filepath.Join(l.opts.Dir, "ssh", "id_ed25519")
	if err := os.MkdirAll(filepath.Dir(key), 0o700); err != nil {
		h.Close()
		return err
	}
	if _, err := os.Stat(key); err != nil {
		if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "dnsroll-lab", "-f", key).CombinedOutput(); err != nil {
			h.Close()
			return fmt.Errorf("lab: ssh-keygen: %v: %s", err, out)
		}
	}
	pub, err := os.ReadFile(key + ".pub")
	if err != nil {
		h.Close()
		return err
	}
	l.machines = &machineLab{host: h, keyFile: key, pubKey: strings.TrimSpace(string(pub)), nextIP: firstVMHost, users: l.opts.MachineUsers}
	return nil
}

// bootInstance is the simulator's create hook: it boots a machine for
// inst with the request's keys, password and user data, and returns its
// address.
func (m *machineLab) bootInstance(inst linodesim.Instance, boot linodesim.Boot) (string, error) {
	m.mu.Lock()
	n := m.nextIP
	m.nextIP++
	delay, aptBusy, userData := m.sshDelay, m.aptBusy, boot.UserData
	if m.ignoreUserData {
		userData = nil
	}
	m.mu.Unlock()
	if n > 250 {
		return "", fmt.Errorf("the lab network %s has no address left", machines.Subnet)
	}
	addr := netip.MustParsePrefix(machines.Subnet).Addr().As4()
	addr[3] = byte(n)
	ip := netip.AddrFrom4(addr)
	spec := machines.Spec{Name: machineName(inst.ID), Addr: ip, AuthorizedKeys: boot.AuthorizedKeys, RootPass: boot.RootPass, UserData: userData,
		SSHDelay: delay, AptBusy: aptBusy}
	if !config.OnlyRoot(inst.Image) {
		spec.Users = m.users
	}
	if err := m.host.Boot(spec); err != nil {
		return "", err
	}
	return ip.String(), nil
}

// PrivateImage is the machine lab account's private image: its instances
// have Options.MachineUsers besides root, as an operator's hardened image
// has its login user.
const PrivateImage = "private/4242"

func machineName(id int) string { return fmt.Sprintf("linode%d", id) }

// bootLoadBalancers starts one machine per load balancer, on the address
// of its listen address, and waits until each answers SSH. The fleet's
// load balancer addresses must be on the lab network.
func (l *Lab) bootLoadBalancers(ctx context.Context) error {
	for _, lb := range l.opts.Fleet.LoadBalancers {
		host, _, err := net.SplitHostPort(lb.Address)
		if err != nil {
			return fmt.Errorf("lab: load balancer %s: %w", lb.Name, err)
		}
		ip, err := netip.ParseAddr(host)
		if err != nil {
			return fmt.Errorf("lab: load balancer %s: address %s is not an IP on the lab network %s", lb.Name, host, machines.Subnet)
		}
		spec := machines.Spec{Name: lb.Name, Addr: ip, AuthorizedKeys: []string{l.machines.pubKey}, Users: l.opts.MachineUsers}
		if err := l.machines.host.Boot(spec); err != nil {
			return fmt.Errorf("lab: %w", err)
		}
	}
	for _, lb := range l.opts.Fleet.LoadBalancers {
		host, _, _ := net.SplitHostPort(lb.Address)
		wctx, cancel := context.WithTimeout(ctx, time.Minute)
		err := provision.WaitSSH(wctx, net.JoinHostPort(host, "22"))
		cancel()
		if err != nil {
			return fmt.Errorf("lab: load balancer %s: %w", lb.Name, err)
		}
	}
	return nil
}

// Runner is how the lab runs Ansible to start its load balancers: over SSH
// with the lab's key in machine mode, without host key checks, since the
// lab has just booted those machines itself. The lab's worker checks them
// (see WorkerConfig): its first contact records their keys.
func (l *Lab) Runner() *provision.Runner {
	if l.machines == nil {
		return &provision.Runner{}
	}
	return &provision.Runner{Env: l.SSHEnv(), HostKeys: &hostkeys.Keeper{Mode: hostkeys.Off}}
}

// KnownHostsFile is where the lab's workers record SSH host keys.
func (l *Lab) KnownHostsFile() string { return filepath.Join(l.Dir(), "known_hosts") }

// SSHEnv is the environment that gives Ansible the lab's key.
func (l *Lab) SSHEnv() []string {
	if l.machines == nil {
		return nil
	}
	return []string{"ANSIBLE_PRIVATE_KEY_FILE=" + l.machines.keyFile}
}

// WorkerConfig is the worker configuration for this lab: its simulator,
// and in machine mode the SSH key that new instances accept.
func (l *Lab) WorkerConfig(fleetDir string) worker.Config {
	// The simulator boots in a fraction of the 2 s between Linode's
	// polls, which would make up most of a lab create.
	c := worker.Config{FleetDir: fleetDir, LabDir: l.Dir(), LinodeURL: l.SimURL(), LinodeToken: Token, LinodeRetryWait: 200 * time.Millisecond, WebUIURL: l.UIURL(),
		KnownHostsFile: l.KnownHostsFile(), CloudPollInterval: 200 * time.Millisecond}
	if l.machines != nil {
		c.AuthorizedKeys = []string{l.machines.pubKey}
		c.AnsibleEnv = l.SSHEnv()
	}
	return c
}

// SetSSHDelay makes the machines created from now on start sshd d after
// they boot, as a slow VM does (machine mode only).
func (l *Lab) SetSSHDelay(d time.Duration) {
	if l.machines != nil {
		l.machines.mu.Lock()
		l.machines.sshDelay = d
		l.machines.mu.Unlock()
	}
}

// SetIgnoreUserData makes the machines created from now on ignore their
// cloud-init user data, as an image whose cloud-init does not install
// given host keys would: they keep keys of their own (machine mode only).
func (l *Lab) SetIgnoreUserData(ignore bool) {
	if l.machines != nil {
		l.machines.mu.Lock()
		l.machines.ignoreUserData = ignore
		l.machines.mu.Unlock()
	}
}

// SetAptBusy makes the machines created from now on hold apt's package
// lists lock and dpkg's lock for d after they boot, as a first-boot job may
// (machine mode only).
func (l *Lab) SetAptBusy(d time.Duration) {
	if l.machines != nil {
		l.machines.mu.Lock()
		l.machines.aptBusy = d
		l.machines.mu.Unlock()
	}
}

// machineServer is a server as the simulator sees it, answering on port 53.
func machineServer(inst linodesim.Instance) dnsroll.Server {
	s := dnsroll.Server{ID: inst.ID, Label: inst.Label, Status: inst.Status, Region: inst.Region, Tags: inst.Tags, DNSPort: 53}
	if len(inst.IPv4) > 0 {
		s.IPv4 = inst.IPv4[0]
	}
	return s
}

// WorkerEnv is the environment of a worker process for this lab, secrets
// included: the simulator's token, and in machine mode the lab's SSH key.
func (l *Lab) WorkerEnv() []string {
	env := []string{"LINODE_TOKEN=" + Token, "DNSROLL_KNOWN_HOSTS=" + l.KnownHostsFile()}
	if l.machines != nil {
		env = append(env, "DNSROLL_SSH_AUTHORIZED_KEYS="+l.machines.pubKey, "ANSIBLE_PRIVATE_KEY_FILE="+l.machines.keyFile)
	}
	return env
}

// SSH runs command on the machine at addr as root with the lab's key and
// returns its output (machine mode only).
func (l *Lab) SSH(ctx context.Context, addr, command string) (string, error) {
	if l.machines == nil {
		return "", fmt.Errorf("lab: SSH needs machine mode")
	}
	out, err := exec.CommandContext(ctx, "ssh", "-i", l.machines.keyFile, "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
		"-o", "LogLevel=ERROR", "-o", "BatchMode=yes", "root@"+addr, command).CombinedOutput()
	return string(out), err
}

// RebootInstance reboots the machine of the simulator's instance id, and
// RebootLoadBalancer that of the fleet's load balancer name, as Linode
// reboots a VM for host maintenance: same disk, same address, nothing
// kept in memory or /run (machine mode only). Each returns once the
// machine boots again; its sshd answers a few seconds later.
func (l *Lab) RebootInstance(id int) error { return l.rebootMachine(machineName(id)) }

// RebootLoadBalancer: see RebootInstance.
func (l *Lab) RebootLoadBalancer(name string) error { return l.rebootMachine(name) }

func (l *Lab) rebootMachine(name string) error {
	if l.machines == nil {
		return fmt.Errorf("lab: reboot needs machine mode")
	}
	return l.machines.host.Reboot(name)
}
