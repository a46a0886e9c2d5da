package provision

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
	"gopkg.in/yaml.v3"

	"github.com/dnsroll/dnsroll/internal/freeport"
	"github.com/dnsroll/dnsroll/internal/needlab"
	"github.com/dnsroll/dnsroll/internal/pidfile"
)

// zoneText is a small zone; serial and extra vary between runs.
const zoneText = `$TTL 300
@	IN SOA ns1.example.com. hostmaster.example.com. %d 3600 600 86400 300
@	IN NS ns1.example.com.
ns1	IN A 192.0.2.1
www	IN A 192.0.2.10
%s
`

// labServer is one lab nameserver the test provisions.
type labServer struct {
	name, dir string
	port      int
}

// TestNameserverRoleLab runs ansible/nameserver.yml in lab mode against
// two servers and queries the real named processes it starts.
func TestNameserverRoleLab(t *testing.T) {
	needlab.Programs(t, "ansible-playbook", "named")
	zone := filepath.Join(t.TempDir(), "example.com.zone")
	writeZone(t, zone, 2024010101, "")
	var servers []labServer
	var hosts []Host
	for _, name := range []string{"ns1-next", "ns2-next"} {
		s := labServer{name: name, dir: t.TempDir(), port: freePort(t)}
		t.Cleanup(func() { stopNamed(t, s.dir) })
		servers = append(servers, s)
		hosts = append(hosts, Host{Name: name, Address: "127.0.0.1", Vars: map[string]any{
			"dnsroll_lab_dir": s.dir, "dnsroll_dns_port": s.port,
		}})
	}
	req := Request{
		Playbook:   "../ansible/nameserver.yml",
		Hosts:      hosts,
		Connection: "local",
		ExtraVars: map[string]any{"dnsroll_zones": []map[string]string{
			{"name": "example.com", "src": zone},
		}},
	}
	run := func(wantChanged bool) {
		t.Helper()
		res, err := (&Runner{}).Run(context.Background(), req, nil)
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
		for _, s := range servers {
			if got := res.Hosts[s.name].Changed > 0; got != wantChanged {
				t.Errorf("%s changed = %v, want %v (stats %+v)", s.name, got, wantChanged, res.Hosts[s.name])
			}
		}
	}

	run(true)
	pids := map[string]int{}
	for _, s := range servers {
		pids[s.name] = namedPID(t, s.dir)
		for _, proto := range []string{"udp", "tcp"} {
			wantA(t, s, proto, "www.example.com.", "192.0.2.10")
		}
		checkRefusals(t, s)
	}

	t.Log("re-run with nothing changed")
	run(false)
	for _, s := range servers {
		if got := namedPID(t, s.dir); got != pids[s.name] {
			t.Errorf("%s: named pid %d after re-run, want %d", s.name, got, pids[s.name])
		}
		wantA(t, s, "udp", "www.example.com.", "192.0.2.10")
	}

	t.Log("re-run with a new zone serial and record, packed in the caller's scratch directory")
	writeZone(t, zone, 2024010102, "new\tIN A 192.0.2.20")
	scratch := t.TempDir()
	req.ExtraVars["dnsroll_scratch_dir"] = scratch
	run(true)
	delete(req.ExtraVars, "dnsroll_scratch_dir")
	// The caller's directory holds the archive and is the caller's to remove.
	if _, err := os.Stat(filepath.Join(scratch, "zones.tar.gz")); err != nil {
		t.Errorf("the zone archive was not packed in dnsroll_scratch_dir: %v", err)
	}
	for _, s := range servers {
		if got := namedPID(t, s.dir); got != pids[s.name] {
			t.Errorf("%s: named pid %d after reload, want %d", s.name, got, pids[s.name])
		}
		for _, proto := range []string{"udp", "tcp"} {
			wantA(t, s, proto, "new.example.com.", "192.0.2.20")
		}
	}

	// A run killed after installing the zone set but before the reload
	// leaves it in place; its retry installs nothing and must still reload.
	// The install is the role's own script, run as the role runs it.
	t.Log("re-run after an interrupted run")
	writeZone(t, zone, 2024010103, "late\tIN A 192.0.2.30")
	zones := []map[string]string{{"name": "example.com", "src": zone}}
	for _, s := range servers {
		archive := filepath.Join(s.dir, "zone-sets", "zones.tar.gz")
		packZones(t, zones, archive)
		if out, err := exec.Command("sh", "../ansible/roles/nameserver/files/install-zones.sh", archive,
			filepath.Join(s.dir, "zones"), filepath.Join(s.dir, "zone-sets")).CombinedOutput(); err != nil || !strings.HasPrefix(string(out), "installed ") {
			t.Fatalf("install-zones.sh: %v: %s", err, out)
		}
		wantA(t, s, "udp", "www.example.com.", "192.0.2.10") // not reloaded yet
	}
	run(true)
	for _, s := range servers {
		wantA(t, s, "udp", "late.example.com.", "192.0.2.30")
	}
}

// A zone that BIND refuses, among many, fails the play with a message that
// names the zone and the line, and that activities.rejected recognises
// ("failed to validate"); the zones already served stay as they were.
func TestNameserverRoleBrokenZone(t *testing.T) {
	needlab.Programs(t, "ansible-playbook", "named")
	src := t.TempDir()
	s := labServer{name: "ns1-next", dir: t.TempDir(), port: freePort(t)}
	t.Cleanup(func() { stopNamed(t, s.dir) })
	var zones []map[string]string
	for i := range 50 {
		name := fmt.Sprintf("zone%02d.example", i)
		path := filepath.Join(src, name+".zone")
		writeZone(t, path, 1, "")
		zones = append(zones, map[string]string{"name": name, "src": path})
	}
	zones = append(zones, map[string]string{"name": "example.com", "src": filepath.Join(src, "example.com.zone")})
	writeZone(t, filepath.Join(src, "example.com.zone"), 2024010101, "")
	req := Request{
		Playbook:   "../ansible/nameserver.yml",
		Hosts:      []Host{{Name: s.name, Address: "127.0.0.1", Vars: map[string]any{"dnsroll_lab_dir": s.dir, "dnsroll_dns_port": s.port}}},
		Connection: "local",
		ExtraVars:  map[string]any{"dnsroll_zones": zones},
	}
	if _, err := (&Runner{}).Run(context.Background(), req, nil); err != nil {
		t.Fatalf("Run: %v", err)
	}
	wantA(t, s, "udp", "www.example.com.", "192.0.2.10")
	before, err := os.Readlink(filepath.Join(s.dir, "zones"))
	if err != nil {
		t.Fatal(err)
	}

	// Line 6 of zone37 is bad; every other zone gets a new record.
	for i, z := range zones {
		extra := "new\tIN A 192.0.2.20"
		if i == 37 {
			extra = "broken\tIN A 192.0.2"
		}
		writeZone(t, z["src"], 2024010102, extra)
	}
	res, err := (&Runner{}).Run(context.Background(), req, nil)
	if err == nil {
		t.Fatal("Run with a broken zone succeeded")
	}
	for _, want := range []string{"zone37.example.zone:6:", "zone zone37.example/IN", "bad dotted quad", "failed to validate 1 of 51 zones"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %q:\n%v", want, err)
		}
	}
	if len(res.Failures) == 0 || !strings.Contains(res.Failures[len(res.Failures)-1].Message, "failed to validate") {
		t.Errorf("failures %+v: the last does not say \"failed to validate\", which activities.rejected looks for", res.Failures)
	}
	if after, err := os.Readlink(filepath.Join(s.dir, "zones")); err != nil || after != before {
		t.Errorf("zone directory points at %q (%v) after the failed run, want %q", after, err, before)
	}
	wantA(t, s, "udp", "www.example.com.", "192.0.2.10")
	if r := query(t, s, "udp", "new.example.com.", dns.TypeA, dns.ClassINET); r.Rcode != dns.RcodeNameError {
		t.Errorf("new.example.com: %s after the failed run, want NXDOMAIN (the old zone)", dns.RcodeToString[r.Rcode])
	}
}

// RFC 2317 classless reverse zones have "/" in their names: the role
// serves them, the real name in named.conf, and a resolver following the
// parent's CNAME gets the PTR from the child zone. Their file names on
// the server hold no "/" (the archive would make a directory of it).
func TestNameserverRoleServesClasslessReverseZones(t *testing.T) {
	needlab.Programs(t, "ansible-playbook", "named")
	src := t.TempDir()
	parent, child := filepath.Join(src, "parent.zone"), filepath.Join(src, "child.zone")
	soa := "$TTL 300\n@ IN SOA ns1.example.com. hostmaster.example.com. 7 3600 600 86400 300\n@ IN NS ns1.example.com.\n"
	for path, text := range map[string]string{
		parent: soa + "0/26 IN NS ns1.example.com.\n1 IN CNAME 1.0/26\n2 IN CNAME 2.0/26.2.0.192.in-addr.arpa.\n",
		child:  soa + "1 IN PTR host1.customer.example.\n2 IN PTR host2.customer.example.\n",
	} {
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s := labServer{name: "ns1-next", dir: t.TempDir(), port: freePort(t)}
	t.Cleanup(func() { stopNamed(t, s.dir) })
	req := Request{
		Playbook:   "../ansible/nameserver.yml",
		Hosts:      []Host{{Name: s.name, Address: "127.0.0.1", Vars: map[string]any{"dnsroll_lab_dir": s.dir, "dnsroll_dns_port": s.port}}},
		Connection: "local",
		ExtraVars: map[string]any{"dnsroll_zones": []map[string]string{
			{"name": "2.0.192.in-addr.arpa", "src": parent},
			{"name": "0/26.2.0.192.in-addr.arpa", "src": child},
		}},
	}
	if _, err := (&Runner{}).Run(context.Background(), req, nil); err != nil {
		t.Fatalf("Run: %v", err)
	}
	for _, proto := range []string{"udp", "tcp"} {
		r := query(t, s, proto, "0/26.2.0.192.in-addr.arpa.", dns.TypeSOA, dns.ClassINET)
		if r.Rcode != dns.RcodeSuccess || !r.Authoritative || len(r.Answer) != 1 || r.Answer[0].(*dns.SOA).Serial != 7 {
			t.Errorf("%s SOA of the classless zone: %v", proto, r)
		}
		// The resolver's two steps: the parent's CNAME, then the PTR.
		for _, n := range []string{"1", "2"} {
			for name, want := range map[string]string{
				n + ".2.0.192.in-addr.arpa.":      "CNAME " + n + ".0/26.2.0.192.in-addr.arpa.",
				n + ".0/26.2.0.192.in-addr.arpa.": "PTR host" + n + ".customer.example.",
			} {
				r := query(t, s, proto, name, dns.TypePTR, dns.ClassINET)
				want = name + " 300 IN " + want
				if r.Rcode != dns.RcodeSuccess || !r.Authoritative || len(r.Answer) == 0 || strings.Join(strings.Fields(r.Answer[0].String()), " ") != want {
					t.Errorf("%s PTR %s: rcode %s aa %v answer %v, want %q", proto, name, dns.RcodeToString[r.Rcode], r.Authoritative, r.Answer, want)
				}
			}
		}
	}
	files, err := filepath.Glob(filepath.Join(s.dir, "zones", "*"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if st, err := os.Stat(f); err != nil || st.IsDir() {
			t.Errorf("%s in the zone set: a directory (%v), want files only", f, err)
		}
	}
}

// packZones builds the role's zone archive with its own script.
func packZones(t *testing.T, zones []map[string]string, out string) {
	t.Helper()
	b, err := json.Marshal(zones)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("python3", "../ansible/roles/nameserver/files/zone-archive.py", out, zoneNameRE(t))
	cmd.Stdin = bytes.NewReader(b)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("zone-archive.py: %v: %s", err, out)
	}
}

// zoneNameRE is the role's rule for zone names (nameserver_zone_name_re).
func zoneNameRE(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../ansible/roles/nameserver/vars/main.yml")
	if err != nil {
		t.Fatal(err)
	}
	var vars struct {
		RE string `yaml:"nameserver_zone_name_re"`
	}
	if err := yaml.Unmarshal(b, &vars); err != nil || vars.RE == "" {
		t.Fatalf("nameserver_zone_name_re in vars/main.yml: %q, %v", vars.RE, err)
	}
	return vars.RE
}

// The packing step refuses zone entries that could escape a file name or
// a named.conf string, and names listed twice, before anything is
// copied; the list may come from stdin or from dnsroll_zones_file.
func TestZoneArchiveChecksTheEntries(t *testing.T) {
	dir := t.TempDir()
	zone := filepath.Join(dir, "example.com.zone")
	writeZone(t, zone, 2024010101, "")
	out := filepath.Join(dir, "zones.tar.gz")
	// long is a zone name of n characters, in labels of at most 63.
	long := func(n int) string {
		name := strings.Repeat(strings.Repeat("a", 62)+".", n/63) + strings.Repeat("a", n%63)
		return strings.Trim(name, ".")
	}
	for _, c := range []struct {
		zones string
		want  string // empty: packed
	}{
		{`[{"name": "example.com", "src": "` + zone + `"}]`, ""},
		{`[]`, "dnsroll_zones must list at least one zone"},
		{`[{"name": "evil; include /etc/passwd; x", "src": "` + zone + `"}]`, "each dnsroll_zones entry needs name (a zone name without a trailing dot) and src (an absolute path on the controller); 1 do not, the first:"},
		{`[{"name": "example.com.", "src": "` + zone + `"}]`, "1 do not"},
		{`[{"name": "0/26.2.0.192.in-addr.arpa", "src": "` + zone + `"}]`, ""},
		// No name holds the escape of "/" in file names, so none collides.
		{`[{"name": "0%2F26.2.0.192.in-addr.arpa", "src": "` + zone + `"}]`, "1 do not"},
		{`[{"name": "../etc", "src": "` + zone + `"}]`, "1 do not"},
		// A file name on Linux has at most 255 bytes, ".zone" and escapes included.
		{`[{"name": "` + long(250) + `", "src": "` + zone + `"}]`, ""},
		{`[{"name": "` + long(251) + `", "src": "` + zone + `"}]`, "1 do not"},
		{`[{"name": "` + long(247) + `/a", "src": "` + zone + `"}]`, "1 do not"},
		{`[{"name": "example.com", "src": "relative.zone"}]`, "1 do not"},
		{`[{"name": "example.com", "src": "` + zone + `"}, {"name": "Example.COM", "src": "` + zone + `"}]`, "dnsroll_zones must list each zone once; listed again: Example.COM"},
	} {
		for _, fromFile := range []bool{false, true} {
			args := []string{"../ansible/roles/nameserver/files/zone-archive.py", out, zoneNameRE(t)}
			cmd := exec.Command("python3", args...)
			if fromFile {
				list := filepath.Join(dir, "zones.json")
				if err := os.WriteFile(list, []byte(c.zones), 0o644); err != nil {
					t.Fatal(err)
				}
				cmd = exec.Command("python3", append(args, list)...)
				cmd.Stdin = strings.NewReader("[]")
			} else {
				cmd.Stdin = strings.NewReader(c.zones)
			}
			_ = os.Remove(out)
			got, err := cmd.CombinedOutput()
			_, statErr := os.Stat(out)
			switch {
			case c.want == "" && (err != nil || statErr != nil):
				t.Errorf("%s (file %v): %v, %v: %s", c.zones, fromFile, err, statErr, got)
			case c.want != "" && (err == nil || !strings.Contains(string(got), c.want) || statErr == nil):
				t.Errorf("%s (file %v): %v: %s, want %q and no archive", c.zones, fromFile, err, got, c.want)
			}
		}
	}
}

// wantA checks that s answers name authoritatively with one A record.
func wantA(t *testing.T, s labServer, proto, name, want string) {
	t.Helper()
	r := query(t, s, proto, name, dns.TypeA, dns.ClassINET)
	if r.Rcode != dns.RcodeSuccess || !r.Authoritative || len(r.Answer) != 1 {
		t.Fatalf("%s %s %s: rcode %s aa %v answers %d, want an authoritative answer",
			s.name, proto, name, dns.RcodeToString[r.Rcode], r.Authoritative, len(r.Answer))
	}
	if a, ok := r.Answer[0].(*dns.A); !ok || a.A.String() != want {
		t.Errorf("%s %s %s: answer %v, want A %s", s.name, proto, name, r.Answer[0], want)
	}
}

// checkRefusals checks the authoritative-only settings: no recursion, no
// zone transfer, no version disclosure.
func checkRefusals(t *testing.T, s labServer) {
	t.Helper()
	if r := query(t, s, "udp", "example.org.", dns.TypeA, dns.ClassINET); r.Rcode != dns.RcodeRefused {
		t.Errorf("%s: query outside the zone got %s, want REFUSED", s.name, dns.RcodeToString[r.Rcode])
	}
	if r := query(t, s, "tcp", "example.com.", dns.TypeAXFR, dns.ClassINET); r.Rcode != dns.RcodeRefused {
		t.Errorf("%s: AXFR got %s, want REFUSED", s.name, dns.RcodeToString[r.Rcode])
	}
	r := query(t, s, "udp", "version.bind.", dns.TypeTXT, dns.ClassCHAOS)
	for _, rr := range r.Answer {
		t.Errorf("%s: version.bind answered %v, want no version", s.name, rr)
	}
}

func query(t *testing.T, s labServer, proto, name string, qtype, qclass uint16) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.Question[0].Qclass = qclass
	m.RecursionDesired = true
	c := &dns.Client{Net: proto, Timeout: 2 * time.Second}
	r, _, err := c.Exchange(m, net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)))
	if err != nil {
		t.Fatalf("%s %s %s: %v", s.name, proto, name, err)
	}
	return r
}

func writeZone(t *testing.T, path string, serial int, extra string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(fmt.Sprintf(zoneText, serial, extra)), 0o644); err != nil {
		t.Fatal(err)
	}
}

// freePort finds a loopback port that is free for both UDP and TCP.
func freePort(t *testing.T) int {
	t.Helper()
	port, err := freeport.Loopback()
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// namedPID is the pid of the lab named of dir, which must be running.
func namedPID(t *testing.T, dir string) int {
	t.Helper()
	pid, err := pidfile.Running(filepath.Join(dir, "named.pid"), "named")
	if err != nil {
		t.Fatalf("named: %v", err)
	}
	return pid
}

// stopNamed stops the lab named of dir, if the role started one, and
// waits for it to exit so no named outlives the test.
func stopNamed(t *testing.T, dir string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := pidfile.Stop(ctx, filepath.Join(dir, "named.pid"), "named", syscall.SIGTERM); err != nil {
		t.Errorf("named did not stop on SIGTERM: %v", err)
	}
}
