package corpus

import (
	"bufio"
	"context"
	"crypto"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"go.temporal.io/sdk/temporal"

	"github.com/dnsroll/dnsroll/activities"
	"github.com/dnsroll/dnsroll/config"
	"github.com/dnsroll/dnsroll/internal/fleettest"
	"github.com/dnsroll/dnsroll/internal/localnamed"
	"github.com/dnsroll/dnsroll/internal/needlab"
)

// corpusZone is one third-party zone file under testdata/zones.
type corpusZone struct {
	file   string // relative to testdata/zones
	origin string
	// sign, when set ("nsec" or "nsec3"), makes the test sign the zone
	// with fresh keys first, after dropping any DNSSEC records the file
	// holds (their signatures have long expired). Zones with no sign
	// and RRSIGs in the file are served as they were signed upstream.
	sign string
}

// readCorpus is every zone the test serves, from the table in
// testdata/zones/SOURCES.md, the one place that names each file's origin
// and whether the test signs it ("signed by the test (NSEC)" or
// "(NSEC3)" in its note). Kinds (signed NSEC/NSEC3, delegations, DNAME,
// wildcards) are worked out from the records, not declared.
func readCorpus(t *testing.T) []corpusZone {
	t.Helper()
	text, err := os.ReadFile(filepath.Join(zonesDir, "SOURCES.md"))
	if err != nil {
		t.Fatal(err)
	}
	var zones []corpusZone
	for line := range strings.Lines(string(text)) {
		f := strings.Split(line, "|")
		if len(f) != 9 || !strings.HasPrefix(strings.TrimSpace(f[2]), "`") {
			continue // not a row of the table, or its header
		}
		cz := corpusZone{file: strings.TrimSpace(f[1]), origin: strings.Trim(strings.TrimSpace(f[2]), "`")}
		if m := signedBy.FindStringSubmatch(f[7]); m != nil {
			cz.sign = strings.ToLower(m[1])
		}
		zones = append(zones, cz)
	}
	if len(zones) == 0 {
		t.Fatal("SOURCES.md lists no zones: its table is | file | `origin` | ... | note |")
	}
	slices.SortFunc(zones, func(a, b corpusZone) int { return strings.Compare(a.file, b.file) })
	return zones
}

// signedBy is the note on a SOURCES.md row for a zone the test signs.
var signedBy = regexp.MustCompile(`signed by the test \((NSEC3?)\)`)

// The classes of the corpus test: identical servers, then one mutation of
// green's zone each (see mutate).
const (
	classIdentical = "identical"
	classRecord    = "record"
	classRemoved   = "removed"
	classTTL       = "ttl"
	classGlue      = "glue"
	classNSTarget  = "ns-target"
	classDS        = "ds"
	classDSRemoved = "ds-removed"
	classRRSIG     = "rrsig-expired"
	classDNAME     = "dname"
	classWildcard  = "wildcard"
)

var classes = []string{classIdentical, classRecord, classRemoved, classTTL, classGlue, classNSTarget,
	classDS, classDSRemoved, classRRSIG, classDNAME, classWildcard}

// knownGaps are the zone×class results that are wrong today, keyed
// "file class", with why. The test logs them instead of failing, and fails
// once one of them comes out right, so this list can only shrink as the
// analysis is fixed (issue 17); an entry added later is a regression and
// names the commit. testdata/zones/STATUS.md is the table.
var knownGaps = map[string]string{}

// outcome is the result of one zone × class.
type outcome struct {
	ok     bool
	status string // for STATUS.md: pass, FALSE FAILURE, detected, MISSED, refused
	detail string
}

func TestCorpus(t *testing.T) {
	needlab.Programs(t, "named", "named-checkzone", "named-compilezone", "dnssec-keygen", "dnssec-signzone")
	fleet, err := config.Parse([]byte(fleetYAML))
	if err != nil {
		t.Fatal(err)
	}
	results := map[string]map[string]outcome{}
	kinds := map[string][]string{}
	seen := map[string]bool{}
	corpus := readCorpus(t)
	for _, cz := range corpus {
		t.Run(strings.ReplaceAll(cz.file, "/", "_"), func(t *testing.T) {
			res, k := runZone(t, fleet, cz)
			results[cz.file], kinds[cz.file] = res, k
			for _, class := range classes {
				o, applies := res[class]
				if !applies {
					continue
				}
				key := cz.file + " " + class
				seen[key] = true
				gap, listed := knownGaps[key]
				switch {
				case !o.ok && listed:
					t.Logf("known gap %s: %s: %s", key, gap, o.detail)
				case !o.ok:
					t.Errorf("%s: %s: %s", class, o.status, o.detail)
				case listed:
					t.Errorf("%s: listed in knownGaps (%s) but now right (%s): remove it from the list", key, gap, o.status)
				}
			}
		})
	}
	for key := range knownGaps {
		file, _, _ := strings.Cut(key, " ")
		if _, ran := results[file]; (ran || !slices.ContainsFunc(corpus, func(cz corpusZone) bool { return cz.file == file })) && !seen[key] {
			t.Errorf("knownGaps lists %q, which the corpus no longer runs: remove it", key)
		}
	}
	if path := os.Getenv("DNSROLL_CORPUS_STATUS"); path != "" {
		if err := os.WriteFile(path, []byte(statusTable(results, kinds)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// fleetYAML is the test fleet with a probe section that asks for a strict
// analysis: no change from blue expected, one round, and room in the
// reason to name the RRsets that differ; timeouts and attempts are the
// defaults, so that a loaded machine does not make a lost query a false
// failure. Its zones and load balancers are not used: the test passes
// the zone files in VerifyInput, as Plan does, and asks the servers.
var fleetYAML = fleettest.YAML("corpus", "192.0.2.1:53", "192.0.2.2:53") +
	"probe: {expect_changes: false, rounds: 1, samples: 50}\n"

// runZone serves cz on a blue named, then its file unchanged and each
// mutation on a fresh green named, and analyses green against blue.
func runZone(t *testing.T, fleet *config.Fleet, cz corpusZone) (map[string]outcome, []string) {
	dir := t.TempDir()
	origin := dns.Fqdn(strings.ToLower(cz.origin))
	src := filepath.Join(zonesDir, cz.file)
	var keys *zoneKeys
	if cz.sign != "" {
		src, keys = signZone(t, dir, origin, src, cz.sign)
	}
	recs := canonical(t, origin, src)
	serial := soaSerial(t, recs)
	m := newModel(origin, recs)
	t.Logf("%s: %d records, kinds %s", cz.file, len(recs), strings.Join(m.kinds(), ","))

	blue, err := startNamed(t, filepath.Join(dir, "blue"), origin, src, serial)
	if err != nil {
		t.Fatal(err)
	}
	defer blue.Terminate()

	// Identical servers first, then one green per mutation; the runs are
	// independent and mostly wait on the network, so a few run at once.
	type run struct {
		class, file string
		mut         mutation
		err         error
	}
	runs := []*run{{class: classIdentical, file: src}}
	for _, class := range classes[1:] {
		mut, ok := mutate(t, m, class, keys)
		if !ok {
			continue
		}
		file := filepath.Join(dir, class+".db")
		if err := os.WriteFile(file, []byte(mut.text), 0o644); err != nil {
			t.Fatal(err)
		}
		runs = append(runs, &run{class: class, file: file, mut: mut})
	}
	sem := make(chan struct{}, parallelRuns)
	var wg sync.WaitGroup
	for _, r := range runs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			start := time.Now()
			green, err := startNamed(t, filepath.Join(dir, "green-"+r.class), origin, r.file, serial)
			if err != nil {
				r.err = err
				return
			}
			defer green.Terminate()
			started := time.Now()
			r.err = verify(fleet, origin, src, serial, blue.Addr, green.Addr)
			t.Logf("%s: named started in %s, analysed in %s", r.class, started.Sub(start).Round(time.Millisecond), time.Since(started).Round(time.Millisecond))
		}()
	}
	wg.Wait()

	res := map[string]outcome{}
	identical := runs[0].err
	for _, r := range runs {
		var o outcome
		var ne namedError
		switch {
		case errors.As(r.err, &ne):
			t.Errorf("%s: %v", r.class, r.err)
			continue
		case r.class == classIdentical && r.err == nil:
			o = outcome{ok: true, status: "pass"}
		case r.class == classIdentical && isRefusal(r.err):
			o = outcome{status: "refused", detail: r.err.Error()}
		case r.class == classIdentical:
			o = outcome{status: "FALSE FAILURE", detail: r.err.Error()}
		case r.err == nil:
			o = outcome{status: "MISSED", detail: r.mut.what + ": the analysis passed"}
		case isRefusal(r.err):
			o = outcome{status: "refused", detail: r.mut.what + ": " + r.err.Error()}
		case r.mut.named(r.err.Error()) && identical != nil && r.mut.named(identical.Error()):
			o = outcome{status: "MISSED", detail: fmt.Sprintf("%s: failed naming %s, as it does for identical servers", r.mut.what, strings.Join(r.mut.names, " or "))}
		case r.mut.named(r.err.Error()):
			o = outcome{ok: true, status: "detected", detail: r.mut.what}
		default:
			o = outcome{status: "MISSED", detail: fmt.Sprintf("%s: failed without naming %s: %s", r.mut.what, strings.Join(r.mut.names, " or "), clip(r.err.Error(), 400))}
		}
		res[r.class] = o
	}
	return res, m.kinds()
}

// verify runs the rollout's own analysis step, activities.Verify, with
// the input the rollout workflow gives it before the switch: green
// ns1-next against blue ns1, checks from the zone file, whose serial is
// the one named serves. Verify reads the file itself; a file it refuses
// comes back as a refusal.
func verify(fleet *config.Fleet, origin, file string, serial uint32, blue, green string) error {
	in := activities.VerifyInput{
		StepFleet: activities.StepFleet{Fleet: fleet},
		Targets:   []activities.ProbeTarget{{Name: "ns1-next", Addr: green}},
		Baseline:  []activities.ProbeTarget{{Name: "ns1", Addr: blue}},
		Zones:     []activities.ZoneFile{{Name: origin, Path: file, Serial: serial}},
		Serials:   map[string]uint32{origin: serial},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	_, err := (&activities.Activities{}).Verify(ctx, in)
	var app *temporal.ApplicationError
	if errors.As(err, &app) && app.Type() == activities.ErrInvalid {
		return refusal{err}
	}
	return err
}

// namedError is a named that would not serve: the test's own failure.
type namedError struct{ error }

func (e namedError) Unwrap() error { return e.error }

// refusal is a zone file the project refuses to parse: no analysis runs.
type refusal struct{ error }

func isRefusal(err error) bool {
	var r refusal
	return errors.As(err, &r)
}

// rec is one record as named-compilezone prints it in full style: one line,
// absolute names. line keeps the rdata as printed.
type rec struct {
	owner string // lower case
	ttl   uint32
	typ   string
	rdata string
	line  string
}

var recLine = regexp.MustCompile(`^(\S+)\s+(\d+)\s+(\S+)\s+(\S+)\s*(.*)$`)

// canonical is file as named loads it, through named-compilezone, so that
// mutations work on what named serves whatever the file's syntax.
func canonical(t *testing.T, origin, file string) []rec {
	t.Helper()
	out, err := exec.Command("named-compilezone", "-q", "-i", "none", "-k", "ignore", "-f", "text", "-F", "text",
		"-s", "full", "-o", "-", origin, file).Output()
	if err != nil {
		t.Fatalf("named-compilezone %s %s: %v", origin, file, err)
	}
	var recs []rec
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, ";") || strings.TrimSpace(line) == "" {
			continue
		}
		f := recLine.FindStringSubmatch(line)
		if f == nil {
			t.Fatalf("named-compilezone printed %q", line)
		}
		ttl, _ := strconv.ParseUint(f[2], 10, 32)
		recs = append(recs, rec{owner: strings.ToLower(f[1]), ttl: uint32(ttl), typ: f[4], rdata: f[5],
			line: fmt.Sprintf("%s %d %s %s %s", f[1], ttl, f[3], f[4], f[5])})
	}
	return recs
}

func soaSerial(t *testing.T, recs []rec) uint32 {
	for _, r := range recs {
		if r.typ == "SOA" {
			f := strings.Fields(r.rdata)
			s, err := strconv.ParseUint(f[2], 10, 32)
			if err != nil {
				t.Fatalf("SOA %q: %v", r.rdata, err)
			}
			return uint32(s)
		}
	}
	t.Fatal("no SOA")
	return 0
}

func render(recs []rec) string {
	var b strings.Builder
	for _, r := range recs {
		b.WriteString(r.line)
		b.WriteByte('\n')
	}
	return b.String()
}

// model is what the mutations need to know of a zone: its cuts, DNAMEs and
// signatures, from the records themselves.
type model struct {
	origin string
	recs   []rec
	cuts   []string // owners of NS below the apex, not below another cut or a DNAME
	dnames []string
	signed bool
	nsec3  bool
}

func newModel(origin string, recs []rec) *model {
	m := &model{origin: origin, recs: recs}
	for _, r := range recs {
		switch r.typ {
		case "DNAME":
			m.dnames = append(m.dnames, r.owner)
		case "RRSIG":
			m.signed = true
		case "NSEC3":
			m.nsec3 = true
		}
	}
	for _, r := range recs {
		if r.typ == "NS" && r.owner != origin && !slices.Contains(m.cuts, r.owner) && !m.belowDNAME(r.owner) {
			m.cuts = append(m.cuts, r.owner)
		}
	}
	// Drop cuts below other cuts: those are occluded.
	var top []string
	for _, c := range m.cuts {
		if m.cutAbove(c, false) == "" {
			top = append(top, c)
		}
	}
	m.cuts = top
	return m
}

func (m *model) kinds() []string {
	var k []string
	if m.signed && m.nsec3 {
		k = append(k, "signed-nsec3")
	} else if m.signed {
		k = append(k, "signed-nsec")
	}
	if len(m.cuts) > 0 {
		k = append(k, "delegating")
	}
	if slices.ContainsFunc(m.recs, func(r rec) bool { return r.typ == "DS" }) {
		k = append(k, "ds")
	}
	if len(m.dnames) > 0 {
		k = append(k, "dname")
	}
	if m.firstWildcard() != "" {
		k = append(k, "wildcard")
	}
	return k
}

// below reports whether name is parent or under it.
func below(name, parent string) bool {
	return parent == "." || name == parent || strings.HasSuffix(name, "."+parent)
}

// cutAbove is the cut at or (strictly, when strict) above name, or "".
func (m *model) cutAbove(name string, atToo bool) string {
	for _, c := range m.cuts {
		if c == name && !atToo {
			continue
		}
		if below(name, c) {
			return c
		}
	}
	return ""
}

func (m *model) belowDNAME(name string) bool {
	for _, d := range m.dnames {
		if name != d && below(name, d) {
			return true
		}
	}
	return false
}

var dnssecTypes = map[string]bool{"RRSIG": true, "NSEC": true, "NSEC3": true, "NSEC3PARAM": true, "DNSKEY": true, "CDS": true, "CDNSKEY": true}

// authoritative reports whether the RRset owner/typ is answered with AA:
// not at or below a cut (but DS at a cut is), not below a DNAME.
func (m *model) authoritative(owner, typ string) bool {
	if m.belowDNAME(owner) || dnssecTypes[typ] {
		return false
	}
	c := m.cutAbove(owner, true)
	return c == "" || (c == owner && typ == "DS")
}

// mutation is green's zone with one change, and the names a failing
// analysis must mention.
type mutation struct {
	text  string
	what  string
	names []string // owner names, lower case; a match below them counts when below
	below bool
}

// named reports whether reason names one of the mutation's RRsets.
func (mu mutation) named(reason string) bool {
	reason = strings.ToLower(reason)
	for _, n := range mu.names {
		pre := `(^|[\s\[\(:;,"'])`
		if mu.below {
			pre = `(^|[\s\[\(:;,"'.])`
		}
		if regexp.MustCompile(pre + regexp.QuoteMeta(n) + `($|[\s\]\):;,"'])`).MatchString(reason) {
			return true
		}
		if mu.below && regexp.MustCompile(`[a-z0-9_*-]\.`+regexp.QuoteMeta(n)).MatchString(reason) {
			return true
		}
	}
	return false
}

// preference is the order in which record types are picked for a change.
var preference = []string{"A", "AAAA", "TXT", "MX", "CNAME", "SRV", "PTR", "NAPTR", "HINFO", "SVCB", "HTTPS", "LOC"}

// rrsets lists the zone's RRsets (owner, type) in file order.
func (m *model) rrsets() [][2]string {
	var out [][2]string
	seen := map[[2]string]bool{}
	for _, r := range m.recs {
		k := [2]string{r.owner, r.typ}
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	return out
}

// targets are authoritative RRsets to change, by preference: non-apex
// names first, never wildcards (they have their own class).
func (m *model) targets() [][2]string {
	var out [][2]string
	for _, apex := range []bool{false, true} {
		for _, typ := range preference {
			for _, s := range m.rrsets() {
				if s[1] != typ || (s[0] == m.origin) != apex || strings.HasPrefix(s[0], "*") || !m.authoritative(s[0], s[1]) {
					continue
				}
				out = append(out, s)
			}
		}
	}
	// A zone of apex records only: its NS set, and for signatures its SOA.
	return append(out, [2]string{m.origin, "NS"}, [2]string{m.origin, "SOA"})
}

func (m *model) firstWildcard() string {
	for _, s := range m.rrsets() {
		if (strings.HasPrefix(s[0], "*.") || s[0] == "*") && m.authoritative(s[0], s[1]) && slices.Contains(preference, s[1]) {
			return s[0]
		}
	}
	return ""
}

// changeRdata gives other rdata of the same type, or false.
func changeRdata(typ, rdata string) (string, bool) {
	f := strings.Fields(rdata)
	switch typ {
	case "A":
		if rdata == "192.0.2.254" {
			return "192.0.2.253", true
		}
		return "192.0.2.254", true
	case "AAAA":
		if rdata == "2001:db8::254" {
			return "2001:db8::253", true
		}
		return "2001:db8::254", true
	case "TXT":
		return `"changed by the corpus test"`, true
	case "MX", "SRV", "NAPTR", "SVCB", "HTTPS":
		p, err := strconv.Atoi(f[0])
		if err != nil {
			return "", false
		}
		if typ == "NAPTR" || typ == "SRV" {
			return strconv.Itoa((p+7)%65536) + " " + strings.Join(f[1:], " "), true
		}
		if p == 0 { // alias mode: change the target instead
			return "0 changed.corpus.invalid.", true
		}
		return strconv.Itoa(p%65000+7) + " " + strings.Join(f[1:], " "), true
	case "CNAME", "PTR", "DNAME", "NS":
		return "changed.corpus.invalid.", true
	case "HINFO":
		return `"CHANGED" "CORPUS"`, true
	case "LOC":
		return "52 22 23.000 N 4 53 32.000 E -2.00m 0.00m 10000m 10m", true
	}
	return "", false
}

// changeRRset renders m with the RRset owner/typ changed as class says:
// classRecord, its first record's data (where changeRdata knows the
// type); classRemoved, the set and its signatures gone (never the apex NS
// set); classTTL, its TTL raised. what names the change, such as
// "www.example. A 192.0.2.1 → 192.0.2.254" or "www.example. A".
func changeRRset(m *model, owner, typ, class string) (text, what string, ok bool) {
	if class == classRemoved && owner == m.origin && typ == "NS" {
		return "", "", false
	}
	var out []rec
	for _, r := range m.recs {
		if r.owner != owner || r.typ != typ {
			covers := r.typ == "RRSIG" && r.owner == owner && strings.Fields(r.rdata)[0] == typ
			if !(class == classRemoved && covers) {
				out = append(out, r)
			}
			continue
		}
		switch class {
		case classRemoved:
			what, ok = owner+" "+typ, true
			continue
		case classTTL:
			what, ok = fmt.Sprintf("%s %s %d → %d", owner, typ, r.ttl, r.ttl*2+60), true
			r.ttl = r.ttl*2 + 60
		case classRecord:
			if nd, known := changeRdata(typ, r.rdata); known && !ok {
				what, ok = fmt.Sprintf("%s %s %s → %s", owner, typ, r.rdata, nd), true
				r.rdata = nd
			}
		}
		r.line = fmt.Sprintf("%s %d IN %s %s", r.owner, r.ttl, r.typ, r.rdata)
		out = append(out, r)
	}
	return render(out), what, ok
}

// parallelRuns is how many greens of one zone are analysed at once.
const parallelRuns = 4

// maxCandidates bounds the RRsets mutate tries for one class (each costs a
// named-checkzone run).
const maxCandidates = 8

// mutate makes green's zone for class from m, or reports that the class
// does not apply. Each candidate is checked with named-checkzone so that
// named loads it; the first one that loads is used. The check is of the
// zone's own data (-i local), as named checks a primary: -i full looks
// up out-of-zone names through the system resolver, 5 s when it stalls.
func mutate(t *testing.T, m *model, class string, keys *zoneKeys) (mutation, bool) {
	t.Helper()
	try := func(mu mutation) bool {
		f := filepath.Join(t.TempDir(), "check.db")
		if err := os.WriteFile(f, []byte(mu.text), 0o644); err != nil {
			t.Fatal(err)
		}
		return exec.Command("named-checkzone", "-q", "-k", "fail", "-i", "local", m.origin, f).Run() == nil
	}
	edit := func(fn func(i int, r rec) (rec, bool)) string {
		var out []rec
		for i, r := range m.recs {
			if nr, keep := fn(i, r); keep {
				out = append(out, nr)
			}
		}
		return render(out)
	}
	covers := func(r rec, owner, typ string) bool {
		return r.typ == "RRSIG" && r.owner == owner && strings.Fields(r.rdata)[0] == typ
	}
	withRdata := func(r rec, rdata string) rec {
		r.rdata = rdata
		r.line = fmt.Sprintf("%s %d IN %s %s", r.owner, r.ttl, r.typ, rdata)
		return r
	}
	switch class {
	case classRecord, classRemoved, classTTL, classRRSIG:
		if class == classRRSIG && !m.signed {
			return mutation{}, false
		}
		for i, s := range m.targets() {
			if i == maxCandidates {
				break
			}
			owner, typ := s[0], s[1]
			var mu mutation
			switch class {
			case classRecord, classRemoved, classTTL:
				if typ == "SOA" {
					continue // the serial check's business; named loads no zone without it
				}
				text, what, ok := changeRRset(m, owner, typ, class)
				if !ok {
					continue
				}
				mu = mutation{text: text, what: map[string]string{classRecord: "changed ", classRemoved: "removed ", classTTL: "TTL of "}[class] + what}
			case classRRSIG:
				var ok bool
				mu, ok = expireRRSIG(t, m, keys, owner, typ)
				if !ok {
					continue
				}
			}
			mu.names = []string{owner}
			if try(mu) {
				return mu, true
			}
		}
		return mutation{}, false
	case classGlue:
		for _, c := range m.cuts {
			targets := map[string]bool{}
			for _, r := range m.recs {
				if r.owner == c && r.typ == "NS" {
					targets[strings.ToLower(r.rdata)] = true
				}
			}
			for _, r := range m.recs {
				if (r.typ == "A" || r.typ == "AAAA") && below(r.owner, c) && targets[r.owner] {
					text, what, ok := changeRRset(m, r.owner, r.typ, classRecord)
					if !ok {
						continue
					}
					mu := mutation{text: text, what: "changed glue " + what, names: []string{r.owner, c}}
					if try(mu) {
						return mu, true
					}
				}
			}
		}
	case classNSTarget:
		for _, c := range m.cuts {
			text, what, ok := changeRRset(m, c, "NS", classRecord)
			if !ok {
				continue
			}
			mu := mutation{text: text, what: "changed NS target at the cut " + what, names: []string{c}}
			if try(mu) {
				return mu, true
			}
		}
	case classDS, classDSRemoved:
		for _, c := range m.cuts {
			if !slices.ContainsFunc(m.recs, func(r rec) bool { return r.owner == c && r.typ == "DS" }) {
				continue
			}
			var mu mutation
			if class == classDS {
				done := false
				mu.text = edit(func(_ int, r rec) (rec, bool) {
					if done || r.owner != c || r.typ != "DS" {
						return r, true
					}
					done = true
					rd := []byte(r.rdata)
					last := len(rd) - 1
					if rd[last] == '0' {
						rd[last] = '1'
					} else {
						rd[last] = '0'
					}
					mu.what = fmt.Sprintf("changed DS at %s: %s → %s", c, r.rdata, rd)
					return withRdata(r, string(rd)), true
				})
			} else {
				mu.what = "removed DS at " + c
				mu.text = edit(func(_ int, r rec) (rec, bool) {
					return r, !(r.owner == c && r.typ == "DS") && !covers(r, c, "DS")
				})
			}
			mu.names = []string{c}
			if try(mu) {
				return mu, true
			}
		}
	case classDNAME:
		for _, d := range m.dnames {
			if !m.authoritative(d, "DNAME") {
				continue // a DNAME at a cut is occluded: named refers
			}
			text, what, ok := changeRRset(m, d, "DNAME", classRecord)
			if !ok {
				continue
			}
			mu := mutation{text: text, what: "changed DNAME target " + what, names: []string{d}, below: true}
			if try(mu) {
				return mu, true
			}
		}
	case classWildcard:
		w := m.firstWildcard()
		if w == "" {
			return mutation{}, false
		}
		for _, typ := range preference {
			text, what, ok := changeRRset(m, w, typ, classRecord)
			if !ok {
				continue
			}
			// A changed wildcard shows at the wildcard itself or at any
			// name it synthesises an answer for.
			mu := mutation{text: text, what: "changed wildcard " + what, names: []string{strings.TrimPrefix(strings.TrimPrefix(w, "*"), ".")}, below: true}
			if mu.names[0] == "" {
				mu.names[0] = m.origin
			}
			if try(mu) {
				return mu, true
			}
		}
	}
	return mutation{}, false
}

// expireRRSIG gives green the RRSIGs of owner/typ expired a month ago. For
// zones the test signed, the new signature is made with the zone's own key
// and verifies; for zones signed upstream, whose keys are not public, the
// dates are rewritten and the signature no longer verifies either.
func expireRRSIG(t *testing.T, m *model, keys *zoneKeys, owner, typ string) (mutation, bool) {
	t.Helper()
	now := time.Now().UTC()
	exp, inc := uint32(now.Add(-30*24*time.Hour).Unix()), uint32(now.Add(-60*24*time.Hour).Unix())
	var out []rec
	var rrset []dns.RR
	found := false
	for _, r := range m.recs {
		if r.owner == owner && r.typ == typ {
			rr, err := dns.NewRR(r.line)
			if err != nil {
				t.Logf("expire RRSIG: miekg/dns cannot read %q: %v", r.line, err)
				return mutation{}, false
			}
			rrset = append(rrset, rr)
		}
		if r.typ == "RRSIG" && r.owner == owner && strings.Fields(r.rdata)[0] == typ {
			found = true
			if keys != nil {
				continue // replaced below
			}
			f := strings.Fields(r.rdata)
			f[4], f[5] = dns.TimeToString(exp), dns.TimeToString(inc)
			r.rdata = strings.Join(f, " ")
			r.line = fmt.Sprintf("%s %d IN RRSIG %s", r.owner, r.ttl, r.rdata)
		}
		out = append(out, r)
	}
	if !found {
		return mutation{}, false
	}
	if keys != nil {
		sig := &dns.RRSIG{
			Hdr:       dns.RR_Header{Name: rrset[0].Header().Name, Rrtype: dns.TypeRRSIG, Class: dns.ClassINET, Ttl: rrset[0].Header().Ttl},
			Algorithm: keys.zsk.Algorithm, KeyTag: keys.zsk.KeyTag(), SignerName: m.origin,
			Expiration: exp, Inception: inc,
		}
		if err := sig.Sign(keys.priv, rrset); err != nil {
			t.Fatalf("signing %s %s: %v", owner, typ, err)
		}
		out = append(out, rec{owner: owner, typ: "RRSIG", line: sig.String()})
	}
	return mutation{text: render(out), what: fmt.Sprintf("RRSIG of %s %s expired %s", owner, typ, dns.TimeToString(exp))}, true
}

// zoneKeys are the keys the test signed a zone with.
type zoneKeys struct {
	zsk  *dns.DNSKEY
	priv crypto.Signer
}

// signZone signs the zone in src with a fresh ECDSA P-256 KSK and ZSK, with
// NSEC or NSEC3 (no salt, no extra iterations, as RFC 9276 asks),
// after dropping the DNSSEC records src holds.
func signZone(t *testing.T, dir, origin, src, mode string) (string, *zoneKeys) {
	t.Helper()
	kdir := filepath.Join(dir, "keys")
	if err := os.MkdirAll(kdir, 0o755); err != nil {
		t.Fatal(err)
	}
	var unsigned []rec
	for _, r := range canonical(t, origin, src) {
		if !dnssecTypes[r.typ] {
			unsigned = append(unsigned, r)
		}
	}
	in := filepath.Join(dir, "unsigned.db")
	if err := os.WriteFile(in, []byte(render(unsigned)), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(name string, args ...string) string {
		out, err := exec.Command(name, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(string(out))
	}
	zsk := run("dnssec-keygen", "-q", "-K", kdir, "-a", "ECDSAP256SHA256", "-n", "ZONE", origin)
	run("dnssec-keygen", "-q", "-K", kdir, "-a", "ECDSAP256SHA256", "-n", "ZONE", "-f", "KSK", origin)
	out := filepath.Join(dir, "signed.db")
	args := []string{"-q", "-S", "-K", kdir, "-d", kdir, "-o", origin, "-N", "keep", "-f", out}
	if mode == "nsec3" {
		args = append(args, "-3", "-", "-H", "0")
	}
	run("dnssec-signzone", append(args, in)...)

	keyText, err := os.ReadFile(filepath.Join(kdir, zsk+".key"))
	if err != nil {
		t.Fatal(err)
	}
	var key *dns.DNSKEY
	for _, line := range strings.Split(string(keyText), "\n") {
		if rr, err := dns.NewRR(line); err == nil && rr != nil {
			if k, ok := rr.(*dns.DNSKEY); ok {
				key = k
			}
		}
	}
	if key == nil {
		t.Fatalf("no DNSKEY in %s.key", zsk)
	}
	privFile := filepath.Join(kdir, zsk+".private")
	f, err := os.Open(privFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	priv, err := key.ReadPrivateKey(f, privFile)
	if err != nil {
		t.Fatal(err)
	}
	return out, &zoneKeys{zsk: key, priv: priv.(crypto.Signer)}
}

// startNamed runs named for the test, serving file as origin once it
// answers with serial. The test's cleanup waits for it to end.
func startNamed(t *testing.T, dir, origin, file string, serial uint32) (*localnamed.Server, error) {
	s, err := localnamed.Start(dir, origin, file, serial)
	if err != nil {
		return nil, namedError{err}
	}
	t.Cleanup(s.Stop)
	return s, nil
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// tmpPath is a test's temporary directory in messages, left out of
// STATUS.md so that it changes only when results do.
var tmpPath = regexp.MustCompile(`/tmp/Test[^/]*/[0-9]+/`)

// zonesDir is testdata/zones, absolute.
var zonesDir, _ = filepath.Abs(filepath.Join("..", "testdata", "zones"))

// statusTable is testdata/zones/STATUS.md: zone × class, and the counts.
func statusTable(results map[string]map[string]outcome, kinds map[string][]string) string {
	var b strings.Builder
	b.WriteString("# Corpus status\n\nWritten by `DNSROLL_CORPUS_STATUS=$PWD/testdata/zones/STATUS.md go test -count=1 -run TestCorpus ./corpus`.\n")
	b.WriteString("Each zone is served by two real named (blue, green); `identical`: green serves the same file and must pass;\n")
	b.WriteString("other columns: green serves the zone with one change and must fail naming the RRset. `—`: the class does not apply.\n\n")
	b.WriteString("- record, removed, ttl: an authoritative RRset (A first, else AAAA, TXT, MX, ...; else the apex NS) changed, removed or given another TTL\n")
	b.WriteString("- glue, ns-target: at a zone cut, a glue address changed, or an NS target changed to a name outside the zone\n")
	b.WriteString("- ds, ds-removed: at a cut, the DS digest changed, or the DS RRset removed\n")
	b.WriteString("- rrsig-expired: the RRSIGs of one RRset expired a month ago (zones the test signs: re-signed with the zone's key; zones signed upstream: dates rewritten)\n")
	b.WriteString("- dname, wildcard: a DNAME's target changed, or a wildcard's data changed\n")
	b.WriteString("- refused: the project refuses the zone file, so no analysis runs\n\n")
	b.WriteString("| zone | kinds | " + strings.Join(classes, " | ") + " |\n|" + strings.Repeat(" --- |", len(classes)+2) + "\n")
	files := make([]string, 0, len(results))
	for f := range results {
		files = append(files, f)
	}
	sort.Strings(files)
	count := map[string]int{}
	var details []string
	for _, f := range files {
		row := []string{f, strings.Join(kinds[f], " ")}
		for _, k := range kinds[f] {
			count["kind "+k]++
		}
		for _, c := range classes {
			o, ok := results[f][c]
			if !ok {
				row = append(row, "—")
				continue
			}
			row = append(row, o.status)
			count[o.status]++
			if !o.ok {
				d := tmpPath.ReplaceAllString(strings.ReplaceAll(o.detail, zonesDir, "testdata/zones"), "<tmp>/")
				details = append(details, fmt.Sprintf("- %s %s: %s", f, c, strings.ReplaceAll(clip(d, 300), "\n", " ")))
			}
		}
		b.WriteString("| " + strings.Join(row, " | ") + " |\n")
	}
	fmt.Fprintf(&b, "\n%d zones. Identical servers: %d pass, %d false failures, %d refused. Mutations: %d detected, %d missed, %d refused.\n",
		len(files), countClass(results, classIdentical, "pass"), countClass(results, classIdentical, "FALSE FAILURE"), countClass(results, classIdentical, "refused"),
		count["detected"], count["MISSED"], count["refused"]-countClass(results, classIdentical, "refused"))
	fmt.Fprintf(&b, "Kinds: %d signed with NSEC, %d signed with NSEC3, %d delegating (%d with DS), %d with DNAME, %d with wildcards.\n",
		count["kind signed-nsec"], count["kind signed-nsec3"], count["kind delegating"], count["kind ds"], count["kind dname"], count["kind wildcard"])
	b.WriteString("\n## Why\n\n" + strings.Join(details, "\n") + "\n")
	return b.String()
}

func countClass(results map[string]map[string]outcome, class, status string) int {
	n := 0
	for _, r := range results {
		if o, ok := r[class]; ok && o.status == status {
			n++
		}
	}
	return n
}
