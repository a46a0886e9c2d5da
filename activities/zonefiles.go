package activities

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/bundle"
	"github.com/dnsroll/dnsroll/config"
	"github.com/dnsroll/dnsroll/preflight"
)

// plannedZones are the zone files of the planned revision for a step whose
// input does not carry them (rollouts planned with small histories): the
// zones Plan recorded in this worker's store, or, on a worker that has no
// record of the bundle, the zones this worker's copy of the fleet config
// lists for revision, once their bytes and the playbook's are found to be
// the planned bundle (sameRevision), so that a worker whose config or
// files differ refuses rather than deploy another revision. given, when
// set, are used as they are.
func (a *Activities) plannedZones(f *config.Fleet, revision, planned string, given []ZoneFile) ([]ZoneFile, error) {
	if len(given) > 0 || planned == "" {
		return given, nil
	}
	if m, ok, err := a.Bundles.Load(planned); err == nil && ok && len(m.Zones) > 0 {
		// Each zone's hash, so that a worker whose snapshot is gone
		// names a missing or changed zone file (sameRevision).
		sums := make(map[string]string, len(m.Files))
		for _, file := range m.Files {
			sums[file.Name] = file.SHA256
		}
		// The manifest's zone paths are those of the worker that made
		// it, named relative to its directory (Base).
		base := cmp.Or(m.Base, f.Dir)
		zones := make([]ZoneFile, len(m.Zones))
		for i, z := range m.Zones {
			name := bundle.Name(base, z.Path)
			zones[i] = ZoneFile{Name: z.Name, Path: z.Path, Serial: z.Serial, SHA256: sums[name], bundled: name}
		}
		return zones, nil
	}
	fleet, err := a.Fleets(f.Name)
	if err != nil {
		return nil, err
	}
	listed := make([]ZoneFile, len(fleet.Zones))
	for i, z := range fleet.Zones {
		listed[i] = ZoneFile{Name: z.Name, Path: fleet.ZoneFile(z, revision)}
	}
	if err := sameRevision(a.Bundles, fleet, planned, listed); err != nil {
		return nil, err
	}
	found, err := preflight.Zones(fleet, revision)
	if err != nil {
		return nil, err
	}
	return zoneFiles(found), nil
}

// serialsOf is the SOA serial each zone must have.
func serialsOf(zones []ZoneFile) map[string]uint32 {
	serials := make(map[string]uint32, len(zones))
	for _, z := range zones {
		serials[z.Name] = z.Serial
	}
	return serials
}

// zoneFiles are the zones preflight checked, as steps read them.
func zoneFiles(found []preflight.Zone) []ZoneFile {
	zones := make([]ZoneFile, len(found))
	for i, z := range found {
		zones[i] = ZoneFile{Name: z.Name, Path: z.Path, Serial: z.Serial, SHA256: z.SHA256}
	}
	return zones
}

// revisionPaths are the files of the bundle this worker would deploy: the
// zone files at the planned paths and the nameserver playbook's Ansible
// files.
func revisionPaths(f *config.Fleet, zones []ZoneFile) ([]string, error) {
	paths := make([]string, 0, len(zones))
	for _, z := range zones {
		paths = append(paths, z.Path)
	}
	ansible, err := bundle.AnsibleFiles(f.Path(f.Ansible.NameserverPlaybook))
	return append(paths, ansible...), err
}

// revisionHere hashes the bundle this worker would deploy.
func revisionHere(f *config.Fleet, zones []ZoneFile) (bundle.Manifest, error) {
	paths, err := revisionPaths(f, zones)
	if err != nil {
		return bundle.Manifest{}, err
	}
	return bundle.Read(f.Dir, paths)
}

// materialise returns the zone files and the playbook a step uses for the
// planned revision: those of this worker's snapshot of the bundle, taken
// by Plan, when it has it intact, so that an edit since the plan does
// not matter. Without it (another worker's step, or Prune took it from a
// rollout paused at its gate) the fleet's own files are checked by
// sameRevision, then snapshotted as Plan does, and the step uses the
// copy: a file edited after the check (a checkout updated mid-step)
// would otherwise reach green. A store with no Dir, or one it cannot
// write (bundle.ErrStore), leaves the step the checked files.
func (a *Activities) materialise(f *config.Fleet, planned string, zones []ZoneFile) ([]ZoneFile, string, error) {
	if in, playbook, ok := a.snapshotted(f, planned, zones); ok {
		return in, playbook, nil
	}
	// This worker's files: a zone the manifest named inside the planning
	// worker's directory is at that name in this worker's.
	own := make([]ZoneFile, len(zones))
	for i, z := range zones {
		if z.bundled != "" && !filepath.IsAbs(filepath.FromSlash(z.bundled)) && f.Dir != "" {
			z.Path = filepath.Join(f.Dir, filepath.FromSlash(z.bundled))
		}
		own[i] = z
	}
	if err := sameRevision(a.Bundles, f, planned, own); err != nil {
		return nil, "", err
	}
	if planned == "" || a.Bundles.Dir == "" {
		return own, f.Path(f.Ansible.NameserverPlaybook), nil
	}
	paths, err := revisionPaths(f, own)
	if err != nil {
		return nil, "", err
	}
	m, err := a.Bundles.Snapshot(f.Dir, paths, bundleZones(own))
	if final := unreadable(err); final != nil {
		return nil, "", final
	}
	switch {
	case errors.Is(err, bundle.ErrStore):
		// A store it cannot write (full, read-only) leaves the step the
		// checked files themselves, as before there were snapshots.
		if a.Bundles.Log != nil {
			a.Bundles.Log.Warn("bundle store: step uses the fleet's own files", "bundle", planned, "error", err)
		}
		return own, f.Path(f.Ansible.NameserverPlaybook), nil
	case err != nil:
		// A file went missing, or could not be read, while copied: the
		// fleet's own files are no fallback then; another attempt checks
		// again.
	case m.Hash != planned:
		// Changed since the check: refused as sameRevision refuses, or,
		// if changed back meanwhile, tried again.
		if err := sameRevision(a.Bundles, f, planned, own); err != nil {
			return nil, "", err
		}
		err = errors.New("they changed while copied")
	default:
		if in, playbook, ok := a.snapshotted(f, planned, zones); ok {
			return in, playbook, nil
		}
		err = errors.New("the snapshot was gone once made")
	}
	host, _ := os.Hostname()
	return nil, "", fmt.Errorf("worker %s: copying the revision's files into its bundle store: %w; another attempt checks them again", host, err)
}

// snapshotted is materialise from this worker's intact snapshot of
// planned, if it has one.
func (a *Activities) snapshotted(f *config.Fleet, planned string, zones []ZoneFile) ([]ZoneFile, string, bool) {
	root, m, ok := a.Bundles.OpenManifest(planned)
	if !ok || planned == "" {
		return nil, "", false
	}
	in := make([]ZoneFile, len(zones))
	for i, z := range zones {
		z.Path = bundle.In(root, bundledName(f, z))
		in[i] = z
	}
	// The snapshot names the playbook as the directory of the worker
	// that made it had it, which may not be f's (a worker on the same
	// host with another --fleets).
	at := *f
	at.Dir = cmp.Or(m.Base, f.Dir)
	return in, bundle.In(root, bundle.Name(at.Dir, at.Path(f.Ansible.NameserverPlaybook))), true
}

// bundledName is zone z's file's name in the bundle of f's rollout.
func bundledName(f *config.Fleet, z ZoneFile) string {
	if z.bundled != "" {
		return z.bundled
	}
	return bundle.Name(f.Dir, z.Path)
}

// sameRevision checks that this worker holds, byte for byte, the bundle
// Plan hashed (planned; empty in rollouts planned before bundles, which
// check the zone files' own hashes). A file missing here fails the step
// with an error a retry may fix: another worker may take the step, or the
// files may arrive. Other bytes are another revision, which no retry
// makes right: the step fails for good, before anything reads them, so
// green never gets or is checked against a mix of two revisions.
func sameRevision(store bundle.Store, f *config.Fleet, planned string, zones []ZoneFile) error {
	host, _ := os.Hostname()
	var changed []string
	for _, z := range zones {
		if z.SHA256 == "" {
			continue // planned before hashes were recorded
		}
		sum, err := bundle.FileSHA256(z.Path)
		if final := unreadable(err); final != nil {
			return fmt.Errorf("zone %s: %w", z.Name, final)
		}
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return fmt.Errorf("zone %s: %s is not on worker %s; every worker needs the zone files of the revision (docs/analysis.md: zone files), and another worker may take this step", z.Name, z.Path, host)
		case err != nil:
			return fmt.Errorf("zone %s: worker %s cannot read %s: %v", z.Name, host, z.Path, err)
		case sum != z.SHA256:
			changed = append(changed, z.Path+" changed")
		}
	}
	found := "other files"
	if planned != "" {
		m, err := revisionHere(f, zones)
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("worker %s lacks a file of the revision's bundle (%v); every worker needs the fleet's zone files and Ansible tree, and another worker may take this step", host, err)
		}
		if final := unreadable(err); final != nil {
			return final
		}
		if err != nil {
			return fmt.Errorf("worker %s cannot read the revision's bundle: %w", host, err)
		}
		if m.Hash == planned {
			return nil
		}
		found = bundle.Short(m.Hash)
		if was, ok, _ := store.Load(planned); ok {
			changed = bundle.Changed(was, m)
		} else if len(changed) == 0 {
			changed = []string{"worker " + host + " has no list of the planned files to name them"}
		}
	} else if len(changed) == 0 {
		return nil
	}
	return dnsroll.Errorf(dnsroll.ECONFLICT, "revision changed since the plan: planned %s, found %s on worker %s (%s); re-run the rollout to deploy the new revision",
		orOld(bundle.Short(planned)), found, host, strings.Join(changed, ", "))
}

// unreadable is err, when it is an error reading a fleet file that no
// retry fixes, as a final error (EINVALID) naming the file and the fix:
// one the worker's user may not read, or a directory where the revision
// has a file. Otherwise it is nil: a file gone mid-edit may be back, an
// I/O error may pass, and the store's own errors (bundle.ErrStore) are
// materialise's to work around.
func unreadable(err error) error {
	var pe *fs.PathError
	if err == nil || errors.Is(err, bundle.ErrStore) || !errors.As(err, &pe) {
		return nil
	}
	host, _ := os.Hostname()
	switch {
	case errors.Is(err, fs.ErrPermission):
		who := strconv.Itoa(os.Getuid())
		if u, err := user.Current(); err == nil {
			who = u.Username
		}
		return dnsroll.Errorf(dnsroll.EINVALID, "worker %s cannot read %s (%v): make it readable by the worker's user, %s, as every file of the revision must be", host, pe.Path, pe.Err, who)
	case errors.Is(err, syscall.EISDIR):
		return dnsroll.Errorf(dnsroll.EINVALID, "%s is a directory on worker %s, where the revision has a file: put the revision's file there", pe.Path, host)
	}
	return nil
}

// orOld names the planned bundle of a rollout planned before bundles.
func orOld(hash string) string {
	if hash == "" {
		return "the zone files' hashes"
	}
	return hash
}
