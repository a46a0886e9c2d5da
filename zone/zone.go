// Package zone reads BIND zone files into data that can be compared and
// queried, so that a rollout can say what green servers must answer and what
// changed since blue, without a running nameserver.
//
// A *Zone is a parsed file and stays inside an activity; what leaves it for
// workflow history (Answer, ZoneDiff, probe checks) is plain JSON.
package zone

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/miekg/dns"

	"github.com/dnsroll/dnsroll"
)

// Zone is one parsed zone: its origin, its SOA and its RRsets keyed by
// (owner, type). Owner names are fully qualified and lower case.
type Zone struct {
	origin string
	soa    *dns.SOA
	rrsets map[rrKey][]dns.RR
	types  map[string][]uint16 // the types each owner holds, unsorted
	exists map[string]bool     // owners and the empty non-terminals above them
	cuts   map[string]bool     // non-apex owners with NS: delegation points
}

type rrKey struct {
	name  string
	qtype uint16
}

// Answer is what an authoritative server should reply to one query: the
// RCODE and the answer section (the RRset, after any CNAME chain) as
// sorted canonical strings.
type Answer struct {
	Rcode int      `json:"rcode"`
	RRs   []string `json:"rrs,omitempty"`
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
	return fmt.Sprintf("zone %s: %s: %s", strings.TrimSuffix(e.Zone, "."), where, e.Msg)
}

// Unwrap lets dnsroll.ErrorCode classify a bad zone file as EINVALID.
func (e *Error) Unwrap() error { return dnsroll.Errorf(dnsroll.EINVALID, "%s", e.Error()) }

// ParseFile reads the zone file at path for origin (e.g. "example.com").
func ParseFile(path, origin string) (*Zone, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("zone %s: %w", strings.TrimSuffix(origin, "."), err)
	}
	defer f.Close()
	return Parse(f, origin, path)
}

var lineRE = regexp.MustCompile(` at line: (\d+):\d+$`)

// Parse reads a zone in BIND syntax. filename only labels errors; $INCLUDE
// is refused so a zone file cannot read other files. Records outside the
// zone, a missing SOA or a SOA that is not at the apex are errors. As BIND
// does, identical records are merged and every RR of an RRset takes the TTL
// of the first one.
func Parse(r io.Reader, origin, filename string) (*Zone, error) {
	origin = dns.CanonicalName(origin)
	fail := func(line int, format string, args ...any) (*Zone, error) {
		return nil, &Error{Zone: origin, File: filename, Line: line, Msg: fmt.Sprintf(format, args...)}
	}
	if _, ok := dns.IsDomainName(origin); !ok {
		return fail(0, "bad origin %q", origin)
	}
	z := &Zone{origin: origin, rrsets: map[rrKey][]dns.RR{}, types: map[string][]uint16{}, exists: map[string]bool{}, cuts: map[string]bool{}}
	lr := &lineReader{r: bufio.NewReader(r)}
	zp := dns.NewZoneParser(lr, origin, filename)
	zp.SetIncludeAllowed(false)
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		h := rr.Header()
		h.Name = dns.CanonicalName(h.Name)
		if !dns.IsSubDomain(origin, h.Name) {
			return fail(lr.line(), "%s %s is outside the zone", h.Name, dns.TypeToString[h.Rrtype])
		}
		if soa, ok := rr.(*dns.SOA); ok {
			if h.Name != origin {
				return fail(lr.line(), "SOA at %s, want it at the apex %s", h.Name, origin)
			}
			if z.soa != nil {
				return fail(lr.line(), "more than one SOA record")
			}
			z.soa = soa
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
		return fail(line, "%s", strings.TrimPrefix(msg, "dns: "))
	}
	if z.soa == nil {
		return fail(0, "no SOA record at the apex %s", origin)
	}
	return z, nil
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

func (z *Zone) add(rr dns.RR) {
	h := rr.Header()
	k := rrKey{h.Name, h.Rrtype}
	set := z.rrsets[k]
	for _, old := range set {
		if dns.IsDuplicate(old, rr) {
			return
		}
	}
	if len(set) > 0 {
		h.Ttl = set[0].Header().Ttl
	} else {
		z.types[h.Name] = append(z.types[h.Name], h.Rrtype)
	}
	z.rrsets[k] = append(set, rr)
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
// walk the zone deterministically.
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
	types := slices.Clone(z.types[dns.CanonicalName(name)])
	slices.Sort(types)
	return types
}

// RRset returns the RRset at (name, qtype) as sorted canonical strings, the
// form that probes compare against what servers answer.
func (z *Zone) RRset(name string, qtype uint16) []string {
	return canonicalSet(z.rrsets[rrKey{dns.CanonicalName(name), qtype}], "")
}

// canonicalSet renders rrs as sorted canonical strings, with the owner
// replaced by owner when it is set (wildcard synthesis).
func canonicalSet(rrs []dns.RR, owner string) []string {
	if len(rrs) == 0 {
		return nil
	}
	out := make([]string, 0, len(rrs))
	for _, rr := range rrs {
		if owner != "" {
			rr = dns.Copy(rr)
			rr.Header().Name = owner
		}
		out = append(out, CanonicalRR(rr))
	}
	sort.Strings(out)
	return out
}
