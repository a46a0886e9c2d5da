package linodesim

import (
	"cmp"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// What Linode sells: the IDs a create request may name. The lists are
// Linode's public regions and public images as of 2026, and its plans are
// typeSpecs; a name outside them is refused as the real API refuses it,
// with a 400 naming the field, and looked up alone it is a 404.
var (
	regions = []string{
		"ap-northeast", "ap-south", "ap-southeast", "ap-west", "au-mel", "br-gru", "ca-central", "de-fra-2",
		"es-mad", "eu-central", "eu-west", "fr-par", "gb-lon", "id-cgk", "in-bom-2", "in-maa", "it-mil",
		"jp-osa", "jp-tyo-3", "nl-ams", "se-sto", "sg-sin-2", "us-central", "us-east", "us-iad", "us-lax",
		"us-mia", "us-ord", "us-sea", "us-southeast", "us-west",
	}
	images = []string{
		"linode/almalinux9", "linode/alpine3.20", "linode/arch", "linode/centos-stream9", "linode/debian11",
		"linode/debian12", "linode/debian13", "linode/fedora40", "linode/opensuse15.6", "linode/rocky9",
		"linode/ubuntu22.04", "linode/ubuntu24.04",
	}
)

// hasImage reports an image the account can deploy: a public one, or one
// of Options.Images.
func (s *Sim) hasImage(id string) bool {
	return slices.Contains(images, id) || slices.Contains(s.opts.Images, id)
}

// cloudInit reports an image with the "cloud-init" capability, which
// Linode requires of an image a create gives user data: every public
// one here, and a private one unless in Options.NoCloudInit.
func (s *Sim) cloudInit(id string) bool {
	return s.hasImage(id) && !slices.Contains(s.opts.NoCloudInit, id)
}

// hasType reports a plan Linode sells.
func hasType(id string) bool {
	_, ok := typeSpecs[id]
	return ok
}

// getRegion, getType, getImage and getFirewall answer a lookup by ID with
// the fields a client checks, or a 404 as Linode does for an unknown ID.
func (s *Sim) getRegion(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !slices.Contains(regions, id) {
		notFound(w)
		return
	}
	caps := []string{"Linodes", "Cloud Firewall", "Block Storage", "NodeBalancers"}
	if !slices.Contains(s.opts.NoMetadata, id) {
		caps = append(caps, "Metadata")
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"id": id, "label": id, "status": "ok", "site_type": "core", "capabilities": caps,
	})
}

// getRegionAvailability lists the plans of Options.SoldOut for the region
// as unavailable; Linode lists select plans there, and one it does not
// list is available.
func (s *Sim) getRegionAvailability(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !slices.Contains(regions, id) {
		notFound(w)
		return
	}
	out := []map[string]any{}
	for _, plan := range s.opts.SoldOut[id] {
		out = append(out, map[string]any{"region": id, "plan": plan, "available": false})
	}
	writeJSON(w, http.StatusOK, out)
}

// linodeServices are what Linode's account availability names in a
// region; "Linodes" is the one dnsroll needs.
var linodeServices = []string{"Linodes", "NodeBalancers", "Block Storage", "Kubernetes"}

// getAccountAvailability says which services this account may use in the
// region: none in Options.ClosedRegions, all elsewhere.
func (s *Sim) getAccountAvailability(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !slices.Contains(regions, id) {
		notFound(w)
		return
	}
	available, unavailable := linodeServices, []string{}
	if slices.Contains(s.opts.ClosedRegions, id) {
		available, unavailable = []string{}, linodeServices
	}
	writeJSON(w, http.StatusOK, map[string]any{"region": id, "available": available, "unavailable": unavailable})
}

func (s *Sim) getType(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	sp, ok := typeSpecs[id]
	if !ok {
		notFound(w)
		return
	}
	class := "standard"
	switch {
	case id == "g6-nanode-1":
		class = "nanode"
	case strings.Contains(id, "dedicated"):
		class = "dedicated"
	case strings.Contains(id, "highmem"):
		class = "highmem"
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"id": id, "label": id, "class": class, "disk": sp.Disk, "memory": sp.Memory, "vcpus": sp.VCPUs, "transfer": sp.Transfer,
	})
}

// getImage serves /v4/images/linode/debian12 and, as linodego sends it,
// /v4/images/linode%2Fdebian12.
func (s *Sim) getImage(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !s.hasImage(id) {
		notFound(w)
		return
	}
	vendor, public := "", strings.HasPrefix(id, "linode/")
	if public {
		vendor = "Linode"
	}
	caps := []string{}
	if s.cloudInit(id) {
		caps = append(caps, "cloud-init")
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"id": id, "label": id, "vendor": vendor, "is_public": public, "status": "available", "type": "manual",
		"deprecated": false, "capabilities": caps,
	})
}

// Firewall is a Cloud Firewall's inbound side, as Linode serves it.
type Firewall struct {
	// Disabled firewalls filter nothing.
	Disabled bool
	// InboundPolicy is ACCEPT or DROP: what becomes of inbound traffic
	// that no rule matches. Empty is ACCEPT.
	InboundPolicy string
	// Inbound are the rules, the first that matches deciding.
	Inbound []FirewallRule
}

// FirewallRule is one inbound rule, or a reference to a Rule Set.
type FirewallRule struct {
	Action   string // ACCEPT or DROP
	Protocol string // TCP, UDP or ICMP
	// Ports is a port, a list, or a range ("22", "53,80", "1-1024");
	// empty is every port.
	Ports string
	// IPv4 are the source addresses; empty is 0.0.0.0/0.
	IPv4 []string
	// RuleSet, when set, makes the rule a reference to that Rule Set
	// alone, with no other field.
	RuleSet int
}

// hasFirewall reports a firewall of the account.
func (s *Sim) hasFirewall(id int) bool {
	_, ruled := s.opts.FirewallRules[id]
	return ruled || slices.Contains(s.opts.Firewalls, id)
}

func (s *Sim) getFirewall(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.Atoi(r.PathValue("id"))
	if err != nil || !s.hasFirewall(id) {
		notFound(w)
		return
	}
	status := "enabled"
	if s.opts.FirewallRules[id].Disabled {
		status = "disabled"
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": id, "label": "firewall" + strconv.Itoa(id), "status": status, "rules": s.firewallRules(id)})
}

// getFirewallRules serves a firewall's rules.
func (s *Sim) getFirewallRules(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.Atoi(r.PathValue("id"))
	if err != nil || !s.hasFirewall(id) {
		notFound(w)
		return
	}
	writeJSON(w, http.StatusOK, s.firewallRules(id))
}

// firewallRules are firewall id's rules as Linode serves them: one of
// Firewalls accepts everything.
func (s *Sim) firewallRules(id int) map[string]any {
	fw := s.opts.FirewallRules[id]
	inbound := []map[string]any{}
	for i, rule := range fw.Inbound {
		if rule.RuleSet != 0 {
			inbound = append(inbound, map[string]any{"ruleset": rule.RuleSet})
			continue
		}
		ipv4 := rule.IPv4
		if len(ipv4) == 0 {
			ipv4 = []string{"0.0.0.0/0"}
		}
		inbound = append(inbound, map[string]any{"action": rule.Action, "label": "rule" + strconv.Itoa(i), "protocol": rule.Protocol,
			"ports": rule.Ports, "addresses": map[string]any{"ipv4": ipv4}})
	}
	return map[string]any{"inbound": inbound, "inbound_policy": cmp.Or(fw.InboundPolicy, "ACCEPT"),
		"outbound": []any{}, "outbound_policy": "ACCEPT", "version": 1}
}

// defaultFirewall is the firewall a create that names none is put
// behind, by the account's interfaces setting.
func (s *Sim) defaultFirewall() int {
	switch s.opts.InterfacesForNewLinodes {
	case "linode_default_but_legacy_config_allowed", "linode_only":
		return s.opts.DefaultInterfaceFirewall
	}
	return s.opts.DefaultFirewall
}

// getAccountSettings serves the account setting that says which
// interfaces, and so which default firewall, a new Linode gets.
func (s *Sim) getAccountSettings(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"backups_enabled": false, "managed": false, "network_helper": true,
		"interfaces_for_new_linodes": cmp.Or(s.opts.InterfacesForNewLinodes, "legacy_config_only")})
}

// getFirewallSettings serves the account's default firewalls: for new
// Linodes on legacy configuration profiles and on Linode Interfaces.
func (s *Sim) getFirewallSettings(w http.ResponseWriter, _ *http.Request) {
	orNull := func(id int) any {
		if id == 0 {
			return nil
		}
		return id
	}
	writeJSON(w, http.StatusOK, map[string]any{"default_firewall_ids": map[string]any{
		"linode": orNull(s.opts.DefaultFirewall), "nodebalancer": nil, "public_interface": orNull(s.opts.DefaultInterfaceFirewall), "vpc_interface": nil}})
}

// validateOffer refuses a create request that names a region, plan, image
// or firewall the account cannot have, a plan sold out in its region, or
// user data for a region or image that cannot take it.
func (s *Sim) validateOffer(req *createRequest) *badRequest {
	switch {
	case !slices.Contains(regions, req.Region):
		return &badRequest{"region is not valid", "region"}
	case slices.Contains(s.opts.ClosedRegions, req.Region):
		return &badRequest{"this account cannot create Linodes in region " + req.Region, "region"}
	case !hasType(req.Type):
		return &badRequest{"A valid plan type by that ID was not found", "type"}
	case slices.Contains(s.opts.SoldOut[req.Region], req.Type):
		return &badRequest{"plan " + req.Type + " is not available in region " + req.Region, "type"}
	case req.Image != "" && !s.hasImage(req.Image):
		return &badRequest{"image is not valid", "image"}
	case req.FirewallID != 0 && !s.hasFirewall(req.FirewallID):
		return &badRequest{"firewall_id is not valid", "firewall_id"}
	case req.Metadata.UserData != "" && slices.Contains(s.opts.NoMetadata, req.Region):
		return &badRequest{"Region " + req.Region + " does not support the Metadata service, so user_data cannot be given", "region"}
	case req.Metadata.UserData != "" && !s.cloudInit(req.Image):
		return &badRequest{"Image " + cmp.Or(req.Image, "(none)") + " does not support cloud-init, so user_data cannot be given", "image"}
	}
	return nil
}

func notFound(w http.ResponseWriter) { writeErr(w, http.StatusNotFound, "Not found", "") }
