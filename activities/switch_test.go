package activities

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/miekg/dns"
	"go.temporal.io/sdk/testsuite"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/config"
	"github.com/dnsroll/dnsroll/internal/temporaltest"
	"github.com/dnsroll/dnsroll/lb"
)

// serveIdentity answers SOA queries for example.com over UDP with serial
// and, when nsid is set, that NSID, as BIND with server-id does; the
// server it returns is the instance a "linode-<id>" NSID names.
func serveIdentity(t *testing.T, nsid string, serial uint32) dnsroll.Server {
	t.Helper()
	addr := serveUDP(t, func(req, m *dns.Msg) {
		soa, _ := dns.NewRR("example.com. 300 IN SOA ns1.example.com. hostmaster.example.com. " + strconv.Itoa(int(serial)) + " 3600 600 1209600 300")
		m.Answer = []dns.RR{soa}
		if nsid != "" && req.IsEdns0() != nil {
			m.IsEdns0().Option = append(m.IsEdns0().Option, &dns.EDNS0_NSID{Code: dns.EDNS0NSID, Nsid: hexOf(nsid)})
		}
	})
	_, port, _ := net.SplitHostPort(addr)
	n, _ := strconv.Atoi(port)
	// The role sets the NSID linode-<id> (ServerID): the server is that instance.
	id, _ := strconv.Atoi(strings.TrimPrefix(nsid, "linode-"))
	return dnsroll.Server{ID: id, Label: nsid, IPv4: "127.0.0.1", DNSPort: n}
}

func hexOf(s string) string {
	const digits = "0123456789abcdef"
	var b strings.Builder
	for _, c := range []byte(s) {
		b.WriteByte(digits[c>>4])
		b.WriteByte(digits[c&15])
	}
	return b.String()
}

// A load balancer is confirmed on its backends only when it answers as
// they do: the same NSID, or for servers without one the same serial.
func TestConfirmServing(t *testing.T) {
	fleet, err := config.Parse([]byte(testFleetYAML + "probe: {protocols: [udp], timeout: 200ms}\n"))
	if err != nil {
		t.Fatal(err)
	}
	blue, green := serveIdentity(t, "linode-1", 7), serveIdentity(t, "linode-2", 7)
	oldBlue, oldGreen := serveIdentity(t, "", 7), serveIdentity(t, "", 8)
	dead := dnsroll.Server{Label: "deleted", IPv4: "127.0.0.1", DNSPort: 9}
	// The "load balancer" is the server it forwards to: the answers the
	// check sees through it are that server's.
	through := func(s dnsroll.Server) config.LoadBalancer {
		return config.LoadBalancer{Name: "lb1", Address: s.DNSAddr()}
	}
	for _, tt := range []struct {
		name     string
		lb       config.LoadBalancer
		backends []dnsroll.Server
		wantErr  string
	}{
		{"on the wanted backend", through(green), []dnsroll.Server{green}, ""},
		{"still on the other side, same serial", through(blue), []dnsroll.Server{green}, "NSID linode-1"},
		{"on a server without NSID, wanted one has it", through(oldBlue), []dnsroll.Server{green}, "NSID none"},
		{"old servers, told apart by serial", through(oldGreen), []dnsroll.Server{oldBlue}, "serial 8"},
		{"old servers, on the wanted one", through(oldBlue), []dnsroll.Server{oldBlue}, ""},
		{"forwarding to a deleted server", through(dead), []dnsroll.Server{blue}, "no answer through the load balancer"},
		{"no backends", through(dead), nil, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := confirmServing(context.Background(), fleet, tt.lb, tt.backends)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("err = %v, want none", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("err = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

// A load balancer is not pointed at a backend that does not answer, or
// that answers as another server (its NSID names another instance): a
// cleanup switching back to a blue that a later rollout deleted, or
// whose address another server now has, would take the load balancer's
// traffic down. The step fails, to be retried, and the load balancer is
// left as it is.
func TestSwitchRefusesBackendsThatDoNotAnswerAsThemselves(t *testing.T) {
	fleet, err := config.Parse([]byte(testFleetYAML + "probe: {protocols: [udp], timeout: 200ms}\n"))
	if err != nil {
		t.Fatal(err)
	}
	blue := serveIdentity(t, "linode-1", 7)
	impostor := serveIdentity(t, "linode-2", 7)
	impostor.ID, impostor.Label = 1, "ns1"
	dead := dnsroll.Server{ID: 3, Label: "ns2", IPv4: "127.0.0.1", DNSPort: 9}
	for _, tt := range []struct {
		name    string
		backend dnsroll.Server
		want    string // "" for a switch that is made
	}{
		{"a backend that answers as itself", blue, ""},
		{"a backend that does not answer", dead, "ns2 (127.0.0.1:9) does not answer"},
		{"another server at the backend's address", impostor, "answers as linode-2, not linode-1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			driver := &pointRecorder{}
			var s testsuite.WorkflowTestSuite
			env := s.NewTestActivityEnvironment()
			acts := &Activities{Drivers: map[string]LoadBalancer{"nginx": driver}}
			env.RegisterActivity(acts)
			bal := config.LoadBalancer{Name: "lb1", Address: tt.backend.DNSAddr(), Driver: "nginx"}
			_, err := env.ExecuteActivity(acts.SwitchLoadBalancer, SwitchInput{StepFleet: StepFleet{Fleet: fleet}, LB: bal, Backends: []dnsroll.Server{tt.backend}})
			if tt.want == "" {
				if err != nil || len(driver.points) != 1 {
					t.Fatalf("switch: %v, %d points; want one", err, len(driver.points))
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("switch: %v; want an error saying %q", err, tt.want)
			}
			if len(driver.points) != 0 {
				t.Errorf("the load balancer was pointed at %v", driver.points)
			}
			// A flip (back to blue on a rollback, or on to green) is
			// refused alike: it would take the load balancer's traffic
			// down where it now serves from the other side.
			shares := []lb.Share{{Server: tt.backend, Weight: 100}}
			_, err = env.ExecuteActivity(acts.FlipLoadBalancer, FlipInput{StepFleet: StepFleet{Fleet: fleet}, LB: bal, Shares: shares})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("flip: %v; want an error saying %q", err, tt.want)
			}
			if len(driver.points) != 0 {
				t.Errorf("the flip pointed the load balancer at %v", driver.points)
			}
		})
	}
}

// stoppedStager is a load balancer whose program is not running: a flip
// over its channel fails as nginx's does, and only its playbook (Point)
// starts it again.
type stoppedStager struct{ pointRecorder }

func (*stoppedStager) Stage(context.Context, *config.Fleet, config.LoadBalancer, []dnsroll.Server, []dnsroll.Server) error {
	return nil
}

func (*stoppedStager) Flip(context.Context, *config.Fleet, config.LoadBalancer, []lb.Share) error {
	return fmt.Errorf("nginx: flip lb1: exit status 3: no nginx runs: %w", lb.ErrNotRunning)
}

func (*stoppedStager) Stats(context.Context, *config.Fleet, config.LoadBalancer) ([]lb.BackendStats, error) {
	return nil, nil
}

// A rollback to blue on a load balancer whose nginx died is made by the
// playbook, which starts nginx pointed at blue: a flip alone failed round
// after round, and the load balancer stayed down until cleanup_timeout.
func TestFlipStartsAStoppedLoadBalancerThroughItsPlaybook(t *testing.T) {
	fleet, err := config.Parse([]byte(testFleetYAML + "probe: {protocols: [udp], timeout: 200ms}\n"))
	if err != nil {
		t.Fatal(err)
	}
	blue := serveIdentity(t, "linode-1", 7)
	driver := &stoppedStager{}
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	acts := &Activities{Drivers: map[string]LoadBalancer{"nginx": driver}}
	env.RegisterActivity(acts)
	bal := config.LoadBalancer{Name: "lb1", Address: blue.DNSAddr(), Driver: "nginx"}
	v, err := env.ExecuteActivity(acts.FlipLoadBalancer, FlipInput{StepFleet: StepFleet{Fleet: fleet}, LB: bal, Shares: []lb.Share{{Server: blue, Weight: 100}}})
	if err != nil {
		t.Fatalf("flip: %v; want the playbook to start the load balancer on blue", err)
	}
	if len(driver.points) != 1 || !strings.HasSuffix(driver.points[0], "-> "+blue.Label) {
		t.Errorf("points %v, want one, to blue", driver.points)
	}
	if res := temporaltest.Value[StepResult](t, v, err); !strings.Contains(res.Note, "started by its playbook") {
		t.Errorf("note %q does not say the load balancer was started", res.Note)
	}
}
