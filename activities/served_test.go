package activities

import (
	"errors"
	"strings"
	"testing"

	"go.temporal.io/sdk/temporal"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/config"
)

// A load balancer added to the fleet's file by hand while a rollout runs,
// pointed at blue, is not one the rollout switched: deleting blue would take
// its traffic down, and the rollout would call that a success. DeleteServer
// reads the fleet's current file and keeps a server that any of its load
// balancers still answers from, or one it cannot tell about, with an error
// the step retries (the operator may switch the load balancer, or remove it
// from the file, meanwhile) that names the load balancer and the fix.
func TestDeleteServerKeepsAServerALoadBalancerOfTheCurrentFileAnswersFrom(t *testing.T) {
	c := newCloudEnv(t)
	blue := c.mustEnsure(t, "ns1").Server
	green := c.mustEnsure(t, "ns1-next").Server
	current := func(lb2 string) *config.Fleet {
		f, err := config.Parse([]byte(testFleetYAML + "probe: {protocols: [udp], timeout: 200ms}\n"))
		if err != nil {
			t.Fatal(err)
		}
		f.LoadBalancers[0].Address = c.lb // the run's own, answering from no blue
		if lb2 != "" {
			f.LoadBalancers = append(f.LoadBalancers, config.LoadBalancer{Name: "lb2", Address: lb2, Fronts: []string{"ns1"}, Driver: "nginx"})
		}
		return f
	}
	var file *config.Fleet
	c.acts.Fleets = func(name string) (*config.Fleet, error) {
		if name != c.fleet.Name {
			return nil, dnsroll.Errorf(dnsroll.ENOTFOUND, "no fleet %q", name)
		}
		return file, nil
	}
	in := DeleteServerInput{Tag: c.fleet.Tag(), Server: blue}
	for _, tc := range []struct {
		name string
		lb2  string
		want []string
	}{
		{"added, on blue", serveNSIDs(t, ServerID(blue)), []string{"load balancer lb2", "still answers from ns1", "point lb2 at green", "remove it from fleet t's file"}},
		{"added, split between green and blue", serveNSIDs(t, ServerID(green), ServerID(blue), ServerID(green)), []string{"load balancer lb2", "still answers from ns1"}},
		// One that never answers may still point at blue: it keeps blue too.
		{"added, silent", serveNSIDs(t, ""), []string{"load balancer lb2", "does not answer", "remove it from fleet t's file"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file = current(tc.lb2)
			_, err := c.env.ExecuteActivity(c.acts.DeleteServer, in)
			var app *temporal.ApplicationError
			if !errors.As(err, &app) || app.NonRetryable() {
				t.Fatalf("err = %v, want an error the step retries", err)
			}
			for _, want := range tc.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("err = %v, want it to say %q", err, want)
				}
			}
			if c.count("ns1") != 1 {
				t.Fatal("blue was deleted while a load balancer of the fleet's file may answer from it")
			}
		})
	}
	// Switched to green, or removed from the file: blue goes.
	file = current(serveNSIDs(t, ServerID(green)))
	if _, err := c.env.ExecuteActivity(c.acts.DeleteServer, in); err != nil {
		t.Fatalf("delete with every load balancer on green: %v", err)
	}
	if c.count("ns1") != 0 || c.count("ns1-next") != 1 {
		t.Errorf("after the delete: %+v", c.sim.Instances())
	}
}

// A server is kept while the fleet's current file cannot be read: whether
// a load balancer added to it answers from the server cannot be told.
func TestDeleteServerKeepsAServerWhileTheFleetFileCannotBeRead(t *testing.T) {
	c := newCloudEnv(t)
	blue := c.mustEnsure(t, "ns1").Server
	c.acts.Fleets = func(name string) (*config.Fleet, error) {
		return nil, dnsroll.Errorf(dnsroll.EINVALID, "fleets/%s.yaml: yaml: line 3: did not find expected key", name)
	}
	_, err := c.env.ExecuteActivity(c.acts.DeleteServer, DeleteServerInput{Tag: c.fleet.Tag(), Server: blue})
	if err == nil || !strings.Contains(err.Error(), "did not find expected key") || !strings.Contains(err.Error(), "fleet t's file") {
		t.Errorf("err = %v, want one naming the fleet file and why it cannot be read", err)
	}
	if c.count("ns1") != 1 {
		t.Error("blue was deleted while the fleet's file could not be read")
	}
}
