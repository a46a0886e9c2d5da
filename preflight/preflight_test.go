package preflight

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/config"
	"github.com/dnsroll/dnsroll/internal/dnstest"
	"github.com/dnsroll/dnsroll/internal/needlab"
	"github.com/dnsroll/dnsroll/internal/signzone"
	"github.com/dnsroll/dnsroll/internal/testfiles"
	"gopkg.in/yaml.v3"
)

const fleetText = `fleet: prod
nameservers:
  - {label: ns1, region: us-east, type: g6-nanode-1, image: linode/debian12}
load_balancers:
  - {name: lb1, address: "192.0.2.1:53", fronts: ns1}
zones:
  - {name: example.com, file: "zones/{revision}/example.com.zone"}
`

// dir writes a fleets directory, which it returns: fleetText (with edits)
// as prod.yaml, revision A's zone, and files (path: text), which may
// replace either. The two playbooks are in ../ansible, where the defaults
// look.
func dir(t *testing.T, edit func(string) string, files map[string]string) string {
	t.Helper()
	fsys := fstest.MapFS{"fleets/prod.yaml": {Data: []byte(edit(fleetText))}, "fleets/zones/A/example.com.zone": {Data: []byte(dnstest.Zone)},
		"ansible/nameserver.yml": {Data: []byte("- hosts: all\n")}, "ansible/loadbalancer.yml": {Data: []byte("- hosts: all\n")}}
	for path, text := range files {
		fsys["fleets/"+path] = &fstest.MapFile{Data: []byte(text)}
	}
	d := t.TempDir()
	if err := os.CopyFS(d, fsys); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(d, "fleets")
}

// loadFleet loads the fleet in d, a directory dir made.
func loadFleet(t *testing.T, d string) *config.Fleet {
	t.Helper()
	f, err := config.Load(filepath.Join(d, "prod.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// wantErr fails unless err contains want, or is nil when want is "".
func wantErr(t *testing.T, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Errorf("err = %v, want none", err)
	case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
		t.Errorf("err = %v, want one containing %q", err, want)
	}
}

func same(s string) string { return s }

// appending is an edit of a fleet file that adds yaml at its end.
func appending(yaml string) func(string) string {
	return func(s string) string { return s + yaml }
}

// replacing is an edit of a fleet file that replaces the first old in it
// by with, then adds more at its end.
func replacing(old, with string, more ...string) func(string) string {
	return func(s string) string { return strings.Replace(s, old, with, 1) + strings.Join(more, "") }
}

func TestFile(t *testing.T) {
	keys := Target{Known: true, RealLinode: true, SSHKeys: 1}
	sim := Target{Known: true, SSHKeys: 1}
	for _, tt := range []struct {
		name     string
		edit     func(string) string
		revision string
		target   Target
		want     string // "" for no error
	}{
		{"a good revision", same, "A", keys, ""},
		{"an unknown revision", same, "B", keys, `zones[0].file: zone example.com of revision "B": `},
		{"no revision: zone files skipped", same, "", keys, ""},
		{"a fleet without revisions, a zone file missing", replacing("zones/{revision}/example.com.zone", "zones/example.com.zone"), "", keys, "zones[0].file: zone example.com: /"},
		{"a zone that does not parse", same, "bad", keys, "zones[0].file"},
		{"a file named after another fleet", replacing("fleet: prod", "fleet: other"), "A", keys, `is "other", but the file is named prod.yaml`},
		{"SSH fleet, no keys for new VMs", same, "A", Target{Known: true, RealLinode: true}, "DNSROLL_SSH_AUTHORIZED_KEYS"},
		{"lab fleet against the real Linode API", appending("ansible: {connection: local}\nlab: {dns_port_base: 15300}\n"), "A", Target{Known: true, RealLinode: true}, "lab fleet, but this worker talks to the real Linode API"},
		{"an unknown worker checks only the fleet", same, "A", Target{}, ""},
		{"real load balancers against a simulated API", same, "A", sim, "load_balancers[0].address: fleet prod has a load balancer at 192.0.2.1, a real machine, but this worker talks to a simulated Linode API"},
		{"a public ssh_host against a simulated API", replacing(`address: "192.0.2.1:53",`, `address: "10.231.0.2:53", ssh_host: lb1.example.net,`), "A", sim, "load_balancers[0].ssh_host: fleet prod has a load balancer at lb1.example.net"},
		{"a worker without the load balancer playbook", appending("ansible: {loadbalancer_playbook: ansible/lb.yml}\n"), "A", keys, "ansible.loadbalancer_playbook: "},
		{"a worker with a directory for the nameserver playbook", appending("ansible: {nameserver_playbook: ../ansible}\n"), "A", keys, "/ansible is a directory"},
		{"the API (an unknown target) without playbooks", appending("ansible: {loadbalancer_playbook: ansible/lb.yml}\n"), "A", Target{}, ""},
		{"a create timeout shorter than a Linode takes to boot", appending("steps: {create_timeout: 20s, heartbeat_timeout: 5s}\n"), "A", keys, "steps.create_timeout: must be at least 2m0s against the real Linode API"},
		{"a provision timeout shorter than a new VM's first apt run", appending("steps: {provision_timeout: 45s, heartbeat_timeout: 5s}\n"), "A", keys, "steps.provision_timeout: must be at least 2m0s against the real Linode API"},
		// Resolvers ask a delegation's servers on port 53 alone: glue
		// records carry no port.
		{"a load balancer on another port, real API", replacing("192.0.2.1:53", "192.0.2.1:5353"), "A", keys,
			"load_balancers[0].address: port 5353: resolvers ask a zone's nameservers on port 53 alone"},
		// Clients, and the parent zone's glue, reach a load balancer at its
		// address: the worker's own loopback is not one they reach.
		{"a load balancer on loopback, real API", replacing("192.0.2.1:53", "127.0.0.1:53"), "A", keys,
			"load_balancers[0].address: 127.0.0.1 is a loopback address"},
		{"a load balancer at localhost, real API", replacing("192.0.2.1:53", "localhost:53"), "A", keys,
			"load_balancers[0].address: localhost is a loopback address"},
		{"a load balancer at a link-local address, real API", replacing("192.0.2.1:53", "169.254.1.1:53"), "A", keys,
			"load_balancers[0].address: 169.254.1.1 is a link-local address"},
		{"short step timeouts against a simulated API (the lab)", replacing("192.0.2.1:53", "10.231.0.2:53", "steps: {create_timeout: 20s, provision_timeout: 45s, heartbeat_timeout: 5s}\n"), "A", sim, ""},
		{"machine lab load balancers against a simulated API", replacing("192.0.2.1:53", "10.231.0.2:53"), "A", sim, ""},
		// Ansible's connection: local provisions the machine it runs on, the
		// worker: only a lab fleet's servers are there.
		{"connection local without a lab section, real API", appending("ansible: {connection: local}\n"), "A", keys,
			"ansible.connection: local runs the playbooks on the worker itself"},
		{"connection local without a lab section, simulated API", replacing("192.0.2.1:53", "10.231.0.2:53", "ansible: {connection: local}\n"), "A", sim, "ansible.connection: local runs the playbooks on the worker itself"},
		{"connection local with an empty lab section", replacing("192.0.2.1:53", "10.231.0.2:53", "ansible: {connection: local}\nlab:\n"), "A", sim, "ansible.connection: local runs the playbooks on the worker itself"},
		// dnsroll fleet validate runs in CI, away from the worker: its
		// cloud is the one the fleet names, its keys and playbooks unknown.
		{"away from the worker, short timeouts for the real API", appending("steps: {create_timeout: 90s, heartbeat_timeout: 5s}\n"), "A", Target{Known: true, RealLinode: true, AwayFromWorker: true}, "steps.create_timeout: must be at least 2m0s against the real Linode API"},
		// The bounds themselves are met: 2m is the floor, and 053 is port 53.
		{"create and provision timeouts of exactly the floor, real API", appending("steps: {create_timeout: 2m, provision_timeout: 2m}\n"), "A", keys, ""},
		{"a create timeout a second under the floor, real API", appending("steps: {create_timeout: 119s, provision_timeout: 2m}\n"), "A", keys, "steps.create_timeout: must be at least 2m0s"},
		{"a load balancer host name on port 053, real API", replacing("192.0.2.1:53", "lb1.example.net:053"), "A", keys, ""},
		{"a load balancer at LOCALHOST., real API", replacing("192.0.2.1:53", "LOCALHOST.:53"), "A", keys,
			"load_balancers[0].address: LOCALHOST. is a loopback address"},
		// The simulator's servers are reachable from the worker's loopback.
		{"a load balancer on loopback, simulated API", replacing("192.0.2.1:53", "127.0.0.1:5353"), "A", sim, ""},
		{"a load balancer at localhost, simulated API", replacing("192.0.2.1:53", "localhost:5353"), "A", sim, ""},
		// A lab fleet is provisioned by Ansible's local connection: it
		// needs no key for new VMs.
		{"a lab fleet on a worker without SSH keys", appending("ansible: {connection: local}\nlab: {}\n"), "A", Target{Known: true}, ""},
		{"away from the worker, no keys known", same, "A", Target{Known: true, RealLinode: true, AwayFromWorker: true}, ""},
		{"away from the worker, without the playbooks", appending("ansible: {loadbalancer_playbook: ansible/lb.yml}\n"), "A", Target{Known: true, RealLinode: true, AwayFromWorker: true}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := dir(t, tt.edit, map[string]string{"zones/bad/example.com.zone": "this is not a zone\n"})
			wantErr(t, File(filepath.Join(d, "prod.yaml"), tt.revision, tt.target), tt.want)
		})
	}
}

// A fleet that names no playbooks and has no ../ansible beside it is told
// what the default is and which field sets another.
func TestMissingDefaultPlaybookNamesTheDefault(t *testing.T) {
	d := dir(t, same, nil)
	if err := os.RemoveAll(filepath.Join(d, "..", "ansible")); err != nil {
		t.Fatal(err)
	}
	err := File(filepath.Join(d, "prod.yaml"), "A", Target{Known: true, RealLinode: true, SSHKeys: 1})
	want := "ansible.nameserver_playbook: " + filepath.Join(filepath.Dir(d), "ansible", "nameserver.yml") +
		" does not exist on this machine; the default, ../ansible/nameserver.yml, is the repository's playbook for a fleet in fleets/; for another layout set ansible.nameserver_playbook"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("err = %v, want one containing %q", err, want)
	}
}

// A playbook is a YAML list of plays: a zone file or a role's task list
// given as one fails at the first provision, after VMs exist, so it is
// refused here.
func TestPlaybookThatIsNoPlaybook(t *testing.T) {
	for _, tt := range []struct{ name, text, want string }{
		{"a zone file", dnstest.Zone, "is not an Ansible playbook (a YAML list of plays, each with hosts:)"},
		{"a mapping", "hosts: all\nroles: [nameserver]\n", "is not an Ansible playbook"},
		{"a task list", "- name: Install BIND\n  ansible.builtin.apt: {name: bind9}\n", "is not an Ansible playbook"},
		{"empty", "", "is not an Ansible playbook"},
		{"an empty list", "[]\n", "is not an Ansible playbook (a YAML list of plays, each with hosts:): it has no list of plays"},
		{"a play", "- hosts: all\n  roles: [nameserver]\n", ""},
		{"an import", "- import_playbook: other.yml\n- ansible.builtin.import_playbook: more.yml\n- ansible.legacy.import_playbook: last.yml\n", ""},
		// Ansible warns of a repeated key and keeps the last; so does this.
		{"a play with a key twice", "- hosts: all\n  become: yes\n  become: true\n  roles: [nameserver]\n", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := dir(t, same, nil)
			if err := os.WriteFile(filepath.Join(d, "..", "ansible", "nameserver.yml"), []byte(tt.text), 0o644); err != nil {
				t.Fatal(err)
			}
			err := Playbooks(loadFleet(t, d))
			wantErr(t, err, tt.want)
			if tt.want != "" && err != nil && !strings.Contains(err.Error(), "ansible.nameserver_playbook: ") {
				t.Errorf("err = %v, want it to name the field", err)
			}
		})
	}
}

// The load balancers' playbook set to the nameservers' would install BIND
// on the load balancers at the first staging, after green exists.
func TestOnePlaybookForBothRoles(t *testing.T) {
	for _, pb := range []string{"../ansible/nameserver.yml", "./../ansible/nameserver.yml"} {
		d := dir(t, appending("ansible: {loadbalancer_playbook: "+pb+"}\n"), nil)
		wantErr(t, Playbooks(loadFleet(t, d)), "ansible.loadbalancer_playbook: "+filepath.Join(filepath.Dir(d), "ansible", "nameserver.yml")+" is ansible.nameserver_playbook too")
	}
}

func TestZonesAreInvalidInput(t *testing.T) {
	d := dir(t, same, nil)
	f := loadFleet(t, d)
	zones, err := Zones(f, "A")
	if err != nil || len(zones) != 1 || zones[0].Serial != 7 {
		t.Fatalf("zones %+v, err %v", zones, err)
	}
	if _, err := Zones(f, "B"); dnsroll.ErrorCode(err) != dnsroll.EINVALID {
		t.Errorf("a missing zone file: %v (code %q), want %q: no retry finds it", err, dnsroll.ErrorCode(err), dnsroll.EINVALID)
	}
	// A directory where the file should be is named as such.
	if err := os.MkdirAll(filepath.Join(d, "zones", "C", "example.com.zone"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := Zones(f, "C"); dnsroll.ErrorCode(err) != dnsroll.EINVALID || !strings.Contains(err.Error(), "example.com.zone is a directory, not a zone file") {
		t.Errorf("a directory for the zone file: %v", err)
	}
	// A link that leads round in a loop is named once, with the cause,
	// not as "<path> stat <path>: ...".
	loop := filepath.Join(d, "zones", "D")
	if err := os.MkdirAll(loop, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("example.com.zone", filepath.Join(loop, "example.com.zone")); err != nil {
		t.Fatal(err)
	}
	_, err = Zones(f, "D")
	if msg := fmt.Sprint(err); dnsroll.ErrorCode(err) != dnsroll.EINVALID || strings.Count(msg, "example.com.zone") != 1 || !strings.Contains(msg, "example.com.zone: too many levels of symbolic links") {
		t.Errorf("a zone file link to itself: %v", err)
	}
}

// A zone file that is a link to a file outside the fleet's zone files
// (a worker's secrets, say) is refused before BIND reads it: BIND's error
// would quote the file's lines to whoever reads the refusal. A link to
// another revision's file, the usual reuse, is fine.
func TestZoneFileLinksStayAmongTheZoneFiles(t *testing.T) {
	d := dir(t, same, nil)
	f := loadFleet(t, d)
	secret := filepath.Join(t.TempDir(), "secrets.env")
	if err := os.WriteFile(secret, []byte("export LINODE_TOKEN=deadbeefSECRET\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// A revision's directory may itself be a link, to a release kept on
	// another volume, say.
	release := filepath.Join(t.TempDir(), "release-D")
	if err := os.MkdirAll(release, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(release, "example.com.zone"), []byte(dnstest.Zone), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(release, filepath.Join(d, "zones", "D")); err != nil {
		t.Fatal(err)
	}
	if zones, err := Zones(f, "D"); err != nil || len(zones) != 1 {
		t.Errorf("a revision directory that is a link: %v, %v", zones, err)
	}
	for rev, target := range map[string]string{"B": secret, "C": "../A/example.com.zone"} {
		if err := os.MkdirAll(filepath.Join(d, "zones", rev), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, filepath.Join(d, "zones", rev, "example.com.zone")); err != nil {
			t.Fatal(err)
		}
	}
	_, err := Zones(f, "B")
	if dnsroll.ErrorCode(err) != dnsroll.EINVALID || !strings.Contains(err.Error(), "zones[0].file: zone example.com of revision \"B\"") ||
		!strings.Contains(err.Error(), "outside "+filepath.Join(d, "zones")) || strings.Contains(err.Error(), "deadbeef") {
		t.Errorf("a link out of the zone files: %v; want a refusal that names it and quotes nothing of it", err)
	}
	if zones, err := Zones(f, "C"); err != nil || len(zones) != 1 {
		t.Errorf("a link to another revision's file: %v, %v", zones, err)
	}
}

func TestDir(t *testing.T) {
	if _, err := Dir(filepath.Join(t.TempDir(), "nosuchdir"), Target{}); err == nil || !strings.Contains(err.Error(), "no such file") || !strings.Contains(err.Error(), "--fleets or $DNSROLL_FLEETS") {
		t.Errorf("a missing fleets directory: %v", err)
	}
	// A worker or API without fleets would refuse every rollout: the
	// directory is likely the wrong one.
	if _, err := Dir(t.TempDir(), Target{}); err == nil || !strings.Contains(err.Error(), "no fleet files (*.yaml) in ") {
		t.Errorf("an empty fleets directory: %v", err)
	}
	d := dir(t, same, nil)
	if skipped, err := Dir(d, Target{Known: true, RealLinode: true, SSHKeys: 1}); err != nil || len(skipped) > 0 {
		t.Errorf("a good directory: %v (skipped %q)", err, skipped)
	}
	broken := strings.Replace(fleetText, "fleet: prod", "fleet: broken", 1) + "load_balancers: [{name: lb1, address: \"192.0.2.1:99999\", fronts: ns1}]\n"
	if err := os.WriteFile(filepath.Join(d, "broken.yaml"), []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Dir(d, Target{}); err == nil || !strings.Contains(err.Error(), "broken.yaml") {
		t.Errorf("a directory with a broken fleet: %v, want an error naming broken.yaml", err)
	}
	// A fleet in a .yml file would be passed over, then its rollouts
	// refused as of an unknown fleet.
	yml := dir(t, same, map[string]string{"staging.yml": strings.Replace(fleetText, "fleet: prod", "fleet: staging", 1)})
	if _, err := Dir(yml, Target{}); err == nil || !strings.Contains(err.Error(), "staging.yml: fleet files are named <fleet>.yaml") || !strings.Contains(err.Error(), "rename it staging.yaml") {
		t.Errorf("a directory with a .yml fleet: %v", err)
	}
	// With no .yaml beside it, it is still named, not "no fleet files".
	if err := os.Remove(filepath.Join(yml, "prod.yaml")); err != nil {
		t.Fatal(err)
	}
	if _, err := Dir(yml, Target{}); err == nil || !strings.Contains(err.Error(), "rename it staging.yaml") {
		t.Errorf("a directory with a .yml fleet alone: %v", err)
	}
	if err := File(filepath.Join(yml, "staging.yml"), "A", Target{}); err == nil || !strings.Contains(err.Error(), "rename it staging.yaml") {
		t.Errorf("a .yml fleet file: %v", err)
	}
}

// The repository's fleets directory holds the lab's fleets beside the
// operator's: a worker on the real Linode API passes over the lab fleet,
// naming it, and a lab worker the production one, instead of refusing to
// start. A rollout of either still fails at Plan, before any VM exists.
func TestDirPassesOverAnotherCloudsFleets(t *testing.T) {
	lab := strings.Replace(fleetText, "fleet: prod", "fleet: lab", 1) + "ansible: {connection: local}\nlab: {dns_port_base: 15300}\n"
	d := dir(t, same, map[string]string{"lab.yaml": lab})
	real := Target{Known: true, RealLinode: true, SSHKeys: 1}
	skipped, err := Dir(d, real)
	if err != nil || len(skipped) != 1 || !strings.Contains(skipped[0], "lab.yaml: lab: fleet lab is a lab fleet, but this worker talks to the real Linode API") {
		t.Errorf("a real worker's directory with a lab fleet: skipped %q, err %v; want lab.yaml passed over", skipped, err)
	}
	if err := File(filepath.Join(d, "lab.yaml"), "A", real); err == nil || !strings.Contains(err.Error(), "is a lab fleet") {
		t.Errorf("the lab fleet on the real API: %v, want it refused", err)
	}
	skipped, err = Dir(d, Target{Known: true, SSHKeys: 1})
	if err != nil || len(skipped) != 1 || !strings.Contains(skipped[0], "prod.yaml: load_balancers[0].address: fleet prod has a load balancer at 192.0.2.1, a real machine") {
		t.Errorf("a lab worker's directory with a production fleet: skipped %q, err %v; want prod.yaml passed over", skipped, err)
	}
	// Another cloud's fleet that is broken as well is an error.
	broken := strings.Replace(lab, "fleet: lab", "fleet: other", 1)
	d = dir(t, same, map[string]string{"lab.yaml": lab, "broken.yaml": broken})
	if _, err := Dir(d, real); err == nil || !strings.Contains(err.Error(), "broken.yaml: fleet: is \"other\"") {
		t.Errorf("a broken lab fleet on a real worker: %v, want an error naming broken.yaml", err)
	}
}

// A fleet that serves a zone and its parent: a revision whose child keys
// match none of the parent's DS records is refused before any VM exists.
func TestZonesChecksTheChainOfTrust(t *testing.T) {
	needlab.Programs(t, signzone.Tools...)
	child := "$ORIGIN sub.example.com.\n$TTL 300\n@ SOA ns1 hostmaster 7 3600 600 1209600 300\n  NS ns1\nns1 A 192.0.2.53\n"
	parent := dnstest.Zone + "sub NS ns1.sub\nns1.sub A 192.0.2.53\n"
	sign := func() (string, string) {
		d := t.TempDir()
		text, ds, err := signzone.SignDS(d, "sub.example.com.", child, signzone.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return text, ds
	}
	signed, ds := sign()
	rolled, _ := sign()
	withChild := func(s string) string {
		return s + "  - {name: sub.example.com, file: \"zones/{revision}/sub.example.com.zone\"}\n"
	}
	for _, tt := range []struct {
		name, child, want string
	}{
		{"the parent's DS matches", signed, ""},
		{"keys rolled before the DS", rolled, "zones[1].file: zone sub.example.com.: no key of its DNSKEY set matches the DS records its parent example.com. holds"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := dir(t, withChild, map[string]string{"zones/A/example.com.zone": parent + ds, "zones/A/sub.example.com.zone": tt.child})
			wantErr(t, File(filepath.Join(d, "prod.yaml"), "A", Target{}), tt.want)
		})
	}
}

// The chain of trust of a zone is checked against its nearest parent
// that the fleet serves: the closest enclosing zone, not a grandparent,
// and none for a zone whose ancestors the fleet does not serve.
func TestNearestParent(t *testing.T) {
	index := map[string]int{"example.com.": 0, "a.example.com.": 1, "b.a.example.com.": 2, "other.net.": 3}
	for name, want := range map[string]int{
		"b.a.example.com.": 1, "a.example.com.": 0, "c.example.com": 0, "x.B.A.Example.com.": 2,
		"example.com.": -1, "other.net.": -1, "example.org.": -1, ".": -1,
	} {
		got, ok := nearestParent(index, name)
		if !ok {
			got = -1
		}
		if got != want {
			t.Errorf("nearestParent(%q) = %d, want %d", name, got, want)
		}
	}
	if got, ok := nearestParent(map[string]int{".": 7}, "example.com."); !ok || got != 7 {
		t.Errorf("under a served root: %d, %t, want 7", got, ok)
	}
	if got, ok := nearestParent(map[string]int{".": 7}, "."); ok {
		t.Errorf("the root's parent: %d, want none: the root is no zone's child", got)
	}
}

// Linode's labels are unique across an account, whatever their case. Two
// fleets of one directory run on one worker, in one account: a label that
// both use would fail the second one's create mid-rollout, so the
// directory is refused at startup. Lab fleets each have a simulator of
// their own and may share labels.
func TestDirRefusesLabelsTwoFleetsShare(t *testing.T) {
	real := Target{Known: true, RealLinode: true, SSHKeys: 1}
	other := func(edit func(string) string) map[string]string {
		return map[string]string{"edge.yaml": edit(strings.Replace(fleetText, "fleet: prod", "fleet: edge", 1))}
	}
	for _, c := range []struct {
		name  string
		files map[string]string
		want  string
	}{
		{"nameserver labels", other(func(s string) string { return strings.ReplaceAll(s, "lb1", "edge-lb1") }),
			`prod.yaml: nameservers[0].label: "ns1" is also nameservers[0].label of fleet edge (edge.yaml)`},
		{"in other case", other(func(s string) string {
			return strings.ReplaceAll(strings.ReplaceAll(s, "lb1", "edge-lb1"), "ns1", "NS1")
		}), `prod.yaml: nameservers[0].label: "ns1" is also nameservers[0].label of fleet edge`},
		// A green (<label>-next) cannot clash alone: config refuses a
		// label ending in -next.
		{"a nameserver and a load balancer", other(func(s string) string {
			return strings.ReplaceAll(strings.ReplaceAll(s, "ns1", "edge1"), "name: lb1", "name: ns1")
		}), `prod.yaml: nameservers[0].label: "ns1" is also load_balancers[0].name of fleet edge`},
		{"load balancer names", other(func(s string) string { return strings.ReplaceAll(s, "ns1", "edge1") }),
			`prod.yaml: load_balancers[0].name: "lb1" is also load_balancers[0].name of fleet edge`},
		{"fleets of their own labels", other(func(s string) string {
			return strings.NewReplacer("ns1", "edge1", "lb1", "edge-lb1", "192.0.2.1", "192.0.2.2").Replace(s)
		}), ""},
		{"a lab fleet beside a real one", map[string]string{"lab.yaml": strings.Replace(fleetText, "fleet: prod", "fleet: lab", 1) +
			"ansible: {connection: local}\nlab: {dns_port_base: 15300}\n"}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Dir(dir(t, same, c.files), real)
			wantErr(t, err, c.want)
			if err != nil && !strings.Contains(err.Error(), "Linode's labels are unique across an account") {
				t.Errorf("err = %v, want it to say why", err)
			}
		})
	}
	// The repository's machines.yaml copied beside an operator's fleet is
	// named as the likely cause, whichever of the two was read first.
	d := dir(t, same, map[string]string{"edge.yaml": strings.Replace(fleetText, "fleet: prod", "fleet: edge", 1),
		"machines.yaml": strings.Replace(fleetText, "fleet: prod", "fleet: machines", 1)})
	if err := os.Remove(filepath.Join(d, "prod.yaml")); err != nil {
		t.Fatal(err)
	}
	_, err := Dir(d, real)
	wantErr(t, err, `machines.yaml: nameservers[0].label: "ns1" is also nameservers[0].label of fleet edge (edge.yaml)`)
	wantErr(t, err, "if machines.yaml is the machine lab's fleet from dnsroll's repository (fleets/), keep your fleet files in a directory of their own instead")
	// Two lab fleets, as the repository's lab.yaml and machines.yaml.
	lab := strings.Replace(fleetText, "fleet: prod", "fleet: lab", 1) + "ansible: {connection: local}\nlab: {dns_port_base: 15300}\n"
	d = dir(t, func(string) string { return lab }, map[string]string{"machines.yaml": strings.Replace(lab, "fleet: lab", "fleet: machines", 1)})
	if err := os.Rename(filepath.Join(d, "prod.yaml"), filepath.Join(d, "lab.yaml")); err != nil {
		t.Fatal(err)
	}
	if _, err := Dir(d, Target{Known: true, SSHKeys: 1}); err != nil {
		t.Errorf("two lab fleets with the same labels: %v, want them accepted", err)
	}
}

// A switch renders a load balancer's whole config (nginx.conf, dnsdist's
// console settings) from one fleet, so two fleets of one directory whose
// load balancers are one machine, at one address or one SSH host, would
// each take the other's zones off it at its rollout: the directory is
// refused, naming the field and the other fleet, however the address is
// written. Fleets whose names begin alike (dns, dns2) are no exception.
func TestDirRefusesLoadBalancersTwoFleetsShare(t *testing.T) {
	real := Target{Known: true, RealLinode: true, SSHKeys: 1}
	other := func(edits ...string) map[string]string {
		r := strings.NewReplacer(append([]string{"fleet: prod", "fleet: prod2", "ns1", "p2-ns1", "lb1", "p2-lb1"}, edits...)...)
		return map[string]string{"prod2.yaml": r.Replace(fleetText)}
	}
	for _, c := range []struct {
		name  string
		files map[string]string
		want  string
	}{
		{"one address", other(),
			`prod2.yaml: load_balancers[0].address: 192.0.2.1:53 is also load_balancers[0].address of fleet prod (prod.yaml)`},
		{"one address, written mapped", other(`"192.0.2.1:53"`, `"[::ffff:192.0.2.1]:053"`),
			`prod2.yaml: load_balancers[0].address: 192.0.2.1:53 is also load_balancers[0].address of fleet prod (prod.yaml)`},
		{"one SSH host", other(`"192.0.2.1:53"`, `"192.0.2.9:53"`, "fronts: ns1", "fronts: p2-ns1, ssh_host: 192.0.2.1"),
			`prod2.yaml: load_balancers[0].ssh_host: 192.0.2.1 is also the SSH host of load_balancers[0] of fleet prod (prod.yaml)`},
		// An SSH host's IP is one however it is written (SSHTarget).
		{"one SSH host, written mapped", other(`"192.0.2.1:53"`, `"192.0.2.9:53"`, "fronts: ns1", "fronts: p2-ns1, ssh_host: \"::ffff:192.0.2.1\""),
			`prod2.yaml: load_balancers[0].ssh_host: 192.0.2.1 is also the SSH host of load_balancers[0] of fleet prod (prod.yaml)`},
		{"load balancers of their own", other(`"192.0.2.1:53"`, `"192.0.2.2:53"`), ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Dir(dir(t, same, c.files), real)
			wantErr(t, err, c.want)
			if err != nil && !strings.Contains(err.Error(), "give each fleet load balancers of its own") {
				t.Errorf("err = %v, want it to name the fix", err)
			}
		})
	}
	// A host name is one whatever its case.
	named := func(s string) string { return strings.Replace(s, `"192.0.2.1:53"`, `"lb.example.net:53"`, 1) }
	_, err := Dir(dir(t, named, other(`"192.0.2.1:53"`, `"LB.Example.NET:53"`)), real)
	wantErr(t, err, `prod2.yaml: load_balancers[0].address: LB.Example.NET:53 is also load_balancers[0].address of fleet prod (prod.yaml)`)
	// One machine is refused once, for its address, though its SSH host
	// (the address's host) is the other fleet's too.
	if n := strings.Count(err.Error(), "is also"); n != 1 {
		t.Errorf("err = %v: %d refusals, want one", err, n)
	}
	// Nor does a final dot make it another.
	_, err = Dir(dir(t, named, other(`"192.0.2.1:53"`, `"lb.example.net.:53"`)), real)
	wantErr(t, err, `prod2.yaml: load_balancers[0].address: lb.example.net.:53 is also load_balancers[0].address of fleet prod (prod.yaml)`)
	// Nor does a port written 053.
	_, err = Dir(dir(t, named, other(`"192.0.2.1:53"`, `"lb.example.net:053"`)), real)
	wantErr(t, err, `prod2.yaml: load_balancers[0].address: lb.example.net:053 is also load_balancers[0].address of fleet prod (prod.yaml)`)
	// The same for an SSH host, which has no port.
	_, err = Dir(dir(t, named, other(`"192.0.2.1:53"`, `"192.0.2.9:53"`, "fronts: ns1", "fronts: p2-ns1, ssh_host: LB.Example.NET.")), real)
	wantErr(t, err, `prod2.yaml: load_balancers[0].ssh_host: LB.Example.NET. is also the SSH host of load_balancers[0] of fleet prod (prod.yaml)`)
	// Nor is an SSH host localhost another machine than 127.0.0.1 (a
	// worker on the load balancer's machine).
	loop := func(s string) string { return strings.Replace(s, "fronts: ns1", "fronts: ns1, ssh_host: 127.0.0.1", 1) }
	_, err = Dir(dir(t, loop, other(`"192.0.2.1:53"`, `"192.0.2.9:53"`, "fronts: ns1", "fronts: p2-ns1, ssh_host: LocalHost.")), real)
	wantErr(t, err, `prod2.yaml: load_balancers[0].ssh_host: LocalHost. is also the SSH host of load_balancers[0] of fleet prod (prod.yaml)`)
	// Nor does an IPv6 SSH host written longer than the address it is.
	v6 := func(s string) string { return strings.Replace(s, `"192.0.2.1:53"`, `"[2001:db8::a]:53"`, 1) }
	_, err = Dir(dir(t, v6, other(`"192.0.2.1:53"`, `"192.0.2.9:53"`, "fronts: ns1", `fronts: p2-ns1, ssh_host: "2001:DB8:0:0::A"`)), real)
	wantErr(t, err, `prod2.yaml: load_balancers[0].ssh_host: 2001:db8::a is also the SSH host of load_balancers[0] of fleet prod (prod.yaml)`)
}

// Neighbours checks one fleet file against the others in its directory,
// as a worker's startup would: it passes over the file itself, lab
// fleets claim nothing, and a shared label is refused naming the field,
// the other fleet and the fix.
func TestNeighbours(t *testing.T) {
	real := Target{Known: true, RealLinode: true, SSHKeys: 1}
	lab := "ansible: {connection: local}\nlab: {}\n"
	edge := strings.Replace(fleetText, "fleet: prod", "fleet: edge", 1)
	for _, tt := range []struct {
		name  string
		edit  func(string) string
		files map[string]string
		want  string
	}{
		{"alone", same, nil, ""},
		{"beside a fleet of its own labels", same, map[string]string{"edge.yaml": strings.NewReplacer("ns1", "edge1", "lb1", "edge-lb1", "192.0.2.1", "192.0.2.2").Replace(edge)}, ""},
		{"a lab fleet beside a real one with its labels", appending(lab), map[string]string{"edge.yaml": edge}, ""},
		// A lab fleet's load balancers share loopback, which real ones
		// may not: it claims nothing, not even against itself.
		{"a lab fleet of two load balancers on loopback", replacing(`{name: lb1, address: "192.0.2.1:53", fronts: ns1}`,
			`{name: lb1, address: "127.0.0.1:5301", fronts: ns1}`+"\n  - "+`{name: lb2, address: "127.0.0.1:5302", fronts: ns1}`, lab), nil, ""},
		{"beside a real one with its labels", same, map[string]string{"edge.yaml": edge},
			`prod.yaml: nameservers[0].label: "ns1" is also nameservers[0].label of fleet edge (edge.yaml), and Linode's labels are unique across an account whatever their case`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := dir(t, tt.edit, tt.files)
			path := filepath.Join(d, "prod.yaml")
			unread, err := Neighbours(path, loadFleet(t, d), real)
			wantErr(t, err, tt.want)
			if tt.want != "" && !strings.Contains(fmt.Sprint(err), "give it a label of its own") {
				t.Errorf("err = %v, want the fix", err)
			}
			if len(unread) > 0 {
				t.Errorf("unread = %q, want none", unread)
			}
		})
	}
	d := dir(t, same, map[string]string{"broken.yaml": "fleet: broken\n"})
	unread, err := Neighbours(filepath.Join(d, "prod.yaml"), loadFleet(t, d), real)
	if err != nil || len(unread) != 1 || !strings.Contains(unread[0], "cannot be checked against "+filepath.Join(d, "broken.yaml")) || !strings.Contains(unread[0], "move it out of the directory") {
		t.Errorf("beside a broken fleet: unread %q, err %v; want it named, with the fix", unread, err)
	}
}

// Zone names of 250 and 246 bytes, the latter with three "/".
var (
	long250 = strings.Repeat(strings.Repeat("a", 63)+".", 3) + strings.Repeat("b", 58)
	long246 = "0/26.1/2.3/4." + strings.Repeat(strings.Repeat("a", 63)+".", 3) + strings.Repeat("b", 41)
)

// The repository's nameserver role makes file names and named.conf
// strings of zone names, and takes only names its nameserver_zone_name_re
// matches: the root zone, which the fleet file may hold for a playbook of
// its own, would fail the role's first run, after VMs exist, so Plan
// refuses it where the role is the fleet's. RFC 2317 names with "/" are
// served (provision's TestNameserverRoleServesClasslessReverseZones).
func TestZoneNamesTheNameserverRoleCannotServe(t *testing.T) {
	vars, err := os.ReadFile(filepath.Join("..", "ansible", "roles", "nameserver", "vars", "main.yml"))
	if err != nil {
		t.Fatal(err)
	}
	named := func(name string) func(string) string {
		return func(s string) string { return strings.Replace(s, "name: example.com,", "name: "+name+",", 1) }
	}
	for _, tt := range []struct {
		name string
		role bool
		want string
	}{
		{"0/26.2.0.192.in-addr.arpa", true, ""},
		{"128/25.2.0.192.in-addr.arpa.", true, ""},
		{"0-26.2.0.192.in-addr.arpa", true, ""},
		{`"."`, true, `zones[0].name: "." is not a zone name the nameserver role`},
		// "/" only inside a label, as RFC 2317 writes it.
		{`"/26.2.0.192.in-addr.arpa"`, true, `zones[0].name: "/26.2.0.192.in-addr.arpa" is not a zone name the nameserver role`},
		{"Example-1.com.", true, ""},
		{"xn--bcher-kva.example", true, ""},
		// A playbook of the fleet's own, without the role: its to judge.
		{"0/26.2.0.192.in-addr.arpa", false, ""},
		// Its file on the server, the name with "/" written %2F and
		// ".zone", may have 255 bytes: 250 + 5, but not 251 + 5, nor
		// 246 with its three "/" written %2F.
		{long250, true, ""},
		{long250 + "x.", true, `zones[0].name: "` + long250 + `x." is not a zone name the nameserver role in `},
		{long246, true, `zones[0].name: "` + long246 + `" is not a zone name the nameserver role in `},
		{long246, false, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := dir(t, named(tt.name), nil)
			if tt.role {
				testfiles.Write(t, filepath.Join(d, "..", "ansible", "roles", "nameserver", "vars", "main.yml"), string(vars))
			}
			err := Playbooks(loadFleet(t, d))
			wantErr(t, err, tt.want)
			if tt.want != "" && len(tt.name) > 200 {
				wantErr(t, err, "bytes, over the 255 a file name may have")
			}
			if tt.want != "" {
				wantErr(t, err, filepath.Join("ansible", "roles", "nameserver")+" can serve")
				wantErr(t, err, "give these zones a nameserver playbook of your own (ansible.nameserver_playbook)")
			}
		})
	}
}

// The role's zone-archive.py names each zone's file and refuses one too
// long; preflight refuses the same names before any VM exists, so both
// must make the same file names and hold the same limit.
func TestRoleZoneFileIsTheRoles(t *testing.T) {
	needlab.Programs(t, "python3")
	vars, err := os.ReadFile(filepath.Join("..", "ansible", "roles", "nameserver", "vars", "main.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		NameRE string `yaml:"nameserver_zone_name_re"`
	}
	if err := yaml.Unmarshal(vars, &v); err != nil {
		t.Fatal(err)
	}
	names := []string{"example.com", "Example-1.com", "0/26.2.0.192.in-addr.arpa", "128/25.2.0.192.in-addr.arpa", long250, long250 + "x", long246, long246[5:]}
	// For each name: its file_name, and whether check takes it.
	script := `import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("za", sys.argv[1])
za = importlib.util.module_from_spec(spec)
spec.loader.exec_module(za)
out = []
for n in json.load(sys.stdin):
    try:
        za.check([{"name": n, "src": "/z"}], sys.argv[2])
        ok = True
    except SystemExit:
        ok = False
    out.append([za.file_name(n), ok])
print(json.dumps(out))
`
	in, _ := json.Marshal(names)
	cmd := exec.Command("python3", "-c", script, filepath.Join("..", "ansible", "roles", "nameserver", "files", "zone-archive.py"), v.NameRE)
	cmd.Stdin = bytes.NewReader(in)
	b, err := cmd.Output()
	if err != nil {
		t.Fatalf("python3: %v", err)
	}
	var got [][2]any
	if err := json.Unmarshal(b, &got); err != nil || len(got) != len(names) {
		t.Fatalf("python3 said %s: %v", b, err)
	}
	for i, n := range names {
		file := RoleZoneFile(n + ".")
		if got[i][0] != file {
			t.Errorf("%s: the role's file %v, RoleZoneFile %s", n, got[i][0], file)
		}
		if ok := len(file) <= fileNameMax; got[i][1] != ok {
			t.Errorf("%s (%d bytes as a file): the role takes it %v, preflight %v", n, len(file), got[i][1], ok)
		}
	}
}
