package lb

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/config"
	"github.com/dnsroll/dnsroll/internal/childenv"
)

// A switch in two phases (docs/benchmarks.md): Stage, with the driver's
// playbook and off the critical path, makes a load balancer know green's
// backends, health-checked but given no traffic; Flip, over a channel the
// worker keeps open, only changes which backends get the traffic. A flip
// is one console exchange or one command, never a playbook run.

// ErrNotRunning is what a driver's Flip wraps when the load balancer's
// program is not running, so that nothing over the channel can change it:
// its playbook (Point) starts it again.
var ErrNotRunning = errors.New("the load balancer's program is not running")

// Share is one staged backend and its share of a load balancer's queries.
type Share struct {
	Server dnsroll.Server `json:"server"`
	// Weight is the backend's relative share of the queries. Zero keeps it
	// staged: known and health-checked, with no traffic.
	Weight int `json:"weight"`
}

// BackendStats is a load balancer's own count of what it sent one backend,
// since that backend was added.
type BackendStats struct {
	// Addr is the backend's ip:port.
	Addr string `json:"addr"`
	// Queries is the number of queries sent to it; Responses, the answers
	// that came back; Drops, the queries it never answered in time.
	Queries   uint64 `json:"queries"`
	Responses uint64 `json:"responses"`
	Drops     uint64 `json:"drops"`
	// Outstanding is the number of queries sent and not yet answered.
	Outstanding int `json:"outstanding"`
	// Up is whether its health check passes.
	Up bool `json:"up"`
	// Weight is its current share of the traffic; zero when it gets none.
	Weight int `json:"weight"`
}

// Channel is a kept-open way to one load balancer, for the steps that must
// not wait for a playbook to start.
type Channel interface {
	// Run runs a shell command line on the load balancer and returns its
	// standard output. Callers quote what they put in cmd.
	Run(ctx context.Context, cmd string) ([]byte, error)
	// Dial connects to addr as the load balancer itself would, so that a
	// console listening only on its loopback can be reached.
	Dial(ctx context.Context, network, addr string) (net.Conn, error)
}

// Opener hands out the channel to a load balancer, kept open between
// calls. *channel.Pool implements it.
type Opener interface {
	Open(ctx context.Context, fleet *config.Fleet, balancer config.LoadBalancer) (Channel, error)
}

// Open returns the kept-open channel to balancer: o's, or Local for a
// fleet that Ansible reaches with connection local. With neither it fails
// with EINVALID, naming driver and the field to set.
func Open(ctx context.Context, o Opener, driver string, fleet *config.Fleet, balancer config.LoadBalancer) (Channel, error) {
	if o != nil {
		return o.Open(ctx, fleet, balancer)
	}
	if fleet.Ansible.Connection == "local" {
		return Local{}, nil
	}
	return nil, dnsroll.Errorf(dnsroll.EINVALID, "no channel to load balancer %s: the fleet's ansible connection is %q, and the %s driver has no Channels (an lb.Opener such as channel.Pool; the worker sets it) to reach it through", balancer.Name, fleet.Ansible.Connection, driver)
}

// Local is the channel to a load balancer on this machine (Ansible's
// connection: local): commands run here, and its loopback is ours.
type Local struct{}

// localWaitDelay bounds how long a cancelled Run waits for its output
// after the process group was killed: a daemon the command started in a
// session of its own may hold the pipe.
const localWaitDelay = 2 * time.Second

// Run runs cmd with /bin/sh here. Cancelling ctx kills the command and
// every process it started in its process group: killing sh alone would
// leave its children running, and Run waiting for them to close its pipe.
func (Local) Run(ctx context.Context, cmd string) ([]byte, error) {
	c := exec.CommandContext(ctx, "/bin/sh", "-c", cmd)
	c.Env = childenv.Minimal()
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	c.Cancel = func() error {
		// Until sh is reaped its group id cannot be reused, so this
		// never hits a stranger.
		err := syscall.Kill(-c.Process.Pid, syscall.SIGKILL)
		if errors.Is(err, syscall.ESRCH) {
			return os.ErrProcessDone
		}
		return err
	}
	c.WaitDelay = localWaitDelay
	out, err := c.Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok && len(ee.Stderr) > 0 {
			return out, fmt.Errorf("%w: %s", err, ee.Stderr)
		}
		return out, err
	}
	return out, nil
}

// Dial connects to addr from here.
func (Local) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}
