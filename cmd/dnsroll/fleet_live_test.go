package main

import (
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/config"
	"github.com/dnsroll/dnsroll/lab/linodesim"
	"github.com/dnsroll/dnsroll/linode"
)

// fleet validate --live asks Linode, as the rollout's Plan step does,
// whether it offers each nameserver's region, plan, image and firewall,
// so that CI can refuse a fleet file before any rollout starts. The
// simulator plays Linode for the unmodified linodego client.
func TestCLIFleetValidateLive(t *testing.T) {
	sim, apiURL := serveLinode(t, linodesim.Options{Token: "live-token-secret", Firewalls: []int{77}, DeleteDelay: time.Hour})

	fleetWith := func(t *testing.T, from, to string) string { return fleetCopy(t, "lab.yaml", from, to) }

	out, errOut, code := cli(t, "fleet", "validate", fleetWith(t, "", ""), "--live")
	if code != 0 {
		t.Fatalf("a fleet Linode can make: exit %d, stderr %s", code, errOut)
	}
	wantAll(t, "stdout", out, "ok: Linode offers each nameserver's region, plan and image", "skipped: live checks of the running fleet",
		"ok: Linode: no blue servers (tagged dnsroll-fleet-lab) yet; the first rollout creates ns1, ns2")

	// The servers read as a rollout's Plan step reads them.
	cloud, err := linode.New(linode.Options{Token: "live-token-secret", BaseURL: apiURL, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	create := func(label, tag string) dnsroll.Server {
		s, err := cloud.Create(t.Context(), dnsroll.ServerSpec{Label: label, Region: "us-east", Type: "g6-nanode-1", Tags: []string{tag}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	ns1 := create("ns1", "dnsroll-fleet-lab")
	left := create("ns1-next", "dnsroll-fleet-lab")
	stranger := create("web1", "dnsroll-fleet-lab")
	create("mail1", "dnsroll-fleet-other")
	gone := create("ns2", "dnsroll-fleet-lab")
	if err := cloud.Delete(t.Context(), gone.ID); err != nil {
		t.Fatal(err)
	}
	out, errOut, code = cli(t, "fleet", "validate", fleetWith(t, "", ""), "--live")
	if code != 0 {
		t.Fatalf("a fleet with servers: exit %d, stderr %s", code, errOut)
	}
	wantAll(t, "stdout", out,
		fmt.Sprintf("ok: Linode: blue, serving now: ns1 (id %d, %s)\n", ns1.ID, ns1.IPv4),
		"warning: Linode: no blue server for ns2; the next rollout creates it",
		fmt.Sprintf("warning: Linode: ns1-next (id %d, %s) is a green an earlier rollout left", left.ID, left.IPv4),
		fmt.Sprintf("warning: Linode: web1 (id %d, %s) is tagged dnsroll-fleet-lab but is no nameserver of this fleet", stranger.ID, stranger.IPv4),
		fmt.Sprintf("ok: Linode: ns2 (id %d, %s) is being deleted", gone.ID, gone.IPv4))
	if strings.Contains(out, "mail1") {
		t.Errorf("another fleet's server is listed:\n%s", out)
	}
	wantAll(t, "stdout", out, "ok: the token may create and tag Linodes, and delete and rename the servers a rollout replaces",
		"ok: no Linode outside the fleet holds a nameserver's label or its -next")
	// A restricted token that may only read blue could not finish a
	// rollout: refused, naming the nameserver.
	sim.Restrict(linodesim.Grants{AddLinodes: true, AccountAccess: "read_write", ReadOnly: []string{"ns1"}})
	_, errOut, code = cli(t, "fleet", "validate", fleetWith(t, "", ""), "--live")
	if want := fmt.Sprintf("nameservers[0]: ns1 (Linode %d) is read-only to dnsroll", ns1.ID); code != 1 || !strings.Contains(errOut, want) {
		t.Errorf("a token that may only read blue: exit %d, stderr %q; want exit 1 and %q", code, errOut, want)
	}
	sim.Restrict(linodesim.Grants{AddLinodes: true, AccountAccess: "read_write"})
	// A lock on blue would stop its delete at the end of a rollout:
	// refused, naming the lock. A restricted token may not read locks,
	// which proves nothing.
	lock, err := sim.LockInstance(ns1.ID, linodesim.LockCannotDelete)
	if err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := cli(t, "fleet", "validate", fleetWith(t, "", ""), "--live"); code != 0 {
		t.Errorf("a locked blue, locks unreadable to the token: exit %d, stderr %q; want exit 0", code, errOut)
	}
	sim.Unrestrict()
	_, errOut, code = cli(t, "fleet", "validate", fleetWith(t, "", ""), "--live")
	if want := fmt.Sprintf("nameservers[0]: ns1 (Linode %d) has a cannot_delete lock (lock %d)", ns1.ID, lock); code != 1 || !strings.Contains(errOut, want) {
		t.Errorf("a locked blue: exit %d, stderr %q; want exit 1 and %q", code, errOut, want)
	}
	if err := sim.Unlock(lock); err != nil {
		t.Fatal(err)
	}
	// So would one on the green an earlier rollout left, which the next
	// deletes on an undo, or replaces.
	leftLock, err := sim.LockInstance(left.ID, linodesim.LockCannotDelete)
	if err != nil {
		t.Fatal(err)
	}
	_, errOut, code = cli(t, "fleet", "validate", fleetWith(t, "", ""), "--live")
	if want := fmt.Sprintf("ns1-next (Linode %d) has a cannot_delete lock (lock %d)", left.ID, leftLock); code != 1 || !strings.Contains(errOut, want) {
		t.Errorf("a locked green left: exit %d, stderr %q; want exit 1 and %q", code, errOut, want)
	}
	if err := sim.Unlock(leftLock); err != nil {
		t.Fatal(err)
	}
	// A label the fleet needs, held by a Linode without its tag (made by
	// hand, or another fleet's), would stop green at its rename, past the
	// point of no return: refused as Plan refuses it, naming the field.
	for _, holder := range []struct {
		label string
		tags  []string
		want  string
	}{
		{"ns2-next", nil, "no tags"},
		{"NS2-next", []string{"dnsroll-fleet-other"}, "tags dnsroll-fleet-other"},
	} {
		held, err := cloud.Create(t.Context(), dnsroll.ServerSpec{Label: holder.label, Region: "us-east", Type: "g6-nanode-1", Tags: holder.tags}, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, errOut, code = cli(t, "fleet", "validate", fleetWith(t, "", ""), "--live")
		want := fmt.Sprintf("is the label of Linode %d (%s), not this fleet's (tag dnsroll-fleet-lab): labels are unique in a Linode account", held.ID, holder.want)
		if code != 1 || !strings.Contains(errOut, want) || !strings.Contains(errOut, "nameservers[1].label: "+holder.label) {
			t.Errorf("%s held outside the fleet: exit %d, stderr %q; want exit 1 naming its field and %q", holder.label, code, errOut, want)
		}
		if err := cloud.Rename(t.Context(), held.ID, fmt.Sprintf("hand%d", held.ID)); err != nil {
			t.Fatal(err)
		}
	}
	// A green left in another region than its nameserver's is not reused
	// but made anew, as Plan reads it: so a token that may not create
	// Linodes is refused though every nameserver has a green left.
	stale := create("ns2-next", "dnsroll-fleet-lab")
	sim.Restrict(linodesim.Grants{AccountAccess: "read_write"})
	out, errOut, code = cli(t, "fleet", "validate", fleetWith(t, "", ""), "--live")
	if code != 1 || !strings.Contains(errOut, "a restricted user that may not create Linodes") {
		t.Errorf("a stale green left, a token that may not create: exit %d, stderr %q; want exit 1 naming add_linodes", code, errOut)
	}
	wantAll(t, "stdout", out, fmt.Sprintf("warning: Linode: ns2-next (id %d, %s) is a green an earlier rollout left; it has region us-east, not eu-central, "+
		"so the next rollout deletes it and creates it anew", stale.ID, stale.IPv4))
	// With a green left for each nameserver that the rollout reuses, it
	// creates none: the same token passes, and is not said to create.
	sim.Unrestrict()
	if err := cloud.Rename(t.Context(), stale.ID, "hand-ns2"); err != nil {
		t.Fatal(err)
	}
	if _, err := cloud.Create(t.Context(), dnsroll.ServerSpec{Label: "ns2-next", Region: "eu-central", Type: "g6-nanode-1", Tags: []string{"dnsroll-fleet-lab"}}, nil); err != nil {
		t.Fatal(err)
	}
	sim.Restrict(linodesim.Grants{AccountAccess: "read_write"})
	out, errOut, code = cli(t, "fleet", "validate", fleetWith(t, "", ""), "--live")
	if code != 0 || strings.Contains(out, "may create") {
		t.Errorf("every green left reused, a token that may not create: exit %d, stderr %q, stdout %q; want exit 0, not saying it may create", code, errOut, out)
	}
	wantAll(t, "stdout", out, "ok: the token may delete and rename the servers a rollout replaces; it creates no Linode, as it reuses the greens left")
	sim.Unrestrict()

	bad := fleetWith(t, "{label: ns1, region: us-east, type: g6-nanode-1, image: linode/debian12}",
		"{label: ns1, region: mars-1, type: g6-nanode-1, image: linode/debian99, firewall_id: 78}")
	out, errOut, code = cli(t, "fleet", "validate", bad, "--live")
	if code != 1 || strings.Contains(out, "ok: Linode offers") {
		t.Errorf("a region, image and firewall Linode lacks: exit %d, stdout %q; want exit 1", code, out)
	}
	wantAll(t, "stderr", errOut, "nameservers[0].region: Linode has no region \"mars-1\"", "nameservers[0].image: ", "linode/debian99",
		"nameservers[0].firewall_id: this account has no Cloud Firewall 78")
	if n := strings.Count(errOut, "nameservers[0].region"); n != 1 {
		t.Errorf("nameservers[0].region refused %d times, want once (lb1's replacement shares it):\n%s", n, errOut)
	}
	// A load balancer replacement's firewall is the load balancer's own.
	_, errOut, code = cli(t, "fleet", "validate", fleetWith(t, "fronts: ns1, driver: nginx}", "fronts: ns1, driver: nginx, firewall_id: 79}"), "--live")
	if code != 1 || !strings.Contains(errOut, "load_balancers[0] (lb1-next is made as nameserver ns1, the first it fronts): load_balancers[0].firewall_id: this account has no Cloud Firewall 79") {
		t.Errorf("a load balancer firewall Linode lacks: exit %d, stderr %q; want exit 1 naming load_balancers[0].firewall_id", code, errOut)
	}
	if strings.Contains(out+errOut, "live-token-secret") {
		t.Errorf("the token is shown: %s%s", out, errOut)
	}
	// Without --live nothing asks Linode, and the output says so.
	out, _, code = cli(t, "fleet", "validate", bad)
	if code != 0 || !strings.Contains(out, "--live") {
		t.Errorf("without --live: exit %d, stdout %q; want exit 0 and a pointer to --live", code, out)
	}

	t.Setenv("LINODE_TOKEN", "")
	_, errOut, code = cli(t, "fleet", "validate", fleetWith(t, "", ""), "--live")
	if code != 1 || !strings.Contains(errOut, "LINODE_TOKEN") {
		t.Errorf("--live without a token: exit %d, stderr %q; want exit 1 naming LINODE_TOKEN", code, errOut)
	}
	t.Setenv("LINODE_TOKEN", "wrong")
	_, errOut, code = cli(t, "fleet", "validate", fleetWith(t, "", ""), "--live")
	if code != 1 || !strings.Contains(errOut, "LINODE_TOKEN") {
		t.Errorf("--live with a token Linode refuses: exit %d, stderr %q; want exit 1 naming LINODE_TOKEN", code, errOut)
	}
}

// serveLinode starts a Linode simulator with o and points the CLI at it
// with o's token, as a worker's settings would; it returns the simulator
// and the base URL of its API.
func serveLinode(t *testing.T, o linodesim.Options) (*linodesim.Sim, string) {
	t.Helper()
	sim, err := linodesim.New(o)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	t.Setenv("DNSROLL_LINODE_URL", srv.URL+"/v4")
	t.Setenv("LINODE_TOKEN", o.Token)
	return sim, srv.URL + "/v4"
}

// repoFleet is the text of the repo's fleets/name with the paths in it
// made absolute, so that a copy elsewhere still names the repo's
// playbooks and zone files.
func repoFleet(t *testing.T, name string) string {
	t.Helper()
	return strings.ReplaceAll(string(repoFile(t, "fleets/"+name)), "../", mustAbs(t, "../..")+"/")
}

// fleetCopy writes repoFleet(name), its first from replaced by to, in a
// directory of its own, and returns the copy's path.
func fleetCopy(t *testing.T, name, from, to string) string {
	t.Helper()
	text := repoFleet(t, name)
	changed := strings.Replace(text, from, to, 1)
	if from != "" && changed == text {
		t.Fatalf("fleets/%s lacks %q", name, from)
	}
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(changed), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func mustAbs(t *testing.T, p string) string {
	t.Helper()
	abs, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return abs
}

// fleet validate runs in CI, away from the worker, but checks a fleet for
// the cloud a worker would run it on: the real Linode API for a fleet
// without a lab section, unless DNSROLL_LINODE_URL names another. So it
// refuses what such a worker refuses at startup, before any rollout.
func TestCLIFleetValidateChecksForTheWorkersCloud(t *testing.T) {
	machines := repoFile(t, "fleets/machines.yaml")
	fleetWith := func(t *testing.T, from, to string) string { return fleetCopy(t, "machines.yaml", from, to) }
	t.Setenv("DNSROLL_LINODE_URL", "")
	if out, errOut, code := cli(t, "fleet", "validate", fleetWith(t, "", "")); code != 0 {
		t.Fatalf("the machine lab's fleet: exit %d\n%s%s", code, out, errOut)
	}
	short := fleetWith(t, "create_timeout: 10m", "create_timeout: 90s")
	_, errOut, code := cli(t, "fleet", "validate", short)
	if code != 1 || !strings.Contains(errOut, "steps.create_timeout: must be at least 2m0s against the real Linode API") {
		t.Errorf("a create timeout no Linode meets: exit %d, stderr %q; want exit 1 naming steps.create_timeout", code, errOut)
	}
	local := fleetWith(t, "connection: ssh", "connection: local")
	_, errOut, code = cli(t, "fleet", "validate", local)
	if code != 1 || !strings.Contains(errOut, "ansible.connection: local runs the playbooks on the worker itself") {
		t.Errorf("connection local without a lab section: exit %d, stderr %q; want exit 1 naming ansible.connection", code, errOut)
	}

	// Linode's labels are account-wide: a fleet file beside it with the
	// same labels would fail one of their creates mid-rollout.
	twin := fleetWith(t, "", "")
	twinText := strings.Replace(string(machines), "fleet: machines", "fleet: twin", 1)
	if err := os.WriteFile(filepath.Join(filepath.Dir(twin), "twin.yaml"), []byte(twinText), 0o644); err != nil {
		t.Fatal(err)
	}
	_, errOut, code = cli(t, "fleet", "validate", twin)
	if code != 1 || !strings.Contains(errOut, `machines.yaml: nameservers[0].label: "ns1" is also nameservers[0].label of fleet twin (twin.yaml)`) ||
		!strings.Contains(errOut, "keep your fleet files in a directory of their own") {
		t.Errorf("a fleet beside another with its labels: exit %d, stderr %q; want exit 1 naming nameservers[0].label", code, errOut)
	}

	// A worker on a simulated API (the machine lab) takes short timeouts.
	t.Setenv("DNSROLL_LINODE_URL", "http://127.0.0.1:1/v4")
	if out, errOut, code := cli(t, "fleet", "validate", short); code != 0 {
		t.Errorf("short timeouts for a simulated API: exit %d\n%s%s", code, out, errOut)
	}
	// A lab fleet is checked for the lab, whatever the environment.
	t.Setenv("DNSROLL_LINODE_URL", "")
	lab := mustAbs(t, "../../fleets/lab.yaml")
	if out, errOut, code := cli(t, "fleet", "validate", lab); code != 0 {
		t.Errorf("the lab fleet: exit %d\n%s%s", code, out, errOut)
	}
	// Its servers are the lab simulator's: --live would send the token to
	// the real API and find the account's own ns1 in the fleet's way.
	t.Setenv("LINODE_TOKEN", "real-token")
	_, errOut, code = cli(t, "fleet", "validate", lab, "--live")
	if code != 1 || !strings.Contains(errOut, "--live: fleet lab is a lab fleet") || !strings.Contains(errOut, "set DNSROLL_LINODE_URL to the lab's simulator") {
		t.Errorf("--live of the lab fleet against the real API: exit %d, stderr %q; want exit 1 pointing at the simulator", code, errOut)
	}
}

// fleet validate --live says whether Linode can give each new nameserver
// the host key dnsroll makes for it, and which cannot and why.
func TestCLIFleetValidateLiveGivenHostKeys(t *testing.T) {
	// The machine lab's fleet: SSH to machines, as in production.
	path := fleetCopy(t, "machines.yaml", "", "")
	f, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name       string
		noMetadata []string
		want       string
	}{
		{"every region takes user data", nil, "ok: Linode gives each new nameserver the SSH host key dnsroll makes for it"},
		{"one region has no Metadata", []string{f.Nameservers[1].Region},
			"warning: Linode: " + f.Nameservers[1].Label + "-next cannot be given its SSH host key (region " + f.Nameservers[1].Region + " has no Metadata service)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			serveLinode(t, linodesim.Options{Token: "tok", NoMetadata: tc.noMetadata})
			out, errOut, code := cli(t, "fleet", "validate", path, "--live")
			if code != 0 {
				t.Fatalf("exit %d, stderr %s", code, errOut)
			}
			wantAll(t, "stdout", out, tc.want)
			if tc.noMetadata != nil && strings.Contains(out, "ok: Linode gives") {
				t.Errorf("stdout says every nameserver is given its key:\n%s", out)
			}
		})
	}
}

// A DNSROLL_LINODE_URL that a worker refuses at startup (no scheme, say)
// is refused by fleet validate too, naming the variable, rather than
// taken for a simulator's and the fleet judged for the lab.
func TestCLIFleetValidateRefusesAMalformedLinodeURL(t *testing.T) {
	t.Setenv("DNSROLL_LINODE_URL", "api.linode.com/v4")
	_, errOut, code := cli(t, "fleet", "validate", fleetCopy(t, "machines.yaml", "", ""))
	if code != 1 || !strings.Contains(errOut, "DNSROLL_LINODE_URL") || !strings.Contains(errOut, "must be http(s)://host[:port]/v4") || strings.Contains(errOut, "simulated") {
		t.Errorf("exit %d, stderr %q; want exit 1 naming DNSROLL_LINODE_URL and its form", code, errOut)
	}
}
