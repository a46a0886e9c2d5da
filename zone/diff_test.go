package zone

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

const diffOld = `$TTL 300
@    SOA ns1 hostmaster 10 7200 900 1209600 300
     NS  ns1
ns1  A   192.0.2.1
www  A   192.0.2.10
mail MX  10 mail
old  TXT "gone soon"
ttl  A   192.0.2.5
`

const diffNew = `$TTL 300
@    SOA ns1 hostmaster 11 7200 900 1209600 300
     NS  ns1
ns1  A   192.0.2.1
www  A   192.0.2.10
www  A   192.0.2.11
mail MX  20 mail
new  AAAA 2001:db8::1
ttl  600 A 192.0.2.5
`

func TestDiff(t *testing.T) {
	old, new := mustParse(t, diffOld), mustParse(t, diffNew)
	d := Diff(old, new)
	want := ZoneDiff{
		Added:   []RRsetChange{{Name: "new.example.com.", Type: "AAAA", New: []string{"new.example.com. 300 IN AAAA 2001:db8::1"}}},
		Removed: []RRsetChange{{Name: "old.example.com.", Type: "TXT", Old: []string{`old.example.com. 300 IN TXT "gone soon"`}}},
		Changed: []RRsetChange{
			{Name: "mail.example.com.", Type: "MX", Old: []string{"mail.example.com. 300 IN MX 10 mail.example.com."}, New: []string{"mail.example.com. 300 IN MX 20 mail.example.com."}},
			{Name: "ttl.example.com.", Type: "A", Old: []string{"ttl.example.com. 300 IN A 192.0.2.5"}, New: []string{"ttl.example.com. 600 IN A 192.0.2.5"}},
			{Name: "www.example.com.", Type: "A", Old: []string{"www.example.com. 300 IN A 192.0.2.10"}, New: []string{"www.example.com. 300 IN A 192.0.2.10", "www.example.com. 300 IN A 192.0.2.11"}},
		},
		SerialChanged: true, OldSerial: 10, NewSerial: 11,
	}
	if !reflect.DeepEqual(d, want) {
		t.Fatalf("Diff =\n%+v\nwant\n%+v", d, want)
	}
	if d.Empty() {
		t.Error("Empty() = true")
	}
	if got, want := d.Summary(), "1 added, 1 removed, 3 changed: new.example.com. AAAA, old.example.com. TXT, mail.example.com. MX, ttl.example.com. A, www.example.com. A"; got != want {
		t.Errorf("Summary() = %q\nwant %q", got, want)
	}
	if _, err := json.Marshal(d); err != nil {
		t.Error(err)
	}

	rev := Diff(new, old)
	if len(rev.Added) != 1 || rev.Added[0].Name != "old.example.com." || len(rev.Removed) != 1 || rev.Removed[0].Name != "new.example.com." {
		t.Errorf("reverse diff: %+v", rev)
	}
}

func TestDiffEmptyAndSerialOnly(t *testing.T) {
	old := mustParse(t, diffOld)
	if d := Diff(old, mustParse(t, diffOld)); !d.Empty() || d.SerialChanged || d.Summary() != "no changes" {
		t.Errorf("identical zones: %+v %q", d, d.Summary())
	}
	bumped := mustParse(t, strings.Replace(diffOld, " 10 7200", " 12 7200", 1))
	d := Diff(old, bumped)
	if !d.Empty() || !d.SerialChanged || d.OldSerial != 10 || d.NewSerial != 12 {
		t.Errorf("serial-only change: %+v", d)
	}
	if got := d.Summary(); got != "no changes (serial 10 -> 12)" {
		t.Errorf("Summary() = %q", got)
	}
	// A SOA change beyond the serial is a change.
	refresh := mustParse(t, strings.Replace(diffOld, " 10 7200", " 10 3600", 1))
	if d := Diff(old, refresh); len(d.Changed) != 1 || d.Changed[0].Type != "SOA" || d.SerialChanged {
		t.Errorf("SOA refresh change: %+v", d)
	}
}

func TestDiffNilAndLimit(t *testing.T) {
	z := mustParse(t, diffNew)
	d := Diff(nil, z)
	if len(d.Added) != len(z.rrsets) || len(d.Removed)+len(d.Changed) != 0 || d.SerialChanged {
		t.Fatalf("Diff(nil, z) = %+v", d)
	}
	l := d.Limit(2)
	if len(l.Added) != 2 || l.MoreAdded != len(d.Added)-2 || len(d.Added) != len(z.rrsets) {
		t.Errorf("Limit(2) = %+v (original %d)", l, len(d.Added))
	}
	if l.Empty() || !strings.HasPrefix(l.Summary(), "7 added, 0 removed, 0 changed: ") || !strings.HasSuffix(l.Summary(), "and 5 more") {
		t.Errorf("Summary() = %q", l.Summary())
	}
}

func TestSerialArithmetic(t *testing.T) {
	cases := []struct {
		a, b uint32
		want int
	}{
		{1, 1, 0},
		{1, 2, -1},
		{2, 1, 1},
		{0xFFFFFFFF, 0, -1}, // wraps: 0 is after 2^32-1
		{0, 0xFFFFFFFF, 1},
		{0xFFFFFFF0, 5, -1},
		{1, 0x80000000, -1}, // 2^31 - 1 apart
		{0x80000000, 1, 1},
		{0, 0x80000000, 2}, // exactly 2^31 apart: undefined
		{0x80000000, 0, 2},
		{0, 0x7FFFFFFF, -1},
		{0, 0x80000001, 1},
		{2024010101, 2024010102, -1},
	}
	for _, c := range cases {
		if got := SerialCompare(c.a, c.b); got != c.want {
			t.Errorf("SerialCompare(%#x, %#x) = %d, want %d", c.a, c.b, got, c.want)
		}
		if got := SerialBehind(c.a, c.b); got != (c.want == -1) {
			t.Errorf("SerialBehind(%#x, %#x) = %v", c.a, c.b, got)
		}
	}
}

// Live answers: blue and green answered these queries (names in any case,
// records canonical). The SOA differs only in its serial.
func TestDiffRRsetsAndDescribe(t *testing.T) {
	soa := func(serial string) string {
		return "example.com. 300 IN SOA ns1.example.com. hostmaster.example.com. " + serial + " 3600 600 1209600 300"
	}
	blue := []RRset{
		{Name: "example.com.", Type: "SOA", RRs: recs(t, soa("10"))},
		{Name: "WWW.example.com.", Type: "A", RRs: recs(t, "www.example.com. 300 IN A 192.0.2.10")},
		{Name: "alias.example.com.", Type: "A", RRs: recs(t, "alias.example.com. 300 IN CNAME www.example.com.", "www.example.com. 300 IN A 192.0.2.10")},
		{Name: "gone.example.com.", Type: "TXT", RRs: recs(t, `gone.example.com. 300 IN TXT "x"`)},
		{Name: "ttl.example.com.", Type: "A", RRs: recs(t, "ttl.example.com. 300 IN A 192.0.2.5")},
		{Name: "nx.example.com.", Type: "A"},
	}
	green := []RRset{
		{Name: "example.com.", Type: "soa", RRs: recs(t, soa("11"))},
		{Name: "www.example.com.", Type: "A", RRs: recs(t, "www.example.com. 300 IN A 192.0.2.20")},
		{Name: "alias.example.com.", Type: "A", RRs: recs(t, "alias.example.com. 300 IN CNAME www.example.com.", "www.example.com. 300 IN A 192.0.2.20")},
		{Name: "ttl.example.com.", Type: "A", RRs: recs(t, "ttl.example.com. 600 IN A 192.0.2.5")},
		{Name: "new.example.com.", Type: "AAAA", RRs: recs(t, "new.example.com. 300 IN AAAA 2001:db8::1")},
	}
	d := DiffRRsets(blue, green)
	if !d.SerialChanged || d.OldSerial != 10 || d.NewSerial != 11 {
		t.Errorf("serials: %+v", d)
	}
	if got, want := d.Summary(), "1 added, 1 removed, 3 changed: new.example.com. AAAA, gone.example.com. TXT, ttl.example.com. A, www.example.com. A, alias.example.com. A"; got != want {
		t.Errorf("Summary() = %q\nwant %q", got, want)
	}
	want := "added new.example.com. AAAA: [] → [2001:db8::1]; " +
		`removed gone.example.com. TXT: ["x"] → []; ` +
		"changed ttl.example.com. A: [ttl 300 192.0.2.5] → [ttl 600 192.0.2.5]; " +
		"and 2 more"
	if got := d.Describe(3); got != want {
		t.Errorf("Describe(3) =\n%s\nwant\n%s", got, want)
	}
	if got, want := d.Changed[0].String(), "ttl.example.com. A: [ttl 300 192.0.2.5] → [ttl 600 192.0.2.5]"; got != want {
		t.Errorf("TTL change: %q, want %q", got, want)
	}
	if got, want := d.Changed[1].String(), "www.example.com. A: [192.0.2.10] → [192.0.2.20]"; got != want {
		t.Errorf("www change: %q, want %q", got, want)
	}
	if d := DiffRRsets(blue, blue); !d.Empty() || d.SerialChanged || d.Describe(3) != "" {
		t.Errorf("identical answers: %+v", d)
	}
}

// A name with an escaped space (\032, printed "\ ") is one field: the
// change shows the RDATA, not pieces of the owner name.
func TestChangeOfNameWithEscapedSpace(t *testing.T) {
	name := `space\ name.example.com.`
	blue := []RRset{{Name: name, Type: "TXT", RRs: recs(t, `space\032name.example.com. 300 IN TXT "x"`)}}
	for _, c := range []struct {
		green string
		want  string
	}{
		{`space\032name.example.com. 300 IN TXT "y"`, name + ` TXT: ["x"] → ["y"]`},
		{`space\032name.example.com. 600 IN TXT "x"`, name + ` TXT: [ttl 300 "x"] → [ttl 600 "x"]`},
		{`space\032name.example.com. 300 IN CNAME other.example.com.`, name + ` TXT: ["x"] → [CNAME other.example.com.]`},
	} {
		d := DiffRRsets(blue, []RRset{{Name: name, Type: "TXT", RRs: recs(t, c.green)}})
		if len(d.Changed) != 1 {
			t.Fatalf("%s: diff %+v", c.green, d)
		}
		if got := d.Changed[0].String(); got != c.want {
			t.Errorf("%s:\n got %s\nwant %s", c.green, got, c.want)
		}
	}
}

// Flags of live answers are differences too, at a SOA as elsewhere, and a
// change shows them as they are: "; AA flag on a referral" has spaces
// like a record, but is not one.
func TestDiffRRsetsFlags(t *testing.T) {
	soa := recs(t, "example.com. 300 IN SOA ns1.example.com. hostmaster.example.com. 10 3600 600 1209600 300")
	ns := recs(t, "sub.example.com. 300 IN NS ns1.sub.example.com.")
	blue := []RRset{
		{Name: "example.com.", Type: "SOA", RRs: soa},
		{Name: "sub.example.com.", Type: "NS", RRs: ns},
	}
	green := []RRset{
		{Name: "example.com.", Type: "SOA", RRs: soa, Flags: []string{"no AA flag"}},
		{Name: "sub.example.com.", Type: "NS", RRs: ns, Flags: []string{"AA flag on a referral"}},
	}
	d := DiffRRsets(blue, green)
	if len(d.Changed) != 2 || d.Changed[0].Type != "SOA" || d.Changed[1].Type != "NS" {
		t.Fatalf("flags alone: %+v; want both RRsets changed", d)
	}
	if got, want := d.Changed[1].String(), "sub.example.com. NS: [ns1.sub.example.com.] → [ns1.sub.example.com., ; AA flag on a referral]"; got != want {
		t.Errorf("flag change:\n got %s\nwant %s", got, want)
	}
}

// Summary names at most 10 RRsets and counts the rest, and lists are in
// name and then type order.
func TestDiffSummaryBoundAndOrder(t *testing.T) {
	var green []RRset
	for i := range 12 {
		green = append(green, RRset{Name: fmt.Sprintf("n%02d.example.com.", i), Type: "TXT", RRs: recs(t, fmt.Sprintf(`n%02d.example.com. 300 IN TXT "x"`, i))})
	}
	green = append(green, RRset{Name: "n00.example.com.", Type: "A", RRs: recs(t, "n00.example.com. 300 IN A 192.0.2.1")})
	d := DiffRRsets(nil, green)
	if d.Added[0].Type != "A" || d.Added[1].Type != "TXT" {
		t.Errorf("order: %+v", d.Added[:2])
	}
	want := "13 added, 0 removed, 0 changed: n00.example.com. A, n00.example.com. TXT, n01.example.com. TXT, n02.example.com. TXT, n03.example.com. TXT, n04.example.com. TXT, n05.example.com. TXT, n06.example.com. TXT, n07.example.com. TXT, n08.example.com. TXT, and 3 more"
	if got := d.Summary(); got != want {
		t.Errorf("Summary() =\n%s\nwant\n%s", got, want)
	}
	if got, want := d.Limit(2).Describe(1), "added n00.example.com. A: [] → [192.0.2.1]; and 12 more"; got != want {
		t.Errorf("Describe(1) = %q, want %q", got, want)
	}
	if got, want := DiffRRsets(nil, green[:2]).Describe(1), `added n00.example.com. TXT: [] → ["x"]; and 1 more`; got != want {
		t.Errorf("Describe(1) of 2 = %q, want %q", got, want)
	}
}

// A change of one record in a large RRset (a pool of 100 addresses) shows
// that record, not the whole set twice: the failure reason is clipped at
// 1,500 characters, which cut it off before the record that differs.
func TestChangeInLargeRRsetShowsTheDifference(t *testing.T) {
	const name = "pool.example.com."
	set := func(ttl int, skip, extra string) Records {
		var rrs []string
		for i := 1; i <= 100; i++ {
			if a := fmt.Sprintf("10.0.0.%d", i); a != skip {
				rrs = append(rrs, fmt.Sprintf("%s %d IN A %s", name, ttl, a))
			}
		}
		if extra != "" {
			rrs = append(rrs, fmt.Sprintf("%s %d IN A %s", name, ttl, extra))
		}
		return recs(t, rrs...)
	}
	blue := []RRset{{Name: name, Type: "A", RRs: set(300, "", "")}}
	for _, c := range []struct {
		green Records
		want  string
	}{
		{set(300, "10.0.0.77", ""), name + " A: [10.0.0.77] → [] (99 records the same)"},
		{set(300, "10.0.0.77", "10.0.1.77"), name + " A: [10.0.0.77] → [10.0.1.77] (99 records the same)"},
		{set(600, "", ""), name + " A: [ttl 300 10.0.0.1, and 99 more] → [ttl 600 10.0.0.1, and 99 more]"},
	} {
		d := DiffRRsets(blue, []RRset{{Name: name, Type: "A", RRs: c.green}})
		if len(d.Changed) != 1 {
			t.Fatalf("diff %+v", d)
		}
		if got := d.Changed[0].String(); got != c.want {
			t.Errorf("\n got %s\nwant %s", clipMsg(got), c.want)
		}
	}
}

// When the target of many CNAMEs changes, every name that points at it
// answers differently; the change itself comes first, not after the names
// that only follow it, which sort earlier and filled the few samples a
// failure reason shows.
func TestChangeOfCNAMETargetComesFirst(t *testing.T) {
	var blue, green []RRset
	for _, n := range []string{"a", "b", "c", "d"} {
		name := n + ".example.com."
		cname := name + " 300 IN CNAME lb.example.com."
		blue = append(blue, RRset{Name: name, Type: "A", RRs: recs(t, cname, "lb.example.com. 300 IN A 192.0.2.1")})
		green = append(green, RRset{Name: name, Type: "A", RRs: recs(t, cname, "lb.example.com. 300 IN A 192.0.2.2")})
	}
	blue = append(blue, RRset{Name: "lb.example.com.", Type: "A", RRs: recs(t, "lb.example.com. 300 IN A 192.0.2.1")})
	green = append(green, RRset{Name: "lb.example.com.", Type: "A", RRs: recs(t, "lb.example.com. 300 IN A 192.0.2.2")})
	d := DiffRRsets(blue, green)
	if got, want := d.Describe(1), "changed lb.example.com. A: [192.0.2.1] → [192.0.2.2]; and 4 more"; got != want {
		t.Errorf("Describe(1) = %q, want %q", got, want)
	}
	if got, want := d.Summary(), "0 added, 0 removed, 5 changed: lb.example.com. A, a.example.com. A, b.example.com. A, c.example.com. A, d.example.com. A"; got != want {
		t.Errorf("Summary() = %q, want %q", got, want)
	}
}

// When CNAMEs are retargeted ($GENERATE of many), the query of each name
// for another type answers with the CNAME too; the CNAMEs' own changes
// come first, not each name twice, which filled the few samples a
// failure reason shows with half of the names.
func TestChangeOfCNAMEComesBeforeOtherTypesAtItsName(t *testing.T) {
	sets := func(target string) []RRset {
		var out []RRset
		for _, n := range []string{"a", "b", "c"} {
			name := n + ".example.com."
			cname := name + " 300 IN CNAME " + target
			out = append(out, RRset{Name: name, Type: "A", RRs: recs(t, cname, target+" 300 IN A 192.0.2.1")},
				RRset{Name: name, Type: "CNAME", RRs: recs(t, cname)})
		}
		return out
	}
	d := DiffRRsets(sets("t1.example.com."), sets("t2.example.com."))
	want := "changed a.example.com. CNAME: [t1.example.com.] → [t2.example.com.]; changed b.example.com. CNAME: [t1.example.com.] → [t2.example.com.]; changed c.example.com. CNAME: [t1.example.com.] → [t2.example.com.]; and 3 more"
	if got := d.Describe(3); got != want {
		t.Errorf("Describe(3) =\n %q, want\n %q", got, want)
	}
}

// The signature of a signed RRset whose data changed is noise in a
// change (about 100 characters of base64 a record, in a reason clipped at
// 1,500): it shows without it, unless the signatures are all that differ.
func TestChangeOfSignedRRsetLeavesOutSignatures(t *testing.T) {
	const name = "www.example.com."
	sig := func(b64 string) string {
		return name + " 300 IN RRSIG A 13 3 300 20270101000000 20261201000000 12345 example.com. " + b64
	}
	blue := []RRset{{Name: name, Type: "A", RRs: recs(t, name+" 300 IN A 192.0.2.1", sig("AAAA"))}}
	for _, c := range []struct {
		green Records
		want  string
	}{
		{recs(t, name+" 300 IN A 192.0.2.2", sig("BBBB")),
			name + " A: [192.0.2.1, RRSIG A 13 3 300 20270101000000 20261201000000 12345 example.com.] → [192.0.2.2, RRSIG A 13 3 300 20270101000000 20261201000000 12345 example.com.]"},
		{recs(t, name+" 300 IN A 192.0.2.1", sig("BBBB")),
			name + " A: [192.0.2.1, RRSIG A 13 3 300 20270101000000 20261201000000 12345 example.com. AAAA] → [192.0.2.1, RRSIG A 13 3 300 20270101000000 20261201000000 12345 example.com. BBBB]"},
	} {
		d := DiffRRsets(blue, []RRset{{Name: name, Type: "A", RRs: c.green}})
		if len(d.Changed) != 1 {
			t.Fatalf("diff %+v", d)
		}
		if got := d.Changed[0].String(); got != c.want {
			t.Errorf("\n got %s\nwant %s", got, c.want)
		}
	}
}

// A DNAME's new target changes the CNAME it synthesises at every name
// below it; that CNAME follows from the DNAME, which comes first.
func TestChangeOfDNAMEComesFirst(t *testing.T) {
	set := func(target string) []RRset {
		return []RRset{
			{Name: "a.example.org.", Type: "A", RRs: recs(t, "example.org. 300 IN DNAME "+target, "a.example.org. 300 IN CNAME a."+target)},
			{Name: "example.org.", Type: "DNAME", RRs: recs(t, "example.org. 300 IN DNAME "+target)},
		}
	}
	d := DiffRRsets(set("example.net."), set("example.info."))
	if got, want := d.Describe(1), "changed example.org. DNAME: [example.net.] → [example.info.]; and 1 more"; got != want {
		t.Errorf("Describe(1) = %q, want %q", got, want)
	}
}

// Records that miekg/dns prints in no form of their own show their data
// in a change: a NULL, which it prints as a comment with its raw bytes,
// which showed nothing of them, and a type it does not know (DOA, 259),
// printed TYPE259, which showed as a record of another type.
func TestChangeOfGenericRecordShowsItsData(t *testing.T) {
	const name = "x.example.com."
	for _, c := range []struct{ typ, printed, want string }{
		{"NULL", "NULL", `changed x.example.com. NULL: [\# 1 01] → [\# 1 02]`},
		{"DOA", "TYPE259", `changed x.example.com. DOA: [\# 1 01] → [\# 1 02]`},
	} {
		d := DiffRRsets([]RRset{{Name: name, Type: c.typ, RRs: recs(t, name+" 60 IN "+c.printed+` \# 1 01`)}},
			[]RRset{{Name: name, Type: c.typ, RRs: recs(t, name+" 60 IN "+c.printed+` \# 1 02`)}})
		if got := d.Describe(1); got != c.want {
			t.Errorf("Describe(1) = %q, want %q", got, c.want)
		}
	}
}

// An empty non-terminal a change makes or ends under a wildcard changes
// the wildcard's answers at that name (RFC 4592 §2.2.2), which no RRset
// of either file says: the diff must.
func TestDiffWildcardShadowedByENT(t *testing.T) {
	const base = "$TTL 300\n@ SOA ns1 hostmaster 1 3600 600 86400 300\n NS ns1\nns1 A 192.0.2.1\n*.w A 192.0.2.170\n*.w TXT \"wild\"\n"
	old, new := mustParse(t, base), mustParse(t, base+"deep.z.w TXT \"x\"\n")
	why := "now an empty non-terminal, which *.w.example.com. does not answer, nor the names below it"
	want := ZoneDiff{
		Added: []RRsetChange{{Name: "deep.z.w.example.com.", Type: "TXT", New: []string{`deep.z.w.example.com. 300 IN TXT "x"`}}},
		Removed: []RRsetChange{
			{Name: "z.w.example.com.", Type: "A", Old: []string{"z.w.example.com. 300 IN A 192.0.2.170"}, Why: why},
			{Name: "z.w.example.com.", Type: "TXT", Old: []string{`z.w.example.com. 300 IN TXT "wild"`}, Why: why},
		},
		OldSerial: 1, NewSerial: 1,
	}
	d := Diff(old, new)
	if !reflect.DeepEqual(d, want) {
		t.Fatalf("Diff =\n%+v\nwant\n%+v", d, want)
	}
	if got, want := d.Describe(1), "added deep.z.w.example.com. TXT: [] → [\"x\"]"; !strings.HasPrefix(got, want) {
		t.Errorf("Describe = %q", got)
	}
	if got, want := d.Removed[0].String(), "z.w.example.com. A: [192.0.2.170] → [] ("+why+")"; got != want {
		t.Errorf("String =\n%q\nwant\n%q", got, want)
	}

	// Removing the only name below z.w makes the wildcard answer it.
	rev := Diff(new, old)
	back := "no longer an empty non-terminal: *.w.example.com. answers it"
	if len(rev.Added) != 2 || rev.Added[0].Name != "z.w.example.com." || rev.Added[0].Why != back ||
		!reflect.DeepEqual(rev.Added[0].New, []string{"z.w.example.com. 300 IN A 192.0.2.170"}) || len(rev.Removed) != 1 {
		t.Errorf("reverse diff: %+v", rev)
	}

	// Names that exist on both sides, or that no wildcard answers, or
	// that are below a cut, are not implied changes.
	for _, c := range []struct{ what, old, new string }{
		{"a name already there", base + "z.w A 192.0.2.1\n", base + "z.w A 192.0.2.1\ndeep.z.w TXT \"x\"\n"},
		{"no wildcard", "$TTL 300\n@ SOA ns1 hostmaster 1 3600 600 86400 300\n NS ns1\nns1 A 192.0.2.1\n", "$TTL 300\n@ SOA ns1 hostmaster 1 3600 600 86400 300\n NS ns1\nns1 A 192.0.2.1\ndeep.z.w TXT \"x\"\n"},
		{"below a cut", base + "w NS ns.other.net.\n", base + "w NS ns.other.net.\nns.z.w A 192.0.2.9\n"},
		{"an ENT on both sides", base + "a.z.w TXT \"a\"\n", base + "a.z.w TXT \"a\"\nb.z.w TXT \"b\"\n"},
	} {
		d := Diff(mustParse(t, c.old), mustParse(t, c.new))
		for _, l := range [][]RRsetChange{d.Added, d.Removed, d.Changed} {
			for _, ch := range l {
				if ch.Why != "" {
					t.Errorf("%s: implied %+v", c.what, ch)
				}
			}
		}
	}
}
