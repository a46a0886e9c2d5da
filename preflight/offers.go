package preflight

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/config"
)

// Catalog is a cloud that can say, before anything is created, whether it
// has what a server spec names; *linode.Cloud is one. The Plan step and
// `dnsroll fleet validate --live` ask it, so that a region, plan, image or
// firewall the account lacks is refused before any VM exists, not after
// the first of several creates.
type Catalog interface {
	// Missing returns the fields of spec (region, type, image,
	// firewall_id) that name something the cloud does not have, or will
	// not make this server with.
	Missing(ctx context.Context, spec dnsroll.ServerSpec) ([]dnsroll.Unoffered, error)
	// Dropped returns the inbound ports of need ("22/tcp") that the
	// firewall a server made with firewallID would sit behind drops, and
	// that firewall: firewallID, or the account's default when it is 0.
	Dropped(ctx context.Context, firewallID int, need []string) (int, []string, error)
}

// Offer is a server to be made in the region, plan and image of
// nameservers[Slot] behind the Cloud Firewall FirewallID (field
// FirewallField names it): that nameserver's green, or a load balancer's
// replacement made in its place, which a refusal names first (Prefix).
type Offer struct {
	Slot          int
	Prefix        string
	FirewallID    int
	FirewallField string
}

// NameserverOffers are the fleet's nameservers' greens.
func NameserverOffers(fleet *config.Fleet) []Offer {
	out := make([]Offer, len(fleet.Nameservers))
	for i, ns := range fleet.Nameservers {
		out[i] = Offer{Slot: i, FirewallID: ns.FirewallID, FirewallField: fmt.Sprintf("nameservers[%d].firewall_id", i)}
	}
	return out
}

// LoadBalancerOffers are the load balancers' replacements, each made in
// the region, plan and image of the first nameserver it fronts, behind the
// load balancer's own firewall.
func LoadBalancerOffers(fleet *config.Fleet) ([]Offer, error) {
	var out []Offer
	for j, lb := range fleet.LoadBalancers {
		i, err := fleet.ReplacementSlot(lb)
		if err != nil {
			return nil, dnsroll.Errorf(dnsroll.EINVALID, "%v", err)
		}
		prefix := fmt.Sprintf("load_balancers[%d] (%s is made as nameserver %s, the first it fronts): ", j, dnsroll.NextLabel(lb.Name), fleet.Nameservers[i].Label)
		out = append(out, Offer{Slot: i, Prefix: prefix, FirewallID: lb.FirewallID, FirewallField: fmt.Sprintf("load_balancers[%d].firewall_id", j)})
	}
	return out, nil
}

// Offers refuses servers to be made whose region, plan, image or
// firewall the cloud does not have, each reported with its field and
// where to find the IDs there are, and servers behind a firewall that
// drops SSH or DNS. Specs alike are asked once, and a field
// refused once is not refused again for a later offer that shares it (a
// replacement load balancer made as a nameserver is).
func Offers(ctx context.Context, catalog Catalog, fleet *config.Fleet, offers []Offer) error {
	type spec struct {
		region, typ, image string
		firewall           int
	}
	asked := map[spec][]dnsroll.Unoffered{}
	refused := map[string]bool{}
	var refusals []string
	type drop struct {
		why    string
		fields []string
	}
	drops := map[int]*drop{}
	var firewalls []int
	firewallChecked := map[string]bool{}
	for _, o := range offers {
		ns := fleet.Nameservers[o.Slot]
		s := spec{ns.Region, ns.Type, ns.Image, o.FirewallID}
		missing, seen := asked[s]
		if !seen {
			var err error
			if missing, err = catalog.Missing(ctx, dnsroll.ServerSpec{Region: ns.Region, Type: ns.Type, Image: ns.Image, FirewallID: o.FirewallID}); err != nil {
				return fmt.Errorf("checking that the cloud offers nameservers[%d]'s region, type and image: %w", o.Slot, err)
			}
			asked[s] = missing
		}
		for _, m := range missing {
			at := fmt.Sprintf("nameservers[%d].%s", o.Slot, m.Field)
			if m.Field == "firewall_id" {
				at = o.FirewallField
			}
			if refused[at] {
				continue
			}
			refused[at] = true
			why := m.Why
			if why == "" {
				why = unoffered(m.Field, ns, o.FirewallID)
			}
			refusals = append(refusals, fmt.Sprintf("%s%s: %s", o.Prefix, at, why))
		}
		if refused[o.FirewallField] || firewallChecked[o.FirewallField] {
			continue
		}
		firewallChecked[o.FirewallField] = true
		d, seen := drops[o.FirewallID]
		if !seen {
			why, err := firewallDrops(ctx, catalog, fleet, o.FirewallID)
			if err != nil {
				return err
			}
			d = &drop{why: why}
			drops[o.FirewallID] = d
			if why != "" {
				firewalls = append(firewalls, o.FirewallID)
			}
		}
		d.fields = append(d.fields, o.FirewallField)
	}
	// A firewall is refused once, naming every field that puts a server
	// behind it.
	for _, id := range firewalls {
		refusals = append(refusals, fmt.Sprintf("%s: %s", strings.Join(drops[id].fields, ", "), drops[id].why))
	}
	if len(refusals) > 0 {
		return dnsroll.Errorf(dnsroll.EINVALID, "%s", strings.Join(refusals, "; "))
	}
	return nil
}

// firewallDrops says why a new server behind firewallID (the account's
// default firewall when 0) could not serve, or nothing: its firewall drops
// SSH, which Ansible provisions it over, or DNS, which the load balancers
// (and, for a load balancer, every resolver) send it.
func firewallDrops(ctx context.Context, catalog Catalog, fleet *config.Fleet, firewallID int) (string, error) {
	need := []string{"53/udp", "53/tcp"}
	if fleet.Ansible.Connection == "ssh" {
		need = append([]string{"22/tcp"}, need...)
	}
	id, dropped, err := catalog.Dropped(ctx, firewallID, need)
	if err != nil {
		return "", fmt.Errorf("checking the Cloud Firewall new servers are made behind: %w", err)
	}
	if len(dropped) == 0 {
		return "", nil
	}
	which := fmt.Sprintf("Cloud Firewall %d", id)
	if firewallID == 0 {
		which += " (the account's default for new Linodes, which Linode puts a server behind when firewall_id is unset)"
	}
	var harm []string
	if slices.Contains(dropped, "22/tcp") {
		harm = append(harm, "Ansible could not provision new servers over SSH")
	}
	if slices.ContainsFunc(dropped, func(p string) bool { return strings.HasPrefix(p, "53/") }) {
		harm = append(harm, "DNS queries could not reach them")
	}
	return fmt.Sprintf("%s drops inbound %s from everywhere, so %s and the rollout would fail after creating them: "+
		"add ACCEPT rules for them (`linode-cli firewalls rules-list %d` shows its rules), or set firewall_id to a firewall that has them",
		which, strings.Join(dropped, ", "), strings.Join(harm, ", and "), id), nil
}

// unoffered says what the cloud lacks and where the operator finds what it has.
func unoffered(field string, ns config.Nameserver, firewall int) string {
	switch field {
	case "region":
		return fmt.Sprintf("Linode has no region %q; `linode-cli regions list` shows those there are, such as us-east", ns.Region)
	case "type":
		return fmt.Sprintf("Linode has no plan %q; `linode-cli linodes types` shows those there are, such as g6-nanode-1", ns.Type)
	case "image":
		return fmt.Sprintf("this account cannot deploy image %q; `linode-cli images list` shows those it can, such as linode/debian12", ns.Image)
	case "firewall_id":
		return fmt.Sprintf("this account has no Cloud Firewall %d; `linode-cli firewalls list` shows its firewalls, or leave firewall_id out", firewall)
	}
	return fmt.Sprintf("the cloud does not offer %s", field)
}
