package activities

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/config"
	"github.com/dnsroll/dnsroll/internal/temporaltest"
	"github.com/dnsroll/dnsroll/lab/linodesim"
	"github.com/dnsroll/dnsroll/lb"
)

// pointRecorder is a load balancer driver that records what it was pointed at.
type pointRecorder struct {
	mu     sync.Mutex
	points []string
}

func (p *pointRecorder) Point(_ context.Context, _ *config.Fleet, lb config.LoadBalancer, backends []dnsroll.Server) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var labels []string
	for _, b := range backends {
		labels = append(labels, b.Label)
	}
	p.points = append(p.points, lb.Name+"@"+lb.Address+" -> "+strings.Join(labels, ","))
	return nil
}

// meetingKeys records, in order, the host keys trusted and the load
// balancers pointed.
type meetingKeys struct {
	*recordingKeys
	events *[]string
}

func (m meetingKeys) TrustNew(_ context.Context, fleet, name, addr, instance string) error {
	*m.events = append(*m.events, "trust "+fleet+"/"+name+" "+addr+" "+instance)
	return nil
}

// TrustGiven is first contact with a load balancer that was given its key.
func (m meetingKeys) TrustGiven(ctx context.Context, fleet, name, addr, instance string) error {
	return m.TrustNew(ctx, fleet, name, addr, instance)
}

type meetingDriver struct{ events *[]string }

func (d meetingDriver) Point(_ context.Context, _ *config.Fleet, lb config.LoadBalancer, _ []dnsroll.Server) error {
	*d.events = append(*d.events, "point "+lb.Name)
	return nil
}

// A new load balancer is met as a new nameserver is: once its SSH answers,
// its host key is recorded for its instance, before the driver's playbook
// logs in. Without it the first playbook run could fail on a server still
// booting, or on an earlier machine's key pinned at a reused address.
func TestCreateLoadBalancerMeetsItsNewServerFirst(t *testing.T) {
	c := newCloudEnv(t)
	c.mustEnsure(t, "ns1")
	var events []string
	c.acts.HostKeys = meetingKeys{&recordingKeys{}, &events}
	c.acts.Drivers = map[string]LoadBalancer{"nginx": meetingDriver{&events}}
	v, err := c.env.ExecuteActivity(c.acts.CreateLoadBalancer, LoadBalancerInput{Fleet: c.fleet, LB: c.fleet.LoadBalancers[0]})
	got := temporaltest.Value[NewLoadBalancer](t, v, err)
	want := []string{"trust t/lb1-next 127.0.0.1 " + ServerID(got.Server), "point lb1-next"}
	if strings.Join(events, "; ") != strings.Join(want, "; ") {
		t.Errorf("events %q, want %q", events, want)
	}
}

// CreateLoadBalancer twice makes one fleet-tagged lb1-next, in front of
// the nameserver lb1 fronts, at the new server's address on port 53; and
// DeleteLoadBalancer deletes it, then finds nothing to delete.
func TestCreateAndDeleteLoadBalancerAreIdempotent(t *testing.T) {
	c := newCloudEnv(t)
	c.mustEnsure(t, "ns1")
	drv := &pointRecorder{}
	c.acts.Drivers = map[string]LoadBalancer{"nginx": drv, "": drv}
	var results []NewLoadBalancer
	for range 2 {
		v, err := c.env.ExecuteActivity(c.acts.CreateLoadBalancer, LoadBalancerInput{Fleet: c.fleet, LB: c.fleet.LoadBalancers[0]})
		results = append(results, temporaltest.Value[NewLoadBalancer](t, v, err))
	}
	if n := c.count("lb1-next"); n != 1 {
		t.Fatalf("%d lb1-next instances after two creates, want 1", n)
	}
	got := results[1]
	if got.LB.Name != "lb1-next" || got.LB.Address != got.Server.IPv4+":53" || got.Server.ID != results[0].Server.ID || !got.Server.HasTag(c.fleet.Tag()) {
		t.Errorf("created %+v, want lb1-next at its server's address :53, the same server both times, fleet-tagged", got)
	}
	if len(drv.points) != 2 || !strings.HasSuffix(drv.points[0], " -> ns1") || !strings.HasPrefix(drv.points[0], "lb1-next@") {
		t.Errorf("driver pointed %v, want lb1-next at ns1, twice", drv.points)
	}

	for i, want := range []string{"", "nothing to delete"} {
		v, err := c.env.ExecuteActivity(c.acts.DeleteLoadBalancer, DeleteLoadBalancerInput{Fleet: c.fleet, Label: "lb1-next"})
		if err != nil {
			t.Fatalf("delete %d: %v", i, err)
		}
		var res StepResult
		_ = v.Get(&res)
		if want != "" && !strings.Contains(res.Note, want) {
			t.Errorf("second delete: note %q, want %q", res.Note, want)
		}
	}
	if n := c.count("lb1-next"); n != 0 {
		t.Errorf("%d lb1-next instances after delete", n)
	}
	if n := c.count("ns1"); n != 1 {
		t.Errorf("deleting lb1-next touched ns1 (%d left)", n)
	}
}

// A load balancer at an IPv6 address is replaced by one at the new
// server's IPv6 address: the glue that named the old one's AAAA moves to
// the new one's, not to an IPv4 address clients of that family never
// asked. It is reached over SSH at the IPv4 address its host key was
// recorded at, as nameservers are.
func TestCreateLoadBalancerKeepsAnIPv6AddressIPv6(t *testing.T) {
	c := newCloudEnv(t)
	c.mustEnsure(t, "ns1")
	drv := &pointRecorder{}
	c.acts.Drivers = map[string]LoadBalancer{"nginx": drv, "": drv}
	old := c.fleet.LoadBalancers[0]
	old.Address = "[2001:db8::12]:53"
	v, err := c.env.ExecuteActivity(c.acts.CreateLoadBalancer, LoadBalancerInput{Fleet: c.fleet, LB: old})
	got := temporaltest.Value[NewLoadBalancer](t, v, err)
	if got.Server.IPv6 == "" {
		t.Fatalf("new server %+v has no IPv6 address", got.Server)
	}
	if want := "[" + got.Server.IPv6 + "]:53"; got.LB.Address != want || got.LB.SSHHost != got.Server.IPv4 {
		t.Errorf("new load balancer at %s, ssh_host %q; want %s, ssh_host %s", got.LB.Address, got.LB.SSHHost, want, got.Server.IPv4)
	}
	if len(drv.points) != 1 || !strings.HasPrefix(drv.points[0], "lb1-next@"+got.LB.Address+" ") {
		t.Errorf("driver pointed %v, want lb1-next@%s", drv.points, got.LB.Address)
	}
}

// The old load balancer is deleted by its label only when its server is at
// the address the fleet gives it: a stale fleet file (a load balancer
// replaced earlier, its address not updated) would otherwise name the
// live replacement, which the glue points at.
func TestDeleteLoadBalancerRefusesAServerAtAnotherAddress(t *testing.T) {
	c := newCloudEnvWith(t, linodesim.Options{OnCreate: func(linodesim.Instance, linodesim.Boot) (string, error) {
		return "203.0.113.50", nil
	}})
	c.mustEnsure(t, "lb1")
	c.deleteLB1At(t, "198.51.100.77:53", "is at 203.0.113.50, not 198.51.100.77", "203.0.113.50:53")
}

// deleteLB1At deletes lb1 at the address stale, which must be refused
// with an error saying refusal and leave lb1, then at the address own,
// which must delete it.
func (c *cloudEnv) deleteLB1At(t *testing.T, stale, refusal, own string) {
	t.Helper()
	if _, err := c.env.ExecuteActivity(c.acts.DeleteLoadBalancer, DeleteLoadBalancerInput{Fleet: c.fleet, Label: "lb1", Address: stale}); err == nil || !strings.Contains(err.Error(), refusal) {
		t.Fatalf("delete at a stale address: %v; want it refused, saying %q", err, refusal)
	}
	if n := c.count("lb1"); n != 1 {
		t.Fatalf("%d lb1 instances after the refused delete, want 1", n)
	}
	if _, err := c.env.ExecuteActivity(c.acts.DeleteLoadBalancer, DeleteLoadBalancerInput{Fleet: c.fleet, Label: "lb1", Address: own}); err != nil {
		t.Fatalf("delete at %s: %v", own, err)
	}
	if n := c.count("lb1"); n != 0 {
		t.Errorf("%d lb1 instances after the delete", n)
	}
}

// The same for a load balancer at an IPv6 address: the Linode labelled
// lb1 is another's SLAAC address away (the simulator gives each Linode
// 2001:db8::<id>, one /64 as Linode's regions do), so the fleet file is
// stale. An address outside that /64 (a routed range of the Linode's own,
// which Linode does not list with the instance) is not compared.
func TestDeleteLoadBalancerRefusesAServerAtAnotherIPv6Address(t *testing.T) {
	c := newCloudEnv(t)
	s := c.mustEnsure(t, "lb1").Server
	// [2001:db8:0:1::53] is in a routed range: not compared.
	c.deleteLB1At(t, "[2001:db8::77]:53", "is at "+s.IPv6+", not 2001:db8::77", "[2001:db8:0:1::53]:53")
}

// statsStager is a staging driver whose Stats gives stats or err.
type statsStager struct {
	pointRecorder
	stats []lb.BackendStats
	err   error
}

func (s *statsStager) Stage(context.Context, *config.Fleet, config.LoadBalancer, []dnsroll.Server, []dnsroll.Server) error {
	return nil
}
func (s *statsStager) Flip(context.Context, *config.Fleet, config.LoadBalancer, []lb.Share) error {
	return nil
}
func (s *statsStager) Stats(context.Context, *config.Fleet, config.LoadBalancer) ([]lb.BackendStats, error) {
	return s.stats, s.err
}

// countingStager is nginx: a Stager whose Stats fails, with a total
// query counter.
type countingStager struct {
	statsStager
	queries uint64
	err     error
}

func (s *countingStager) Queries(context.Context, *config.Fleet, config.LoadBalancer) (uint64, error) {
	return s.queries, s.err
}

// LoadBalancerQueries reads a driver's total query counter (nginx), or
// else sums its per-backend counters (dnsdist); a driver with neither is
// uncounted, so the drain waits the TTL alone; a counter that cannot be
// read is an error, never a quiet load balancer.
func TestLoadBalancerQueriesCountedOrNot(t *testing.T) {
	c := newCloudEnv(t)
	noStats := dnsroll.Errorf(dnsroll.EINVALID, "nginx keeps no per-backend statistics")
	for _, tc := range []struct {
		name    string
		drv     LoadBalancer
		want    QueriesResult
		wantErr bool
	}{
		{"backend counters", &statsStager{stats: []lb.BackendStats{{Queries: 5}, {Queries: 7}}}, QueriesResult{Attempt: 1, Counted: true, Queries: 12}, false},
		{"query counter", &countingStager{statsStager: statsStager{err: noStats}, queries: 9}, QueriesResult{Attempt: 1, Counted: true, Queries: 9}, false},
		{"no counter", &pointRecorder{}, QueriesResult{Attempt: 1}, false},
		{"console down", &statsStager{err: errors.New("connection refused")}, QueriesResult{}, true},
		{"status socket down", &countingStager{statsStager: statsStager{err: noStats}, err: errors.New("connection refused")}, QueriesResult{}, true},
	} {
		c.acts.Drivers = map[string]LoadBalancer{"nginx": tc.drv}
		v, err := c.env.ExecuteActivity(c.acts.LoadBalancerQueries, LoadBalancerInput{Fleet: c.fleet, LB: c.fleet.LoadBalancers[0]})
		var got QueriesResult
		if err == nil {
			err = v.Get(&got)
		}
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("%s: %+v, %v; want %+v, error %v", tc.name, got, err, tc.want, tc.wantErr)
		}
	}
}

// LoadBalancersQueries reads every load balancer's counter in one step:
// one that cannot be read, or has no driver, is reported with its error,
// naming it, beside the others' counters, and the step succeeds.
func TestLoadBalancersQueriesReportsEachLoadBalancer(t *testing.T) {
	c := newCloudEnv(t)
	noStats := dnsroll.Errorf(dnsroll.EINVALID, "nginx keeps no per-backend statistics")
	c.acts.Drivers = map[string]LoadBalancer{
		"counting": &countingStager{statsStager: statsStager{err: noStats}, queries: 9},
		"down":     &statsStager{err: errors.New("connection refused")},
		"none":     &pointRecorder{},
	}
	var lbs []config.LoadBalancer
	for i, driver := range []string{"counting", "down", "none", "missing"} {
		lbs = append(lbs, config.LoadBalancer{Name: fmt.Sprintf("lb%d", i+1), Address: fmt.Sprintf("192.0.2.%d:53", i+1), Driver: driver})
	}
	v, err := c.env.ExecuteActivity(c.acts.LoadBalancersQueries, LoadBalancersInput{Fleet: c.fleet, LBs: lbs})
	var got LoadBalancersQueriesResult
	if err == nil {
		err = v.Get(&got)
	}
	if err != nil {
		t.Fatal(err)
	}
	if len(got.LBs) != len(lbs) {
		t.Fatalf("%d results for %d load balancers: %+v", len(got.LBs), len(lbs), got.LBs)
	}
	if want := (LBQueries{Name: "lb1", Counted: true, Queries: 9}); got.LBs[0] != want {
		t.Errorf("lb1: %+v, want %+v", got.LBs[0], want)
	}
	if q := got.LBs[1]; q.Name != "lb2" || q.Counted || !strings.Contains(q.Error, "load balancer lb2: query counter") || !strings.Contains(q.Error, "connection refused") {
		t.Errorf("lb2: %+v, want its error, naming it", q)
	}
	if want := (LBQueries{Name: "lb3"}); got.LBs[2] != want {
		t.Errorf("lb3: %+v, want uncounted, no error", got.LBs[2])
	}
	if q := got.LBs[3]; q.Name != "lb4" || !strings.HasPrefix(q.Error, "load balancer lb4: ") {
		t.Errorf("lb4: %+v, want the missing driver's error, naming it", q)
	}
}

// The replacement deletes the old load balancer's server and gives
// <lb>-next its label, which Linode keeps unique in the account (letter
// case aside). A label held where the replacement could not delete it
// (without the fleet's tag, in other letter case, at another address) or
// take it (<lb>-next held outside the fleet) is refused before anything
// is created, naming the load balancer, the Linode and the fix. Before,
// the replacement went through the glue move and the drain, and then
// failed for good at the rename, past its point of no return.
func TestNewLoadBalancersRefuseAnOldLabelHeldOutsideTheFleet(t *testing.T) {
	for _, tc := range []struct {
		name, label, ip string
		tags            []string
		want            string
		lbName          string // the fleet's name of the load balancer, lb1 unless set
	}{
		{"made by hand", "lb1", "", nil, "load_balancers[0]: lb1 is the label of Linode %[1]d (no tags), not this fleet's (tag dnsroll-fleet-t)", ""},
		{"made by hand: the fix", "lb1", "", []string{"edge"}, "linode-cli linodes update %[1]d --tags edge --tags dnsroll-fleet-t", ""},
		{"the fleet's own, in capitals", "LB1", "", []string{"dnsroll-fleet-t"}, "load_balancers[0]: Linode %[1]d of this fleet is labelled LB1, and load balancer lb1 differs from it only in letter case", ""},
		{"the fleet's name in capitals", "lb1", "", []string{"dnsroll-fleet-t"}, "Linode %[1]d of this fleet is labelled lb1, and load balancer LB1 differs from it only in letter case, which Linode's labels ignore: relabel the Linode LB1, or name the load balancer lb1 in the fleet file", "LB1"},
		{"the fleet's own, at another address", "lb1", "203.0.113.50", []string{"dnsroll-fleet-t"}, "load_balancers[0]: lb1 (Linode %[1]d) is at 203.0.113.50, not 198.51.100.1", ""},
		{"its replacement's label, made by hand", "lb1-next", "", nil, "load_balancers[0]: lb1-next is the label of Linode %[1]d (no tags), not this fleet's", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ip := cmp.Or(tc.ip, "198.51.100.1")
			c := newCloudEnvWith(t, linodesim.Options{OnCreate: func(linodesim.Instance, linodesim.Boot) (string, error) { return ip, nil }})
			c.fleet.LoadBalancers[0].Address = "198.51.100.1:53"
			c.fleet.LoadBalancers[0].Name = cmp.Or(tc.lbName, "lb1")
			holder, err := c.cloud.Create(context.Background(), dnsroll.ServerSpec{Label: tc.label, Region: "us-east", Type: "g6-nanode-1", Image: "linode/debian12", Tags: tc.tags}, nil)
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.env.ExecuteActivity(c.acts.CheckNewLoadBalancerOffers, CheckOffersInput{Fleet: c.fleet})
			var app *temporal.ApplicationError
			if !errors.As(err, &app) || !app.NonRetryable() {
				t.Fatalf("check: %v; want a refusal no retry changes", err)
			}
			if want := fmt.Sprintf(tc.want, holder.ID); !strings.Contains(err.Error(), want) {
				t.Errorf("refusal %q lacks %q", err, want)
			}
			if n := c.sim.Created(); n != 1 {
				t.Errorf("%d instances created, want only the holder", n)
			}
		})
	}
}

// A load balancer no Linode of the account is labelled as (built
// elsewhere) can be replaced: the glue moves to a new Linode, but the old
// load balancer is not deleted, which the check says before anything is
// created. The fleet's own server at the fleet's address is no news.
func TestNewLoadBalancersSayWhichOldOnesStay(t *testing.T) {
	c := newCloudEnvWith(t, linodesim.Options{OnCreate: func(linodesim.Instance, linodesim.Boot) (string, error) { return "198.51.100.1", nil }})
	c.fleet.LoadBalancers[0].Address = "198.51.100.1:53"
	v, err := c.env.ExecuteActivity(c.acts.CheckNewLoadBalancerOffers, CheckOffersInput{Fleet: c.fleet})
	res := temporaltest.Value[StepResult](t, v, err)
	if want := "lb1: no Linode this token can see is labelled lb1, so the replacement will not delete the old load balancer at 198.51.100.1:53"; !strings.Contains(res.Note, want) {
		t.Errorf("note %q lacks %q", res.Note, want)
	}

	c.mustEnsure(t, "lb1")
	v, err = c.env.ExecuteActivity(c.acts.CheckNewLoadBalancerOffers, CheckOffersInput{Fleet: c.fleet})
	if res := temporaltest.Value[StepResult](t, v, err); res.Note != "" {
		t.Errorf("note %q for a load balancer the replacement deletes", res.Note)
	}
}

// An undo deletes a new load balancer whose create reported back by its
// ID: Linode's lists lag its creates, so one looked up by label could be
// missed, "nothing to delete", and left running. A second delete finds it
// gone; an ID whose server has another label is not deleted.
func TestDeleteLoadBalancerByIDNeedsNoList(t *testing.T) {
	c := newCloudEnv(t)
	next := c.mustEnsure(t, "lb1-next")
	other := c.mustEnsure(t, "ns1")
	c.acts.Cloud = lagCloud{Cloud: c.cloud, hide: "lb1-next"}
	in := DeleteLoadBalancerInput{Fleet: c.fleet, Label: "lb1-next", ID: next.Server.ID}
	for i, want := range []string{"", "already deleted"} {
		v, err := c.env.ExecuteActivity(c.acts.DeleteLoadBalancer, in)
		if res := temporaltest.Value[StepResult](t, v, err); !strings.Contains(res.Note, want) {
			t.Errorf("delete %d: note %q, want %q", i, res.Note, want)
		}
		if n := c.count("lb1-next"); n != 0 {
			t.Fatalf("delete %d: %d lb1-next instances left, which no list showed", i, n)
		}
	}
	in.ID = other.Server.ID
	if _, err := c.env.ExecuteActivity(c.acts.DeleteLoadBalancer, in); err == nil || !strings.Contains(err.Error(), "labelled ns1") {
		t.Errorf("delete lb1-next by ns1's ID: %v; want a refusal", err)
	}
	if n := c.count("ns1"); n != 1 {
		t.Errorf("%d ns1 instances after a delete of lb1-next by its ID", n)
	}
}

// The old load balancer is deleted though the fleet's current file lists
// a load balancer that does not answer: often it is the dead one being
// replaced. Only a nameserver's delete asks the load balancers whether
// they still answer from it (keepServed); none answers from a load
// balancer's server, and asking would keep a dead one forever.
func TestDeleteLoadBalancerDoesNotWaitForASilentLoadBalancer(t *testing.T) {
	c := newCloudEnv(t)
	file, err := config.Parse([]byte(testFleetYAML + "probe: {protocols: [udp], timeout: 200ms}\n"))
	if err != nil {
		t.Fatal(err)
	}
	file.LoadBalancers[0].Address = serveNSIDs(t, "") // lb1, dead
	c.acts.Fleets = func(string) (*config.Fleet, error) { return file, nil }
	for _, byID := range []bool{false, true} {
		in := DeleteLoadBalancerInput{Fleet: c.fleet, Label: "lb1"}
		if s := c.mustEnsure(t, "lb1").Server; byID {
			in.ID = s.ID
		}
		if _, err := c.env.ExecuteActivity(c.acts.DeleteLoadBalancer, in); err != nil {
			t.Fatalf("delete lb1 (by ID %v): %v", byID, err)
		}
		if n := c.count("lb1"); n != 0 {
			t.Errorf("%d lb1 instances after its delete (by ID %v)", n, byID)
		}
	}
}

// A Linode being deleted (the old load balancer of an earlier
// replacement, deleted at another address) neither refuses the next
// replacement nor counts as the load balancer it deletes; nor does the
// replacement an earlier run left, lb1-next: the check still says that
// the old load balancer stays.
func TestNewLoadBalancersIgnoreADeletingOldLabel(t *testing.T) {
	c := newCloudEnvWith(t, linodesim.Options{DeleteDelay: time.Hour, OnCreate: func(linodesim.Instance, linodesim.Boot) (string, error) {
		return "203.0.113.50", nil
	}})
	c.fleet.LoadBalancers[0].Address = "198.51.100.1:53"
	old := c.mustEnsure(t, "lb1")
	if err := c.cloud.Delete(t.Context(), old.Server.ID); err != nil {
		t.Fatal(err)
	}
	c.mustEnsure(t, "lb1-next")
	v, err := c.env.ExecuteActivity(c.acts.CheckNewLoadBalancerOffers, CheckOffersInput{Fleet: c.fleet})
	res := temporaltest.Value[StepResult](t, v, err)
	if want := "lb1: no Linode this token can see is labelled lb1"; !strings.Contains(res.Note, want) {
		t.Errorf("note %q lacks %q", res.Note, want)
	}
}

// A replacement an earlier run left, lb1-next, is reused whatever its
// plan and region, though the fleet file now names others: the parent's
// glue may already point at it, so deleting it to make one as the file
// says could take the domain's only answering load balancer down.
func TestCreateLoadBalancerKeepsALeftReplacementOfAnotherSpec(t *testing.T) {
	c := newCloudEnv(t)
	c.mustEnsure(t, "ns1")
	c.acts.Drivers = map[string]LoadBalancer{"nginx": &pointRecorder{}}
	left, err := c.cloud.Create(t.Context(), dnsroll.ServerSpec{Label: "lb1-next", Region: "us-west", Type: "g6-standard-2", Image: "linode/debian12", Tags: []string{c.fleet.Tag()}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	v, err := c.env.ExecuteActivity(c.acts.CreateLoadBalancer, LoadBalancerInput{Fleet: c.fleet, LB: c.fleet.LoadBalancers[0]})
	got := temporaltest.Value[NewLoadBalancer](t, v, err)
	if got.Server.ID != left.ID || c.count("lb1-next") != 1 || c.sim.Created() != 2 {
		t.Errorf("created Linode %d (%d created in all), want the left lb1-next, Linode %d, reused", got.Server.ID, c.sim.Created(), left.ID)
	}
}

// A load balancer at an IPv6 address whose replacement the cloud gives no
// IPv6 address is refused, saying so, rather than listen at "[]:53".
func TestReplacementAddressWantsAnIPv6AddressForAnIPv6LoadBalancer(t *testing.T) {
	old := config.LoadBalancer{Name: "lb1", Address: "[2001:db8::12]:53"}
	_, _, err := replacementAddress(old, dnsroll.Server{Label: "lb1-next", IPv4: "192.0.2.7"})
	if err == nil || !strings.Contains(err.Error(), "gives its replacement lb1-next no IPv6 address") {
		t.Errorf("replacement without IPv6: %v; want it refused", err)
	}
	addr, ssh, err := replacementAddress(old, dnsroll.Server{Label: "lb1-next", IPv4: "192.0.2.7", IPv6: "2001:db8::7"})
	if err != nil || addr != "[2001:db8::7]:53" || ssh != "192.0.2.7" {
		t.Errorf("replacement with IPv6: %q, ssh %q, %v", addr, ssh, err)
	}
}

// VerifyLoadBalancer of a load balancer whose nameserver has no server
// fails, naming both, rather than check the load balancer against none.
func TestVerifyLoadBalancerNeedsItsNameservers(t *testing.T) {
	c := newCloudEnv(t)
	_, err := c.env.ExecuteActivity(c.acts.VerifyLoadBalancer, LoadBalancerInput{Fleet: c.fleet, LB: c.fleet.LoadBalancers[0]})
	if err == nil || !strings.Contains(err.Error(), "fronts ns1, which has no fleet-tagged server") {
		t.Errorf("verify without ns1: %v; want it refused, naming ns1", err)
	}
}

// A load balancer deleted by its ID is refused too at another address
// than the fleet gives it, and stays.
func TestDeleteLoadBalancerByIDRefusesAServerAtAnotherAddress(t *testing.T) {
	c := newCloudEnvWith(t, linodesim.Options{OnCreate: func(linodesim.Instance, linodesim.Boot) (string, error) {
		return "203.0.113.50", nil
	}})
	s := c.mustEnsure(t, "lb1").Server
	in := DeleteLoadBalancerInput{Fleet: c.fleet, Label: "lb1", ID: s.ID, Address: "198.51.100.77:53"}
	if _, err := c.env.ExecuteActivity(c.acts.DeleteLoadBalancer, in); err == nil || !strings.Contains(err.Error(), "is at 203.0.113.50, not 198.51.100.77") {
		t.Errorf("delete by ID at a stale address: %v; want it refused", err)
	}
	if n := c.count("lb1"); n != 1 {
		t.Errorf("%d lb1 instances after the refused delete, want 1", n)
	}
}

// Only public IPv4 addresses are compared: the fleet's private or
// loopback address of a load balancer (a lab's, a VPC's), or a server
// Linode reports at none, is no proof of a stale fleet file.
func TestAtAddressComparesPublicAddressesOnly(t *testing.T) {
	for _, tc := range []struct {
		ipv4, address string
		refused       bool
	}{
		{"203.0.113.50", "198.51.100.77:53", true},
		{"203.0.113.50", "203.0.113.50:53", false},
		{"127.0.0.1", "198.51.100.77:53", false},
		{"", "198.51.100.77:53", false},
		{"203.0.113.50", "10.0.0.5:53", false},
		{"203.0.113.50", "127.0.0.1:5301", false},
	} {
		err := atAddress(dnsroll.Server{ID: 7, Label: "lb1", IPv4: tc.ipv4}, tc.address)
		if (err != nil) != tc.refused {
			t.Errorf("server at %q, fleet's address %s: %v; want refused %v", tc.ipv4, tc.address, err, tc.refused)
		}
	}
}

// VerifyLoadBalancer passes a new load balancer only when it answers as
// the nameserver it fronts does when asked directly (its NSID): one that
// answers as another server (pointed at the wrong backend, or an old one
// at its address) or not at all fails the step, naming it, before the
// glue moves to it.
func TestVerifyLoadBalancerWantsItsNameserversAnswers(t *testing.T) {
	c := newCloudEnv(t)
	ns1 := c.mustEnsure(t, "ns1").Server
	c.labFleetServedAt(t, ns1, serveIdentity(t, ServerID(ns1), 7).DNSAddr(), "probe: {protocols: [udp], timeout: 200ms}\n")
	for _, tc := range []struct{ name, address, want string }{
		{"answers from ns1", serveIdentity(t, ServerID(ns1), 7).DNSAddr(), ""},
		{"answers as another server", serveIdentity(t, "linode-999", 7).DNSAddr(), "load balancer lb1-next: confirm: the load balancer answers udp with NSID linode-999"},
		{"refuses", c.lb, "load balancer lb1-next: confirm: no answer through the load balancer"},
	} {
		next := c.fleet.LoadBalancers[0]
		next.Name, next.Address = "lb1-next", tc.address
		v, err := c.env.ExecuteActivity(c.acts.VerifyLoadBalancer, LoadBalancerInput{Fleet: c.fleet, LB: next})
		if tc.want == "" {
			if res := temporaltest.Value[StepResult](t, v, err); res.Note != "lb1-next answers from ns1" {
				t.Errorf("%s: note %q", tc.name, res.Note)
			}
			continue
		}
		var app *temporal.ApplicationError
		if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.As(err, &app) || app.NonRetryable() {
			t.Errorf("%s: %v; want an error a retry may clear, saying %q", tc.name, err, tc.want)
		}
	}
}

// A nameserver the new load balancer fronts that is rebooting (Linode's
// maintenance) answers nothing, and neither does the load balancer: the
// check waits for it to run, rather than fail the replacement on a server
// about to answer.
func TestVerifyLoadBalancerWaitsForItsNameserverToRun(t *testing.T) {
	c := newCloudEnvWith(t, linodesim.Options{BootDelay: 300 * time.Millisecond})
	ns1 := c.mustEnsure(t, "ns1").Server
	status := func() string {
		for _, in := range c.sim.Instances() {
			if in.ID == ns1.ID {
				return in.Status
			}
		}
		return "gone"
	}
	running := func() bool { return status() == "running" }
	c.labFleetServedAt(t, ns1, serveIdentityWhile(t, ServerID(ns1), 7, running).DNSAddr(), "probe: {protocols: [udp], timeout: 200ms}\n")
	next := c.fleet.LoadBalancers[0]
	next.Name, next.Address = "lb1-next", serveIdentityWhile(t, ServerID(ns1), 7, running).DNSAddr()
	c.reboot(t, ns1.ID)
	if s := status(); s != "rebooting" {
		t.Fatalf("ns1 is %s after its reboot, want rebooting", s)
	}
	v, err := c.env.ExecuteActivity(c.acts.VerifyLoadBalancer, LoadBalancerInput{Fleet: c.fleet, LB: next})
	if res := temporaltest.Value[StepResult](t, v, err); res.Note != "lb1-next answers from ns1" {
		t.Errorf("note %q", res.Note)
	}
}
