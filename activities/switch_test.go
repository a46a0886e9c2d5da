package activities

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/miekg/dns"
	"go.temporal.io/sdk/testsuite"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/config"
	"github.com/dnsroll/dnsroll/internal/dnstest"
	"github.com/dnsroll/dnsroll/internal/temporaltest"
	"github.com/dnsroll/dnsroll/lb"
)

// serveIdentity answers SOA queries for example.com over UDP with serial
// and, when nsid is set, that NSID, as BIND with server-id does, and
// refuses queries for other zones, as an authoritative server does; the
// server it returns is the instance a "linode-<id>" NSID names.
func serveIdentity(t *testing.T, nsid string, serial uint32) dnsroll.Server {
	t.Helper()
	return serveIdentityWhile(t, nsid, serial, func() bool { return true })
}

// serveIdentityWhile is serveIdentity of a server that answers nothing
// while up is false, as a nameserver that is still booting.
func serveIdentityWhile(t *testing.T, nsid string, serial uint32, up func() bool) dnsroll.Server {
	t.Helper()
	addr := serveUDP(t, func(req, m *dns.Msg) {
		if !up() {
			m.Rcode = dnstest.Drop
			return
		}
		if req.Question[0].Name != "example.com." {
			m.Rcode = dns.RcodeRefused
			return
		}
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

// udpFleet is the test fleet, probed over UDP alone with a timeout of
// 200ms.
func udpFleet(t *testing.T) *config.Fleet {
	t.Helper()
	fleet, err := config.Parse([]byte(testFleetYAML + "probe: {protocols: [udp], timeout: 200ms}\n"))
	if err != nil {
		t.Fatal(err)
	}
	return fleet
}

// nginxEnv is an activity environment whose Activities drive the nginx
// load balancers with driver.
func nginxEnv(driver LoadBalancer) (*testsuite.TestActivityEnvironment, *Activities) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	acts := &Activities{Drivers: map[string]LoadBalancer{"nginx": driver}}
	env.RegisterActivity(acts)
	return env, acts
}

// A load balancer is confirmed on its backends only when it answers as
// they do: the same NSID, or for servers without one the same serial.
func TestConfirmServing(t *testing.T) {
	fleet := udpFleet(t)
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
		// nginx would send every other UDP query to the dead one.
		{"on a live backend, another one dead", through(green), []dnsroll.Server{green, dead}, "backend deleted does not answer"},
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
	fleet := udpFleet(t)
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
			env, acts := nginxEnv(driver)
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

// stoppedStager is a two-phase load balancer whose program is not
// running, as nginx's driver behaves: a flip over its channel fails until
// a playbook run (Point or Stage) starts it; the playbook records the
// staged servers, Point only its backends; a flip to a server not staged
// is refused, as flip.sh refuses it.
type stoppedStager struct {
	pointRecorder
	running bool
	staged  map[string]bool
	live    []string
	// weights is each live backend's weight, as the last Point or Stage
	// (equal weights, 1) or Flip (the shares') left it.
	weights map[string]int
	// down is a backend whose health check fails, which Stage waits for.
	down string
}

func (s *stoppedStager) Point(ctx context.Context, f *config.Fleet, b config.LoadBalancer, backends []dnsroll.Server) error {
	s.running, s.staged, s.live, s.weights = true, map[string]bool{}, nil, map[string]int{}
	for _, srv := range backends {
		s.staged[srv.Label] = true
		s.live = append(s.live, srv.Label)
		s.weights[srv.Label] = 1
	}
	return s.pointRecorder.Point(ctx, f, b, backends)
}

func (s *stoppedStager) Stage(_ context.Context, _ *config.Fleet, _ config.LoadBalancer, live, staged []dnsroll.Server) error {
	for _, srv := range staged {
		if srv.Label == s.down {
			return fmt.Errorf("backends not up after 30s: %s", srv.Label)
		}
	}
	s.running, s.staged, s.live, s.weights = true, map[string]bool{}, nil, map[string]int{}
	for _, srv := range live {
		s.staged[srv.Label] = true
		s.live = append(s.live, srv.Label)
		s.weights[srv.Label] = 1
	}
	for _, srv := range staged {
		s.staged[srv.Label] = true
	}
	return nil
}

func (s *stoppedStager) Flip(_ context.Context, _ *config.Fleet, _ config.LoadBalancer, shares []lb.Share) error {
	if !s.running {
		return fmt.Errorf("nginx: flip lb1: exit status 3: no nginx runs: %w", lb.ErrNotRunning)
	}
	s.live, s.weights = nil, map[string]int{}
	for _, sh := range shares {
		if !s.staged[sh.Server.Label] {
			return fmt.Errorf("nginx: flip lb1: exit status 2: %s is not staged", sh.Server.Label)
		}
		if sh.Weight > 0 {
			s.live = append(s.live, sh.Server.Label)
			s.weights[sh.Server.Label] = sh.Weight
		}
	}
	return nil
}

func (*stoppedStager) Stats(context.Context, *config.Fleet, config.LoadBalancer) ([]lb.BackendStats, error) {
	return nil, nil
}

// A flip on a load balancer whose nginx died starts it through its
// playbook, serving the side the flip gives the traffic: a flip alone
// failed round after round, and the load balancer stayed down until
// cleanup_timeout. The playbook stages both sides again, so the flip back
// (a rollback after the bake, say) still finds blue staged: before, the
// playbook was pointed at green alone, and the flip back to blue was
// refused, leaving the rollout cleanup-failed and the load balancer on
// green.
func TestFlipStartsAStoppedLoadBalancerThroughItsPlaybook(t *testing.T) {
	fleet := udpFleet(t)
	blue, green := serveIdentity(t, "linode-1", 7), serveIdentity(t, "linode-2", 8)
	blue.Label, green.Label = "ns1", "ns1-next"
	driver := &stoppedStager{}
	env, acts := nginxEnv(driver)
	flip := func(to, from dnsroll.Server) (StepResult, error) {
		bal := config.LoadBalancer{Name: "lb1", Address: to.DNSAddr(), Driver: "nginx"}
		v, err := env.ExecuteActivity(acts.FlipLoadBalancer, FlipInput{StepFleet: StepFleet{Fleet: fleet}, LB: bal, Shares: []lb.Share{{Server: to, Weight: 100}, {Server: from, Weight: 0}}})
		if err != nil {
			return StepResult{}, err
		}
		return temporaltest.Value[StepResult](t, v, err), nil
	}
	res, err := flip(green, blue)
	if err != nil {
		t.Fatalf("flip to green: %v; want the playbook to start the load balancer on green", err)
	}
	if !driver.running || strings.Join(driver.live, ",") != "ns1-next" {
		t.Errorf("running %v, live %v; want it started, serving green", driver.running, driver.live)
	}
	if !strings.Contains(res.Note, "started by its playbook") {
		t.Errorf("note %q does not say the load balancer was started", res.Note)
	}
	if _, err := flip(blue, green); err != nil {
		t.Fatalf("flip back to blue: %v; want blue still staged", err)
	}
	if strings.Join(driver.live, ",") != "ns1" {
		t.Errorf("live %v after the flip back, want blue", driver.live)
	}

	// A rollback because green died, on a load balancer that died too:
	// it comes back on blue, though green cannot be staged beside it.
	driver.running, driver.down = false, "ns1-next"
	res, err = flip(blue, green)
	if err != nil {
		t.Fatalf("flip back to blue with green down: %v; want blue served", err)
	}
	if !driver.running || strings.Join(driver.live, ",") != "ns1" || !strings.Contains(res.Note, "ns1-next could not be staged") {
		t.Errorf("running %v, live %v, note %q; want it started on blue, saying green was not staged", driver.running, driver.live, res.Note)
	}

	// A canary split (green 10%, blue 90%) on a load balancer that died:
	// the playbook starts it with equal weights, and only the flip after
	// it sets the shares. Stopping at the playbook would report the flip
	// done while half the queries, not a tenth, go to green.
	driver.running, driver.down = false, ""
	bal := config.LoadBalancer{Name: "lb1", Address: blue.DNSAddr(), Driver: "nginx"}
	shares := []lb.Share{{Server: green, Weight: 10}, {Server: blue, Weight: 90}}
	if _, err := env.ExecuteActivity(acts.FlipLoadBalancer, FlipInput{StepFleet: StepFleet{Fleet: fleet}, LB: bal, Shares: shares}); err != nil {
		t.Fatalf("canary flip on a stopped load balancer: %v", err)
	}
	if got, want := fmt.Sprint(driver.weights), fmt.Sprint(map[string]int{"ns1": 90, "ns1-next": 10}); got != want {
		t.Errorf("weights %s after the canary flip, want %s", got, want)
	}
}

// serveNSIDs answers SOA queries for example.com over UDP with the NSID
// of each of nsids in turn, "" for a query it drops, and the last one
// from then on.
func serveNSIDs(t *testing.T, nsids ...string) string {
	t.Helper()
	var n atomic.Int32
	return serveUDP(t, func(req, m *dns.Msg) {
		i := min(int(n.Add(1))-1, len(nsids)-1)
		switch nsids[i] {
		case "":
			m.Rcode = dnstest.Drop
			return
		case "refused":
			m.Rcode, m.Authoritative = dns.RcodeRefused, false
			return
		}
		soa, _ := dns.NewRR("example.com. 300 IN SOA ns1.example.com. hostmaster.example.com. 7 3600 600 1209600 300")
		m.Answer = []dns.RR{soa}
		m.Authoritative = true
		m.IsEdns0().Option = append(m.IsEdns0().Option, &dns.EDNS0_NSID{Code: dns.EDNS0NSID, Nsid: hexOf(nsids[i])})
	})
}

// Plan refuses a fleet whose load balancers answer from a green an
// earlier rollout left, and one lost packet, or a load balancer that
// splits its queries, must not hide it: each is asked more than once. A
// load balancer that never answers leaves the question open, which Plan
// retries rather than pass.
func TestRefuseLeftOnGreenAsksMoreThanOnce(t *testing.T) {
	fleet := udpFleet(t)
	left := map[string]string{"linode-2": "ns1-next"}
	for _, tc := range []struct {
		name  string
		nsids []string
		want  string
	}{
		{"nothing listens", nil, ""},
		{"the first query lost", []string{"", "linode-2"}, "answers from ns1-next"},
		{"split between blue and green", []string{"linode-1", "linode-2", "linode-1"}, "answers from ns1-next"},
		{"on blue", []string{"linode-1"}, ""},
		{"silent", []string{""}, "does not answer"},
		// Any reply is an answer: one without the zone (REFUSED), or
		// without an NSID, serves from no green left.
		{"refusing the zone", []string{"refused"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.nsids == nil {
				pc, err := net.ListenPacket("udp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				fleet.LoadBalancers[0].Address = pc.LocalAddr().String()
				pc.Close()
			} else {
				fleet.LoadBalancers[0].Address = serveNSIDs(t, tc.nsids...)
			}
			err := refuseLeftOnGreen(context.Background(), fleet, left)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("refused a fleet on blue: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("err = %v, want one saying %q", err, tc.want)
			case tc.name == "silent" && dnsroll.ErrorCode(err) == dnsroll.EINVALID:
				t.Errorf("a silent load balancer is a refusal no retry clears: %v", err)
			}
		})
	}
}

// serveIdentityOver is serveIdentity over UDP and TCP on one port,
// answering as udpNSID over UDP and as tcpNSID over TCP: a load balancer
// whose two listeners forward to different servers.
func serveIdentityOver(t *testing.T, udpNSID, tcpNSID string, serial uint32) dnsroll.Server {
	t.Helper()
	answer := func(nsid string) dns.HandlerFunc {
		return func(w dns.ResponseWriter, req *dns.Msg) {
			m := new(dns.Msg)
			m.SetReply(req)
			m.Authoritative = true
			soa, _ := dns.NewRR("example.com. 300 IN SOA ns1.example.com. hostmaster.example.com. " + strconv.Itoa(int(serial)) + " 3600 600 1209600 300")
			m.Answer = []dns.RR{soa}
			if req.IsEdns0() != nil {
				m.SetEdns0(1232, false)
				m.IsEdns0().Option = append(m.IsEdns0().Option, &dns.EDNS0_NSID{Code: dns.EDNS0NSID, Nsid: hexOf(nsid)})
			}
			_ = w.WriteMsg(m)
		}
	}
	// The port UDP is given may be taken for TCP: another is tried.
	var pc net.PacketConn
	var l net.Listener
	for try := 0; l == nil; try++ {
		var err error
		if pc, err = net.ListenPacket("udp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		if l, err = net.Listen("tcp", pc.LocalAddr().String()); err != nil {
			_ = pc.Close()
			if try == 20 {
				t.Fatal(err)
			}
		}
	}
	for _, srv := range []*dns.Server{{PacketConn: pc, Handler: answer(udpNSID)}, {Listener: l, Handler: answer(tcpNSID)}} {
		go func() { _ = srv.ActivateAndServe() }()
		t.Cleanup(func() { _ = srv.Shutdown() })
	}
	n, _ := strconv.Atoi(strings.TrimPrefix(pc.LocalAddr().String(), "127.0.0.1:"))
	id, _ := strconv.Atoi(strings.TrimPrefix(udpNSID, "linode-"))
	return dnsroll.Server{ID: id, Label: udpNSID, IPv4: "127.0.0.1", DNSPort: n}
}

// A load balancer is confirmed over every protocol of the fleet: one whose
// UDP listener took the switch while its TCP one still forwards to blue
// (nginx has a server block for each) serves TCP clients from blue.
func TestConfirmServingAsksOverEveryProtocol(t *testing.T) {
	fleet, err := config.Parse([]byte(testFleetYAML + "probe: {protocols: [udp, tcp], timeout: 200ms}\n"))
	if err != nil {
		t.Fatal(err)
	}
	green := serveIdentityOver(t, "linode-2", "linode-2", 7)
	half := serveIdentityOver(t, "linode-2", "linode-1", 7)
	lb := func(s dnsroll.Server) config.LoadBalancer {
		return config.LoadBalancer{Name: "lb1", Address: s.DNSAddr()}
	}
	if err := confirmServing(context.Background(), fleet, lb(green), []dnsroll.Server{green}); err != nil {
		t.Errorf("on green over both protocols: %v, want none", err)
	}
	if err := confirmServing(context.Background(), fleet, lb(half), []dnsroll.Server{green}); err == nil || !strings.Contains(err.Error(), "answers tcp with NSID linode-1") {
		t.Errorf("on green over UDP only: %v, want one saying TCP answers from linode-1", err)
	}
}

// A flip the driver made is confirmed through DNS: a load balancer that
// still answers from blue after a flip to green (a flip that did not
// take) fails the step, to be retried, rather than pass as switched.
func TestFlipIsConfirmedThroughTheLoadBalancer(t *testing.T) {
	fleet := udpFleet(t)
	blue, green := serveIdentity(t, "linode-1", 7), serveIdentity(t, "linode-2", 8)
	blue.Label, green.Label = "ns1", "ns1-next"
	driver := &stoppedStager{running: true, staged: map[string]bool{"ns1": true, "ns1-next": true}}
	env, acts := nginxEnv(driver)
	shares := []lb.Share{{Server: green, Weight: 100}, {Server: blue, Weight: 0}}
	// The "load balancer" answers as the server it forwards to.
	onGreen := config.LoadBalancer{Name: "lb1", Address: green.DNSAddr(), Driver: "nginx"}
	if _, err := env.ExecuteActivity(acts.FlipLoadBalancer, FlipInput{StepFleet: StepFleet{Fleet: fleet}, LB: onGreen, Shares: shares}); err != nil {
		t.Fatalf("flip to green, answered from green: %v", err)
	}
	stillBlue := config.LoadBalancer{Name: "lb1", Address: blue.DNSAddr(), Driver: "nginx"}
	if _, err := env.ExecuteActivity(acts.FlipLoadBalancer, FlipInput{StepFleet: StepFleet{Fleet: fleet}, LB: stillBlue, Shares: shares}); err == nil || !strings.Contains(err.Error(), "confirm: the load balancer answers udp with NSID linode-1") {
		t.Errorf("flip to green, answered from blue: %v; want the confirmation to fail", err)
	}
}

// A switch the driver made is confirmed through DNS: a load balancer that
// still answers from blue after its driver pointed it at green fails the
// step, to be retried, rather than pass as switched.
func TestSwitchIsConfirmedThroughTheLoadBalancer(t *testing.T) {
	fleet := udpFleet(t)
	blue, green := serveIdentity(t, "linode-1", 7), serveIdentity(t, "linode-2", 8)
	env, acts := nginxEnv(&pointRecorder{})
	// The "load balancer" answers as the server it forwards to.
	for _, tt := range []struct {
		name string
		at   dnsroll.Server
		want string // "" for a switch confirmed
	}{
		{"answered from green", green, ""},
		{"answered from blue", blue, "confirm: the load balancer answers udp with NSID linode-1"},
	} {
		bal := config.LoadBalancer{Name: "lb1", Address: tt.at.DNSAddr(), Driver: "nginx"}
		_, err := env.ExecuteActivity(acts.SwitchLoadBalancer, SwitchInput{StepFleet: StepFleet{Fleet: fleet}, LB: bal, Backends: []dnsroll.Server{green}})
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("switch to green, %s: %v", tt.name, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("switch to green, %s: %v; want an error saying %q", tt.name, err, tt.want)
		}
	}
}

// A load balancer of several workers, one of which still runs the old
// config and forwards to blue, is not confirmed on green because the
// first connections reached workers on green: the check asks through it
// more than once, each time on a new connection.
func TestConfirmServingFindsAWorkerLeftOnTheOldSide(t *testing.T) {
	fleet := udpFleet(t)
	green := serveIdentity(t, "linode-2", 7)
	bal := config.LoadBalancer{Name: "lb1", Address: serveNSIDs(t, "linode-2", "linode-2", "linode-2", "linode-1")}
	if err := confirmServing(context.Background(), fleet, bal, []dnsroll.Server{green}); err == nil || !strings.Contains(err.Error(), "NSID linode-1") {
		t.Errorf("err = %v, want one saying a query was answered from linode-1", err)
	}
}
