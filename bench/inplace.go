package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/dnsroll/dnsroll/lb"
)

// An in-place scenario updates one driver's load balancer where it
// stands, again and again under the load: each update is one
// LoadBalancerUpdateWorkflow run, started as an operator starts it, so the
// worker checks DNS through the load balancer, updates it with its driver
// and checks DNS again, as in production.
type inplaceScenario struct {
	name, driver string
	// updates is how many updates the scenario makes, one after another.
	updates int
	// update is the i-th (from 0) of them, to the load balancer whose
	// lab directory is dir.
	update func(dir string, i int) (lb.Update, error)
}

var inplaceScenarios = []inplaceScenario{
	{name: "inplace-nginx-config", driver: "nginx", updates: 10, update: nginxConfigChange},
	{name: "inplace-nginx-binary", driver: "nginx", updates: 3, update: func(string, int) (lb.Update, error) {
		// The package is the one installed: the upgrade re-executes it.
		return lb.Update{Kind: lb.UpdateBinary}, nil
	}},
	{name: "inplace-dnsdist-config", driver: "dnsdist", updates: 10, update: dnsdistConsoleChange},
}

func inplaceNamed(scenario string) (inplaceScenario, bool) {
	for _, s := range inplaceScenarios {
		if s.name == scenario {
			return s, true
		}
	}
	return inplaceScenario{}, false
}

func isInPlace(scenario string) bool {
	_, ok := inplaceNamed(scenario)
	return ok
}

// nginxConfigChange is the live nginx.conf (the role keeps it in the
// lab load balancer's directory) with a comment naming the change, so
// every update installs a config that differs from the running one.
func nginxConfigChange(dir string, i int) (lb.Update, error) {
	live, err := os.ReadFile(filepath.Join(dir, "nginx.conf"))
	if err != nil {
		return lb.Update{}, err
	}
	var keep []string
	for _, line := range strings.SplitAfter(string(live), "\n") {
		if !strings.HasPrefix(line, benchConfComment) {
			keep = append(keep, line)
		}
	}
	conf := strings.Join(keep, "") + fmt.Sprintf("%s %d\n", benchConfComment, i+1)
	return lb.Update{Kind: lb.UpdateConfig, Config: conf}, nil
}

const benchConfComment = "# bench: in-place change"

// dnsdistConsoleChange alternates between two settings of the ACL and the
// server policy, each update undoing the last, so an even number of them
// leaves dnsdist as the role configured it (wrandom, which the canary
// scenarios need). With one backend neither changes where a query goes.
func dnsdistConsoleChange(_ string, i int) (lb.Update, error) {
	const (
		changed = "addACL('198.51.100.0/24')\nsetServerPolicy(leastOutstanding)"
		// The role's settings (lb/dnsdist/dnsdist.conf.tmpl).
		configured = "setACL({'0.0.0.0/0', '::/0'})\nsetServerPolicy(wrandom)"
	)
	if i%2 == 0 {
		return lb.Update{Kind: lb.UpdateConsole, Lua: changed, UndoLua: configured}, nil
	}
	return lb.Update{Kind: lb.UpdateConsole, Lua: configured, UndoLua: changed}, nil
}
