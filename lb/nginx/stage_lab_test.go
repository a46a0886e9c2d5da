package nginx

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/activities"
	"github.com/dnsroll/dnsroll/config"
	"github.com/dnsroll/dnsroll/lb"
	"github.com/dnsroll/dnsroll/lb/channel"
	"github.com/dnsroll/dnsroll/lb/channel/sshdtest"
	"github.com/dnsroll/dnsroll/lb/lbtest"
)

var _ activities.Stager = (*Driver)(nil)

// stagedLab is a real lab nginx, staged by the real playbook with blue
// live and green staged.
type stagedLab struct {
	lbtest.Lab
	d           *Driver
	blue, green dnsroll.Server
}

// newLab is a lab nginx that is not started yet; it is stopped when the
// test ends.
func newLab(t testing.TB) *stagedLab {
	t.Helper()
	needLab(t)
	lab := lbtest.NewLab(t, "nginx")
	s := &stagedLab{
		Lab:   lab,
		d:     &Driver{Reach: lab.Reach()},
		blue:  lbtest.StartTXT(t, "blue"),
		green: lbtest.StartTXT(t, "green"),
	}
	stopOnCleanup(t, s.Dir)
	return s
}

// startStaged is a lab nginx, staged by the real playbook with blue live
// and green staged.
func startStaged(t testing.TB) *stagedLab {
	t.Helper()
	s := newLab(t)
	if err := s.d.Stage(context.Background(), s.Fleet, s.LB, []dnsroll.Server{s.blue}, []dnsroll.Server{s.green}); err != nil {
		t.Fatalf("Stage: %v", err)
	}
	return s
}

// TestContract runs the drivers' contract (lbtest.Contract) on a lab
// nginx: a repeated Point or Flip keeps nginx's master and its workers.
func TestContract(t *testing.T) {
	s := newLab(t)
	lbtest.Contract(t, lbtest.Subject{Driver: s.d, Fleet: s.Fleet, LB: s.LB, State: func(t testing.TB) any {
		master := mustMaster(t, s.Dir)
		return fmt.Sprint(master, workerPIDs(t, master))
	}})
}

func (s *stagedLab) flip(ctx context.Context, shares ...lb.Share) error {
	return s.d.Flip(ctx, s.Fleet, s.LB, shares)
}

// TestLabStageFlip stages green beside a live blue with the real playbook,
// then flips a real lab nginx between them over lb.Local, as the worker
// does over SSH, and checks what a resolver sees after each flip.
func TestLabStageFlip(t *testing.T) {
	s := startStaged(t)
	ctx := context.Background()
	lbtest.WantTXT(t, s.LB.Address, "blue")
	// The staging placed green's config, validated, beside the live one,
	// and recorded both backends.
	staged, err := os.ReadFile(filepath.Join(s.Dir, "nginx.conf.staged"))
	if err != nil || !strings.Contains(string(staged), "server "+s.green.DNSAddr()+";") || strings.Contains(string(staged), s.blue.DNSAddr()) {
		t.Errorf("nginx.conf.staged (%v) should give green, and only green, the traffic:\n%s", err, staged)
	}
	master := mustMaster(t, s.Dir)

	if err := s.flip(ctx, lb.Share{Server: s.green, Weight: 1}, lb.Share{Server: s.blue}); err != nil {
		t.Fatalf("flip to green: %v", err)
	}
	lbtest.WantTXT(t, s.LB.Address, "green")
	if got := mustMaster(t, s.Dir); got != master {
		t.Errorf("master pid changed from %d to %d: a flip must reload, not restart", master, got)
	}

	// The same split with other weights (100:0 is 1:0) changes nothing.
	workers := workerPIDs(t, master)
	if err := s.flip(ctx, lb.Share{Server: s.green, Weight: 100}, lb.Share{Server: s.blue}); err != nil {
		t.Fatalf("second flip to green: %v", err)
	}
	if got := workerPIDs(t, master); !slices.Equal(got, workers) {
		t.Errorf("flipping to the split nginx serves replaced workers %v with %v; it should change nothing", workers, got)
	}

	// Back: blue stayed staged, so a rollback is a flip.
	if err := s.flip(ctx, lb.Share{Server: s.blue, Weight: 1}); err != nil {
		t.Fatalf("flip back to blue: %v", err)
	}
	lbtest.WantTXT(t, s.LB.Address, "blue")

	// A split: nginx's weights send three queries to green for one to blue.
	if err := s.flip(ctx, lb.Share{Server: s.blue, Weight: 25}, lb.Share{Server: s.green, Weight: 75}); err != nil {
		t.Fatalf("flip to 25/75: %v", err)
	}
	counts := countAnswers(t, s.LB.Address, 40)
	if counts["blue"] != 10 || counts["green"] != 30 {
		t.Errorf("40 UDP queries at 25/75 reached %v; want blue 10, green 30 (one nginx worker's weighted round robin)", counts)
	}

	// A backend that was never staged is refused (lbtest.Contract checks
	// that nothing changes); the error names the load balancer and it.
	red := lbtest.StartTXT(t, "red")
	err = s.flip(ctx, lb.Share{Server: red, Weight: 1})
	if dnsroll.ErrorCode(err) != dnsroll.EINVALID || !strings.Contains(err.Error(), "not staged: "+red.DNSAddr()) || !strings.Contains(err.Error(), "lb1") {
		t.Errorf("flip to an unstaged backend: error %v (code %q), want EINVALID naming lb1 and %s", err, dnsroll.ErrorCode(err), red.DNSAddr())
	}

	// The same flips through a real sshd, as the worker makes them.
	t.Run("over SSH", func(t *testing.T) {
		fleet, pool := s.overSSH(t)
		defer func() { s.d.Channels, s.LB.SSHHost = nil, "" }()
		for _, side := range []dnsroll.Server{s.green, s.blue} {
			if err := s.d.Flip(ctx, fleet, s.LB, []lb.Share{{Server: side, Weight: 1}}); err != nil {
				t.Fatalf("flip to %s over SSH: %v", side.Label, err)
			}
			lbtest.WantTXT(t, s.LB.Address, side.Label)
		}
		pool.Close()
	})
}

// A flip that cannot write the new config (a full disk) fails with an
// error a retry may clear, and nginx goes on serving as before: before,
// the failed write left an empty file that nginx -t refused, and the flip
// failed for good as an invalid config, a rollback's flip back too.
func TestLabFlipOnAFullDisk(t *testing.T) {
	s := startStaged(t)
	ctx := context.Background()
	flipFile := filepath.Join(s.Dir, "nginx.conf.flip")
	if err := os.Symlink("/dev/full", flipFile); err != nil {
		t.Fatal(err)
	}
	err := s.flip(ctx, lb.Share{Server: s.green, Weight: 1}, lb.Share{Server: s.blue})
	if err == nil || dnsroll.ErrorCode(err) == dnsroll.EINVALID || !strings.Contains(err.Error(), "could not write") {
		t.Fatalf("flip on a full disk: error %v (code %q), want one a retry may clear, saying the write failed", err, dnsroll.ErrorCode(err))
	}
	lbtest.WantTXT(t, s.LB.Address, "blue")
	if err := os.Remove(flipFile); err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	if err := s.flip(ctx, lb.Share{Server: s.green, Weight: 1}, lb.Share{Server: s.blue}); err != nil {
		t.Fatalf("flip once the disk has room: %v", err)
	}
	lbtest.WantTXT(t, s.LB.Address, "green")
}

// countAnswers sends n UDP queries through addr, one at a time, and counts
// the TXT answers.
func countAnswers(t *testing.T, addr string, n int) map[string]int {
	t.Helper()
	c := &dns.Client{Net: "udp", Timeout: 2 * time.Second}
	counts := map[string]int{}
	for range n {
		m := new(dns.Msg)
		m.SetQuestion(lbtest.QueryName, dns.TypeTXT)
		r, _, err := c.Exchange(m, addr)
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Answer) != 1 {
			t.Fatalf("answer %v", r.Answer)
		}
		counts[r.Answer[0].(*dns.TXT).Txt[0]]++
	}
	return counts
}

// TestFlipNeedsChannel: valid shares over SSH, with no channel to send
// them through, and Stats, which nginx cannot give (bad shares are
// lbtest.Contract's).
func TestFlipNeedsChannel(t *testing.T) {
	d := &Driver{Reach: lb.Reach{Runner: &lbtest.FakeRunner{}}}
	blue := dnsroll.Server{Label: "blue", IPv4: "192.0.2.20"}
	err := d.Flip(context.Background(), lbtest.VMFleet(), config.LoadBalancer{Name: "lb1", Address: "192.0.2.10:53"}, []lb.Share{{Server: blue, Weight: 1}})
	if dnsroll.ErrorCode(err) != dnsroll.EINVALID || !strings.Contains(err.Error(), "Channels") {
		t.Errorf("ssh fleet without Channels: error %v, want EINVALID naming Driver.Channels", err)
	}
	_, err = d.Stats(context.Background(), lbtest.VMFleet(), config.LoadBalancer{Name: "lb1"})
	if dnsroll.ErrorCode(err) != dnsroll.EINVALID || !strings.Contains(err.Error(), "dnsdist") {
		t.Errorf("Stats: error %v, want EINVALID pointing to dnsdist", err)
	}
}

// TestFlipCommandOverSSH checks the one command a flip sends to a VM: the
// role's paths, the backends it must find staged and the config.
func TestFlipCommandOverSSH(t *testing.T) {
	ch := &recordingChannel{}
	d := &Driver{Reach: lb.Reach{Runner: &lbtest.FakeRunner{}, Channels: openerFunc(func() lb.Channel { return ch })}}
	blue := dnsroll.Server{Label: "blue", IPv4: "192.0.2.20"}
	green := dnsroll.Server{Label: "green", IPv4: "192.0.2.21"}
	err := d.Flip(context.Background(), lbtest.VMFleet(), config.LoadBalancer{Name: "lb1", Address: "192.0.2.10:53"},
		[]lb.Share{{Server: green, Weight: 10}, {Server: blue, Weight: 90}})
	if err != nil {
		t.Fatal(err)
	}
	if len(ch.cmds) != 1 {
		t.Fatalf("%d commands, want one: %q", len(ch.cmds), ch.cmds)
	}
	for _, want := range []string{
		"conf='/etc/nginx/nginx.conf'", "pid='/run/nginx.pid'", "reload='1'",
		"staged='/var/lib/dnsroll/nginx/staged'", "nginx_t() { 'nginx' -t",
		"need='192.0.2.21:53 192.0.2.20:53'",
		"server 192.0.2.21:53;", "server 192.0.2.20:53 weight=9;",
	} {
		if !strings.Contains(ch.cmds[0], want) {
			t.Errorf("flip command lacks %q:\n%s", want, ch.cmds[0])
		}
	}
}

// recordingChannel records commands, and its control socket answers the
// ID of the config in the last one, as nginx would once it reloaded.
type recordingChannel struct {
	cmds []string
}

func (c *recordingChannel) Dial(_ context.Context, network, addr string) (net.Conn, error) {
	if network != "unix" || addr != "/run/nginx-dnsroll.sock" || len(c.cmds) == 0 {
		return nil, fmt.Errorf("dial %s %s: refused", network, addr)
	}
	id, err := configID(c.cmds[len(c.cmds)-1])
	if err != nil {
		return nil, err
	}
	nginx, conn := net.Pipe()
	go func() { fmt.Fprintln(nginx, id); nginx.Close() }()
	return conn, nil
}

func (c *recordingChannel) Run(_ context.Context, cmd string) ([]byte, error) {
	c.cmds = append(c.cmds, cmd)
	return nil, nil
}

type openerFunc func() lb.Channel

func (f openerFunc) Open(context.Context, *config.Fleet, config.LoadBalancer) (lb.Channel, error) {
	return f(), nil
}

// BenchmarkLabFlip measures one flip of a real lab nginx, alternating
// between blue and green, over lb.Local: what a flip costs on the load
// balancer (validate, reload, wait for the new workers), without the
// network round trip of the SSH channel.
func BenchmarkLabFlip(b *testing.B) {
	s := startStaged(b)
	ctx := context.Background()
	sides := []dnsroll.Server{s.green, s.blue}
	i := 0
	for b.Loop() {
		if err := s.flip(ctx, lb.Share{Server: sides[i%2], Weight: 1}); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// overSSH makes s's driver flip through a real sshd on loopback, as the
// worker does: the fleet connects over ssh, to ssh_host 127.0.0.1.
func (s *stagedLab) overSSH(t testing.TB) (*config.Fleet, *channel.Pool) {
	t.Helper()
	sshd := sshdtest.Start(t)
	pool := &channel.Pool{KnownHosts: sshdtest.KnownHosts(t, sshd.SSHD, sshd.HostKey), KeyFile: sshd.KeyFile, AgentSocket: "/nonexistent", Port: sshdtest.Port(sshd.SSHD)}
	t.Cleanup(func() { pool.Close() })
	s.d.Channels = pool
	s.LB.SSHHost = "127.0.0.1"
	fleet := *s.Fleet
	fleet.Ansible.Connection = "ssh"
	return &fleet, pool
}

// BenchmarkLabFlipSSH is BenchmarkLabFlip through a real sshd on
// loopback: the flip as the worker makes it, but for the network.
func BenchmarkLabFlipSSH(b *testing.B) {
	s := startStaged(b)
	fleet, _ := s.overSSH(b)
	ctx := context.Background()
	sides := []dnsroll.Server{s.green, s.blue}
	i := 0
	for b.Loop() {
		if err := s.d.Flip(ctx, fleet, s.LB, []lb.Share{{Server: sides[i%2], Weight: 1}}); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// A flip on a lab nginx that is not running (killed, or its machine
// rebooted) says so with lb.ErrNotRunning, which the flip activity answers
// by starting it with its playbook; any other error would be retried as it
// is, round after round, while the load balancer serves nothing.
func TestLabFlipWhenNginxIsNotRunning(t *testing.T) {
	s := startStaged(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := Stop(ctx, s.Dir); err != nil {
		t.Fatal(err)
	}
	err := s.flip(ctx, lb.Share{Server: s.green, Weight: 1}, lb.Share{Server: s.blue})
	if !errors.Is(err, lb.ErrNotRunning) {
		t.Fatalf("flip with nginx stopped: %v, want it to wrap lb.ErrNotRunning", err)
	}
	// What the flip activity then does: the playbook starts it.
	if err := s.d.Point(ctx, s.Fleet, s.LB, []dnsroll.Server{s.green}); err != nil {
		t.Fatalf("Point after the flip found nginx stopped: %v", err)
	}
	lbtest.WantTXT(t, s.LB.Address, "green")
}
