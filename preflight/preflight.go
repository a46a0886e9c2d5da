// Package preflight checks a fleet before anything is created, so that a
// mistake is refused before any VM exists, in the same words wherever it is
// made: `dnsroll fleet validate`, worker and API startup, POST /rollouts,
// and the rollout's Plan step all run these checks. The config's own rules
// (fields, Linode's label rule, unique load balancer addresses and SSH
// hosts, port ranges) run when it loads; this package adds the checks that
// need the revision, the zone files or the worker's setup. Checks that need
// the live servers (blue's SOA serials) run at Plan.
package preflight

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
	"gopkg.in/yaml.v3"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/bundle"
	"github.com/dnsroll/dnsroll/config"
	"github.com/dnsroll/dnsroll/internal/parallel"
	"github.com/dnsroll/dnsroll/zone"
)

// Zone is one zone file, checked for one revision.
type Zone struct {
	Name, Path string
	Serial     uint32
	// SHA256 is the file's content hash (hex): every worker that later
	// reads the file must read these very bytes.
	SHA256 string
	// Warnings are zone contents that BIND loads but answers wrongly (see
	// zone.Zone.Warnings).
	Warnings []string
}

// zoneRoot is the directory f keeps zc's files in, whatever the revision:
// its file pattern up to {revision}, or the file's own directory.
func zoneRoot(f *config.Fleet, zc config.Zone) string {
	pattern := f.Path(zc.File)
	if i := strings.Index(pattern, config.RevisionPlaceholder); i >= 0 {
		return filepath.Dir(pattern[:i] + "x")
	}
	return filepath.Dir(pattern)
}

// leavesRoot says whether path, its links followed, is outside both root
// and the directory that holds it: a revision's directory may be a link
// (to a release on another volume), but the file in it may not lead
// elsewhere.
func leavesRoot(path, root string) bool {
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return false // the read that follows says what is wrong
	}
	if abs, err := filepath.Abs(real); err == nil {
		real = abs
	}
	for _, dir := range []string{root, filepath.Dir(path)} {
		if r, err := filepath.EvalSymlinks(dir); err == nil {
			dir = r
		}
		if abs, err := filepath.Abs(dir); err == nil {
			dir = abs
		}
		if rel, err := filepath.Rel(dir, real); err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			return false
		}
	}
	return true
}

// Zones checks the revision and that every zone file of f exists and
// parses for it. Errors have code dnsroll.EINVALID and name the field and
// the file:line.
func Zones(f *config.Fleet, revision string) ([]Zone, error) {
	if err := f.ValidateRevision(revision); err != nil {
		return nil, dnsroll.Errorf(dnsroll.EINVALID, "%v", err)
	}
	paths := make([]string, len(f.Zones))
	for i, zc := range f.Zones {
		path := f.ZoneFile(zc, revision)
		of := ""
		if revision != "" {
			of = fmt.Sprintf(" of revision %q", revision)
		}
		st, err := os.Stat(path)
		if err != nil {
			what := " does not exist"
			if !errors.Is(err, os.ErrNotExist) {
				// The path once: the cause, without stat's own copy of it.
				var pe *fs.PathError
				if errors.As(err, &pe) {
					err = pe.Err
				}
				what = ": " + err.Error() + ","
			}
			return nil, dnsroll.Errorf(dnsroll.EINVALID, "zones[%d].file: zone %s%s: %s%s on this machine; zone files are read where the rollout runs and wherever it is checked: the worker, the API, dnsroll fleet validate (docs/analysis.md: zone files)", i, zc.Name, of, path, what)
		}
		if st.IsDir() {
			return nil, dnsroll.Errorf(dnsroll.EINVALID, "zones[%d].file: zone %s%s: %s is a directory, not a zone file: name the zone's file in it", i, zc.Name, of, path)
		}
		if root := zoneRoot(f, zc); leavesRoot(path, root) {
			return nil, dnsroll.Errorf(dnsroll.EINVALID, "zones[%d].file: zone %s%s: %s leads outside %s, where the fleet keeps this zone's files: "+
				"a zone file may not read other files on the worker, whose errors would quote them; copy the file in", i, zc.Name, of, path, root)
		}
		paths[i] = path
	}
	// Each file is hashed while BIND loads them all, and parsed after,
	// on every core: 100,000 zone files take seconds, not a minute.
	sums := make([]string, len(paths))
	hashed := make(chan error, 1)
	go func() {
		hashed <- parallel.For(len(paths), func(i int) (err error) {
			sums[i], err = bundle.FileSHA256(paths[i])
			return err
		})
	}()
	parse := zone.ParseFile
	if len(f.Zones) > batchAbove {
		switch err := bindLoads(f.Zones, paths); {
		case err == nil:
			parse = zone.ParseChecked
		case !errors.Is(err, errNoChecker):
			<-hashed
			return nil, err
		}
	}
	hashErr := <-hashed
	out := make([]Zone, len(f.Zones))
	parsed := make([]*zone.Zone, len(f.Zones))
	err := parallel.For(len(f.Zones), func(i int) error {
		zc := f.Zones[i]
		z, err := parse(paths[i], zc.Name)
		if err != nil {
			return dnsroll.Errorf(dnsroll.EINVALID, "zones[%d].file: %v", i, err)
		}
		zf := Zone{Name: zc.Name, Path: paths[i], Serial: z.Serial(), SHA256: sums[i]}
		for _, w := range z.Warnings(5) {
			zf.Warnings = append(zf.Warnings, "zone "+zc.Name+": "+w)
		}
		out[i], parsed[i] = zf, z
		return nil
	})
	if err != nil {
		return nil, err
	}
	if hashErr != nil {
		return nil, hashErr
	}
	if err := chainsOfTrust(parsed); err != nil {
		return nil, err
	}
	return out, nil
}

// chainsOfTrust checks each zone whose parent zone the fleet serves too:
// the parent's DS records must match the child's keys, or the revision
// would make the child bogus to validating resolvers.
func chainsOfTrust(zones []*zone.Zone) error {
	index := make(map[string]int, len(zones))
	for i, z := range zones {
		index[strings.ToLower(z.Origin())] = i
	}
	for i, child := range zones {
		p, ok := nearestParent(index, child.Origin())
		if !ok {
			continue
		}
		if err := zone.CheckDelegationKeys(zones[p], child); err != nil {
			return dnsroll.Errorf(dnsroll.EINVALID, "zones[%d].file: %v", i, err)
		}
	}
	return nil
}

// nearestParent is the index of the closest zone above name (an absolute
// name) among index's origins (lowercase, absolute), found by walking up
// name a label at a time: a lookup per label, where comparing every pair
// of zones took hours for a fleet of 100,000.
func nearestParent(index map[string]int, name string) (int, bool) {
	name = strings.ToLower(dns.Fqdn(name))
	if name == "." {
		return 0, false
	}
	for off, end := dns.NextLabel(name, 0); !end; off, end = dns.NextLabel(name, off) {
		if i, ok := index[name[off:]]; ok {
			return i, true
		}
	}
	i, ok := index["."]
	return i, ok
}

// Target is the worker a fleet would run on: which Linode API it talks to,
// and how many SSH keys it gives new VMs.
type Target struct {
	// Known is false where the worker is not known (the API); then only
	// the fleet's own checks run.
	Known bool
	// RealLinode is true for the real Linode API, false for a simulator.
	RealLinode bool
	// SSHKeys is how many public keys new VMs are created with.
	SSHKeys int
	// AwayFromWorker is set where the checks run apart from the worker
	// (`dnsroll fleet validate` in CI): the cloud is known, but not the
	// worker's SSH keys or files.
	AwayFromWorker bool
}

// Fits refuses a fleet that cannot run on this worker: a lab fleet (one
// with a lab: section, whose servers are processes on the worker's own
// loopback) against the real Linode API; the reverse, a fleet with real
// load balancers against a simulated Linode API; and a fleet provisioned
// over SSH when new VMs would get no key, so that nobody could log into
// them. On either API, a fleet without a lab section is provisioned over
// SSH: Ansible's local connection would provision the worker itself.
func (t Target) Fits(f *config.Fleet) error {
	switch {
	case !t.Known:
		return nil
	case f.Lab == nil && f.Ansible.Connection == "local":
		return dnsroll.Errorf(dnsroll.EINVALID, "ansible.connection: local runs the playbooks on the worker itself, where only a lab fleet's servers run, "+
			"but fleet %s has no lab section (an empty `lab:` is none; write `lab: {}`): set connection: ssh for real servers", f.Name)
	case t.RealLinode && f.Lab != nil:
		return otherCloud{dnsroll.Errorf(dnsroll.EINVALID, "lab: fleet %s is a lab fleet, but this worker talks to the real Linode API: run it in the lab (make dev), or remove its lab section and give it real load balancers", f.Name)}
	case !t.RealLinode && f.Lab == nil:
		if err := simulatorReachable(f); err != nil {
			return otherCloud{err}
		}
	case t.RealLinode:
		if err := realCloudTimeouts(f.Steps); err != nil {
			return err
		}
		if err := realCloudAddresses(f.LoadBalancers); err != nil {
			return err
		}
	}
	switch {
	case !t.Known || t.AwayFromWorker:
		return nil
	case f.Ansible.Connection == "ssh" && t.SSHKeys == 0:
		return dnsroll.Errorf(dnsroll.EINVALID,
			"ansible.connection: fleet %s provisions new VMs over SSH, but this worker creates them with no SSH public key, so nobody could log in: "+
				"set DNSROLL_SSH_AUTHORIZED_KEYS to the public key of the key Ansible uses, or set ANSIBLE_PRIVATE_KEY_FILE to derive it", f.Name)
	}
	return nil
}

// otherCloud is Fits refusing a fleet for the other kind of Linode API: a
// lab fleet on the real one, or real load balancers on a simulator. One
// fleets directory may hold both kinds (the repository's does), so Dir
// passes over such a fleet rather than failing, while a rollout of it is
// still refused.
type otherCloud struct{ error }

func (e otherCloud) Unwrap() error { return e.error }

// realCloudFloor is the least create and provision timeout that a real
// Linode can meet: creating, booting and answering SSH takes it one to
// two minutes, and a new VM's first apt run about as long again. The
// simulator and the lab are faster, so the floor applies to the real API
// alone. A shorter timeout would fail every rollout after its VMs exist.
const realCloudFloor = 2 * time.Minute

func realCloudTimeouts(s config.Steps) error {
	for _, d := range []struct {
		field string
		v     config.Duration
	}{{"create_timeout", s.CreateTimeout}, {"provision_timeout", s.ProvisionTimeout}} {
		if d.v.D() < realCloudFloor {
			return dnsroll.Errorf(dnsroll.EINVALID, "steps.%s: must be at least %s against the real Linode API, got %s: "+
				"a new Linode takes a minute or two to boot and as long again to provision, so every rollout would fail after creating its VMs; "+
				"raise it, or leave it out for the default", d.field, realCloudFloor, d.v.D())
		}
	}
	return nil
}

// realCloudAddresses refuses, on the real Linode API, a load balancer
// whose address no resolver uses: a port other than 53 (its address is
// what the zone's delegation names, and resolvers ask a delegation's
// servers on port 53 alone; glue records carry an address and no port),
// or an address on the worker's own loopback or link. The labs serve on
// other ports, on loopback or a private bridge.
func realCloudAddresses(lbs []config.LoadBalancer) error {
	for i, lb := range lbs {
		host, port, err := net.SplitHostPort(lb.Address)
		if err != nil {
			continue // config.Validate names it
		}
		if port != "53" && strings.TrimLeft(port, "0") != "53" {
			return dnsroll.Errorf(dnsroll.EINVALID, "load_balancers[%d].address: port %s: resolvers ask a zone's nameservers on port 53 alone (glue records carry no port), "+
				"so clients would never reach %s: make the load balancer listen on port 53 of the address its glue record names", i, port, lb.Name)
		}
		kind := ""
		if ip, err := netip.ParseAddr(host); err == nil {
			switch {
			case ip.IsLoopback():
				kind = "a loopback"
			case ip.IsLinkLocalUnicast():
				kind = "a link-local"
			}
		} else if strings.EqualFold(strings.TrimSuffix(host, "."), "localhost") {
			kind = "a loopback"
		}
		if kind != "" {
			return dnsroll.Errorf(dnsroll.EINVALID, "load_balancers[%d].address: %s is %s address, which only the worker's own machine or link reaches, not the clients that %s serves: "+
				"write the public address its glue record names", i, host, kind, lb.Name)
		}
	}
	return nil
}

// ymlName says why path, a fleet file not named *.yaml, is refused.
func ymlName(path string) string {
	base := strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	return fmt.Sprintf("fleet files are named <fleet>.yaml, which workers and the API look up by the fleet's name: rename it %s.yaml", base)
}

// Dir checks every fleet file in dir, as workers and the API do at
// startup: each must load, be named after its file, and fit the cloud,
// and no two may share a label or a load balancer (accountClaims). Zone
// files are checked for fleets that need no revision; the others' are
// checked per rollout. A fleet for the other kind of Linode API (a lab
// fleet on a worker of the real one, or the reverse) is passed over: it is
// returned in skipped, saying why, for the caller to log.
func Dir(dir string, target Target) (skipped []string, err error) {
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("fleets: %w: point --fleets or $DNSROLL_FLEETS at the directory of your <fleet>.yaml files", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("fleets: %s is not a directory: point --fleets or $DNSROLL_FLEETS at the directory of your <fleet>.yaml files", dir)
	}
	paths, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return nil, err
	}
	sort.Strings(paths)
	var errs []string
	// A fleet in a .yml file would be passed over, and its rollouts
	// refused later as of an unknown fleet.
	yml, _ := filepath.Glob(filepath.Join(dir, "*.yml"))
	for _, p := range yml {
		errs = append(errs, fmt.Sprintf("%s: %s", p, ymlName(p)))
	}
	// Without fleets, every rollout would be refused: the directory is
	// likely not the one meant (the default, fleets, is relative).
	if len(paths)+len(yml) == 0 {
		return nil, fmt.Errorf("fleets: no fleet files (*.yaml) in %s: point --fleets or $DNSROLL_FLEETS at the directory of your <fleet>.yaml files", dir)
	}
	claims := accountClaims{}
	for _, p := range paths {
		f, err := file(p, "", target)
		switch {
		case errors.As(err, new(otherCloud)):
			skipped = append(skipped, err.Error())
		case err != nil:
			errs = append(errs, err.Error())
		case f.Lab == nil:
			errs = append(errs, claims.claim(p, f)...)
		}
	}
	if len(errs) > 0 {
		return skipped, fmt.Errorf("fleets in %s:\n  %s", dir, strings.Join(errs, "\n  "))
	}
	return skipped, nil
}

// File checks one fleet file: it loads, is named after the file, fits the
// cloud, has its playbooks on a worker (a Known target), and, for the revision (or when its zone files need none), its
// zone files exist and parse.
func File(path, revision string, target Target) error {
	_, err := file(path, revision, target)
	return err
}

// file is File, returning the fleet it checked.
func file(path, revision string, target Target) (*config.Fleet, error) {
	if filepath.Ext(path) != ".yaml" {
		return nil, fmt.Errorf("%s: %s", path, ymlName(path))
	}
	f, err := config.Load(path)
	if err != nil {
		return nil, err
	}
	if want := strings.TrimSuffix(filepath.Base(path), ".yaml"); f.Name != want {
		return nil, fmt.Errorf("%s: fleet: is %q, but the file is named %s.yaml; workers find a fleet by its file name", path, f.Name, want)
	}
	if err := target.Fits(f); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if target.Known && !target.AwayFromWorker {
		if err := Playbooks(f); err != nil {
			return nil, fmt.Errorf("%s: %v", path, err)
		}
	}
	if revision == "" && f.NeedsRevision() {
		return f, nil
	}
	if _, err := Zones(f, revision); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	return f, nil
}

// Neighbours refuses labels and load balancers (accountClaims) that f,
// loaded from path, shares with another fleet of its directory, as a
// worker's startup (Dir) would for target:
// `dnsroll fleet validate` checks one file, which is not alone in the
// account. The neighbours' clashes among themselves are theirs, and lab
// fleets claim nothing. A neighbour that Dir would refuse is returned in
// unread, naming it, its error and the fix: its labels and load balancers
// are unknown, so a clash with it cannot be ruled out, and a worker on the
// directory would not start. A caller that checks every neighbour in turn
// (`fleet validate DIR`) hears of them there. Neighbours of the other
// cloud are passed over, as Dir passes over them.
func Neighbours(path string, f *config.Fleet, target Target) (unread []string, err error) {
	dir := filepath.Dir(path)
	yaml, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return nil, err
	}
	yml, _ := filepath.Glob(filepath.Join(dir, "*.yml"))
	cannot := func(p, why string) {
		unread = append(unread, fmt.Sprintf("%s: cannot be checked against %s, a fleet file beside it: %s; "+
			"a worker started with --fleets %s refuses to start until it loads, and its labels and load balancers are unknown meanwhile: "+
			"fix it (dnsroll fleet validate %s checks every file there), or move it out of the directory", path, p, why, dir, dir))
	}
	claims := accountClaims{}
	for _, p := range append(yaml, yml...) {
		same, err := sameFile(p, path)
		switch {
		case err != nil:
			cannot(p, err.Error())
			continue
		case same:
			continue
		}
		other, err := file(p, "", target)
		switch {
		case errors.As(err, new(otherCloud)):
		case err != nil:
			cannot(p, err.Error())
		case other.Lab == nil && f.Lab == nil:
			claims.claim(p, other)
		}
	}
	if f.Lab != nil {
		return unread, nil
	}
	if refusals := claims.claim(path, f); len(refusals) > 0 {
		return unread, dnsroll.Errorf(dnsroll.EINVALID, "%s", strings.Join(refusals, "; "))
	}
	return unread, nil
}

// sameFile tells whether paths a and b name one file.
func sameFile(a, b string) (bool, error) {
	sa, err := os.Stat(a)
	if err != nil {
		return false, err
	}
	sb, err := os.Stat(b)
	if err != nil {
		return false, err
	}
	return os.SameFile(sa, sb), nil
}

// accountClaims are what the fleets of one directory may not share: the
// Linode labels they give their servers, folded to lower case, and their
// load balancers' machines, by address and SSH host; each with the field
// and fleet file that claimed it. The fleets run on one worker, in one
// Linode account, where labels are unique whatever their case: a label
// that two fleets give would fail the second one's create mid-rollout,
// after its other servers were made. Each fleet's own labels are distinct
// (config.Validate), and none ends in -next, so no fleet's green can take
// another's label unless their labels clash too. A switch renders a load
// balancer's whole config from its own fleet's servers, so a load
// balancer that two fleets name would lose one fleet's zones at the
// other's rollout.
type accountClaims map[string]claim

type claim struct{ field, fleet, path string }

// labFleetFile is the machine lab's fleet in the repository's fleets/: it
// has no lab section, so it counts as a real fleet beside an operator's.
const labFleetFile = "machines.yaml"

// claim records f's labels and load balancers, from the file at path, and
// returns a refusal for each that a fleet claimed before.
func (a accountClaims) claim(path string, f *config.Fleet) []string {
	var refusals []string
	// take records key for field, unless a fleet took it before: then
	// it returns that fleet's claim, and a refusal's closing words, with
	// what to do.
	take := func(key, field string) (prior claim, fix string, taken bool) {
		if prior, taken = a[key]; !taken {
			a[key] = claim{field, f.Name, path}
			return prior, "", false
		}
		if filepath.Base(prior.path) == labFleetFile || filepath.Base(path) == labFleetFile {
			fix = "; if " + labFleetFile + " is the machine lab's fleet from dnsroll's repository (fleets/), keep your fleet files in a directory of their own instead"
		}
		return prior, fix, true
	}
	label := func(field, label string) {
		if prior, fix, taken := take("label "+strings.ToLower(label), field); taken {
			refusals = append(refusals, fmt.Sprintf("%s: %s: %q is also %s of fleet %s (%s), and Linode's labels are unique across an account whatever their case, "+
				"so a rollout of one would fail to create its servers while the other's exist: give it a label of its own%s", path, field, label, prior.field, prior.fleet, filepath.Base(prior.path), fix))
		}
	}
	for i, ns := range f.Nameservers {
		label(fmt.Sprintf("nameservers[%d].label", i), ns.Label)
	}
	for i, lb := range f.LoadBalancers {
		label(fmt.Sprintf("load_balancers[%d].name", i), lb.Name)
	}
	const shared = "a switch renders the load balancer's whole config from its own fleet's servers, so a rollout of either fleet would take the other's zones off it: give each fleet load balancers of its own"
	for i, lb := range f.LoadBalancers {
		at := fmt.Sprintf("load_balancers[%d]", i)
		if prior, fix, taken := take("address "+hostKey(lb.Address), at+".address"); taken {
			refusals = append(refusals, fmt.Sprintf("%s: %s.address: %s is also %s of fleet %s (%s): %s%s", path, at, lb.Address, prior.field, prior.fleet, filepath.Base(prior.path), shared, fix))
			continue
		}
		if prior, fix, taken := take("ssh "+hostKey(lb.SSHTarget()), at); taken {
			refusals = append(refusals, fmt.Sprintf("%s: %s.ssh_host: %s is also the SSH host of %s of fleet %s (%s): %s%s", path, at, lb.SSHTarget(), prior.field, prior.fleet, filepath.Base(prior.path), shared, fix))
		}
	}
	return refusals
}

// hostKey is a load balancer's address (host:port) or SSH host in one
// form, however a fleet wrote it: a host name in lower case without its
// final dot, localhost as 127.0.0.1 (config.OneHost), the port as a plain
// number. config.Load has written IP addresses in theirs.
func hostKey(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return config.OneHost(strings.ToLower(strings.TrimSuffix(addr, ".")))
	}
	if n, err := strconv.Atoi(port); err == nil {
		port = strconv.Itoa(n)
	}
	return net.JoinHostPort(config.OneHost(strings.ToLower(strings.TrimSuffix(host, "."))), port)
}

// Playbooks checks that the playbooks the fleet names exist where Ansible
// runs them: on the worker, whose startup and Plan step check them, and
// where `dnsroll fleet validate` runs. A missing load balancer playbook
// would otherwise fail only at the switch, after green was built.
func Playbooks(f *config.Fleet) error {
	for _, pb := range []struct{ field, path, def string }{
		{"ansible.nameserver_playbook", f.Ansible.NameserverPlaybook, config.DefaultNameserverPlaybook},
		{"ansible.loadbalancer_playbook", f.Ansible.LoadBalancerPlaybook, config.DefaultLoadBalancerPlaybook},
	} {
		path := f.Path(pb.path)
		st, err := os.Stat(path)
		if err == nil && st.IsDir() {
			err = errors.New("is a directory")
		}
		if err != nil {
			what := "does not exist"
			if !errors.Is(err, os.ErrNotExist) {
				what = err.Error()
			}
			hint := "paths are relative to the fleet file (the repository's playbooks are in ansible/)"
			if pb.path == pb.def {
				hint = fmt.Sprintf("the default, %s, is the repository's playbook for a fleet in fleets/; for another layout set %s, relative to the fleet file", pb.def, pb.field)
			}
			return dnsroll.Errorf(dnsroll.EINVALID, "%s: %s %s on this machine; %s", pb.field, path, what, hint)
		}
		if err := playbookShape(path); err != nil {
			return dnsroll.Errorf(dnsroll.EINVALID, "%s: %s %v", pb.field, path, err)
		}
	}
	// Both are plays on all hosts: the nameservers' run on a load
	// balancer would install BIND there, at the first staging.
	if ns := filepath.Clean(f.Path(f.Ansible.NameserverPlaybook)); ns == filepath.Clean(f.Path(f.Ansible.LoadBalancerPlaybook)) {
		return dnsroll.Errorf(dnsroll.EINVALID, "ansible.loadbalancer_playbook: %s is ansible.nameserver_playbook too, which would install BIND on the load balancers: "+
			"name the load balancers' playbook, the repository's ansible/loadbalancer.yml (leave the field out for %s)", ns, config.DefaultLoadBalancerPlaybook)
	}
	return roleZoneNames(f)
}

// roleZoneNames refuses the zone names that the repository's nameserver
// role, where it is beside the fleet's nameserver playbook, cannot serve.
// The role makes file names and named.conf strings of them, so it takes
// only names its nameserver_zone_name_re matches, without the final dot;
// any other (the root zone) would fail its first run, after the VMs
// exist. A playbook without the role is its own judge.
func roleZoneNames(f *config.Fleet) error {
	role := filepath.Join(filepath.Dir(f.Path(f.Ansible.NameserverPlaybook)), "roles", "nameserver")
	b, err := os.ReadFile(filepath.Join(role, "vars", "main.yml"))
	if err != nil {
		return nil
	}
	var vars struct {
		NameRE string `yaml:"nameserver_zone_name_re"`
	}
	if yaml.Unmarshal(b, &vars) != nil || vars.NameRE == "" {
		return nil
	}
	re, err := regexp.Compile(strings.TrimSpace(vars.NameRE))
	if err != nil {
		return nil
	}
	const own = "give these zones a nameserver playbook of your own (ansible.nameserver_playbook)"
	for i, z := range f.Zones {
		if !re.MatchString(strings.TrimSuffix(z.Name, ".")) {
			return dnsroll.Errorf(dnsroll.EINVALID, "zones[%d].name: %q is not a zone name the nameserver role in %s can serve: it writes zone names into file names and named.conf, "+
				"and takes only labels of letters, digits, _ and -, and / inside a label as RFC 2317 names have it (its nameserver_zone_name_re); %s", i, z.Name, role, own)
		}
		if file := RoleZoneFile(z.Name); len(file) > fileNameMax {
			return dnsroll.Errorf(dnsroll.EINVALID, "zones[%d].name: %q is not a zone name the nameserver role in %s can serve: its file there, the name with \"/\" written %%2F and \".zone\", "+
				"would have %d bytes, over the %d a file name may have; %s", i, z.Name, role, len(file), fileNameMax, own)
		}
	}
	return nil
}

// fileNameMax is the most bytes a file name may have on Linux, and so
// on the servers the nameserver role provisions (its NAME_MAX).
const fileNameMax = 255

// RoleZoneFile is the name of zone name's file on a server the
// repository's nameserver role provisions, as its zone-archive.py's
// file_name makes it: the name without its final dot, each "/" (RFC 2317)
// written %2F, then ".zone". TestRoleZoneFileIsTheRoles holds the two
// together.
func RoleZoneFile(name string) string {
	return strings.ReplaceAll(strings.TrimSuffix(name, "."), "/", "%2F") + ".zone"
}

// playbookShape checks that path reads as an Ansible playbook: a YAML list
// of plays, each with hosts:, or imports of other playbooks. A zone file
// or a role's task list named by mistake would otherwise fail the first
// provision, after VMs exist. What the plays do is Ansible's to check;
// the file is read as nodes, so that a key written twice, which Ansible
// only warns of, passes as it does there.
func playbookShape(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var doc yaml.Node
	err = yaml.Unmarshal(b, &doc)
	switch {
	case err != nil:
	case len(doc.Content) == 0 || doc.Content[0].Kind != yaml.SequenceNode || len(doc.Content[0].Content) == 0:
		err = errors.New("it has no list of plays")
	default:
		for i, play := range doc.Content[0].Content {
			if !isPlay(play) {
				err = fmt.Errorf("item %d has no hosts", i+1)
				break
			}
		}
	}
	if err != nil {
		return fmt.Errorf("is not an Ansible playbook (a YAML list of plays, each with hosts:): %v", err)
	}
	return nil
}

// isPlay says whether n is a play: a mapping with hosts, or an import of
// another playbook.
func isPlay(n *yaml.Node) bool {
	if n.Kind != yaml.MappingNode {
		return false
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		switch n.Content[i].Value {
		case "hosts", "import_playbook", "ansible.builtin.import_playbook", "ansible.legacy.import_playbook":
			return true
		}
	}
	return false
}

// simulatorReachable refuses, for a worker on a simulated Linode API, a
// fleet whose load balancers are on public addresses: real machines, which
// a switch would point at servers that exist only in the simulator. The
// machine lab's load balancers are on a private bridge; a lab fleet's, on
// loopback.
func simulatorReachable(f *config.Fleet) error {
	for i, lb := range f.LoadBalancers {
		field, host := fmt.Sprintf("load_balancers[%d].address", i), lb.Address
		if h, _, err := net.SplitHostPort(lb.Address); err == nil {
			host = h
		}
		if lb.SSHHost != "" {
			field, host = fmt.Sprintf("load_balancers[%d].ssh_host", i), lb.SSHHost
		}
		ip := net.ParseIP(host)
		if host == "localhost" || (ip != nil && (ip.IsLoopback() || ip.IsPrivate())) {
			continue
		}
		return dnsroll.Errorf(dnsroll.EINVALID,
			"%s: fleet %s has a load balancer at %s, a real machine, but this worker talks to a simulated Linode API (DNSROLL_LINODE_URL), "+
				"whose servers that load balancer cannot reach: unset DNSROLL_LINODE_URL to use the real API, or run a lab fleet (fleets/lab.yaml, fleets/machines.yaml)", field, f.Name, host)
	}
	return nil
}
