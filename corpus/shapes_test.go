package corpus

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/dnsroll/dnsroll/activities"
	"github.com/dnsroll/dnsroll/bundle"
	"github.com/dnsroll/dnsroll/config"
	"github.com/dnsroll/dnsroll/internal/fleettest"
	"github.com/dnsroll/dnsroll/internal/freeport"
	"github.com/dnsroll/dnsroll/internal/localnamed"
	"github.com/dnsroll/dnsroll/internal/needlab"
	"github.com/dnsroll/dnsroll/preflight"
	"github.com/dnsroll/dnsroll/zone"
)

// TestShapes serves zone shapes that operators' zones have and the corpus
// lacks (escaped and long names, IDN, TXT of many and long strings, sets
// that need TCP, CAA/TLSA/SVCB/..., glue of every kind, wildcards beside
// cuts, DNAME, CNAME chains and loops across zones, $ORIGIN/$GENERATE
// syntax, TTL extremes, signed NSEC and NSEC3, forty zones at once) on
// two real named. Identical servers, or the same data written otherwise,
// must pass; each one-record change must fail the strict analysis naming
// the RRset in the diff, and pass a rollout of green's files that expects
// changes, noting it.

// shapeZone is one zone of a shape: its origin and file text.
type shapeZone struct{ origin, text string }

// shapeChange is green serving a shape with one edit: old replaced by new
// in the zone origin. names are what a failing analysis must mention (an
// RRset, or its change where the name alone is not enough).
type shapeChange struct {
	what, origin, old, new string
	names                  []string
	// planned passes green's files to the strict analysis too, as a
	// rollout of a new revision does: names only green has are asked.
	planned bool
	// removal takes names out: a rollout of green's files does not ask
	// them (only probe.names would), so expecting changes notes nothing.
	removal bool
}

type shape struct {
	name  string
	zones []shapeZone
	// greenText, when set, is green's file for the identical run: the
	// same data written otherwise.
	greenText map[string]string
	changes   []shapeChange
	// sign, "nsec", "nsec3" or "nsec3-optout", signs every file with one set of Ed25519
	// keys and fixed dates, so that unchanged RRsets keep their RRSIGs.
	sign string
	// rollouts are edits rolled out against blue's files as the live
	// revision, changes expected.
	rollouts []shapeRollout
}

// shapeRollout is a rollout of one edit (old replaced by new in the zone
// origin) whose live revision is blue's files: Plan's diff of the zone
// must say plan, a green serving the edited files passes Verify, and one
// serving them edited further (staleOld replaced by staleNew, a green
// answering as blue did where the plan changes an answer) fails naming
// the RRset stale.
type shapeRollout struct {
	what, origin, old, new string
	plan                   string
	staleOld, staleNew     string
	stale                  string
}

// replaceIn is an edit of the zone origin: old replaced by new once.
func replaceIn(t *testing.T, what, origin, old, new string) func(o, text string) string {
	return func(o, text string) string {
		if o != origin {
			return text
		}
		if !strings.Contains(text, old) {
			t.Fatalf("%s: %q not in %s", what, old, o)
		}
		return strings.Replace(text, old, new, 1)
	}
}

func writeZones(t *testing.T, dir string, zones []shapeZone, edit func(origin, text string) string, sign func(origin, path string) string) []activities.ZoneFile {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var out []activities.ZoneFile
	for _, z := range zones {
		path := filepath.Join(dir, preflight.RoleZoneFile(z.origin))
		if err := os.WriteFile(path, []byte(edit(z.origin, z.text)), 0o644); err != nil {
			t.Fatal(err)
		}
		if sign != nil {
			path = sign(z.origin, path)
		}
		out = append(out, activities.ZoneFile{Name: z.origin, Path: path, Serial: 1})
	}
	return out
}

// serveZones runs a named on a free loopback port serving files, once all
// answer their SOA.
func serveZones(t *testing.T, dir string, files []activities.ZoneFile) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	port, err := freeport.Loopback()
	if err != nil {
		return "", err
	}
	addr := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port))
	var zs strings.Builder
	for _, f := range files {
		zs.WriteString(localnamed.Primary(f.Name, f.Path))
	}
	n, err := localnamed.Run(dir, localnamed.Conf(dir, addr, "", zs.String()))
	if err != nil {
		return "", err
	}
	t.Cleanup(n.Stop)
	err = n.Await(30*time.Second, func() error {
		for _, f := range files {
			m := new(dns.Msg)
			m.SetQuestion(f.Name, dns.TypeSOA)
			if r, err := dns.Exchange(m, addr.String()); err != nil || len(r.Answer) == 0 {
				return fmt.Errorf("%s not served yet", f.Name)
			}
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("named: %v\n%s", err, n.Log())
	}
	return addr.String(), nil
}

func verifyZones(fleet *config.Fleet, files []activities.ZoneFile, blue, green string) error {
	_, err := verifyNotes(fleet, files, blue, green)
	return err
}

func verifyNotes(fleet *config.Fleet, files []activities.ZoneFile, blue, green string) ([]string, error) {
	return verifyRollout(fleet, files, blue, green, bundle.Store{}, "")
}

// verifyRollout runs Verify of files on green, with blue as the baseline
// and live, in store, as the live revision.
func verifyRollout(fleet *config.Fleet, files []activities.ZoneFile, blue, green string, store bundle.Store, live string) ([]string, error) {
	serials := map[string]uint32{}
	for _, f := range files {
		serials[f.Name] = f.Serial
	}
	in := activities.VerifyInput{
		StepFleet: activities.StepFleet{Fleet: fleet},
		Targets:   []activities.ProbeTarget{{Name: "ns1-next", Addr: green}},
		Baseline:  []activities.ProbeTarget{{Name: "ns1", Addr: blue}},
		Zones:     files,
		Serials:   serials,
		Live:      live,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := (&activities.Activities{Bundles: store}).Verify(ctx, in)
	return res.Notes, err
}

func runShape(t *testing.T, fleet *config.Fleet, sh shape) {
	expect, err := config.Parse([]byte(fleettest.YAML("corpus", "192.0.2.1:53", "192.0.2.2:53") + "probe: {expect_changes: true, rounds: 1, samples: 50}\n"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	same := func(_, text string) string { return text }
	var sign func(origin, path string) string
	if sh.sign != "" {
		sign = shapeSigner(t, filepath.Join(dir, "keys"), sh.sign)
	}
	files := writeZones(t, filepath.Join(dir, "blue"), sh.zones, same, sign)
	blue, err := serveZones(t, filepath.Join(dir, "blue"), files)
	if err != nil {
		t.Fatal(err)
	}
	type run struct {
		shapeChange
		edit func(origin, text string) string
	}
	runs := []run{{shapeChange: shapeChange{what: "identical"}, edit: func(o, text string) string {
		if g, ok := sh.greenText[o]; ok {
			return g
		}
		return text
	}}}
	for _, c := range sh.changes {
		runs = append(runs, run{shapeChange: c, edit: replaceIn(t, c.what, c.origin, c.old, c.new)})
	}
	// Files are written here, on the test's goroutine, and served and
	// analysed a few at once.
	gdirs, greenFiles := make([]string, len(runs)), make([][]activities.ZoneFile, len(runs))
	for i, r := range runs {
		gdirs[i] = filepath.Join(dir, fmt.Sprintf("green%d", i))
		greenFiles[i] = writeZones(t, gdirs[i], sh.zones, r.edit, sign)
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, 3)
	for i, r := range runs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			gfiles := greenFiles[i]
			green, err := serveZones(t, gdirs[i], gfiles)
			if err != nil {
				t.Errorf("%s: %v", r.what, err)
				return
			}
			planned := files
			if r.planned {
				planned = gfiles
			}
			if r.names != nil && !r.removal {
				// A rollout of green's files, changes expected: passes,
				// and notes the change.
				notes, err := verifyNotes(expect, gfiles, blue, green)
				text := strings.ToLower(strings.Join(notes, "; "))
				switch {
				case err != nil:
					t.Errorf("FALSE FAILURE expecting %s: %v", r.what, err)
				case !slices.ContainsFunc(r.names, func(n string) bool {
					rrset, _, _ := strings.Cut(n, ":") // notes name RRsets only
					return strings.Contains(text, strings.ToLower(rrset))
				}):
					t.Errorf("NOT NOTED %s: notes %q", r.what, notes)
				}
			}
			err = verifyZones(fleet, planned, blue, green)
			switch {
			case r.names == nil && err != nil:
				t.Errorf("FALSE FAILURE %s: %v", r.what, err)
			case r.names == nil:
				t.Logf("pass %s", r.what)
			case err == nil:
				t.Errorf("MISSED %s: passed", r.what)
			default:
				// The diff, before the failed checks: it must name the change.
				diff, _, _ := strings.Cut(strings.ToLower(err.Error()), "; green ns1-next: ")
				if slices.ContainsFunc(r.names, func(n string) bool { return strings.Contains(diff, strings.ToLower(n)) }) {
					t.Logf("caught %s: %s", r.what, clip(err.Error(), 600))
				} else {
					t.Errorf("UNCLEAR %s: failed without naming %v: %v", r.what, r.names, err)
				}
			}
		}()
	}
	wg.Wait()
	for i, r := range sh.rollouts {
		t.Run(r.what, func(t *testing.T) {
			runRollout(t, filepath.Join(dir, fmt.Sprintf("rollout%d", i)), sh, r, files, blue, sign)
		})
	}
}

// runRollout runs r against blue, serving files, as a rollout whose live
// revision is those files.
func runRollout(t *testing.T, dir string, sh shape, r shapeRollout, files []activities.ZoneFile, blue string, sign func(origin, path string) string) {
	expect, err := config.Parse([]byte(fleettest.YAML("corpus", "192.0.2.1:53", "192.0.2.2:53") + "probe: {expect_changes: true, rounds: 1, samples: 50}\n"))
	if err != nil {
		t.Fatal(err)
	}
	store := bundle.Store{Dir: filepath.Join(dir, "store")}
	var paths []string
	var zones []bundle.Zone
	for _, f := range files {
		paths = append(paths, f.Path)
		zones = append(zones, bundle.Zone{Name: f.Name, Path: f.Path, Serial: f.Serial})
	}
	live, err := store.Snapshot(filepath.Dir(files[0].Path), paths, zones)
	if err != nil {
		t.Fatal(err)
	}
	edit := replaceIn(t, r.what, r.origin, r.old, r.new)
	planned := writeZones(t, filepath.Join(dir, "planned"), sh.zones, edit, sign)
	further := replaceIn(t, r.what, r.origin, r.staleOld, r.staleNew)
	stale := writeZones(t, filepath.Join(dir, "stale"), sh.zones, func(o, text string) string { return further(o, edit(o, text)) }, sign)

	// Plan's diff: the live file against the planned one.
	for i, f := range planned {
		if f.Name != r.origin {
			continue
		}
		old, err := zone.ParseFile(files[i].Path, f.Name)
		if err != nil {
			t.Fatal(err)
		}
		cur, err := zone.ParseFile(f.Path, f.Name)
		if err != nil {
			t.Fatal(err)
		}
		if d := zone.Diff(old, cur).Describe(20); !strings.Contains(d, r.plan) {
			t.Errorf("Plan's diff %q\nlacks %q", d, r.plan)
		}
	}
	verify := func(servedDir string, served []activities.ZoneFile) error {
		green, err := serveZones(t, servedDir, served)
		if err != nil {
			t.Fatal(err)
		}
		_, err = verifyRollout(expect, planned, blue, green, store, live.Hash)
		return err
	}
	if err := verify(filepath.Join(dir, "planned"), planned); err != nil {
		t.Errorf("FALSE FAILURE: a green serving the plan: %v", err)
	}
	switch err := verify(filepath.Join(dir, "stale"), stale); {
	case err == nil:
		t.Errorf("MISSED: a green answering %s as the live revision passed", r.stale)
	case !strings.Contains(err.Error(), r.stale):
		t.Errorf("UNCLEAR: failed without naming %s: %v", r.stale, err)
	default:
		t.Logf("caught %s", clip(err.Error(), 600))
	}
}

// shapeSigner signs zone files with Ed25519 keys made once per origin in
// kdir, and fixed dates: Ed25519 signs deterministically, so an RRset
// that two files share gets the same RRSIG in both.
func shapeSigner(t *testing.T, kdir, mode string) func(origin, path string) string {
	if err := os.MkdirAll(kdir, 0o755); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	made := map[string]bool{}
	run := func(name string, args ...string) {
		if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
	}
	now := time.Now().UTC()
	start, end := now.Add(-time.Hour).Format("20060102150405"), now.Add(60*24*time.Hour).Format("20060102150405")
	return func(origin, path string) string {
		mu.Lock()
		if !made[origin] {
			made[origin] = true
			run("dnssec-keygen", "-q", "-K", kdir, "-a", "ED25519", "-n", "ZONE", origin)
			run("dnssec-keygen", "-q", "-K", kdir, "-a", "ED25519", "-n", "ZONE", "-f", "KSK", origin)
		}
		mu.Unlock()
		out := path + ".signed"
		args := []string{"-q", "-S", "-K", kdir, "-d", kdir, "-o", origin, "-N", "keep", "-s", start, "-e", end, "-f", out}
		switch mode {
		case "nsec3":
			args = append(args, "-3", "-", "-H", "0")
		case "nsec3-optout":
			// Salt, iterations and opt-out, as older zones still have.
			args = append(args, "-3", "c0ffee", "-H", "10", "-A")
		}
		run("dnssec-signzone", append(args, path)...)
		return out
	}
}

func TestShapes(t *testing.T) {
	needlab.Programs(t, "named", "named-checkzone", "named-compilezone")
	fleet, err := config.Parse([]byte(fleetYAML))
	if err != nil {
		t.Fatal(err)
	}
	for _, sh := range shapes {
		t.Run(sh.name, func(t *testing.T) { runShape(t, fleet, sh) })
	}
}

const soa = "$TTL 300\n@ SOA ns1 hostmaster 1 3600 600 86400 300\n NS ns1\nns1 A 192.0.2.1\n"

var long255 = strings.Repeat("x", 255)

var bigA = func() string {
	var b strings.Builder
	for i := 1; i <= 100; i++ {
		fmt.Fprintf(&b, "big A 10.0.%d.%d\n", i/200, i%200+1)
	}
	return b.String()
}()

var shapes = []shape{
	{name: "ent", zones: []shapeZone{{"example.com.", soa + "a.b.c A 192.0.2.5\n_sip._tcp.x SRV 0 5 5060 ns1\nd.e.f.g.h TXT \"deep\"\n"}},
		changes: []shapeChange{
			{"changed a.b.c A", "example.com.", "a.b.c A 192.0.2.5", "a.b.c A 192.0.2.6", []string{"a.b.c.example.com"}, false, false},
			{"removed deep name (ENTs vanish)", "example.com.", "d.e.f.g.h TXT \"deep\"\n", "", []string{"d.e.f.g.h.example.com"}, false, true},
		}},
	{name: "escapes", zones: []shapeZone{{"example.com.", escapes}},
		// The same names with other escapes: \046 for \., \065 for A.
		greenText: map[string]string{"example.com.": strings.NewReplacer(`a\.b`, `a\046b`, "sp", `\115p`).Replace(escapes)},
		changes: []shapeChange{
			{"changed a\\.b TXT", "example.com.", "a\\.b TXT 5", "a\\.b TXT 50", []string{"a\\.b.example.com"}, false, false},
			{"changed sp\\032ace TXT", "example.com.", "sp\\032ace TXT 6", "sp\\032ace TXT 60", []string{"sp\\ ace.example.com"}, false, false},
			{"changed back\\\\slash TXT", "example.com.", "back\\\\slash TXT 7", "back\\\\slash TXT 70", []string{"back\\\\slash.example.com"}, false, false},
			{"changed bin\\000ary", "example.com.", "bin\\000ary TXT 9", "bin\\000ary TXT 90", []string{"bin\\000ary.example.com"}, false, false},
			{"changed t TXT byte", "example.com.", "\\255\\254", "\\255\\253", []string{"t.example.com"}, false, false},
		}},
	{name: "case", zones: []shapeZone{{"example.com.", soa + "WWW A 192.0.2.5\nMiXeD.Sub CNAME WWW.Example.COM.\nmx MX 10 MAIL.EXAMPLE.COM.\nMAIL A 192.0.2.8\nTXTCASE TXT \"MiXeD\"\n"}},
		greenText: map[string]string{"example.com.": soa + "www A 192.0.2.5\nmixed.sub CNAME www.example.com.\nmx MX 10 mail.example.com.\nmail A 192.0.2.8\ntxtcase TXT \"MiXeD\"\n"},
		changes: []shapeChange{
			{"changed WWW A", "example.com.", "WWW A 192.0.2.5", "WWW A 192.0.2.55", []string{"www.example.com"}, false, false},
			{"case of a CNAME target (same name)", "example.com.", "CNAME WWW.Example.COM.", "CNAME www.example.COM.", nil, false, false},
			{"added a record to a set", "example.com.", "MAIL A 192.0.2.8\n", "MAIL A 192.0.2.8\nmail A 192.0.2.7\n", []string{"mail.example.com"}, false, false},
			{"changed TXT case (real)", "example.com.", "\"MiXeD\"", "\"mixed\"", []string{"txtcase.example.com"}, false, false},
		}},
	{name: "idn", zones: []shapeZone{{"xn--mnchen-3ya.de.", soa + "xn--bcher-kva A 192.0.2.5\nwww CNAME xn--bcher-kva\n"}},
		changes: []shapeChange{
			{"changed xn--bcher-kva A", "xn--mnchen-3ya.de.", "A 192.0.2.5", "A 192.0.2.6", []string{"xn--bcher-kva.xn--mnchen-3ya.de"}, false, false},
		}},
	{name: "txt", zones: []shapeZone{{"example.com.", soa + "multi TXT \"a\" \"b\" \"c\"\nlong TXT \"" + long255 + "\" \"" + long255 + "\" \"" + long255 + "\"\nempty TXT \"\"\nset TXT \"one\"\nset TXT \"two\"\n"}},
		changes: []shapeChange{
			{"swapped TXT strings", "example.com.", "\"a\" \"b\" \"c\"", "\"b\" \"a\" \"c\"", []string{"multi.example.com"}, false, false},
			{"split into strings", "example.com.", "\"a\" \"b\" \"c\"", "\"ab\" \"c\"", []string{"multi.example.com"}, false, false},
			{"changed last byte of 255", "example.com.", long255 + "\"\n", long255[:254] + "y\"\n", []string{"long.example.com"}, false, false},
			{"a set's records in another order (same set)", "example.com.", "set TXT \"one\"\nset TXT \"two\"\n", "set TXT \"two\"\nset TXT \"one\"\n", nil, false, false},
			{"removed one of a TXT set", "example.com.", "set TXT \"two\"\n", "", []string{"set.example.com"}, false, false},
		}},
	{name: "large-rrset", zones: []shapeZone{{"example.com.", soa + bigA + hugeTXT + "bigtxt TXT \"" + long255 + "\" \"" + long255 + "\" \"" + long255 + "\" \"" + long255 + "\" \"" + long255 + "\" \"" + long255 + "\"\n"}},
		changes: []shapeChange{
			{"removed one of 100 A", "example.com.", "big A 10.0.0.77\n", "", []string{"big.example.com. A: [10.0.0.77] → []"}, false, false},
			{"one of 100 long TXT (26 kB answer)", "example.com.", "huge TXT \"50", "huge TXT \"5O", []string{"huge.example.com. TXT: [\"50"}, false, false},
			{"changed last of 100 A", "example.com.", "big A 10.0.0.100\n", "big A 10.0.0.199\n", []string{"big.example.com. A: [10.0.0.100] → [10.0.0.199]"}, false, false},
		}},
	{name: "types", zones: []shapeZone{{"example.com.", soa + typesText}},
		greenText: map[string]string{"example.com.": soa + typesOtherwise.Replace(typesText)},
		changes: []shapeChange{
			{"CAA value", "example.com.", "letsencrypt.org", "pki.goog", []string{"example.com"}, false, false},
			{"CAA flag", "example.com.", "CAA 128", "CAA 0", []string{"example.com"}, false, false},
			{"TLSA data", "example.com.", "TLSA 3 1 1 0123", "TLSA 3 1 1 f123", []string{"_443._tcp.www.example.com"}, false, false},
			{"SSHFP", "example.com.", "SSHFP 4 2 0123", "SSHFP 4 2 f123", []string{"www.example.com"}, false, false},
			{"LOC", "example.com.", "-2.00m", "-3.00m", []string{"www.example.com"}, false, false},
			{"URI", "example.com.", "ftp1", "ftp2", []string{"_ftp._tcp.example.com"}, false, false},
			{"SVCB alpn order", "example.com.", "alpn=dot,doq", "alpn=doq,dot", []string{"_dns.svc.example.com"}, false, false},
			{"SVCB port", "example.com.", "port=853", "port=8853", []string{"_dns.svc.example.com"}, false, false},
			{"HTTPS ech", "example.com.", "ech=AEn+", "ech=AEm+", []string{"example.com"}, false, false},
			{"HTTPS alias target", "example.com.", "alias HTTPS 0 www", "alias HTTPS 0 h", []string{"alias.example.com"}, false, false},
			{"NAPTR regexp", "example.com.", "sip:info@", "sip:help@", []string{"n.example.com"}, false, false},
			{"OPENPGPKEY", "example.com.", "OPENPGPKEY AQID", "OPENPGPKEY AQIE", []string{"k.example.com"}, false, false},
			{"unknown type", "example.com.", "010203", "010204", []string{"u.example.com"}, false, false},
			{"RP", "example.com.", "RP hostmaster.example.com.", "RP root.example.com.", []string{"rp.example.com"}, false, false},
			{"CAA iodef", "example.com.", "mailto:sec@", "mailto:soc@", []string{`example.com. CAA: [0 issue "letsencrypt.org", 128 iodef "mailto:sec@example.com"] → [0 issue "letsencrypt.org", 128 iodef "mailto:soc@example.com"]`}, false, false},
			{"SVCB ipv4hint", "example.com.", "ipv4hint=192.0.2.10", "ipv4hint=192.0.2.11", []string{"_dns.svc.example.com. SVCB"}, false, false},
		}},
}

var generated = "$TTL 300\n@ SOA ns1 hostmaster 1 3600 600 86400 300\n NS ns1\nns1 A 192.0.2.1\n$GENERATE 1-50 host$ A 10.1.0.$\n$GENERATE 1-20 $.rev PTR host$.example.com.\n$GENERATE 1-3 dyn-${0,3,d} CNAME host${+10}\n"

var syntaxBlue = `$ORIGIN example.com.
$TTL 1h
@	IN	SOA	ns1.example.com. hostmaster.example.com. (
			1	; serial
			3600	; refresh
			600	; retry
			86400	; expire
			300 )	; minimum
	IN	NS	ns1
ns1	IN	A	192.0.2.1
$ORIGIN sub.example.com.
www	300	IN	A	192.0.2.20
mail	IN	MX	( 10
			mx1 )
mx1	A	192.0.2.21
$ORIGIN example.com.
$TTL 600
@	TXT	"apex"
txt	TXT	( "one"
		  "two" )
`

var syntaxGreen = `$TTL 300
example.com. 3600 IN SOA ns1.example.com. hostmaster.example.com. 1 3600 600 86400 300
example.com. 3600 NS ns1.example.com.
ns1.example.com. 3600 A 192.0.2.1
www.sub.example.com. 300 A 192.0.2.20
mail.sub.example.com. 3600 MX 10 mx1.sub.example.com.
mx1.sub.example.com. 3600 A 192.0.2.21
example.com. 600 TXT apex
txt.example.com. 600 TXT one two
`

var manyZones = func() []shapeZone {
	var zs []shapeZone
	for i := range 40 {
		zs = append(zs, shapeZone{fmt.Sprintf("z%02d.test.", i), soa + fmt.Sprintf("www A 192.0.2.%d\nmail MX 10 www\n", i+10)})
	}
	return zs
}()

func init() {
	shapes = append(shapes,
		shape{name: "delegations", zones: []shapeZone{{"example.com.", soa + `oob NS ns.other.net.
oob NS ns2.other.net.
inb NS ns.inb
inb NS ns2.inb
ns.inb A 192.0.2.30
ns2.inb AAAA 2001:db8::30
sib NS ns.inb.example.com.
sib NS ns.sib2.example.com.
sib2 NS ns.sib2
ns.sib2 A 192.0.2.31
own NS ns1.example.com.
deep.er NS ns.deep.er
ns.deep.er A 192.0.2.32
`}},
			changes: []shapeChange{
				{"in-bailiwick glue", "example.com.", "ns.inb A 192.0.2.30", "ns.inb A 192.0.2.39", []string{"inb.example.com"}, false, false},
				{"AAAA glue", "example.com.", "2001:db8::30", "2001:db8::39", []string{"inb.example.com"}, false, false},
				{"sibling glue (ns.sib2 used by sib)", "example.com.", "ns.sib2 A 192.0.2.31", "ns.sib2 A 192.0.2.38", []string{"sib.example.com", "ns.sib2.example.com"}, false, false},
				{"out-of-bailiwick NS target", "example.com.", "oob NS ns2.other.net.", "oob NS ns3.other.net.", []string{"oob.example.com"}, false, false},
				{"removed one NS at cut", "example.com.", "oob NS ns2.other.net.\n", "", []string{"oob.example.com"}, false, false},
				{"NS at cut into own zone", "example.com.", "own NS ns1.example.com.", "own NS ns.inb.example.com.", []string{"own.example.com"}, false, false},
				{"deep cut glue", "example.com.", "ns.deep.er A 192.0.2.32", "ns.deep.er A 192.0.2.33", []string{"deep.er.example.com"}, false, false},
				{"cut removed", "example.com.", "oob NS ns.other.net.\noob NS ns2.other.net.\n", "", []string{"removed oob.example.com. NS: [ns.other.net., ns2.other.net.] → []"}, false, true},
			}},
		shape{name: "wildcards", zones: []shapeZone{{"example.com.", soa + `* A 192.0.2.40
* TXT "wild"
sub NS ns.sub
ns.sub A 192.0.2.41
*.sub A 192.0.2.42
*.w MX 10 mail
mail A 192.0.2.43
x.w A 192.0.2.44
*.cn CNAME mail
`}},
			changes: []shapeChange{
				{"apex wildcard A", "example.com.", "* A 192.0.2.40", "* A 192.0.2.49", []string{"example.com"}, false, false},
				{"wildcard MX beside explicit name", "example.com.", "*.w MX 10 mail", "*.w MX 20 mail", []string{"w.example.com"}, false, false},
				{"wildcard CNAME target data", "example.com.", "mail A 192.0.2.43", "mail A 192.0.2.48", []string{"mail.example.com"}, false, false},
				{"occluded wildcard under the cut (not served)", "example.com.", "*.sub A 192.0.2.42", "*.sub A 192.0.2.47", nil, false, false},
				{"wildcard CNAME target", "example.com.", "*.cn CNAME mail", "*.cn CNAME ns1", []string{"cn.example.com"}, false, false},
			}},
		shape{name: "dname", zones: []shapeZone{{"example.com.", soa + `d DNAME target.example.net.
x.d A 192.0.2.52
c.d NS ns.c.d
ns.c.d A 192.0.2.54
sub NS ns.c.d
e DNAME f.example.com.
a.f A 192.0.2.50
f A 192.0.2.51
`}},
			changes: []shapeChange{
				// named sends it with sub's referral, though the DNAME
				// occludes the cut c.d.
				{"glue below a cut the DNAME occludes", "example.com.", "ns.c.d A 192.0.2.54\n", "", []string{"sub.example.com. NS"}, false, false},
				{"DNAME target", "example.com.", "d DNAME target.example.net.", "d DNAME other.example.net.", []string{"d.example.com"}, false, false},
				{"occluded data under the DNAME (not served)", "example.com.", "x.d A 192.0.2.52", "x.d A 192.0.2.53", nil, false, false},
				{"data under in-zone DNAME target", "example.com.", "a.f A 192.0.2.50", "a.f A 192.0.2.59", []string{"f.example.com"}, false, false},
			}},
		shape{name: "cross-zone-cname", zones: []shapeZone{
			{"a.test.", soa + "www CNAME www.b.test.\nd DNAME b.test.\n"},
			{"b.test.", soa + "www CNAME host.c.test.\nx A 192.0.2.61\n"},
			{"c.test.", soa + "host A 192.0.2.60\n"},
		},
			changes: []shapeChange{
				{"end of chain in c.test", "c.test.", "host A 192.0.2.60", "host A 192.0.2.69", []string{"host.c.test"}, false, false},
				{"middle of chain in b.test", "b.test.", "www CNAME host.c.test.", "www CNAME x.b.test.", []string{"www.b.test"}, false, false},
			}},
		shape{name: "syntax", zones: []shapeZone{{"example.com.", syntaxBlue}},
			greenText: map[string]string{"example.com.": syntaxGreen},
			changes: []shapeChange{
				{"relative MX target under $ORIGIN", "example.com.", "mx1 )", "mx2 )\nmx2 A 192.0.2.22", []string{"mail.sub.example.com"}, false, false},
				{"added name", "example.com.", "ns1	IN	A	192.0.2.1\n", "ns1	IN	A	192.0.2.1\nnew	IN	A	192.0.2.2\n", []string{"new.example.com"}, true, false},
				{"added type at a name", "example.com.", "ns1	IN	A	192.0.2.1\n", "ns1	IN	A	192.0.2.1\nns1	IN	AAAA	2001:db8::1\n", []string{"ns1.example.com"}, true, false},
				{"added wildcard", "example.com.", "ns1	IN	A	192.0.2.1\n", "ns1	IN	A	192.0.2.1\n*	IN	A	192.0.2.2\n", []string{"*.example.com"}, true, false},
				{"$TTL change", "example.com.", "$TTL 600", "$TTL 900", []string{"example.com"}, false, false},
				{"string in parens", "example.com.", `"two" )`, `"three" )`, []string{"txt.example.com"}, false, false},
			}},
		shape{name: "crlf-utf8", zones: []shapeZone{{"example.com.", crlfBlue}},
			greenText: map[string]string{"example.com.": strings.ReplaceAll(crlfBlue, "\n", "\r\n") + "; no newline at the end"},
			changes: []shapeChange{{"UTF-8 in TXT", "example.com.", "Grüße", "Grüsse", []string{"utf.example.com"}, false, false},
				{"semicolon in a string", "example.com.", `"a;b"`, `"a;c"`, []string{"semi.example.com"}, false, false}}},
		shape{name: "into-cuts", zones: []shapeZone{{"example.com.", soa + `sub NS ns.sub
ns.sub A 192.0.2.150
tocut CNAME www.sub
*.wc CNAME host.sub
dn DNAME sub.example.com.
ent.x CNAME tocut
mx MX 10 mail.sub
srv._tcp SRV 0 0 443 www.sub
a CNAME www
b.a TXT "below a CNAME"
www A 192.0.2.151
`}},
			changes: []shapeChange{{"CNAME into a cut, retargeted", "example.com.", "tocut CNAME www.sub", "tocut CNAME ftp.sub", []string{"tocut.example.com"}, false, false},
				{"glue of the cut CNAMEs point into", "example.com.", "ns.sub A 192.0.2.150", "ns.sub A 192.0.2.159", []string{"ns.sub.example.com", "sub.example.com"}, false, false},
				{"below a CNAME", "example.com.", `"below a CNAME"`, `"below"`, []string{"b.a.example.com"}, false, false}}},
		shape{name: "rare-types", zones: []shapeZone{{"example.com.", soa + rareTypes}},
			changes: []shapeChange{{"IPSECKEY gateway", "example.com.", "192.0.2.38", "192.0.2.39", []string{"tipseckey-10.example.com"}, false, false},
				{"APL negation", "example.com.", "!1:192.168.38.0/28", "1:192.168.38.0/28", []string{"tapl-1-192-168-32-0.example.com"}, false, false},
				{"ZONEMD digest", "example.com.", "FEBE3D4C", "FEBE3D4D", []string{"example.com. zonemd"}, false, false},
				{"RESINFO key", "example.com.", "exterr=15,16,17", "exterr=15,16", []string{"tresinfo-qnamemin.example.com"}, false, false},
				{"HIP key", "example.com.", "AwEAAbdx", "AwEAAbdy", []string{"thip-2.example.com"}, false, false},
				{"NULL data", "example.com.", "010203", "010204", []string{`tnull.example.com. NULL: [\# 3 010203] → [\# 3 010204]`}, false, false},
				{"DOA data", "example.com.", "aHR0cHM6Ly93d3cuaXNjLm9yZy8=", "aHR0cHM6Ly93d3cuaXNjLm9yZy4=", []string{"tdoa-0.example.com"}, false, false},
			}},
		shape{name: "big-referral", zones: []shapeZone{{"example.com.", soa + bigReferral}},
			changes: []shapeChange{{"13th glue AAAA of a referral that fills UDP", "example.com.", "2001:db8::12\n", "2001:db8::99\n", []string{"sub.example.com"}, false, false}}},
		shape{name: "ttl-extremes", zones: []shapeZone{{"example.com.", soa + "zero 0 A 192.0.2.70\nmax 2147483647 A 192.0.2.71\nover 4294967295 A 192.0.2.72\nweek 1w2d3h4m5s A 192.0.2.73\n"}},
			changes: []shapeChange{
				{"TTL 0 → 1", "example.com.", "zero 0 A", "zero 1 A", []string{"zero.example.com"}, false, false},
				{"TTL unit", "example.com.", "1w2d3h4m5s", "1w2d3h4m6s", []string{"week.example.com"}, false, false},
			}},
		shape{name: "signed-nsec", sign: "nsec", zones: []shapeZone{{"example.com.", signedShape}}, changes: signedChanges},
		shape{name: "signed-nsec3", sign: "nsec3", zones: []shapeZone{{"example.com.", signedShape}}, changes: signedChanges},
		shape{name: "signed-nsec3-optout", sign: "nsec3-optout", zones: []shapeZone{{"example.com.", signedShape + "u1 NS ns.other.net.\nu2 NS ns.u2\nns.u2 A 192.0.2.83\n"}},
			changes: append(signedChanges, shapeChange{"opt-out glue", "example.com.", "ns.u2 A 192.0.2.83", "ns.u2 A 192.0.2.84", []string{"ns.u2.example.com"}, false, false})},
		shape{name: "upper-signed", sign: "nsec", zones: []shapeZone{{"example.com.", soa + "WWW A 192.0.2.90\nMiXed TXT \"x\"\nZZ.Top CNAME WWW\n" + bigA}},
			changes: []shapeChange{{"upper signed A", "example.com.", "WWW A 192.0.2.90", "WWW A 192.0.2.99", []string{"www.example.com"}, false, false},
				{"signed big set one removed", "example.com.", "big A 10.0.0.77\n", "", []string{"big.example.com"}, false, false}}},
		shape{name: "chains", zones: []shapeZone{{"example.com.", soa + chain + "loop1 CNAME loop2\nloop2 CNAME loop1\nself CNAME self\n"}},
			changes: []shapeChange{{"end of a 20-link chain", "example.com.", "c20 A 192.0.2.100", "c20 A 192.0.2.109", []string{"c20.example.com"}, false, false},
				{"loop target", "example.com.", "loop2 CNAME loop1", "loop2 CNAME c20", []string{"loop2.example.com"}, false, false}}},
		shape{name: "long-names", zones: []shapeZone{{"example.com.", soa + longName + " A 192.0.2.110\n" + strings.Repeat("a", 63) + " TXT \"63\"\n"}},
			changes: []shapeChange{{"255-byte name", "example.com.", "A 192.0.2.110", "A 192.0.2.119", []string{"example.com"}, false, false}}},
		shape{name: "rfc2317", zones: []shapeZone{{"2.0.192.in-addr.arpa.", soa + "0/25 NS ns.cust.example.net.\n$GENERATE 0-127 $ CNAME $.0/25\n128-255 NS ns1\n1.128-255 PTR host.example.com.\n"}},
			changes: []shapeChange{{"classless NS", "2.0.192.in-addr.arpa.", "0/25 NS ns.cust.example.net.", "0/25 NS ns2.cust.example.net.", []string{"0/25.2.0.192.in-addr.arpa"}, false, false}}},
		// RFC 2317 both sides: the parent delegates 0/26 and CNAMEs its
		// addresses into it; the child, whose name holds "/", has the PTRs.
		shape{name: "rfc2317-child", zones: []shapeZone{
			{"2.0.192.in-addr.arpa.", soa + "0/26 NS ns1\n0 CNAME 0.0/26\n1 CNAME 1.0/26\n$GENERATE 2-63 $ CNAME $.0/26\n"},
			{"0/26.2.0.192.in-addr.arpa.", "$TTL 300\n@ SOA ns1.example.net. hostmaster.example.net. 1 3600 600 86400 300\n NS ns1.example.net.\n1 PTR host1.example.com.\n2 PTR host2.example.com.\n"},
		},
			changes: []shapeChange{
				{"child PTR", "0/26.2.0.192.in-addr.arpa.", "1 PTR host1.example.com.", "1 PTR host9.example.com.", []string{"1.0/26.2.0.192.in-addr.arpa. PTR: [host1.example.com.] → [host9.example.com.]"}, false, false},
				{"parent CNAME into 0/26", "2.0.192.in-addr.arpa.", "1 CNAME 1.0/26", "1 CNAME 2.0/26", []string{"1.2.0.192.in-addr.arpa. CNAME: [1.0/26.2.0.192.in-addr.arpa.] → [2.0/26.2.0.192.in-addr.arpa.]"}, false, false},
				// The child, served beside it, answers for 0/26.
				{"parent NS of 0/26 (not served)", "2.0.192.in-addr.arpa.", "0/26 NS ns1", "0/26 NS ns2.example.net.", nil, false, false},
			}},
		shape{name: "apex-dname", zones: []shapeZone{{"example.org.", "$TTL 300\n@ SOA ns1.example.net. hostmaster 1 3600 600 86400 300\n NS ns1.example.net.\n@ DNAME example.net.\n"}},
			changes: []shapeChange{{"apex DNAME", "example.org.", "@ DNAME example.net.", "@ DNAME example.info.", []string{"example.org"}, false, false}}},
		shape{name: "odd-stars", zones: []shapeZone{{"example.com.", soa + "a.*.x TXT \"mid\"\nb*c TXT \"star\"\n\\*.lit TXT \"escaped star\"\n*.e.f TXT \"under ent\"\ng.f TXT \"beside\"\n"}},
			changes: []shapeChange{{"literal star in a label", "example.com.", "b*c TXT \"star\"", "b*c TXT \"stars\"", []string{"b*c.example.com"}, false, false},
				{"name under an empty wildcard", "example.com.", "a.*.x TXT \"mid\"", "a.*.x TXT \"mid2\"", []string{"a.*.x.example.com"}, false, false}}},
		shape{name: "upper-origin", zones: []shapeZone{{"EXAMPLE.COM.", soa + "www A 192.0.2.130\n"}, {"Example.Net.", soa + "www A 192.0.2.131\n"}},
			changes: []shapeChange{{"www A", "EXAMPLE.COM.", "192.0.2.130", "192.0.2.139", []string{"www.example.com"}, false, false}}},
		shape{name: "generate", zones: []shapeZone{{"example.com.", generated}},
			changes: []shapeChange{
				{"$GENERATE range", "example.com.", "1-50 host$", "1-49 host$", []string{"host50.example.com"}, false, true},
				{"$GENERATE rdata", "example.com.", "10.1.0.$", "10.2.0.$", []string{"example.com"}, false, false},
				{"$GENERATE offset", "example.com.", "host${+10}", "host${+20}", []string{"dyn-003.example.com. CNAME: [host13.example.com.] → [host23.example.com.]"}, false, false},
				{"$GENERATE width", "example.com.", "dyn-${0,3,d}", "dyn-${0,2,d}", []string{"removed dyn-001.example.com. CNAME"}, false, true},
			}},
		shape{name: "many-zones", zones: manyZones,
			changes: []shapeChange{
				{"one record in zone 37", "z37.test.", "192.0.2.47", "192.0.2.99", []string{"www.z37.test"}, false, false},
			}},
	)
}

var signedShape = soa + `www A 192.0.2.80
a.b.c TXT "ent"
* TXT "wild"
*.w A 192.0.2.81
sec NS ns.sec
sec DS 12345 13 2 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
ns.sec A 192.0.2.82
insec NS ns.other.net.
d DNAME target.example.net.
`

var signedChanges = []shapeChange{
	{"signed www A", "example.com.", "www A 192.0.2.80", "www A 192.0.2.89", []string{"www.example.com"}, false, false},
	{"signed DS digest", "example.com.", "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "f123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", []string{"sec.example.com"}, false, false},
	{"signed wildcard", "example.com.", "*.w A 192.0.2.81", "*.w A 192.0.2.88", []string{"w.example.com"}, false, false},
	{"signed ENT removed", "example.com.", "a.b.c TXT \"ent\"\n", "", []string{"a.b.c.example.com", "*.example.com"}, false, true},
	{"signed insecure NS", "example.com.", "insec NS ns.other.net.", "insec NS ns2.other.net.", []string{"insec.example.com"}, false, false},
}

var chain = func() string {
	var b strings.Builder
	for i := 1; i < 20; i++ {
		fmt.Fprintf(&b, "c%d CNAME c%d\n", i, i+1)
	}
	return b.String() + "c20 A 192.0.2.100\n"
}()

// longName is a 255-byte name (on the wire) under example.com.
var longName = strings.Repeat(strings.Repeat("n", 63)+".", 3) + strings.Repeat("n", 49)

var typesText = `@ CAA 0 issue "letsencrypt.org"
@ CAA 128 iodef "mailto:sec@example.com"
_443._tcp.www TLSA 3 1 1 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
www A 192.0.2.10
www SSHFP 4 2 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
www LOC 52 22 23.000 N 4 53 32.000 E -2.00m 1m 10000m 10m
_ftp._tcp URI 10 1 "ftp://ftp1.example.com/public"
_dns.svc SVCB 1 www alpn=dot,doq port=853 ipv4hint=192.0.2.10 ipv6hint=2001:db8::10 mandatory=alpn
@ HTTPS 1 . alpn=h3,h2 ech=AEn+DQBFKwAgACABWIHUGj4u+PIggYXcR5JF0gYk3dCRioBW8uJq9H4mKAAIAAEAAQABAANAEnB1YmxpYy50bHMtZWNoLmRldgAA
alias HTTPS 0 www
n NAPTR 100 10 "S" "SIP+D2U" "!^.*$!sip:info@example.com!" _sip._udp
n NAPTR 102 10 "u" "E2U+sip" "!^.*$!sip:a\\b@example.com!" .
h HINFO "PC" "Linux"
rp RP hostmaster.example.com. txt.example.com.
txt TXT "contact"
k OPENPGPKEY AQID
cert CERT PGP 0 0 AQID
dhcid DHCID AAIBY2/AuCccgoJbsaxcQc9TUapptP69lOjxfNuVAA2kjEA=
u TYPE65500 \# 3 010203
`

// typesOtherwise writes typesText's data otherwise: hex in capitals, LOC
// without decimals, SVCB keys out of order, strings unquoted, names
// relative, CERT's type as a number.
var typesOtherwise = strings.NewReplacer(
	"TLSA 3 1 1 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "TLSA 3 1 1 0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF",
	"52 22 23.000 N 4 53 32.000 E -2.00m", "52 22 23 N 4 53 32 E -2m",
	"alpn=dot,doq port=853 ipv4hint=192.0.2.10 ipv6hint=2001:db8::10 mandatory=alpn", "mandatory=alpn port=853 alpn=dot,doq ipv6hint=2001:db8::10 ipv4hint=192.0.2.10",
	`HINFO "PC" "Linux"`, "HINFO PC Linux",
	"RP hostmaster.example.com. txt.example.com.", "RP hostmaster txt",
	`TXT "contact"`, "TXT contact",
	"CERT PGP", "CERT 3",
)

// hugeTXT is 100 TXT records of 255 bytes at huge: a 26 kB answer.
var hugeTXT = func() string {
	var b strings.Builder
	for i := range 100 {
		fmt.Fprintf(&b, "huge TXT \"%d%s\"\n", i, long255[len(fmt.Sprint(i)):])
	}
	return b.String()
}()

var escapes = soa + "a\\.b TXT 5\nsp\\032ace TXT 6\nback\\\\slash TXT 7\nq\\\"uote TXT \"semi\\;colon\" \"quote\\\"d\"\nbin\\000ary TXT 9\nt TXT \"tab\\009here\" \"\\255\\254\"\n"

// crlfBlue has raw UTF-8 and a semicolon in strings, a class before its
// TTL, and tabs; green serves it with CRLF line ends and no final newline.
var crlfBlue = soa + "utf\tTXT\t\"Grüße aus München\"\nsemi IN 600 TXT \"a;b\" ; a comment\nwww\t\t300\tIN\tA\t192.0.2.140\n"

// rareTypes are record types BIND 9.18 loads that few zones have.
var rareTypes = `ta6-0 A6 0 2001:db8::1
tamtrelay-10 AMTRELAY 10 0 1 203.0.113.15
tapl-1-192-168-32-0 APL 1:192.168.32.0/21 !1:192.168.38.0/28
tavc--app-name-wolfg AVC "app-name:WOLFGANG|app-class:OAM"
tdoa-0 DOA 0 1 2 "" aHR0cHM6Ly93d3cuaXNjLm9yZy8=
teui48-00-00-5e-00-5 EUI48 00-00-5e-00-53-2a
teui64-00-00-5e-ef-1 EUI64 00-00-5e-ef-10-00-00-2a
tgpos--32-6882 GPOS -32.6882 116.8652 10.0
thip-2 HIP 2 200100107B1A74DF365639CC39F1D578 AwEAAbdxyhNuSutc5EMzxTs9LBPCIkOFH8cIvM4p9+LrV4e19WzK00+CI6zBCQTdtWsuxKbWIy87UOoJTwkUs7lBu+Upr1gsNrut79ryra+bSRGQb1slImA8YVJyuIDsj7kwzG7jnERNqnWxZ48AWkskmdHaVDP4BcelrTI3rMXdXF5D
tipseckey-10 IPSECKEY 10 1 2 192.0.2.38 AQNRU3mG7TVTO2BkR47usntb102uFJtugbo6BSGvgqt4AQ==
tisdn--1508620280032 ISDN "150862028003217" "004"
tkx-10 KX 10 ns1
tl32-10 L32 10 10.1.2.0
tl64-10 L64 10 2001:0DB8:1140:1000
tlp-10 LP 10 l64-subnet1.example.com.
tmb-ns1 MB ns1
tminfo-ns1 MINFO ns1 ns1
tnid-10 NID 10 0014:4fff:ff20:ee64
tninfo--foo NINFO "foo"
tnsap-0x47000580005a NSAP 0x47000580005a0000000001e133ffffff00016100
tnull NULL \# 3 010203
tpx-10 PX 10 net2.it. PRMD-net2.ADMD-p400.C-it.
tresinfo-qnamemin RESINFO qnamemin exterr=15,16,17
trt-10 RT 10 ns1
tsink-1 SINK 1 0 0 AQID
tsmimea-3 SMIMEA 3 1 1 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
tspf--v-spf1 SPF "v=spf1 -all"
ttalink-a TALINK a. b.
twallet--btc WALLET "BTC" "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"
tx25-311061700956 X25 311061700956
@ CSYNC 66 3 A NS AAAA
@ ZONEMD 2018031500 1 1 FEBE3D4CE2EC2FFA4BA99D46CD69D6D29711E55217057BEE7EB1A7B641A47BA7FED2DD5B97AE499FAFA4F22C6BD647DE
`

// bigReferral is a cut with 13 name servers, each with long names and A
// and AAAA glue: a referral of about 2 kB, past 1,232 bytes over UDP.
var bigReferral = func() string {
	var b strings.Builder
	for i := range 13 {
		ns := fmt.Sprintf("a-rather-long-name-server-label-number-%02d.sub", i)
		fmt.Fprintf(&b, "sub NS %s\n%s A 192.0.2.%d\n%s AAAA 2001:db8::%d\n", ns, ns, 160+i, ns, i)
	}
	return b.String()
}()

// More shapes: a wildcard beside a more specific name and an empty
// non-terminal, "." targets, SOA fields under one serial, TTLs (of a set
// BIND serves with its first record's, of a referral, of glue), escapes
// written otherwise, and a DKIM key split at another byte.
func init() {
	shapes = append(shapes,
		shape{name: "wildcard-ent", zones: []shapeZone{{"example.com.", wildcardENT}},
			changes: []shapeChange{
				{"name beside a wildcard", "example.com.", "x.w A 192.0.2.171", "x.w A 192.0.2.179", []string{"x.w.example.com. A: [192.0.2.171] → [192.0.2.179]"}, false, false},
				{"wildcard TTL only", "example.com.", "*.w A", "*.w 600 A", []string{"w.example.com. A: [ttl 300 192.0.2.170] → [ttl 600 192.0.2.170]"}, false, false},
				// deep.z.w makes z.w an empty non-terminal, which the
				// wildcard no longer answers: the answers' diff names the
				// record added; Plan's diff names z.w's A too (rollouts).
				{"ENT added under a wildcard", "example.com.", "host CNAME", "deep.z.w TXT \"new\"\nhost CNAME", []string{`deep.z.w.example.com. TXT: [] → ["new"]`}, true, false},
				delegationAdded,
				{"ENT removed: the wildcard answers it", "example.com.", "a.ent.w TXT \"below an empty non-terminal\"\n", "", []string{"a.ent.w.example.com. TXT"}, false, true},
			},
			rollouts: wildcardENTRollouts},
		shape{name: "wildcard-ent-nsec3-optout", sign: "nsec3-optout", zones: []shapeZone{{"example.com.", wildcardENT}},
			changes: []shapeChange{
				{"signed name beside a wildcard", "example.com.", "x.w A 192.0.2.171", "x.w A 192.0.2.179", []string{"x.w.example.com. A: [192.0.2.171, RRSIG A 15 4 300"}, false, false},
				{"signed ENT added under a wildcard", "example.com.", "host CNAME", "deep.z.w TXT \"new\"\nhost CNAME", []string{`deep.z.w.example.com. TXT: [] → ["new", RRSIG TXT 15 5 300`}, true, false},
				delegationAdded,
			},
			rollouts: wildcardENTRollouts},
		shape{name: "root-targets", zones: []shapeZone{{"example.com.", soa + "_sip._tcp SRV 0 0 0 .\nnomail MX 0 .\nn NAPTR 100 10 \"u\" \"E2U+sip\" \"!^.*$!sip:x@example.com!\" .\n"}},
			changes: []shapeChange{
				{"SRV \".\" made a service", "example.com.", "SRV 0 0 0 .", "SRV 0 0 5060 ns1", []string{"_sip._tcp.example.com. SRV: [0 0 0 .] → [0 0 5060 ns1.example.com.]"}, false, false},
				{"null MX made a host", "example.com.", "MX 0 .", "MX 10 ns1", []string{"nomail.example.com. MX: [0 .] → [10 ns1.example.com.]"}, false, false},
				{"NAPTR replacement from \".\"", "example.com.", "!\" .", "!\" _sip._udp", []string{"n.example.com. NAPTR"}, false, false},
			}},
		shape{name: "soa-fields", zones: []shapeZone{{"example.com.", soa + "www A 192.0.2.175\n"}},
			changes: []shapeChange{
				{"SOA refresh, same serial", "example.com.", "1 3600 600", "1 7200 600", []string{"example.com. SOA: [ns1.example.com. hostmaster.example.com. 1 3600 600 86400 300] → [ns1.example.com. hostmaster.example.com. 1 7200 600 86400 300]"}, false, false},
				{"SOA minimum, same serial", "example.com.", "86400 300", "86400 60", []string{"example.com. SOA: [ns1.example.com. hostmaster.example.com. 1 3600 600 86400 300] → [ns1.example.com. hostmaster.example.com. 1 3600 600 86400 60]"}, false, false},
				{"SOA TTL only", "example.com.", "@ SOA", "@ 600 SOA", []string{"example.com. SOA: [ttl 300 "}, false, false},
			}},
		shape{name: "ttls", zones: []shapeZone{{"example.com.", soa + "mixed 300 A 192.0.2.180\nmixed 600 A 192.0.2.181\nsub NS ns.sub\nns.sub A 192.0.2.182\nd A 192.0.2.183\n"}},
			changes: []shapeChange{
				// BIND serves a set with its first record's TTL.
				{"second record's TTL in a set (not served)", "example.com.", "mixed 600 A", "mixed 900 A", nil, true, false},
				{"duplicate record (BIND keeps one)", "example.com.", "d A 192.0.2.183\n", "d A 192.0.2.183\nd A 192.0.2.183\n", nil, true, false},
				{"first record's TTL in a set", "example.com.", "mixed 300 A", "mixed 400 A", []string{"mixed.example.com. A: [ttl 300 192.0.2.180, ttl 300 192.0.2.181] → [ttl 400 192.0.2.180, ttl 400 192.0.2.181]"}, false, false},
				{"delegation NS TTL", "example.com.", "sub NS", "sub 900 NS", []string{"sub.example.com. NS: [ttl 300 "}, false, false},
				{"glue TTL only", "example.com.", "ns.sub A", "ns.sub 900 A", []string{"sub.example.com. NS: [ttl 300 ", "ns.sub.example.com. A: [ttl 300 "}, false, false},
			}},
		shape{name: "txt-written-otherwise", zones: []shapeZone{{"example.com.", soa + txtEscapes + dkim(255)}},
			greenText: map[string]string{"example.com.": soa + strings.NewReplacer(`\"`, `\034`, `\\`, `\092`, `\;`, ";").Replace(txtEscapes) + dkim(255)},
			changes: []shapeChange{
				{"escaped quote removed", "example.com.", `say \"hi\"`, `say hi`, []string{`q.example.com. TXT: ["say \"hi\"" "a\\b" "semi;colon" "\010"] → ["say hi" "a\\b" "semi;colon" "\010"]`}, false, false},
				{"DKIM key split at another byte", "example.com.", dkim(255), dkim(200), []string{"dkim._domainkey.example.com. TXT"}, false, false},
			}},
	)
}

// delegationAdded is a cut that only green has: blue's answer is
// NXDOMAIN, which holds no records (and no referral's flags).
var delegationAdded = shapeChange{"delegation added", "example.com.", "host CNAME", "u9 NS ns.other.net.\nhost CNAME", []string{"u9.example.com. NS: [] → [ns.other.net.]"}, true, false}

// wildcardENTRollouts make and end an empty non-terminal under
// wildcardENT's wildcard.
var wildcardENTRollouts = []shapeRollout{
	// A stale green holds z.w's A as the wildcard answered it.
	{"ENT made under a wildcard", "example.com.", "host CNAME", "deep.z.w TXT \"new\"\nhost CNAME",
		"removed z.w.example.com. A: [192.0.2.170] → [] (now an empty non-terminal, which *.w.example.com. does not answer, nor the names below it)",
		"host CNAME", "z.w A 192.0.2.170\nhost CNAME", "z.w.example.com. A"},
	// A stale green keeps ent.w empty by a name below it that
	// answers as the wildcard would.
	{"ENT ended under a wildcard", "example.com.", "a.ent.w TXT \"below an empty non-terminal\"\n", "",
		"added ent.w.example.com. A: [] → [192.0.2.170] (no longer an empty non-terminal: *.w.example.com. answers it)",
		"host CNAME", "a.ent.w A 192.0.2.170\nhost CNAME", "ent.w.example.com. A"},
}

// wildcardENT has a wildcard, a name beside it and an empty non-terminal
// (ent.w) below its parent, which the wildcard does not answer.
var wildcardENT = soa + `*.w A 192.0.2.170
x.w A 192.0.2.171
a.ent.w TXT "below an empty non-terminal"
host CNAME x.w
`

// txtEscapes is a TXT record whose strings hold an escaped quote, an
// escaped backslash, an escaped semicolon and a byte as \DDD.
var txtEscapes = `q TXT "say \"hi\"" "a\\b" "semi\;colon" "\010"` + "\n"

// dkim is a 400-byte DKIM key record split into strings of at most n
// bytes, as DNS hosting tools split keys longer than one string holds.
func dkim(n int) string {
	key := "v=DKIM1; k=rsa; p=" + strings.Repeat("MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA", 9)[:382]
	var b strings.Builder
	b.WriteString("dkim._domainkey TXT (")
	for len(key) > 0 {
		k := min(n, len(key))
		fmt.Fprintf(&b, " %q", key[:k])
		key = key[k:]
	}
	b.WriteString(" )\n")
	return b.String()
}
