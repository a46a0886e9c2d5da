package zone

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// sourcesRE is a row of testdata/zones/SOURCES.md: a file and its origin.
var sourcesRE = regexp.MustCompile("(?m)^\\| (\\S+) \\| `([^`]+)` \\|")

// addZoneSeeds adds to f, as (text, origin), each third-party zone of
// testdata/zones that SOURCES.md lists, of up to maxBytes bytes.
func addZoneSeeds(f *testing.F, maxBytes int) {
	f.Helper()
	src, err := os.ReadFile("../testdata/zones/SOURCES.md")
	if err != nil {
		f.Fatal(err)
	}
	for _, m := range sourcesRE.FindAllStringSubmatch(string(src), -1) {
		b, err := os.ReadFile(filepath.Join("../testdata/zones", m[1]))
		if err != nil || len(b) > maxBytes {
			continue
		}
		f.Add(string(b), m[2])
	}
}

// FuzzParse reads zone files as miekg/dns reads them where BIND has loaded
// them already (ParseChecked) or is missing. parse must not panic; a
// refusal is an *Error naming the zone; an accepted zone diffs empty
// against itself, answers every query without a panic, and its RRsets
// survive the JSON round trip that carries them through workflow history.
// The seeds are the third-party zones of testdata/zones under their
// origins. BIND's own reading (named-compilezone) is a process a file and
// is left out: the corpus test runs it on these files.
func FuzzParse(f *testing.F) {
	addZoneSeeds(f, 32<<10)
	f.Add("$TTL 300\n@ IN SOA ns1 host 1 2 3 4 5\n@ NS ns1\nns1 A 192.0.2.1\nwww CNAME @\n*.w TXT \"a\" \"b\"\nsub NS ns.sub\nns.sub AAAA ::1\n", "example.com")
	f.Fuzz(func(t *testing.T, text, origin string) {
		z, err := parse(strings.NewReader(text), origin, "db.fuzz", false)
		if err != nil {
			var ze *Error
			if !errors.As(err, &ze) || ze.Zone == "" || ze.Msg == "" {
				t.Fatalf("refusal %v (%T) is not a zone error naming the zone", err, err)
			}
			return
		}
		if d := Diff(z, z); !d.Empty() || d.SerialChanged {
			t.Fatalf("zone differs from itself: %+v", d)
		}
		if d := Diff(nil, z); len(d.Added) != len(z.rrsets) {
			t.Fatalf("Diff(nil, z) adds %d RRsets, the zone has %d", len(d.Added), len(z.rrsets))
		}
		_ = z.Warnings(5)
		_ = z.Apex()
		for _, name := range append(z.Names(), "nonexistent."+z.Origin()) {
			for _, qt := range append(z.Types(name), dns.TypeA, dns.TypeANY) {
				a := z.Lookup(name, qt)
				checkJSON(t, a.RRs)
				checkJSON(t, a.Authority)
				checkJSON(t, a.Additional)
			}
		}
	})
}

// checkJSON checks that r comes back from JSON as it went in.
func checkJSON(t *testing.T, r Records) {
	t.Helper()
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatalf("marshal %v: %v", r.Strings(), err)
	}
	var back Records
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatalf("records %s do not come back from workflow history: %v", b, err)
	}
	if !back.Equal(r) {
		t.Fatalf("records change in workflow history:\n%q\n%q", r.Strings(), back.Strings())
	}
}

// FuzzAsGeneric gives asGeneric records as named-compilezone prints them,
// of the types it rewrites into RFC 3597's generic form. It must not panic,
// and a record it rewrites must be one miekg/dns reads (which checks that
// the data has as many octets as the form says): otherwise a zone BIND
// loads fails to parse.
func FuzzAsGeneric(f *testing.F) {
	for _, seed := range [][2]string{
		{"GPOS", `"-22.6882" "116.8652" "250.0"`}, {"GPOS", `"" "" ""`},
		{"X25", `"311061700956"`}, {"ISDN", `"150862028003217" "004"`}, {"WALLET", `"a\"b\\c\255"`},
		{"NSAP", "0x47000580005a0000000001e133ffffff00016100"},
		{"NID", "10 14:4fff:ff20:ee64"}, {"L64", "10 2001:db8:1140:1000"},
		{"A6", "0 2001:db8::1"}, {"A6", "64 ::1:2:3:4 prefix.example."}, {"A6", "128 prefix.example."},
		{"ATMA", "+1.555.1212"}, {"ATMA", "39.246f.000e7c9c.0312.0001.0001.000012345678.00"},
		{"SINK", "1 0 0 AQID"}, {"DOA", `0 1 2 "image/png" aHR0cHM6Ly93d3cuaXNjLm9yZy8=`}, {"DOA", `1 2 3 "" -`},
		{"NXT", "next.example. A NS SOA ( 127 )"},
		{"RRSIG", "A6 13 3 60 20261101000000 20261001000000 12345 example.com. AAAA"},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, typ, rdata string) {
		if strings.ContainsAny(typ+rdata, "\n\r") {
			return // one record a line, as BIND prints them
		}
		line := "x.example.com. 300 IN " + typ + " " + rdata + "\n"
		out := string(asGeneric([]byte(line)))
		if out == line || typ == "RRSIG" || typ == "SIG" || typ == "NSEC" || typ == "NSEC3" {
			return
		}
		rr, err := dns.NewRR(out)
		if err != nil || rr == nil {
			t.Fatalf("%q became %q, which miekg/dns does not read: %v", line, out, err)
		}
	})
}

// FuzzParseCompiled is FuzzParse through named-compilezone, as workers
// read a revision's files: BIND's reading, then dnsroll's of BIND's
// output. A zone BIND loads must be one dnsroll reads, or no rollout
// could ship it. Slow (a process an input); skipped without BIND.
func FuzzParseCompiled(f *testing.F) {
	if compilerPath() == "" {
		f.Skip("named-compilezone is not installed")
	}
	addZoneSeeds(f, 4<<10)
	f.Add("$TTL 300\n@ IN SOA ns1 host 1 2 3 4 5\n@ NS ns1\nns1 A 192.0.2.1\nx A6 64 ::1:2:3:4 p.example.\ny NSAP 0x47\nz SINK 1 0 0 AQID\n", "example.com")
	f.Fuzz(func(t *testing.T, text, origin string) {
		const zoneNameChars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./"
		if _, ok := dns.IsDomainName(origin); !ok || strings.Trim(origin, zoneNameChars) != "" {
			return // the fleet's validation refuses such zone names (config.Fleet.Validate)
		}
		z, err := Parse(strings.NewReader(text), origin, "db.fuzz")
		if err != nil {
			var ze *Error
			if !errors.As(err, &ze) || ze.Zone == "" || ze.Msg == "" {
				t.Fatalf("refusal %v (%T) is not a zone error naming the zone", err, err)
			}
			if strings.Contains(ze.Msg, "BIND loads this zone but dnsroll cannot read") {
				t.Fatalf("%v", err)
			}
			return
		}
		for _, name := range z.Names() {
			for _, qt := range z.Types(name) {
				checkJSON(t, z.RRset(name, qt))
			}
		}
	})
}

// Records that miekg/dns prints as text it cannot read back cross
// workflow history in the generic form, and come back as they went.
func TestRecordsJSONGeneric(t *testing.T) {
	for _, text := range []string{
		`x.example.com. 60 IN GPOS \# 3 000000`,           // GPOS "" "" ""
		`x.example.com. 60 IN GPOS \# 8 0131013203312e30`, // GPOS "1" "2" "1.0"
		`x.example.com. 60 IN X25 \# 4 03612062`,          // X25 "a b"
		`x.example.com. 60 IN NULL \# 3 010203`,           // printed as a comment, ";x.example.com. 60 IN NULL <3 raw bytes>"
		`x.example.com. 60 IN GPOS -22.6882 116.8652 250.0`,
	} {
		rr, err := dns.NewRR(text)
		if err != nil {
			t.Fatal(err)
		}
		checkJSON(t, Records{rr})
	}
	if got := (Records{mustRR(t, `x.example.com. 60 IN GPOS -22.6882 116.8652 250.0`)}).Strings()[0]; strings.Contains(got, `\#`) {
		t.Errorf("a GPOS that reads back is written generic: %s", got)
	}
}

func mustRR(t *testing.T, s string) dns.RR {
	t.Helper()
	rr, err := dns.NewRR(s)
	if err != nil {
		t.Fatal(err)
	}
	return rr
}
