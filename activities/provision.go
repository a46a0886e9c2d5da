package activities

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/provision"
)

// ProvisionNameservers runs the nameserver playbook on the green servers.
// The playbook is idempotent, so a retry after a crash simply runs it again.
func (a *Activities) ProvisionNameservers(ctx context.Context, in ProvisionInput) (ProvisionResult, error) {
	// Heartbeat on a clock from the start, not per task: hashing and
	// packing a large fleet's zones, or one task (apt on a new VM), can
	// outlast the heartbeat timeout while the worker is perfectly alive.
	var progress atomic.Value
	progress.Store("preparing the zones")
	stop := heartbeatEvery(ctx, 2*time.Second, progress.Load)
	defer stop()
	f, err := a.stepFleet(in.StepFleet)
	if err != nil {
		return ProvisionResult{}, failure(ctx, err)
	}
	zones, err := a.plannedZones(f, in.Revision, in.Bundle, in.Zones)
	if err != nil {
		return ProvisionResult{}, failure(ctx, err)
	}
	planned, playbook, err := a.materialise(f, in.Bundle, zones)
	if err != nil {
		return ProvisionResult{}, failure(ctx, err)
	}
	place := a.Place.Place(f)
	req := provision.Request{
		Playbook:   playbook,
		Connection: f.Ansible.Connection,
		User:       f.Ansible.NameserverUser(),
	}
	for _, s := range in.Servers {
		// The server ID is the NSID the server answers with, which tells
		// blue from green through a load balancer (see confirmServing).
		vars := map[string]any{"dnsroll_dns_port": s.DNSPort, "dnsroll_server_id": ServerID(s)}
		if dir := place.VMDir(s.ID); dir != "" {
			vars["dnsroll_lab_dir"] = dir
		}
		req.Hosts = append(req.Hosts, provision.Host{Name: s.Label, Address: s.IPv4, Vars: vars})
	}
	// The zone list and the archive the role packs go in a scratch
	// directory of the worker's store, which a later prune removes if this
	// worker is killed before it does.
	scratch, removeScratch, err := a.Bundles.Scratch()
	if err != nil {
		return ProvisionResult{}, failure(ctx, err)
	}
	defer removeScratch()
	list, err := writeZoneList(scratch, planned)
	if err != nil {
		return ProvisionResult{}, failure(ctx, err)
	}
	req.ExtraVars = map[string]any{"dnsroll_zones_file": list, "dnsroll_scratch_dir": scratch}

	progress.Store("ansible: starting")
	if f.Ansible.Connection == "ssh" {
		for _, s := range in.Servers {
			if err := a.meetNewServer(ctx, f.Name, s, func(msg string) { progress.Store(msg) }); err != nil {
				stop()
				return ProvisionResult{}, failure(ctx, err)
			}
		}
	}
	res, err := a.Ansible.Run(ctx, req, func(msg string) {
		progress.Store(msg)
	})
	stop()
	if err != nil {
		return ProvisionResult{Ansible: res}, failure(ctx, rejected(res, err))
	}
	return ProvisionResult{Ansible: res, Attempt: attempt(ctx)}, nil
}

// meetNewServer is the first contact with server s of fleet, which this
// run created: it waits until s's sshd answers, since the API says running
// well before, and records s's host key for its instance, replacing an
// earlier machine's at a reused address; Ansible's connections, and the
// flips', are checked against it. show reports each wait.
func (a *Activities) meetNewServer(ctx context.Context, fleet string, s dnsroll.Server, show func(string)) error {
	show("waiting for SSH on " + s.Label + " (" + s.IPv4 + ")")
	port := a.SSHPort
	if port == 0 {
		port = 22
	}
	if err := provision.WaitSSH(ctx, net.JoinHostPort(s.IPv4, strconv.Itoa(port))); err != nil {
		return fmt.Errorf("%s: %w", s.Label, err)
	}
	if a.HostKeys == nil {
		return nil
	}
	trust := a.HostKeys.TrustNew
	if s.UserData {
		trust = a.HostKeys.TrustGiven
	}
	show("recording the SSH host key of " + s.Label)
	if err := trust(ctx, fleet, s.Label, s.IPv4, ServerID(s)); err != nil {
		return fmt.Errorf("%s: %w", s.Label, err)
	}
	return nil
}

// rejected turns a playbook failure in which BIND refused a zone file or
// named.conf (the role validates the zone set with named-checkconf -z, and
// named.conf with named-checkconf, before installing them) into invalid
// input: the same files would be refused on every retry, so the step
// fails at once.
// Anything else (an unreachable host, a package that failed) may pass on
// retry and is returned as it is.
func rejected(res provision.Result, err error) error {
	for _, f := range res.Failures {
		if strings.Contains(f.Message, "failed to validate") {
			return dnsroll.Errorf(dnsroll.EINVALID, "BIND rejected the configuration on %s (%s): %s; fix the zone file and start the rollout again", f.Host, f.Task, f.Message)
		}
	}
	return err
}

// ServerID is the NSID (BIND's server-id) that the nameserver role gives
// server: its instance ID, which, unlike its label, survives the rename
// and differs between blue and green.
func ServerID(s dnsroll.Server) string { return fmt.Sprintf("linode-%d", s.ID) }

// writeZoneList writes the role's zone list ({name, src} per zone) into
// dir for dnsroll_zones_file: passed as a variable, Ansible would carry
// 100,000 zones into every task of the play, about a second each. The
// role takes names without the final dot, which the fleet file may write.
func writeZoneList(dir string, zones []ZoneFile) (string, error) {
	deploy := make([]map[string]string, 0, len(zones))
	for _, z := range zones {
		deploy = append(deploy, map[string]string{"name": strings.TrimSuffix(z.Name, "."), "src": z.Path})
	}
	b, err := json.Marshal(deploy)
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "zones.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return "", fmt.Errorf("writing the zone list for Ansible: %w", err)
	}
	return path, nil
}
