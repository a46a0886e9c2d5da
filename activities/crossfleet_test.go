package activities

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"go.temporal.io/sdk/temporal"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/config"
	"github.com/dnsroll/dnsroll/lab/linodesim"
)

// fleetNamed is the test fleet renamed name, its labels prefixed by it:
// <name>-ns1 behind load balancer <name>-lb1.
func (c *cloudEnv) fleetNamed(t *testing.T, name string) *config.Fleet {
	t.Helper()
	text := strings.NewReplacer("fleet: t", "fleet: "+name, "ns1", name+"-ns1", "lb1", name+"-lb1").Replace(testFleetYAML)
	f, err := config.Parse([]byte(text + "ansible: {" + testPlaybooks + "}\n"))
	if err != nil {
		t.Fatal(err)
	}
	f.LoadBalancers[0].Address = c.lb
	return f
}

// Several fleets share one Linode account, told apart by their tags alone,
// and a fleet's tag may begin with another's: dnsroll-fleet-ns and
// dnsroll-fleet-ns-a. Whatever a fleet's steps are given (another
// fleet's labels, its servers' IDs, as a cleanup request or a fleet file
// edited to name them could), they neither count, adopt, rename nor
// delete another fleet's servers.
func TestStepsLeaveAnotherFleetsServers(t *testing.T) {
	for _, pair := range [][2]string{{"ns", "ns-a"}, {"ns-a", "ns"}, {"dns", "dns2"}, {"dns2", "dns"}} {
		t.Run(pair[0]+" beside "+pair[1], func(t *testing.T) {
			c := newCloudEnv(t)
			mine, theirs := c.fleetNamed(t, pair[0]), c.fleetNamed(t, pair[1])
			c.fleet = mine
			theirServer := func(label string) dnsroll.Server {
				s, err := c.cloud.Create(t.Context(), dnsroll.ServerSpec{Label: label, Region: "us-east", Type: "g6-nanode-1", Image: "linode/debian12", Tags: []string{theirs.Tag()}}, nil)
				if err != nil {
					t.Fatal(err)
				}
				return s
			}
			blue, green, lb := theirServer(theirs.Nameservers[0].Label), theirServer(dnsroll.NextLabel(theirs.Nameservers[0].Label)), theirServer(theirs.LoadBalancers[0].Name)
			untouched := func(step string) {
				t.Helper()
				for _, want := range []dnsroll.Server{blue, green, lb} {
					i := slices.IndexFunc(c.sim.Instances(), func(s linodesim.Instance) bool { return s.ID == want.ID })
					if i < 0 || c.sim.Instances()[i].Label != want.Label {
						t.Errorf("after %s: fleet %s's %s (Linode %d) was deleted or renamed: %+v", step, pair[1], want.Label, want.ID, c.sim.Instances())
					}
				}
			}

			plan, _ := c.planWith(t, PlanInput{Fleet: mine.Name, Revision: "A"})
			for label := range plan.Blue {
				t.Errorf("Plan counts %s as blue of fleet %s", label, mine.Name)
			}
			for _, w := range plan.Warnings {
				for _, s := range []dnsroll.Server{blue, green, lb} {
					if strings.Contains(w, fmt.Sprintf("%s (id %d,", s.Label, s.ID)) {
						t.Errorf("Plan of fleet %s sees fleet %s's %s: %s", mine.Name, pair[1], s.Label, w)
					}
				}
			}

			_, err := c.env.ExecuteActivity(c.acts.DeleteGreen, DeleteGreenInput{Tag: mine.Tag(), Labels: []string{green.Label}, IDs: []int{green.ID}})
			if err != nil {
				t.Fatal(err)
			}
			untouched("DeleteGreen")
			_, err = c.env.ExecuteActivity(c.acts.DeleteServer, DeleteServerInput{Tag: mine.Tag(), Server: blue})
			wantRefusal(t, "DeleteServer", err, "lacks tag "+mine.Tag())
			_, err = c.env.ExecuteActivity(c.acts.RenameServer, RenameInput{Tag: mine.Tag(), Server: green, To: blue.Label})
			wantRefusal(t, "RenameServer", err, "lacks tag "+mine.Tag())
			_, err = c.env.ExecuteActivity(c.acts.DeleteLoadBalancer, DeleteLoadBalancerInput{Fleet: mine, Label: lb.Label})
			if err != nil {
				t.Errorf("DeleteLoadBalancer of another fleet's label: %v, want nothing to delete", err)
			}
			_, err = c.env.ExecuteActivity(c.acts.DeleteLoadBalancer, DeleteLoadBalancerInput{Fleet: mine, Label: lb.Label, ID: lb.ID})
			wantRefusal(t, "DeleteLoadBalancer by ID", err, "lacks tag "+mine.Tag())
			// Of another plan than the green that holds the label: were it
			// taken for this fleet's, it would be deleted and made anew.
			spec := dnsroll.ServerSpec{Label: green.Label, Region: "us-east", Type: "g6-standard-1", Image: "linode/debian12", Tags: []string{mine.Tag()}}
			_, err = c.env.ExecuteActivity(c.acts.EnsureServer, EnsureServerInput{StepFleet: StepFleet{Fleet: mine}, Spec: spec})
			wantRefusal(t, "EnsureServer", err, fmt.Sprintf("label %s is taken by Linode %d (tags %s), not this fleet's", green.Label, green.ID, theirs.Tag()))
			untouched("the steps")
			if n := c.sim.Created(); n != 3 {
				t.Errorf("%d instances created, want only fleet %s's 3", n, pair[1])
			}
		})
	}
}

// wantRefusal fails t unless err is a refusal no retry changes that says
// want.
func wantRefusal(t *testing.T, step string, err error, want string) {
	t.Helper()
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || !app.NonRetryable() || !strings.Contains(err.Error(), want) {
		t.Errorf("%s of another fleet's server: err = %v, want a refusal saying %q", step, err, want)
	}
}
