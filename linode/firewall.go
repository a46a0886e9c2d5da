package linode

import (
	"context"
	"fmt"
	"net/http"
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
// it accepts, and one that drops from some addresses only does not drop. A
// lookup the token may not make (401, 403) proves nothing.
func (c *Cloud) Dropped(ctx context.Context, firewallID int, need []string) (int, []string, error) {
	if firewallID == 0 {
		settings, err := c.client.GetFirewallSettings(ctx)
		switch httpStatus(err) {
		case http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound:
			return 0, nil, nil
		}
		if err != nil {
			return 0, nil, fmt.Errorf("linode: reading the account's default firewall: %w", mapErr(ctx, err))
		}
		if settings.DefaultFirewallIDs.Linode == nil || *settings.DefaultFirewallIDs.Linode == 0 {
			return 0, nil, nil
		}
		firewallID = *settings.DefaultFirewallIDs.Linode
	}
	rules, err := c.client.GetFirewallRules(ctx, firewallID)
	switch httpStatus(err) {
	case http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound:
		// A firewall that is not there is Missing's to report.
		return firewallID, nil, nil
	}
	if err != nil {
		return firewallID, nil, fmt.Errorf("linode: reading the rules of Cloud Firewall %d: %w", firewallID, mapErr(ctx, err))
	}
	var dropped []string
	for _, p := range need {
		if !accepts(rules, p) {
			dropped = append(dropped, p)
		}
	}
	return firewallID, dropped, nil
}

// accepts tells whether rules let in port ("53/udp") from somewhere.
func accepts(rules *linodego.FirewallRuleSet, port string) bool {
	number, proto, _ := strings.Cut(port, "/")
	n, err := strconv.Atoi(number)
	if err != nil {
		return true
	}
	for _, r := range rules.Inbound {
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
