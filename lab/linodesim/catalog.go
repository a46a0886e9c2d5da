package linodesim

import (
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
	writeJSON(w, http.StatusOK, map[string]any{
		"id": id, "label": id, "status": "ok", "site_type": "core",
		"capabilities": []string{"Linodes", "Cloud Firewall", "Block Storage", "NodeBalancers"},
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
	writeJSON(w, http.StatusOK, map[string]any{
		"id": id, "label": id, "vendor": vendor, "is_public": public, "status": "available", "type": "manual",
		"deprecated": false,
	})
}

func (s *Sim) getFirewall(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.Atoi(r.PathValue("id"))
	if err != nil || !slices.Contains(s.opts.Firewalls, id) {
		notFound(w)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": id, "label": "firewall" + strconv.Itoa(id), "status": "enabled"})
}

// validateOffer refuses a create request that names a region, plan, image
// or firewall the account cannot have, or a plan sold out in its region.
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
	case req.FirewallID != 0 && !slices.Contains(s.opts.Firewalls, req.FirewallID):
		return &badRequest{"firewall_id is not valid", "firewall_id"}
	}
	return nil
}

func notFound(w http.ResponseWriter) { writeErr(w, http.StatusNotFound, "Not found", "") }
