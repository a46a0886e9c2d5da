package preflight

import (
	"context"
	"fmt"
	"strings"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/config"
)

// Grantor is a cloud that can say what its token may not do of a
// rollout's work; *linode.Cloud is one.
type Grantor interface {
	// Denied says whether the token may create servers, and which of
	// servers it may read but not change or delete.
	Denied(ctx context.Context, servers []dnsroll.Server) (dnsroll.Denied, error)
}

// Grants refuses, before anything is created, work that the cloud's token
// could start but not finish: it creates servers (when creates: an earlier
// run may have left every one it needs), then deletes or renames changing
// (the servers it replaces, and those an earlier run left). A token that
// may only read a blue server would otherwise fail at teardown, after the
// switch, with both sets of servers running and the blue labels in the way
// of the renames.
func Grants(ctx context.Context, g Grantor, fleet *config.Fleet, changing []dnsroll.Server, creates bool) error {
	d, err := g.Denied(ctx, changing)
	if err != nil {
		return fmt.Errorf("checking what the cloud's token may do: %w", err)
	}
	var refusals []string
	if d.Create && creates {
		refusals = append(refusals, fmt.Sprintf("the Linode token acts as %s, a restricted user that may not create Linodes: "+
			"give %s the add_linodes grant (Cloud Manager: Users & Grants), or use a token of a user that may", d.User, d.User))
	}
	if d.Tag && creates {
		refusals = append(refusals, fmt.Sprintf("the Linode token acts as %s, a restricted user that may not tag Linodes, and every server a run creates is tagged %s: "+
			"give %s read-write account access (Cloud Manager: Users & Grants, Billing Access: Read-Write), or use an unrestricted user's token", d.User, fleet.Tag(), d.User))
	}
	for _, s := range d.ReadOnly {
		refusals = append(refusals, fmt.Sprintf("%s: %s (Linode %d) is read-only to %s, the user the Linode token acts as, and this run deletes or renames it: "+
			"give %s read-write access to it (Cloud Manager: Users & Grants)", serverField(fleet, s.Label), s.Label, s.ID, d.User, d.User))
	}
	if len(refusals) > 0 {
		return dnsroll.Errorf(dnsroll.EINVALID, "%s", strings.Join(refusals, "; "))
	}
	return nil
}

// serverField names the part of fleet a server of label stands for: a
// nameserver, its green, or a load balancer.
func serverField(fleet *config.Fleet, label string) string {
	final, green := dnsroll.FinalLabel(label)
	for i, ns := range fleet.Nameservers {
		if strings.EqualFold(ns.Label, final) {
			if green {
				return fmt.Sprintf("nameservers[%d]'s green, left by an earlier rollout", i)
			}
			return fmt.Sprintf("nameservers[%d]", i)
		}
	}
	for j, lb := range fleet.LoadBalancers {
		if strings.EqualFold(lb.Name, final) {
			if green {
				return fmt.Sprintf("load_balancers[%d]'s replacement, left by an earlier replacement", j)
			}
			return fmt.Sprintf("load_balancers[%d]", j)
		}
	}
	return "a server tagged " + fleet.Tag()
}
