package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/dnsroll/dnsroll/api"
	"github.com/dnsroll/dnsroll/internal/testfiles"
	"github.com/dnsroll/dnsroll/workflows"
)

// Mistakes in a fleet file are refused before any VM exists, with a
// message naming the field and the fix: by POST /rollouts (400, nothing
// started), and by the rollout's Plan step when a workflow is started some
// other way (the temporal CLI, a retry). The simulator's instance count
// does not move.
func TestMistakesRefusedBeforeAnyVM(t *testing.T) {
	tl := startBlue(t, "nginx", nil)
	c := tl.startAPI(t)
	path := filepath.Join(tl.fleetDir, tl.fleet.Name+".yaml")
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lb1, lb2 := tl.fleet.LoadBalancers[0].Address, tl.fleet.LoadBalancers[1].Address
	for _, tt := range []struct {
		name, from, to, revision string
		want                     []string // the field and the fix
	}{
		{"two load balancers on one address", `"` + lb2 + `"`, `"` + lb1 + `"`, "B", []string{"load_balancers[1].address", "every load balancer needs its own"}},
		{"a load balancer on a lab VM's DNS port", `"` + lb2 + `"`, fmt.Sprintf(`"127.0.0.1:%d"`, tl.fleet.Lab.LabDNSPort(7)), "B", []string{"load_balancers[1].address", "give lb2 a port outside them"}},
		{"port 99999", `"` + lb2 + `"`, `"127.0.0.1:99999"`, "B", []string{"load_balancers[1].address", "from 1 to 65535"}},
		{"a label Linode rejects", "label: ns2,", "label: 2ns,", "B", []string{"nameservers[1].label", "must start with a letter"}},
		{"an unknown revision", "", "", "Q", []string{"zones[0].file", `revision "Q"`, "does not exist"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			testfiles.Write(t, path, strings.Replace(string(good), tt.from, tt.to, 1))
			defer testfiles.Write(t, path, string(good))

			_, err := c.Start(context.Background(), api.StartRequest{Fleet: tl.fleet.Name, Revision: tt.revision})
			var apiErr *api.Error
			if !errors.As(err, &apiErr) || apiErr.Status != 400 {
				t.Fatalf("POST /rollouts: %v, want 400", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("API error %q lacks %q", err, w)
				}
			}

			refusedAtPlan(t, tl, tt.revision, tt.want)
		})
	}

	// What only the cloud knows: the API passes these, and the rollout's
	// Plan asks Linode before it creates anything.
	for _, tt := range []struct {
		name, from, to string
		want           []string
	}{
		{"a region Linode lacks", "region: eu-central,", "region: mars-1,", []string{"nameservers[1].region", `no region "mars-1"`, "linode-cli regions list"}},
		{"a plan Linode lacks", "type: g6-nanode-1, image: linode/debian12}\n  - {label: ns2", "type: g6-nanode-2, image: linode/debian12}\n  - {label: ns2", []string{"nameservers[0].type", `no plan "g6-nanode-2"`}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			changed := strings.Replace(string(good), tt.from, tt.to, 1)
			if changed == string(good) {
				t.Fatalf("the lab fleet has no %q to change", tt.from)
			}
			testfiles.Write(t, path, changed)
			defer testfiles.Write(t, path, string(good))
			refusedAtPlan(t, tl, "B", tt.want)
		})
	}

	// A fleet with a real load balancer (no lab section, a public
	// address) against this worker's simulated cloud: only the worker
	// knows its cloud, so Plan refuses it.
	t.Run("a real load balancer against the simulator", func(t *testing.T) {
		real := regexp.MustCompile(`(?m)^lab:\n(  .*\n)+`).ReplaceAllString(string(good), "")
		real = strings.Replace(real, `"`+lb2+`"`, `"203.0.113.53:53"`, 1)
		// Real servers are provisioned over SSH; local, outside the lab, is
		// refused on its own (preflight.Target.Fits).
		real = strings.Replace(real, "connection: local", "connection: ssh", 1)
		testfiles.Write(t, path, real)
		defer testfiles.Write(t, path, string(good))
		refusedAtPlan(t, tl, "B", []string{"load_balancers[1].address", "203.0.113.53", "simulated Linode API", "unset DNSROLL_LINODE_URL"})
	})
}

// refusedAtPlan starts a rollout of revision the way the temporal CLI or a
// retry would, past the API's checks, and wants its Plan step to refuse it
// with every one of want in the failure, having created no server.
func refusedAtPlan(t *testing.T, tl *testLab, revision string, want []string) {
	t.Helper()
	before := tl.Sim().Created()
	st, err := tl.wait(t, tl.start(t, workflows.RolloutInput{Revision: revision}))
	if err == nil || st.Phase != workflows.PhaseFailed || !strings.HasPrefix(st.Failure, "Plan ") {
		t.Fatalf("rollout: phase %s, failure %q; want it to fail at Plan", st.Phase, st.Failure)
	}
	for _, w := range want {
		if !strings.Contains(st.Failure, w) {
			t.Errorf("failure %q lacks %q", st.Failure, w)
		}
	}
	if n := tl.Sim().Created(); n != before {
		t.Errorf("the simulator created %d instances: a refused rollout created servers", n-before)
	}
}
