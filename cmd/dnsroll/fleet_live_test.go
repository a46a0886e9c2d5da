package main

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/lab/linodesim"
	"github.com/dnsroll/dnsroll/linode"
)

// fleet validate --live asks Linode, as the rollout's Plan step does,
// whether it offers each nameserver's region, plan, image and firewall,
// so that CI can refuse a fleet file before any rollout starts. The
// simulator plays Linode for the unmodified linodego client.
func TestCLIFleetValidateLive(t *testing.T) {
	sim, err := linodesim.New(linodesim.Options{Token: "live-token-secret", Firewalls: []int{77}, DeleteDelay: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	t.Setenv("DNSROLL_LINODE_URL", srv.URL+"/v4")
	t.Setenv("LINODE_TOKEN", "live-token-secret")

	lab, err := os.ReadFile("../../fleets/lab.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// A copy beside the lab fleet's playbooks, with its nameservers changed.
	fleetWith := func(t *testing.T, from, to string) string {
		t.Helper()
		changed := bytes.Replace(lab, []byte(from), []byte(to), 1)
		if from != "" && bytes.Equal(changed, lab) {
			t.Fatalf("fleets/lab.yaml lacks %q", from)
		}
		dir := t.TempDir()
		path := filepath.Join(dir, "lab.yaml")
		text := strings.ReplaceAll(string(changed), "../ansible/", filepath.Join(mustAbs(t, "../../ansible"), "")+"/")
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}

	out, errOut, code := cli(t, "fleet", "validate", fleetWith(t, "", ""), "--live")
	if code != 0 {
		t.Fatalf("a fleet Linode can make: exit %d, stderr %s", code, errOut)
	}
	wantAll(t, "stdout", out, "ok: Linode offers each nameserver's region, plan and image", "skipped: live checks of the running fleet",
		"ok: Linode: no blue servers (tagged dnsroll-fleet-lab) yet; the first rollout creates ns1, ns2")

	// The servers read as a rollout's Plan step reads them.
	cloud, err := linode.New(linode.Options{Token: "live-token-secret", BaseURL: srv.URL + "/v4", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	create := func(label, tag string) dnsroll.Server {
		s, err := cloud.Create(t.Context(), dnsroll.ServerSpec{Label: label, Region: "us-east", Type: "g6-nanode-1", Tags: []string{tag}})
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

	bad := fleetWith(t, "{label: ns1, region: us-east, type: g6-nanode-1, image: linode/debian12}",
		"{label: ns1, region: mars-1, type: g6-nanode-1, image: linode/debian99, firewall_id: 78}")
	out, errOut, code = cli(t, "fleet", "validate", bad, "--live")
	if code != 1 || strings.Contains(out, "ok: Linode offers") {
		t.Errorf("a region, image and firewall Linode lacks: exit %d, stdout %q; want exit 1", code, out)
	}
	wantAll(t, "stderr", errOut, "nameservers[0].region: Linode has no region \"mars-1\"", "nameservers[0].image: ", "linode/debian99",
		"nameservers[0].firewall_id: this account has no Cloud Firewall 78")
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

func mustAbs(t *testing.T, p string) string {
	t.Helper()
	abs, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return abs
}
