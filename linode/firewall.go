package linode

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/linode/linodego"
)

// Dropped returns the inbound ports of need ("22/tcp", "53/udp") that the
// Cloud Firewall a new Linode made with firewallID would sit behind drops
// from everywhere, and that firewall: firewallID, or, when it is 0, the
// account's default firewall for new Linodes (0 for none). A new server
// behind such a firewall could not be provisioned or reached, and the
// rollout would fail after creating it.
//
// It reads the rules as Linode applies them, the first that matches
// deciding and the inbound policy deciding the rest, and errs towards
// passing: a rule that accepts from some addresses may be the worker's, so
// it accepts; one that drops from some addresses only does not drop; a
// reference to a Rule Set may accept anything; a disabled firewall drops
// nothing; where it cannot tell which of the account's defaults a new
// Linode gets, a port is dropped only when both drop it. A lookup the
// token may not make (401, 403) proves nothing.
func (c *Cloud) Dropped(ctx context.Context, firewallID int, need []string) (int, []string, error) {
	candidates := []int{firewallID}
	if firewallID == 0 {
		var err error
		if candidates, err = c.defaultFirewalls(ctx); len(candidates) == 0 {
			return 0, nil, err
		}
	}
	dropped := need
	for _, id := range candidates {
		fw, err := c.client.GetFirewall(ctx, id)
		if proves, err := lookedUp(ctx, err, fmt.Sprintf("Cloud Firewall %d", id)); !proves {
			// A firewall that is not there is Missing's to report.
			return id, nil, err
		}
		if fw.Status != linodego.FirewallEnabled {
			return id, nil, nil
		}
		dropped = slices.DeleteFunc(slices.Clone(dropped), func(p string) bool { return accepts(&fw.Rules, p) })
	}
	if len(dropped) == 0 {
		return candidates[0], nil, nil
	}
	return candidates[0], dropped, nil
}

// defaultFirewalls are the firewalls Linode may put a new Linode behind
// when its create names none: none, when a new Linode may be behind no
// firewall. An account has one default for Linodes on legacy
// configuration profiles and one for those on Linode Interfaces;
// dnsroll's creates name neither, so the account's interfaces setting
// decides. A token that may not read the setting gets both defaults, or
// none when either is unset.
func (c *Cloud) defaultFirewalls(ctx context.Context) ([]int, error) {
	defaults, err := c.client.GetFirewallSettings(ctx)
	if proves, err := lookedUp(ctx, err, "the account's default firewalls"); !proves {
		return nil, err
	}
	legacy, interfaces := defaults.DefaultFirewallIDs.Linode, defaults.DefaultFirewallIDs.PublicInterface
	ids := func(of ...*int) []int {
		var out []int
		for _, id := range of {
			if id == nil || *id == 0 {
				return nil
			}
			if !slices.Contains(out, *id) {
				out = append(out, *id)
			}
		}
		return out
	}
	account, err := c.client.GetAccountSettings(ctx)
	readable, err := lookedUp(ctx, err, "the account's settings")
	switch {
	case err != nil:
		return nil, err
	case !readable:
		return ids(legacy, interfaces), nil
	case account.InterfacesForNewLinodes == linodego.LinodeDefaultButLegacyConfigAllowed, account.InterfacesForNewLinodes == linodego.LinodeOnly:
		return ids(interfaces), nil
	}
	return ids(legacy), nil
}

// lookedUp tells whether a lookup that ended in err proves anything, and
// returns the error to report when it failed for another reason than a
// token that may not make it (401, 403) or a thing not there (404).
func lookedUp(ctx context.Context, err error, what string) (bool, error) {
	switch httpStatus(err) {
	case http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound:
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("linode: reading %s: %w", what, mapErr(ctx, err))
	}
	return true, nil
}

// accepts tells whether rules let in port ("53/udp") from somewhere.
func accepts(rules *linodego.FirewallRuleSet, port string) bool {
	number, proto, _ := strings.Cut(port, "/")
	n, err := strconv.Atoi(number)
	if err != nil {
		return true
	}
	for _, r := range rules.Inbound {
		if r.RuleSet != 0 {
			return true // a Rule Set's rules are not read: it may accept
		}
		if !strings.EqualFold(string(r.Protocol), proto) || !coversPort(r.Ports, n) {
			continue
		}
		if strings.EqualFold(r.Action, "ACCEPT") {
			return true
		}
		if fromEverywhere(r.Addresses) {
			return false
		}
	}
	return !strings.EqualFold(rules.InboundPolicy, "DROP")
}

// coversPort tells whether ports ("22", "53,80", "1-1024"; empty is all)
// includes n.
func coversPort(ports string, n int) bool {
	if strings.TrimSpace(ports) == "" {
		return true
	}
	for _, part := range strings.Split(ports, ",") {
		lo, hi, isRange := strings.Cut(strings.TrimSpace(part), "-")
		if !isRange {
			hi = lo
		}
		from, err1 := strconv.Atoi(strings.TrimSpace(lo))
		to, err2 := strconv.Atoi(strings.TrimSpace(hi))
		if err1 == nil && err2 == nil && from <= n && n <= to {
			return true
		}
	}
	return false
}

// fromEverywhere tells whether a rule's addresses are all of IPv4.
func fromEverywhere(a linodego.NetworkAddresses) bool {
	if a.IPv4 == nil {
		return false
	}
	for _, cidr := range *a.IPv4 {
		if cidr == "0.0.0.0/0" {
			return true
		}
	}
	return false
}
