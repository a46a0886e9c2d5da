package preflight

import (
	"context"
	"fmt"
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
// where to find the IDs there are. Specs alike are asked once, and a field
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
	}
	if len(refusals) > 0 {
		return dnsroll.Errorf(dnsroll.EINVALID, "%s", strings.Join(refusals, "; "))
	}
	return nil
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
