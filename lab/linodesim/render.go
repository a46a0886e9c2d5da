package linodesim

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// apiInstance is an instance as Linode's API renders it, field for field,
// so clients that decode more than dnsroll uses still work.
type apiInstance struct {
	ID                  int            `json:"id"`
	Label               string         `json:"label"`
	Group               string         `json:"group"`
	Status              string         `json:"status"`
	Created             string         `json:"created"`
	Updated             string         `json:"updated"`
	Type                string         `json:"type"`
	IPv4                []string       `json:"ipv4"`
	IPv6                string         `json:"ipv6"`
	Image               *string        `json:"image"`
	Region              string         `json:"region"`
	SiteType            string         `json:"site_type"`
	Specs               specs          `json:"specs"`
	Alerts              map[string]int `json:"alerts"`
	Backups             map[string]any `json:"backups"`
	Hypervisor          string         `json:"hypervisor"`
	WatchdogEnabled     bool           `json:"watchdog_enabled"`
	Tags                []string       `json:"tags"`
	HostUUID            string         `json:"host_uuid"`
	HasUserData         bool           `json:"has_user_data"`
	PlacementGroup      any            `json:"placement_group"`
	DiskEncryption      string         `json:"disk_encryption"`
	LKEClusterID        any            `json:"lke_cluster_id"`
	Capabilities        []string       `json:"capabilities"`
	InterfaceGeneration string         `json:"interface_generation"`
	MaintenancePolicy   string         `json:"maintenance_policy"`
}

type specs struct {
	Disk               int `json:"disk"`
	Memory             int `json:"memory"`
	VCPUs              int `json:"vcpus"`
	GPUs               int `json:"gpus"`
	Transfer           int `json:"transfer"`
	AcceleratedDevices int `json:"accelerated_devices"`
}

// typeSpecs are the plans Linode sells, with their sizes: the type
// catalog, and what an instance of each type shows.
var typeSpecs = map[string]specs{
	"g6-nanode-1":     {Disk: 25600, Memory: 1024, VCPUs: 1, Transfer: 1000},
	"g6-standard-1":   {Disk: 51200, Memory: 2048, VCPUs: 1, Transfer: 2000},
	"g6-standard-2":   {Disk: 81920, Memory: 4096, VCPUs: 2, Transfer: 4000},
	"g6-standard-4":   {Disk: 163840, Memory: 8192, VCPUs: 4, Transfer: 5000},
	"g6-standard-6":   {Disk: 327680, Memory: 16384, VCPUs: 6, Transfer: 8000},
	"g6-standard-8":   {Disk: 655360, Memory: 32768, VCPUs: 8, Transfer: 16000},
	"g6-standard-16":  {Disk: 1310720, Memory: 65536, VCPUs: 16, Transfer: 20000},
	"g6-standard-20":  {Disk: 1638400, Memory: 98304, VCPUs: 20, Transfer: 20000},
	"g6-standard-24":  {Disk: 1966080, Memory: 131072, VCPUs: 24, Transfer: 20000},
	"g6-standard-32":  {Disk: 2621440, Memory: 196608, VCPUs: 32, Transfer: 20000},
	"g6-dedicated-2":  {Disk: 81920, Memory: 4096, VCPUs: 2, Transfer: 4000},
	"g6-dedicated-4":  {Disk: 163840, Memory: 8192, VCPUs: 4, Transfer: 5000},
	"g6-dedicated-8":  {Disk: 327680, Memory: 16384, VCPUs: 8, Transfer: 6000},
	"g6-dedicated-16": {Disk: 655360, Memory: 32768, VCPUs: 16, Transfer: 7000},
	"g6-dedicated-32": {Disk: 1310720, Memory: 65536, VCPUs: 32, Transfer: 8000},
	"g6-dedicated-48": {Disk: 1966080, Memory: 98304, VCPUs: 48, Transfer: 9000},
	"g6-dedicated-50": {Disk: 2560000, Memory: 131072, VCPUs: 50, Transfer: 10000},
	"g6-dedicated-56": {Disk: 5120000, Memory: 262144, VCPUs: 56, Transfer: 11000},
	"g6-dedicated-64": {Disk: 7372800, Memory: 524288, VCPUs: 64, Transfer: 12000},
	"g7-highmem-1":    {Disk: 20480, Memory: 24576, VCPUs: 2, Transfer: 5000},
	"g7-highmem-2":    {Disk: 40960, Memory: 49152, VCPUs: 2, Transfer: 6000},
	"g7-highmem-4":    {Disk: 81920, Memory: 98304, VCPUs: 4, Transfer: 7000},
	"g7-highmem-8":    {Disk: 163840, Memory: 196608, VCPUs: 8, Transfer: 8000},
	"g7-highmem-16":   {Disk: 327680, Memory: 307200, VCPUs: 16, Transfer: 9000},
}

func render(in Instance) apiInstance {
	sp := typeSpecs[in.Type]
	var image *string
	if in.Image != "" {
		image = &in.Image
	}
	tags := in.Tags
	if tags == nil {
		tags = []string{}
	}
	return apiInstance{
		ID: in.ID, Label: in.Label, Status: in.Status,
		Created: in.Created.UTC().Format(timeLayout), Updated: in.Updated.UTC().Format(timeLayout),
		Type: in.Type, IPv4: in.IPv4, IPv6: ipv6(in.ID), Image: image, Region: in.Region,
		SiteType: "core", Specs: sp,
		Alerts: map[string]int{"cpu": 90 * sp.VCPUs, "io": 10000, "network_in": 10, "network_out": 10, "transfer_quota": 80},
		Backups: map[string]any{
			"enabled": false, "available": false, "last_successful": nil,
			"schedule": map[string]any{"day": nil, "window": nil},
		},
		Hypervisor: "kvm", WatchdogEnabled: true, Tags: tags, HasUserData: in.HasUserData,
		HostUUID:       fmt.Sprintf("00000000-0000-4000-8000-%012d", in.ID),
		DiskEncryption: "disabled", Capabilities: []string{},
		InterfaceGeneration: "legacy_config", MaintenancePolicy: "linode/migrate",
	}
}

func ipv6(id int) string { return fmt.Sprintf("2001:db8::%x/128", id) }

// ips answers GET /linode/instances/{id}/ips: every lab VM has the public
// address 127.0.0.1, and the lab tells them apart by port.
func (s *Sim) ips(w http.ResponseWriter, r *http.Request) {
	id, _ := strconv.Atoi(r.PathValue("id"))
	s.mu.Lock()
	rec, ok := s.insts[id]
	var in Instance
	if ok {
		in = s.snapshot(rec, s.now())
	}
	s.mu.Unlock()
	if !ok {
		writeErr(w, http.StatusNotFound, "Not found", "")
		return
	}
	public := []map[string]any{}
	for _, a := range in.IPv4 {
		public = append(public, map[string]any{
			"address": a, "gateway": nil, "subnet_mask": "255.0.0.0", "prefix": 8, "type": "ipv4",
			"public": true, "rdns": "", "linode_id": in.ID, "region": in.Region, "interface_id": nil,
			"vpc_nat_1_1": nil, "reserved": false,
		})
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"ipv4": map[string]any{
			"public": public, "private": []any{}, "shared": []any{}, "reserved": []any{}, "vpc": []any{},
		},
		"ipv6": map[string]any{
			"link_local": nil, "global": []any{}, "vpc": []any{},
			"slaac": map[string]any{
				"address": strings.TrimSuffix(ipv6(in.ID), "/128"), "prefix": 64, "type": "ipv6", "public": true,
				"rdns": nil, "linode_id": in.ID, "region": in.Region, "gateway": "fe80::1", "subnet_mask": "ffff:ffff:ffff:ffff::",
			},
		},
	})
}

// decode reads a JSON body, answering 400 itself when it is not valid JSON.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(v); err != nil {
		writeErr(w, http.StatusBadRequest, "Invalid JSON", "")
		return false
	}
	return true
}

// spelled gives each of tags the spelling the account already has for it
// (the oldest instance's): Linode's tags ignore letter case, and a tag is
// made once. Call with s.mu held.
func (s *Sim) spelled(tags []string) []string {
	out := make([]string, len(tags))
	for i, t := range tags {
		out[i] = t
	found:
		for _, id := range slices.Sorted(maps.Keys(s.insts)) {
			rec := s.insts[id]
			for _, have := range rec.Tags {
				if strings.EqualFold(have, t) {
					out[i] = have
					break found
				}
			}
		}
	}
	return out
}

func dedup(tags []string) []string {
	out := []string{}
	for _, t := range tags {
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out
}
