// Package zone reads BIND zone files into data that can be compared and
// queried, so that a rollout can say what green servers must answer and what
// changed since blue, without a running nameserver.
//
// A *Zone is a parsed file and stays inside an activity; what leaves it for
// workflow history (Answer, ZoneDiff, probe checks) is plain JSON.
package zone

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/miekg/dns"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/internal/childenv"
)

// Zone is one parsed zone: its origin, its SOA and its RRsets keyed by
// (owner, type), every record in canonical form (Canonical). Owner names
// are fully qualified and lower case, as on the wire (NormalName).
type Zone struct {
	origin string
	soa    *dns.SOA
	rrsets map[rrKey][]dns.RR
	// mixedTTLs is set when an RRset was written with several TTLs.
	mixedTTLs bool
	types     map[string][]uint16 // the types each owner holds, unsorted
	exists    map[string]bool     // owners and the empty non-terminals above them
	cuts      map[string]bool     // non-apex owners with NS: delegation points
	// nsec3 are the owners of NSEC3 records. BIND keeps them apart from
	// the zone's names: they do not exist for queries.
	nsec3 map[string]bool
	// notes are what BIND warned about while loading the file and did
	// not refuse, such as out-of-zone data it ignored.
	notes []string
	// added holds each record added, by owner, type and data, while the
	// file is read, so that a duplicate is found in one look-up.
	added map[string]bool
}

type rrKey struct {
	name  string
	qtype uint16
}

// Answer is what an authoritative server should reply to one query: the
// RCODE and the answer section (the RRset, after any CNAME or DNAME
// chain). A referral, for a name at or below a zone cut, has no AA flag,
// no answer, the cut's NS set in Authority and the addresses of its
// in-zone name servers (glue) in Additional.
type Answer struct {
	Rcode      int     `json:"rcode"`
	RRs        Records `json:"rrs,omitempty"`
	Referral   bool    `json:"referral,omitempty"`
	Authority  Records `json:"authority,omitempty"`
	Additional Records `json:"additional,omitempty"`
	// Optional, for a referral, is the addresses of its name servers
	// that are the zone's own data, not glue: written at the name, or
	// synthesised from a wildcard. BIND 9.18 leaves them out, but adds
	// them when its glue cache misses (about one first referral in
	// 60,000-90,000 under concurrent queries, measured on 9.18.49): a
	// server may send them or not.
	Optional Records `json:"optional,omitempty"`
}

// Error is a zone file that cannot be served, with the line at fault when
// known. It unwraps to a dnsroll.Error with code EINVALID because retrying
// the same file cannot help.
type Error struct {
	Zone string `json:"zone"`
	File string `json:"file"`
	Line int    `json:"line,omitempty"`
	Msg  string `json:"msg"`
}

// Error reads "zone example.com: db.example:12: message".
func (e *Error) Error() string {
	where := e.File
	if e.Line > 0 {
		where += ":" + strconv.Itoa(e.Line)
	}
	return fmt.Sprintf("zone %s: %s: %s", Shown(e.Zone), where, e.Msg)
}

// Shown is a zone's name as messages and named.conf write it: without
// the final dot, but the root's ".", which BIND refuses as "".
func Shown(origin string) string {
	if o := strings.TrimSuffix(origin, "."); o != "" {
		return o
	}
	return "."
}

// Unwrap lets dnsroll.ErrorCode classify a bad zone file as EINVALID.
func (e *Error) Unwrap() error { return dnsroll.Errorf(dnsroll.EINVALID, "%s", e.Error()) }

// ParseFile reads the zone file at path for origin (e.g. "example.com").
func ParseFile(path, origin string) (*Zone, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("zone %s: %w", Shown(origin), err)
	}
	defer f.Close()
	return Parse(f, origin, path)
}

// utf8BOM is the byte order mark that some editors put at a file's start.
var utf8BOM = []byte("\ufeff")

var (
	lineRE = regexp.MustCompile(` at line: (\d+):\d+$`)
	// includeRE finds a $INCLUDE at a line's start: after a newline or a
	// bare carriage return, which BIND ends a line at too.
	includeRE = regexp.MustCompile(`(?i)(?:^|[\r\n])[ \t]*(\$INCLUDE)\b`)
)

// Parse reads a zone in BIND syntax. filename only labels errors; $INCLUDE
// is refused so a zone file cannot read other files.
//
// The file is read as BIND reads it: where named-compilezone is installed
// (it is on every worker and nameserver), BIND itself expands the file
// ($GENERATE, TTL defaults, RRsets split over lines, which take their
// minimum TTL, out-of-zone data, which is ignored with a warning) and
// refuses what named would refuse; miekg/dns then reads BIND's full,
// one-record-a-line output. Without it, miekg/dns reads the file with the
// same rules where it can. A missing SOA or one that is not at the apex
// is an error either way.
func Parse(r io.Reader, origin, filename string) (*Zone, error) {
	return parse(r, origin, filename, true)
}

// parse is Parse; without compileIt, miekg/dns reads the file as it is,
// which ParseChecked does for files BIND has already loaded.
func parse(r io.Reader, origin, filename string, compileIt bool) (*Zone, error) {
	origin = NormalName(origin)
	fail := func(line int, format string, args ...any) (*Zone, error) {
		return nil, &Error{Zone: origin, File: filename, Line: line, Msg: fmt.Sprintf(format, args...)}
	}
	if _, ok := dns.IsDomainName(origin); !ok {
		return fail(0, "bad origin %q", origin)
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return fail(0, "%v", err)
	}
	if bytes.HasPrefix(data, utf8BOM) {
		return fail(1, "the file begins with a UTF-8 byte order mark (EF BB BF), which BIND reads as part of its first line and refuses: save the file without it")
	}
	if loc := includeRE.FindSubmatchIndex(data); loc != nil {
		return fail(bytes.Count(data[:loc[2]], []byte("\n"))+1, "$INCLUDE is not allowed: a zone file may not read other files on the worker; put the records it names in this file")
	}
	z := &Zone{origin: origin, rrsets: map[rrKey][]dns.RR{}, types: map[string][]uint16{}, exists: map[string]bool{}, cuts: map[string]bool{}, nsec3: map[string]bool{}, added: map[string]bool{}}
	defer func() { z.added = nil }()
	var compiled []byte
	var extra []dns.RR
	var notes []string
	cerr := errNotCompiled
	if compileIt {
		compiled, extra, notes, cerr = compile(data, origin, filename)
	}
	switch {
	case cerr == errNotCompiled:
		// BIND has loaded this file already (ParseChecked).
	case cerr == errNoCompiler:
		z.notes = append(z.notes, filename+": read without named-compilezone (install bind9-utils): $GENERATE, TTL defaults and record types may be read differently from BIND")
	case cerr != nil:
		return nil, cerr
	default:
		data, z.notes = compiled, notes
		for _, rr := range extra {
			rr.Header().Name = NormalName(rr.Header().Name)
			z.add(rr)
		}
	}
	lr := &lineReader{r: bufio.NewReader(bytes.NewReader(data))}
	zp := dns.NewZoneParser(lr, origin, filename)
	zp.SetIncludeAllowed(false)
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		h := rr.Header()
		h.Name = NormalName(h.Name)
		if !dns.IsSubDomain(origin, h.Name) {
			z.notes = append(z.notes, fmt.Sprintf("%s:%d: ignoring out-of-zone data (%s %s), as BIND does", filename, lr.line(), h.Name, TypeName(h.Rrtype)))
			continue
		}
		if _, ok := rr.(*dns.SOA); ok {
			if h.Name != origin {
				return fail(lr.line(), "SOA at %s, want it at the apex %s", h.Name, origin)
			}
			if z.soa != nil {
				return fail(lr.line(), "more than one SOA record")
			}
		}
		z.add(rr)
	}
	if err := zp.Err(); err != nil {
		var pe *dns.ParseError
		if !errors.As(err, &pe) {
			return fail(0, "%v", err)
		}
		msg := strings.TrimPrefix(pe.Error(), filename+": ")
		line := 0
		if m := lineRE.FindStringSubmatch(msg); m != nil {
			line, _ = strconv.Atoi(m[1])
			msg = strings.TrimSuffix(msg, m[0])
		}
		msg = strings.TrimPrefix(msg, "dns: ")
		if cerr == nil {
			// A line of BIND's own output: its number means nothing to the
			// reader, its record does.
			lines := strings.Split(string(data), "\n")
			if line < 1 || line > len(lines) {
				return fail(0, "BIND loads this zone but dnsroll cannot read one of its records (miekg/dns: %s)", strings.TrimPrefix(msg, ": "))
			}
			return fail(0, "BIND loads this zone but dnsroll cannot read its record %q (miekg/dns: %s)",
				strings.Join(strings.Fields(lines[line-1]), " "), strings.TrimPrefix(msg, ": "))
		}
		return fail(line, "%s", msg)
	}
	if z.soa == nil {
		return fail(0, "no SOA record at the apex %s", origin)
	}
	if msg := z.overNamedLimits(); msg != "" {
		return fail(0, "%s", msg)
	}
	return z, nil
}

// named's limits on one name (BIND 9.18.28 and later, the bind9 that the
// nameserver role installs): it refuses to load a zone past either, where
// named-checkzone and named-compilezone load it.
const (
	namedMaxRecordsPerType = 100 // max-records-per-type
	namedMaxTypesPerName   = 100 // max-types-per-name; each type's signatures count as one more
)

// answerSize is the size of the smallest answer that carries set, the
// RRset of k, with its signatures, which take sigs of it: the header, the
// question, each record with its owner name compressed to a pointer, and
// an EDNS option.
func (z *Zone) answerSize(k rrKey, set []dns.RR) (size, sigs int) {
	owner := len(k.name) + 1 // its wire form, for a name in presentation form ending in a dot
	n := 12 + owner + 4 + 11
	for _, rr := range set {
		n += dns.Len(rr) - owner + 2
	}
	for _, rr := range z.rrsets[rrKey{k.name, dns.TypeRRSIG}] {
		if rr.(*dns.RRSIG).TypeCovered == k.qtype {
			sigs += dns.Len(rr) - owner + 2
		}
	}
	return n + sigs, sigs
}

// thousands is n with commas between its thousands.
func thousands(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// overNamedLimits names the first RRset or name, in name order, past
// named's limits, or returns "".
func (z *Zone) overNamedLimits() string {
	types := map[string]int{}
	var msgs []string
	for k, set := range z.rrsets {
		if k.qtype != dns.TypeRRSIG {
			types[k.name]++
			if len(set) > namedMaxRecordsPerType {
				msgs = append(msgs, fmt.Sprintf("%s %s has %d records; named refuses to load more than %d records of one type at a name (max-records-per-type): keep at most that many",
					k.name, TypeName(k.qtype), len(set), namedMaxRecordsPerType))
			}
			if n, sigs := z.answerSize(k, set); n > dns.MaxMsgSize {
				who := "so no resolver gets it"
				if n-sigs <= dns.MaxMsgSize {
					who = "with its signatures, which validating resolvers ask for, so they do not get it"
				}
				msgs = append(msgs, fmt.Sprintf("%s %s takes %s bytes in an answer, more than a DNS message holds (65,535): named loads it but answers it truncated and empty, over TCP too, %s: make it smaller",
					k.name, TypeName(k.qtype), thousands(n), who))
			}
			continue
		}
		covered := map[uint16]bool{}
		for _, rr := range set {
			covered[rr.(*dns.RRSIG).TypeCovered] = true
		}
		types[k.name] += len(covered)
	}
	for name, n := range types {
		if n > namedMaxTypesPerName {
			msgs = append(msgs, fmt.Sprintf("%s has %d RRsets (types, and signatures of each type); named refuses to load more than %d at a name (max-types-per-name): move some of its data to other names",
				name, n, namedMaxTypesPerName))
		}
	}
	if len(msgs) == 0 {
		return ""
	}
	slices.Sort(msgs)
	return msgs[0]
}

// svcbKeyRE is an SVCB or HTTPS parameter key that BIND prints by number
// ("key7", "key8"), in a record of BIND's output.
var svcbKeyRE = regexp.MustCompile(`(?m)^(\S+\s+\d+\s+IN\s+(?:SVCB|HTTPS)\s.*?[ =,])key(\d+)\b`)

// svcbKeyName rewrites a key that miekg/dns knows by name (key7 is
// dohpath, key8 ohttp) to its name, which is how miekg/dns reads it;
// unknown keys stay numbers. Applied until no such key is left on a line.
func svcbKeyName(m []byte) []byte {
	sub := svcbKeyRE.FindSubmatch(m)
	n, err := strconv.Atoi(string(sub[2]))
	if err != nil || n > 65535 {
		return m
	}
	name := dns.SVCBKey(n).String()
	if name == "key"+string(sub[2]) {
		return m
	}
	return append(append([]byte{}, sub[1]...), name...)
}

// emptyKeyRE is an SVCB parameter key without a value that miekg/dns
// does not know ("key8"): it cannot read one.
var emptyKeyRE = regexp.MustCompile(`\skey(\d+)(?:\s|$)`)

// svcbFixup takes out of out the SVCB and HTTPS records with keys that
// have no value and that miekg/dns does not know, and returns them read
// without those keys and with the keys added as data.
func svcbFixup(out []byte) ([]byte, []dns.RR, error) {
	if !emptyKeyRE.Match(out) {
		return out, nil, nil
	}
	var rest bytes.Buffer
	var extra []dns.RR
	for _, line := range strings.SplitAfter(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 4 || (f[3] != "SVCB" && f[3] != "HTTPS") || !emptyKeyRE.MatchString(line) {
			rest.WriteString(line)
			continue
		}
		var keys []uint16
		for {
			m := emptyKeyRE.FindStringSubmatchIndex(line)
			if m == nil {
				break
			}
			n, _ := strconv.Atoi(line[m[2]:m[3]])
			keys = append(keys, uint16(n))
			line = line[:m[0]] + " " + line[m[1]:]
		}
		rr, err := dns.NewRR(line)
		if err != nil {
			return nil, nil, fmt.Errorf("%q (miekg/dns: %s)", strings.Join(strings.Fields(line), " "), strings.TrimPrefix(err.Error(), "dns: "))
		}
		var kv *[]dns.SVCBKeyValue
		switch r := rr.(type) {
		case *dns.SVCB:
			kv = &r.Value
		case *dns.HTTPS:
			kv = &r.Value
		}
		for _, k := range keys {
			*kv = append(*kv, &dns.SVCBLocal{KeyCode: dns.SVCBKey(k)})
		}
		extra = append(extra, rr)
	}
	return rest.Bytes(), extra, nil
}

// errNoCompiler is compile's answer where named-compilezone is missing.
var errNoCompiler = errors.New("named-compilezone is not installed")

// errNotCompiled stands for compile's answer where parse was told not to
// compile: miekg/dns reads the file as it is.
var errNotCompiled = errors.New("not compiled")

var compilerPath = sync.OnceValue(func() string {
	p, _ := exec.LookPath("named-compilezone")
	return p
})

// compile is data as BIND loads it, by named-compilezone: one record a
// line, absolute names, explicit TTLs; extra are records of it that
// miekg/dns cannot read as text (see svcbFixup). notes are the warnings BIND gave
// about data it ignored, or found illegal and loaded. A file BIND refuses is an *Error with BIND's
// message and line.
func compile(data []byte, origin, filename string) (out []byte, extra []dns.RR, notes []string, err error) {
	bin := compilerPath()
	if bin == "" {
		return nil, nil, nil, errNoCompiler
	}
	dir, err := os.MkdirTemp("", "dnsroll-zone-")
	if err != nil {
		return nil, nil, nil, err
	}
	defer os.RemoveAll(dir)
	src := filepath.Join(dir, "zone")
	if err := os.WriteFile(src, data, 0o600); err != nil {
		return nil, nil, nil, err
	}
	var stdout, stderr bytes.Buffer
	// -i local checks the zone's integrity as named does when it loads a
	// primary zone, from the zone's own data: the default (full) also looks
	// names outside the zone up through the system resolver, which sends
	// queries out from the worker and can stall a parse for seconds.
	cmd := exec.Command(bin, "-f", "text", "-F", "text", "-s", "full", "-i", "local", "-o", "-", origin, src)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.Env = childenv.Minimal()
	runErr := cmd.Run()
	type msg struct {
		line int
		text string
	}
	var perLine []msg
	var summary []string
	reason := ""
	for _, l := range strings.Split(stderr.String(), "\n") {
		if i := strings.Index(l, src+":"); i >= 0 {
			rest := l[i+len(src)+1:]
			if j := strings.Index(rest, ": "); j > 0 {
				if n, err := strconv.Atoi(rest[:j]); err == nil {
					perLine = append(perLine, msg{n, rest[j+2:]})
				}
			}
			continue // a warning about the whole file
		}
		if m := failedRE.FindStringSubmatch(l); m != nil {
			reason = m[1]
		} else if l = strings.TrimSpace(zoneMsgRE.ReplaceAllString(l, "")); l != "" && l != "OK" && !strings.HasPrefix(l, "loaded serial") && l != "not loaded due to errors." {
			summary = append(summary, l)
		}
	}
	if runErr == nil {
		for _, m := range perLine {
			if strings.Contains(m.text, "ignoring") {
				notes = append(notes, fmt.Sprintf("%s:%d: %s", filename, m.line, m.text))
			}
		}
		// What the integrity checks found illegal and named loads anyway:
		// an MX, SRV or NS that names a CNAME, and a delegation to a name
		// below it without glue, which no resolver can follow.
		for _, l := range summary {
			if strings.HasSuffix(l, "(illegal)") || strings.Contains(l, "has no REQUIRED GLUE") {
				notes = append(notes, filename+": "+l)
			}
		}
		// One record a line; a blank line after each, because miekg/dns
		// reads an IPSECKEY's key past the end of its line.
		out := asGeneric(stdout.Bytes())
		out, extra, err := svcbFixup(svcbKeyRE.ReplaceAllFunc(out, svcbKeyName))
		if err != nil {
			return nil, nil, nil, &Error{Zone: origin, File: filename, Msg: "BIND loads this zone but dnsroll cannot read its record " + err.Error()}
		}
		return bytes.ReplaceAll(out, []byte("\n"), []byte("\n\n")), extra, notes, nil
	}
	for _, m := range perLine {
		// A file whose records are all another zone's: BIND ignores each
		// as out of zone, then finds no SOA, and says only that.
		if n := outOfZoneRE.FindStringSubmatch(m.text); n != nil && slices.Contains(summary, "has 0 SOA records") {
			return nil, nil, nil, &Error{Zone: origin, File: filename, Line: m.line,
				Msg: fmt.Sprintf("the file's records are for %s, not %s: correct the zone's name in the fleet, or the file's $ORIGIN", n[1], Shown(origin))}
		}
	}
	for _, m := range perLine {
		if reason != "" && strings.HasSuffix(m.text, reason) {
			return nil, nil, nil, &Error{Zone: origin, File: filename, Line: m.line, Msg: m.text + longStringHint(data, m.line, m.text)}
		}
	}
	for _, m := range perLine {
		if !bindWarningRE.MatchString(m.text) {
			return nil, nil, nil, &Error{Zone: origin, File: filename, Line: m.line, Msg: m.text + longStringHint(data, m.line, m.text)}
		}
	}
	if len(summary) == 0 && reason != "" {
		summary = []string{reason}
	}
	if len(summary) == 0 {
		summary = []string{strings.TrimSpace(strings.ReplaceAll(stderr.String(), src, filename))}
	}
	refused := clipMsg(strings.Join(summary, "; "))
	return nil, nil, nil, &Error{Zone: origin, File: filename, Msg: "BIND refuses the zone: " + refused + relativeHint(refused, origin)}
}

// longStringHint explains BIND's bare "syntax error" for the record that
// starts at line when it holds a string of more than 255 bytes: a DKIM key
// pasted as one string is the usual cause.
func longStringHint(data []byte, line int, msg string) string {
	if !strings.HasSuffix(msg, "syntax error") {
		return ""
	}
	lines := bytes.SplitAfter(data, []byte("\n"))
	if line < 1 || line > len(lines) {
		return ""
	}
	longest, n, depth, quoted := 0, 0, 0, false
	end := func() { longest, n = max(longest, n), 0 }
	for _, l := range lines[line-1:] {
	chars:
		for i := 0; i < len(l); i++ {
			c := l[i]
			switch {
			case c == '\\': // one byte, written \X or \DDD
				if i+3 < len(l) && isDigits(string(l[i+1:i+4])) {
					i += 3
				} else {
					i++
				}
				n++
			case c == '"':
				end()
				quoted = !quoted
			case quoted:
				n++
			case c == ';':
				break chars
			case c == ' ' || c == '\t' || c == '\r' || c == '\n':
				end()
			case c == '(':
				end()
				depth++
			case c == ')':
				end()
				depth--
			default:
				n++
			}
		}
		end()
		if depth <= 0 && !quoted {
			break
		}
	}
	if longest <= 255 {
		return ""
	}
	return fmt.Sprintf(` (a string holds at most 255 bytes, and this record has one of %d: split it into quoted strings ("..." "..."), which TXT readers such as DKIM join)`, longest)
}

// quotedNameRE is a name as BIND quotes it in a message.
var quotedNameRE = regexp.MustCompile(`'([^' ]+)'`)

// relativeHint explains a name in BIND's msg that ends in the zone's name
// twice: one written without its trailing dot, which makes it relative to
// the zone (ns1.example.com in example.com is ns1.example.com.example.com).
func relativeHint(msg, origin string) string {
	o := strings.ToLower(strings.TrimSuffix(origin, "."))
	for _, m := range quotedNameRE.FindAllStringSubmatch(msg, -1) {
		name := strings.TrimSuffix(m[1], ".")
		if l := strings.ToLower(name); o != "" && (l == o+"."+o || strings.HasSuffix(l, "."+o+"."+o)) {
			return fmt.Sprintf(" (%s: a name without a trailing dot is relative to the zone; end it with a dot: %s.)", name, name[:len(name)-len(o)-1])
		}
	}
	return ""
}

var (
	// failedRE is BIND's reason for not loading a file.
	failedRE = regexp.MustCompile(`loading from master file .* failed: (.*)$`)
	// bindWarningRE matches BIND's messages about lines it loads anyway.
	bindWarningRE = regexp.MustCompile(`ignoring|TTL set to prior|no TTL specified|using SOA MINTTL`)
	// outOfZoneRE is BIND's message about a record outside the zone.
	outOfZoneRE = regexp.MustCompile(`ignoring out-of-zone data \(([^)]+)\)`)
	// zoneMsgRE prefixes BIND's messages about the zone as a whole.
	zoneMsgRE = regexp.MustCompile(`^zone [^ ]+/IN: `)
)

func clipMsg(s string) string {
	s = strings.ReplaceAll(s, "\n", "; ")
	if len(s) > 300 {
		return s[:300] + "..."
	}
	return s
}

// lineReader counts the lines the zone parser has read, so errors found
// after it returns a record (outside the zone, a second SOA) name the
// record's line too. The parser reads a record up to the newline that
// ends it and no further; for a record over several lines in
// parentheses, that is its last line.
type lineReader struct {
	r     *bufio.Reader
	lines int
	last  byte
}

func (l *lineReader) ReadByte() (byte, error) {
	c, err := l.r.ReadByte()
	if err == nil {
		l.last = c
		if c == '\n' {
			l.lines++
		}
	}
	return c, err
}

func (l *lineReader) Read(p []byte) (int, error) { return l.r.Read(p) }

// line is the line of the last record read.
func (l *lineReader) line() int {
	if l.last == '\n' {
		return l.lines
	}
	return l.lines + 1
}

// maxTTL is the largest TTL (RFC 2181 §8); named loads a larger one as 0,
// and so does loadedTTL.
const maxTTL = 1<<31 - 1

// loadedTTL sets rr's TTL to the one named loads.
func loadedTTL(rr dns.RR) {
	if h := rr.Header(); h.Ttl > maxTTL {
		h.Ttl = 0
	}
}

func (z *Zone) add(rr dns.RR) {
	rr = Canonical(rr)
	loadedTTL(rr)
	h := rr.Header()
	if soa, ok := rr.(*dns.SOA); ok {
		z.soa = soa
	}
	k := rrKey{h.Name, h.Rrtype}
	set := z.rrsets[k]
	// A record is a duplicate when its canonical wire data is: names that
	// RFC 4034 §6.2 does not lower-case (an SVCB target) keep their case,
	// and differ, as they do for named. dns.IsDuplicate folds every name.
	data := keyOf(rr)
	id := fmt.Sprintf("%s %d %s%s", h.Name, h.Rrtype, data.rdata, data.text)
	if z.added[id] {
		// Which TTL named serves for a record written twice is its own
		// business: a quick read must leave the zone to BIND's.
		z.mixedTTLs = z.mixedTTLs || len(set) > 0 && h.Ttl != set[0].Header().Ttl
		return
	}
	z.added[id] = true
	if len(set) > 0 && h.Rrtype != dns.TypeRRSIG {
		// BIND serves an RRset with the lowest TTL of its records.
		z.mixedTTLs = z.mixedTTLs || h.Ttl != set[0].Header().Ttl
		ttl := min(h.Ttl, set[0].Header().Ttl)
		h.Ttl = ttl
		for _, old := range set {
			old.Header().Ttl = ttl
		}
	}
	z.rrsets[k] = append(set, rr)
	if sig, ok := rr.(*dns.RRSIG); h.Rrtype == dns.TypeNSEC3 || ok && sig.TypeCovered == dns.TypeNSEC3 {
		z.nsec3[h.Name] = true
		return
	}
	if len(set) == 0 {
		z.types[h.Name] = append(z.types[h.Name], h.Rrtype)
	}
	if h.Rrtype == dns.TypeNS && h.Name != z.origin {
		z.cuts[h.Name] = true
	}
	for n := h.Name; !z.exists[n] && dns.IsSubDomain(z.origin, n); {
		z.exists[n] = true
		i, end := dns.NextLabel(n, 0)
		if end {
			break
		}
		n = n[i:]
	}
}

// Origin is the zone's apex, fully qualified and lower case.
func (z *Zone) Origin() string { return z.origin }

// Serial is the SOA serial, which secondaries and probes compare.
func (z *Zone) Serial() uint32 { return z.soa.Serial }

// Names lists the owner names that hold records, sorted, so callers can
// walk the zone deterministically. NSEC3 owners are not among them.
func (z *Zone) Names() []string {
	names := make([]string, 0, len(z.types))
	for n := range z.types {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Types lists the RR types present at name, in numeric order, so probes can
// check every RRset an owner has.
func (z *Zone) Types(name string) []uint16 {
	types := slices.Clone(z.types[NormalName(name)])
	slices.Sort(types)
	return types
}

// RRset returns the RRset at (name, qtype) in canonical form and order.
func (z *Zone) RRset(name string, qtype uint16) Records {
	return NewRecords(z.rrsets[rrKey{NormalName(name), qtype}], "")
}

// DNSKEYs is the apex DNSKEY set, which a zone may hold unsigned.
func (z *Zone) DNSKEYs() Records { return z.RRset(z.origin, dns.TypeDNSKEY) }

// Signed reports whether the zone is signed: its SOA has a signature. A
// DNSKEY alone signs nothing; named serves such a zone unsigned.
func (z *Zone) Signed() bool {
	for _, rr := range z.rrsets[rrKey{z.origin, dns.TypeRRSIG}] {
		if rr.(*dns.RRSIG).TypeCovered == dns.TypeSOA {
			return true
		}
	}
	return false
}

// Notes are what BIND warned about when loading the file and then
// ignored (out-of-zone data), for the rollout's warnings.
func (z *Zone) Notes() []string { return slices.Clone(z.notes) }
