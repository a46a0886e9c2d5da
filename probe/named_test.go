package probe

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dnsroll/dnsroll/internal/freeport"
	"github.com/dnsroll/dnsroll/internal/localnamed"
	"github.com/dnsroll/dnsroll/internal/needlab"
	"github.com/dnsroll/dnsroll/internal/testfiles"
	"github.com/dnsroll/dnsroll/zone"
)

// startNamed serves text as origin on a real named on loopback until the
// test ends, and returns its address. Tests using it are skipped where
// named is not installed.
func startNamed(t *testing.T, origin, text string) string {
	t.Helper()
	needlab.Programs(t, "named")
	dir := t.TempDir()
	zf := filepath.Join(dir, "zone")
	if err := os.WriteFile(zf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := localnamed.Start(dir, origin, zf, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s.Addr
}

// realZone holds what the analysis got wrong on real zones (issue 17):
// records that miekg/dns prints differently from how they were written,
// an escaped name, an unknown type, types BIND serves that miekg/dns does
// not know or cannot read as BIND prints them (named by number, as
// unknown types are), DNAME, CNAME loops and a chain past
// BIND's limit, an RRset split with two TTLs, $GENERATE, a delegation
// with glue and DS, a wildcard.
const realZone = exampleApex + `www     A     192.0.2.10
h       HTTPS 1 . port=8443 alpn=h2
_25._tcp.mail TLSA 3 1 1 ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789
n       NAPTR 100 10 "u" "E2U+sip" "!^.*$!sip:info@example\.com!" .
\070oo  A     192.0.2.7
unk     TYPE65534 \# 2 ABCD
_dsync  DSYNC CDS 1 5359 ds-boot.example.com.
ipk     IPSECKEY 10 1 2 192.0.2.38 AQNRU3mG7TVTO2BkR47usntb102uFJtugbo6BSGvgqt4AQ==
after-ipk A   192.0.2.39
wks     WKS   10.0.0.1 6 ( 0 1 2 21 23 )
gpos    GPOS  "-22.6882" "116.8652" "250.0"
nid     NID   10 0014:4fff:ff20:ee64
l64     L64   10 2001:0DB8:1140:1000
a6      A6    64 ::1:2:3:4 a6pfx
a6all   A6    0 2001:db8::1
a6none  A6    128 a6pfx
atma    ATMA  39246f00e7c9c0312000100100001234567800
atmae   ATMA  +358.400.1234567
sink    SINK  1 0 0 Zm9v
doa     DOA   0 1 2 "" aGVsbG8=
doa2    DOA   1234567 1 2 "image/gif" -
wallet  WALLET "BTC" "has space" "x\"y" "\200"
old     DNAME new
x.new   A     192.0.2.5
www.old CNAME ns1
a.new   CNAME b.old
b.new   TXT   "x"
alias   CNAME www.old
loop    CNAME loop
c0 CNAME c1
c1 CNAME c2
c2 CNAME c3
c3 CNAME c4
c4 CNAME c5
c5 CNAME c6
c6 CNAME c7
c7 CNAME c8
c8 CNAME c9
c9 CNAME c10
c10 CNAME c11
c11 CNAME c12
c12 A 192.0.2.12
split 600 A 192.0.2.20
gap   A  192.0.2.30
split 100 A 192.0.2.21
$GENERATE 1-3 g$ A 192.0.2.$
sub     NS    ns.sub
sub     NS    ns.other.net.
sub     DS    12345 8 2 0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF
ns.sub  A     192.0.2.77
sib     NS    ns1
sib     NS    ns.sub
*.wild  TXT   "wild"
`

func realChecks(t *testing.T, text string) []Check {
	t.Helper()
	return Checks(parseExample(t, text), Scope{All: true, Names: []string{"x.old", "nope", "x.wild", "deep.sub", "a.old"}})
}

// parseExample parses text as the zone example.com.
func parseExample(t *testing.T, text string) *zone.Zone {
	t.Helper()
	z, err := zone.Parse(strings.NewReader(text), "example.com", "test")
	if err != nil {
		t.Fatal(err)
	}
	return z
}

// greenJob compares green (ns1-next) with blue (ns1) on checks of
// example.com at serial 7, as a rollout's verify step does.
func greenJob(green, blue string, checks []Check) Job {
	return Job{Role: "green", Targets: []Server{{Name: "ns1-next", Addr: green}}, Baseline: []Server{{Name: "ns1", Addr: blue}},
		BaselineRole: "blue", Checks: checks, Serials: map[string]uint32{"example.com": 7}}
}

// analyzeOnce runs one round of job, each query given two attempts of a
// second.
func analyzeOnce(job Job) Analysis {
	p := &Prober{Timeout: time.Second, Attempts: 2}
	return p.Analyze(context.Background(), job, Settings{Thresholds: Thresholds{Rounds: 1}})
}

// Two real named serving the same zone pass, with every answer as the
// zone model expects; a changed record of each kind fails, naming it.
func TestAnalysisOnRealBIND(t *testing.T) {
	checks := realChecks(t, realZone)
	blue := startNamed(t, "example.com", realZone)
	green := startNamed(t, "example.com", realZone)
	job := greenJob(green, blue, checks)
	an := analyzeOnce(job)
	if !an.OK {
		t.Fatalf("identical servers fail: %s\n%+v", an.Reason, an.Reports)
	}
	if r := an.Reports[0]; r.Kinds[KindAnswer].Pass < 2*len(checks) || r.Kinds[KindDiff].Pass < len(checks) {
		t.Errorf("not every check was asked and compared: %+v", r.Kinds)
	}

	mutations := []struct{ name, from, to, want string }{
		{"glue", "ns.sub  A     192.0.2.77", "ns.sub  A     192.0.2.78", "ns.sub.example.com. A"},
		{"NS at a cut", "sub     NS    ns.other.net.", "sub     NS    ns.other.org.", "sub.example.com. NS"},
		{"DS", "sub     DS    12345 8 2 0123", "sub     DS    12346 8 2 0123", "sub.example.com. DS"},
		{"DNAME", "old     DNAME new", "old     DNAME www", "old.example.com. DNAME www.example.com."},
		{"TLSA", "ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789", "ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456788", "_25._tcp.mail.example.com. TLSA"},
		{"escaped name", `\070oo  A     192.0.2.7`, `\070oo  A     192.0.2.8`, "foo.example.com. A"},
		{"unknown type", `\# 2 ABCD`, `\# 2 ABCE`, "unk.example.com. TYPE65534"},
		{"DSYNC", "CDS 1 5359", "CDS 1 5360", "_dsync.example.com. DSYNC"},
		{"WKS", "10.0.0.1 6 ( 0 1 2 21 23 )", "10.0.0.1 6 ( 0 1 2 21 25 )", "wks.example.com. WKS"},
		{"GPOS", `"116.8652"`, `"116.8653"`, "gpos.example.com. GPOS"},
		{"NID", "0014:4fff:ff20:ee64", "0014:4fff:ff20:ee65", "nid.example.com. NID"},
		{"A6", "64 ::1:2:3:4 a6pfx", "64 ::1:2:3:5 a6pfx", "a6.example.com. A6"},
		{"ATMA", "+358.400.1234567", "+358.400.1234568", "atmae.example.com. ATMA"},
		{"SINK", "1 0 0 Zm9v", "1 0 0 Zm9w", "sink.example.com. SINK"},
		{"DOA", `"image/gif"`, `"image/png"`, "doa2.example.com. DOA"},
		{"WALLET", `"has space"`, `"has  space"`, "wallet.example.com. WALLET"},
		{"after an IPSECKEY", "after-ipk A   192.0.2.39", "after-ipk A   192.0.2.40", "after-ipk.example.com. A"},
	}
	for _, m := range mutations {
		t.Run(m.name, func(t *testing.T) {
			changed := strings.Replace(realZone, m.from, m.to, 1)
			if changed == realZone {
				t.Fatalf("mutation %q does not apply", m.from)
			}
			mutated := startNamed(t, "example.com", changed)
			j := job
			j.Targets = []Server{{Name: "ns1-next", Addr: mutated}}
			an := analyzeOnce(j)
			t.Logf("%s: %s", m.name, an.Reason)
			if an.OK || !strings.Contains(an.Reason, m.want) {
				t.Errorf("a changed %s: ok %v, reason %q, want it to name %q", m.name, an.OK, an.Reason, m.want)
			}
		})
	}
}

// A server authoritative for the root answers the recursion check's
// name with an authoritative NXDOMAIN, which is not recursion.
func TestAnalysisOfARootZone(t *testing.T) {
	const root = `$TTL 86400
.        SOA a.root-servers.net. nstld.verisign-grs.com. 2026120100 1800 900 604800 86400
.        NS  a.root-servers.net.
a.root-servers.net. A 198.41.0.4
example. NS ns.example.
ns.example. A 192.0.2.53
`
	z, err := zone.Parse(strings.NewReader(root), ".", "root")
	if err != nil {
		t.Fatal(err)
	}
	addr := startNamed(t, ".", root)
	job := Job{Role: "green", Targets: []Server{{Name: "ns1-next", Addr: addr}}, Checks: Checks(z, Scope{All: true}), Serials: map[string]uint32{".": 2026120100}}
	if an := analyzeOnce(job); !an.OK {
		t.Fatalf("root zone: %s", an.Reason)
	}
}

// startNamedZones serves the primary zone statements zones (in dir) on a
// real named on loopback until the test ends, once it answers last's SOA.
func startNamedZones(t *testing.T, dir, zones, last string) string {
	t.Helper()
	needlab.Programs(t, "named")
	port, err := freeport.Loopback()
	if err != nil {
		t.Fatal(err)
	}
	addr := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port))
	n, err := localnamed.Run(dir, localnamed.Conf(dir, addr, "", zones))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Stop)
	if err := n.Await(60*time.Second, func() error {
		_, err := SOASerial(context.Background(), addr.String(), last, time.Second)
		return err
	}); err != nil {
		t.Fatalf("named: %v\n%s", err, n.Log())
	}
	return addr.String()
}

// TestCoverageOnNamed analyses 2,000 zones on real named, blue and green,
// with a threshold of 100: 20 zones changed, found by blue's serials, and
// a sample of 30 are asked at every name over UDP and TCP, every other
// zone its SOA.
func TestCoverageOnNamed(t *testing.T) {
	if testing.Short() {
		t.Skip("2,000 zones on two named")
	}
	const n = 2000
	blueDir, greenDir := t.TempDir(), t.TempDir()
	var blueConf, greenConf strings.Builder
	zones := fleetZones(n)
	paths := make([]string, n)
	for i, z := range zones {
		text := smallZone(1, "192.0.2.1")
		testfiles.Write(t, filepath.Join(blueDir, z.Name), text)
		blueConf.WriteString(localnamed.Primary(z.Name, filepath.Join(blueDir, z.Name)))
		if i%100 == 3 {
			zones[i].Serial, text = 2, smallZone(2, "192.0.2.2")
		}
		paths[i] = filepath.Join(greenDir, z.Name)
		testfiles.Write(t, paths[i], text)
		greenConf.WriteString(localnamed.Primary(z.Name, paths[i]))
	}
	last := zones[n-1].Name
	blue, green := startNamedZones(t, blueDir, blueConf.String(), last), startNamedZones(t, greenDir, greenConf.String(), last)
	p := &Prober{Timeout: 2 * time.Second, Attempts: 3}
	ctx := context.Background()
	full, cov := Cover(zones, Policy{FullUpTo: 100, Sample: 30, Seed: 9}, p.BaselineSerials(ctx, []string{blue}, zones))
	checks := coverChecks(t, zones, paths, full, &cov)
	if cov.Changed != 20 || cov.Sampled != 30 || cov.ChangedBy != ChangedBaseline || cov.Full < 30 || cov.Full > 50 {
		t.Fatalf("coverage %+v", cov)
	}
	asked := map[string]bool{}
	for _, c := range checks {
		asked[c.Name+" "+c.Type] = true
	}
	for i, z := range zones {
		if got := asked["www."+z.Name+". A"]; got != full[i] || full[i] != (i%100 == 3 || slices.Contains(Sample(zones, 30, 9), i)) {
			t.Errorf("zone %s: www asked %v, in full %v", z.Name, got, full[i])
		}
	}
	serials := map[string]uint32{}
	for _, z := range zones {
		serials[z.Name] = z.Serial
	}
	a := p.Analyze(ctx, Job{
		Role: "green", Targets: []Server{{"ns1-next", green}}, BaselineRole: "blue", Baseline: []Server{{"ns1", blue}},
		Checks: checks, Serials: serials,
	}, Settings{Protocols: []string{"udp", "tcp"}, Thresholds: Thresholds{Rounds: 1}, ExpectChanges: true})
	r := a.Reports[0]
	// Every check over both protocols but the SOA-only ones, over UDP.
	soaOnly := 0
	for _, c := range checks {
		if c.OneProtocol {
			soaOnly++
		}
	}
	if soaOnly != n-cov.Full {
		t.Errorf("%d checks over one protocol, want the %d zones outside the full set", soaOnly, n-cov.Full)
	}
	if !a.OK || r.Kinds[KindSerial].Pass != n || r.Kinds[KindAnswer].Pass != 2*len(checks)-soaOnly {
		t.Errorf("analysis %v (%s): serials %+v, answers %+v of %d checks (%d over UDP alone)", a.OK, a.Reason, r.Kinds[KindSerial], r.Kinds[KindAnswer], len(checks), soaOnly)
	}
	if len(r.Diffs) != 5 || r.DiffsOmitted != n-5 || !strings.Contains(r.Diffs[0].Summary, "1 changed: www.") {
		t.Errorf("diffs: %d kept, %d omitted, first %+v", len(r.Diffs), r.DiffsOmitted, r.Diffs)
	}
}

// A referral whose glue does not fit the UDP buffer: named sends the glue
// that fits and sets no TC flag, so no resolver retries over TCP. Two
// identical servers pass; over TCP the glue is whole; a green whose glue
// holds a wrong address still fails, over UDP as over TCP.
func TestGlueBeyondTheUDPBuffer(t *testing.T) {
	var b strings.Builder
	b.WriteString(exampleApex)
	for i := range 13 {
		fmt.Fprintf(&b, "child NS nameserver-number-%02d.child\n", i)
		fmt.Fprintf(&b, "nameserver-number-%02d.child A 192.0.2.%d\n", i, 100+i)
		for j := range 4 {
			fmt.Fprintf(&b, "nameserver-number-%02d.child AAAA 2001:db8::%d:%d\n", i, i, j)
		}
	}
	text := b.String()
	checks := Checks(parseExample(t, text), Scope{All: true})
	blue := startNamed(t, "example.com", text)
	green := startNamed(t, "example.com", text)
	job := greenJob(green, blue, checks)
	if an := analyzeOnce(job); !an.OK {
		t.Fatalf("identical servers fail: %s", an.Reason)
	}
	wrong := startNamed(t, "example.com", strings.Replace(text, "A 192.0.2.100\n", "A 192.0.2.99\n", 1))
	job.Targets = []Server{{Name: "ns1-next", Addr: wrong}}
	an := analyzeOnce(job)
	if an.OK || !strings.Contains(an.Reason, "child.example.com. NS") {
		t.Errorf("a wrong glue address: ok %v, reason %q", an.OK, an.Reason)
	}
}

// A green that answers a name its zone lacks fails, when every name is
// checked, even with nothing expected to change: here an added wildcard,
// which changes the answer for every name that does not exist and which
// no check of the zone's own names sees.
func TestGreenAnsweringANameTheZoneLacks(t *testing.T) {
	text := exampleApex + "www A 192.0.2.10\n"
	blue := startNamed(t, "example.com", text)
	green := startNamed(t, "example.com", text+"* A 192.0.2.99\n")
	an := analyzeOnce(greenJob(green, blue, Checks(parseExample(t, text), Scope{All: true})))
	if an.OK || !strings.Contains(an.Reason, DenialCheckLabel+".example.com. A") {
		t.Errorf("a green with an added wildcard: ok %v, reason %q", an.OK, an.Reason)
	}
}

// probe.types may hold NSEC or KEY, which may stand beside a CNAME: named
// answers them at a CNAME's name, written or a wildcard's, with NODATA
// and does not follow it. Every green of an unsigned zone with a CNAME
// failed such a check, the zone model expecting the chain.
func TestTypesBesideACNAMEOnRealBIND(t *testing.T) {
	text := exampleApex + "www A 192.0.2.10\nalias CNAME www\ngone CNAME nothere\n*.wc CNAME www\n"
	checks := Checks(parseExample(t, text), Scope{Names: []string{"alias", "gone", "x.wc"}, Types: []string{"NSEC", "KEY", "SIG", "NXT", "A"}})
	p := &Prober{Timeout: time.Second, Attempts: 2}
	rep := p.Probe(context.Background(), startNamed(t, "example.com", text), []string{"udp"}, checks)
	if !rep.OK {
		t.Errorf("%d of %d checks failed: %+v", rep.Failed, len(checks), rep.Results)
	}
}

// A name of probe.names that green's zone file lacks is asked for A, and
// blue, which holds only a TXT there, answers it NOERROR with no records:
// green's NXDOMAIN says the name and its TXT are gone, a difference from
// blue, where the two empty answers compared equal and the TXT's removal
// passed. A name green adds is still reported as added, and two servers
// that both answer NXDOMAIN still agree.
func TestGreenDenyingANameBlueHolds(t *testing.T) {
	text := exampleApex + "www A 192.0.2.10\n"
	greenText := text + "new A 192.0.2.20\n"
	blue := startNamed(t, "example.com", text+`_dmarc TXT "v=DMARC1; p=none"`+"\n")
	green := startNamed(t, "example.com", greenText)
	an := analyzeOnce(greenJob(green, blue, Checks(parseExample(t, greenText), Scope{All: true, Names: []string{"_dmarc", "nope"}})))
	want := "differs from blue ns1: added new.example.com. A: [] → [192.0.2.20]; changed _dmarc.example.com. A: [; rcode NOERROR] → [; rcode NXDOMAIN] ("
	if an.OK || !strings.Contains(an.Reason, want) {
		t.Errorf("green without blue's _dmarc: ok %v, reason %q\nwant it to hold %q", an.OK, an.Reason, want)
	}
}

// A cut below a DNAME is occluded (a query there gets the DNAME), but
// named still sends the addresses below it as glue when another cut's
// name server is there (measured on 9.18.49): a green whose zone lacks
// that glue, or holds another address, fails the referral's check. The
// zone model took them for the zone's own data, which a server may send
// or not, and a green without the glue passed.
func TestGlueBelowAnOccludedCutOnRealBIND(t *testing.T) {
	text := exampleApex + `d DNAME target.example.net.
c.d NS ns.c.d
ns.c.d A 192.0.2.50
sub NS ns.c.d
`
	checks := Checks(parseExample(t, text), Scope{All: true})
	blue := startNamed(t, "example.com", text)
	job := greenJob(startNamed(t, "example.com", text), blue, checks)
	if an := analyzeOnce(job); !an.OK {
		t.Fatalf("identical servers fail: %s", an.Reason)
	}
	for _, green := range []string{
		strings.Replace(text, "ns.c.d A 192.0.2.50\n", "", 1),
		strings.Replace(text, "A 192.0.2.50", "A 192.0.2.51", 1),
	} {
		job.Targets = []Server{{Name: "ns1-next", Addr: startNamed(t, "example.com", green)}}
		if an := analyzeOnce(job); an.OK || !strings.Contains(an.Reason, "sub.example.com. NS") {
			t.Errorf("green serving\n%s\nok %v, reason %q", green, an.OK, an.Reason)
		}
	}
}
