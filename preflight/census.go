package preflight

import (
	"cmp"
	"slices"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/config"
)

// Census sorts the servers that carry a fleet's tag as a rollout reads
// them: the rollout's Plan step, and `dnsroll fleet validate --live`,
// which shows an operator the same reading before any rollout starts.
// Each list is in label order.
type Census struct {
	// Blue are the servers with a nameserver's label: what serves now.
	Blue []dnsroll.Server
	// Left are the greens (<label>-next) of a nameserver that an earlier
	// rollout left. The next rollout provisions them again, unless a load
	// balancer answers from one: then it refuses.
	Left []dnsroll.Server
	// Deleting are being deleted; a rollout ignores them.
	Deleting []dnsroll.Server
	// Strangers carry the tag but neither a nameserver's label nor its
	// green's; a rollout ignores them.
	Strangers []dnsroll.Server
}

// TakeCensus sorts servers, those tagged fleet.Tag(), into a Census.
func TakeCensus(fleet *config.Fleet, servers []dnsroll.Server) Census {
	slots := map[string]bool{}
	for _, ns := range fleet.Nameservers {
		slots[ns.Label] = true
	}
	var c Census
	for _, s := range servers {
		final, green := dnsroll.FinalLabel(s.Label)
		switch {
		case s.Status == dnsroll.StatusDeleting:
			c.Deleting = append(c.Deleting, s)
		case !slots[final]:
			c.Strangers = append(c.Strangers, s)
		case green:
			c.Left = append(c.Left, s)
		default:
			c.Blue = append(c.Blue, s)
		}
	}
	for _, list := range []*[]dnsroll.Server{&c.Blue, &c.Left, &c.Deleting, &c.Strangers} {
		slices.SortFunc(*list, func(a, b dnsroll.Server) int {
			return cmp.Or(cmp.Compare(a.Label, b.Label), cmp.Compare(a.ID, b.ID))
		})
	}
	return c
}

// Missing are the nameservers of fleet with no blue server: all of them
// before the fleet's first rollout. A rollout creates their greens as the
// first rollout does, and a load balancer that fronts only missing ones
// has nothing to go back to once it switches.
func (c Census) Missing(fleet *config.Fleet) []string {
	have := map[string]bool{}
	for _, s := range c.Blue {
		have[s.Label] = true
	}
	var out []string
	for _, ns := range fleet.Nameservers {
		if !have[ns.Label] {
			out = append(out, ns.Label)
		}
	}
	return out
}

// Stale says how s, a green an earlier rollout left (one of Left),
// differs in region, plan or image from what its nameserver now asks for,
// or "" when the next rollout reuses it. A stale one is deleted and
// created anew: the fleet file no longer describes it.
func Stale(fleet *config.Fleet, s dnsroll.Server) string {
	final, _ := dnsroll.FinalLabel(s.Label)
	ns, _ := fleet.Nameserver(final)
	return (dnsroll.ServerSpec{Region: ns.Region, Type: ns.Type, Image: ns.Image}).Unlike(s)
}

// Creates says whether a rollout creates a server: for each nameserver
// with no green left that it reuses (Stale).
func (c Census) Creates(fleet *config.Fleet) bool {
	reused := 0
	for _, s := range c.Left {
		if Stale(fleet, s) == "" {
			reused++
		}
	}
	return reused < len(fleet.Nameservers)
}
