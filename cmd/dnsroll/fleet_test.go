package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/dnsroll/dnsroll/internal/testfiles"
)

// fleet validate FILE checks FILE against the fleets beside it, which a
// worker started on their directory loads with it. A neighbour it cannot
// read hides its labels and load balancers, so a clash with it would go
// unseen, and the worker refuses to start beside it: validate refuses
// too, naming the neighbour, its error and the fix, on its own, with
// --live, and for a lab fleet. Given the directory, it names the broken
// file once, under its own heading.
func TestCLIFleetValidateRefusesANeighbourItCannotRead(t *testing.T) {
	t.Setenv("DNSROLL_LINODE_URL", "")
	t.Setenv("LINODE_TOKEN", "")
	machines := repoFleet(t, "machines.yaml")
	prod := strings.Replace(machines, "fleet: machines", "fleet: prod", 1)
	// A neighbour with prod's labels and load balancers, and one mistake.
	twin := strings.Replace(machines, "fleet: machines", "fleet: twin", 1)
	for _, c := range []struct {
		name, file, text, want string
	}{
		{"named for another fleet", "twin.yaml", strings.Replace(twin, "fleet: twin", "fleet: other", 1),
			`twin.yaml: fleet: is "other", but the file is named twin.yaml`},
		{"a field out of range", "twin.yaml", strings.Replace(twin, `"10.231.0.2:53"`, `"10.231.0.2:99999"`, 1),
			"twin.yaml: load_balancers[0].address"},
		{"not YAML", "twin.yaml", "fleet: [twin\n", "twin.yaml"},
		{"a .yml file", "twin.yml", twin, "twin.yml: fleet files are named <fleet>.yaml"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "prod.yaml")
			testfiles.Write(t, path, prod)
			testfiles.Write(t, filepath.Join(dir, c.file), c.text)
			for _, args := range [][]string{{path}, {path, "--live"}} {
				out, errOut, code := cli(t, append([]string{"fleet", "validate"}, args...)...)
				if code != 1 || strings.Contains(out, "ok: fleet prod") {
					t.Errorf("%v: exit %d, stdout %q; want exit 1 before any ok", args, code, out)
				}
				wantAll(t, "stderr", errOut, "prod.yaml: cannot be checked against "+filepath.Join(dir, c.file), c.want,
					"a worker started with --fleets "+dir+" refuses to start", "dnsroll fleet validate "+dir)
			}
			out, errOut, code := cli(t, "fleet", "validate", dir)
			if code != 1 || !strings.Contains(out, "ok: fleet prod") || strings.Contains(errOut, "cannot be checked against") || strings.Count(errOut, c.want) != 1 {
				t.Errorf("the directory: exit %d, stdout %q, stderr %q; want prod ok and %s's error once", code, out, errOut, c.file)
			}
		})
	}
	// A lab fleet shares nothing with its neighbours, but a worker on
	// their directory still would not start.
	dir := t.TempDir()
	testfiles.Write(t, filepath.Join(dir, "lab.yaml"), repoFleet(t, "lab.yaml"))
	testfiles.Write(t, filepath.Join(dir, "broken.yaml"), "fleet: [broken\n")
	_, errOut, code := cli(t, "fleet", "validate", filepath.Join(dir, "lab.yaml"))
	if code != 1 || !strings.Contains(errOut, "lab.yaml: cannot be checked against "+filepath.Join(dir, "broken.yaml")) {
		t.Errorf("a lab fleet beside a broken one: exit %d, stderr %q; want exit 1 naming broken.yaml", code, errOut)
	}
}

// A lab fleet beside a real one is for another cloud, which a worker for
// the real one passes over: fleet validate of the real one passes it
// over too, rather than call it a neighbour it cannot read.
func TestCLIFleetValidatePassesOverALabFleetBesideIt(t *testing.T) {
	t.Setenv("DNSROLL_LINODE_URL", "")
	t.Setenv("LINODE_TOKEN", "")
	dir := t.TempDir()
	testfiles.Write(t, filepath.Join(dir, "prod.yaml"), strings.Replace(repoFleet(t, "machines.yaml"), "fleet: machines", "fleet: prod", 1))
	testfiles.Write(t, filepath.Join(dir, "lab.yaml"), repoFleet(t, "lab.yaml"))
	out, errOut, code := cli(t, "fleet", "validate", filepath.Join(dir, "prod.yaml"))
	if code != 0 || !strings.Contains(out, "ok: fleet prod") {
		t.Errorf("a real fleet beside a lab fleet: exit %d, stdout %q, stderr %q; want it ok", code, out, errOut)
	}
}

// fleet validate --revision of a fleet whose zone files do not depend on
// the revision suggests a path that keeps revisions apart, built from the
// fleet's own file: a classless reverse zone's name holds "/", which in a
// path would be a directory.
func TestCLIFleetValidateSuggestsARevisionedPathFromTheZoneFile(t *testing.T) {
	t.Setenv("DNSROLL_LINODE_URL", "")
	t.Setenv("LINODE_TOKEN", "")
	path := fleetCopy(t, "machines.yaml", "{name: example.com, file: ", `{name: 0/26.2.0.192.in-addr.arpa, file: "zones/0-26.rev.zone"}`+"\n#")
	testfiles.Write(t, filepath.Join(filepath.Dir(path), "zones", "0-26.rev.zone"),
		"$TTL 300\n@ SOA ns1.example.net. hostmaster.example.net. 1 3600 600 86400 300\n NS ns1.example.net.\n1 PTR host1.example.com.\n")
	out, errOut, code := cli(t, "fleet", "validate", path, "--revision", "r1")
	if code != 0 {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	wantAll(t, "stdout", out, "ok: zone 0/26.2.0.192.in-addr.arpa", `keep each revision's files apart, as file: "zones/{revision}/0-26.rev.zone"`)
}
