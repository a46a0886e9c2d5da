package dnsdist_test

import (
	"github.com/dnsroll/dnsroll/activities"
	"github.com/dnsroll/dnsroll/lb/dnsdist"
)

// The driver is what the activities call for a two-phase switch and for
// the rest of a rollout.
var (
	_ activities.Stager       = (*dnsdist.Driver)(nil)
	_ activities.LoadBalancer = (*dnsdist.Driver)(nil)
)
