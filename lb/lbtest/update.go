package lbtest

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/testsuite"

	"github.com/dnsroll/dnsroll/activities"
	"github.com/dnsroll/dnsroll/config"
	"github.com/dnsroll/dnsroll/internal/temporaltest"
	"github.com/dnsroll/dnsroll/lb"
	"github.com/dnsroll/dnsroll/workflows"
)

// UpdateFleet readies f for a lab test of LoadBalancerUpdateWorkflow: DNS
// checks over UDP and TCP with a one-second timeout, steps of a minute
// with quick retries, each run at most maxAttempts times, and a bake of
// three checks a second apart after each load balancer but the last.
func UpdateFleet(f *config.Fleet, maxAttempts int) {
	f.Probe.Protocols, f.Probe.Timeout = []string{"udp", "tcp"}, config.Duration(time.Second)
	bake := config.Duration(3 * time.Second)
	f.LBUpdate = config.LBUpdate{Bake: &bake, BakeInterval: config.Duration(time.Second)}
	st := &f.Steps
	st.ProbeTimeout, st.SwitchTimeout, st.HeartbeatTimeout = config.Duration(time.Minute), config.Duration(time.Minute), config.Duration(30*time.Second)
	st.RetryInitialInterval, st.RetryMaximumInterval, st.MaxAttempts = config.Duration(100*time.Millisecond), config.Duration(time.Second), maxAttempts
}

// RunUpdate runs LoadBalancerUpdateWorkflow with u on all of f's load
// balancers, in Temporal's test environment with the real activities and
// d as the driver of each, and returns its status and error.
func RunUpdate(t testing.TB, d activities.LoadBalancer, f *config.Fleet, u lb.Update) (workflows.Status, error) {
	t.Helper()
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestWorkflowEnvironment()
	workflows.Register(env)
	drivers := map[string]activities.LoadBalancer{}
	for _, b := range f.LoadBalancers {
		drivers[b.Driver] = d
	}
	env.RegisterActivity(&activities.Activities{Drivers: drivers})
	env.ExecuteWorkflow(workflows.LoadBalancerUpdateWorkflow, workflows.LBUpdateInput{Fleet: f, Update: u})
	v, err := env.QueryWorkflow(workflows.QueryStatus)
	return temporaltest.Value[workflows.Status](t, v, err), env.GetWorkflowError()
}

// Steps is st's steps as "Name Target state", comma-separated.
func Steps(st workflows.Status) string {
	var out []string
	for _, s := range st.Steps {
		out = append(out, fmt.Sprintf("%s %s %s", s.Name, s.Target, s.State))
	}
	return strings.Join(out, ",")
}
