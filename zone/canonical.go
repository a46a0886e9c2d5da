package zone

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/miekg/dns"
)

// Records are RRs as DNS data: each in canonical form (Canonical), the
// list in canonical order (RFC 4034 §6: owner name order, then type, then
// RDATA as octets). They are compared on the wire, never as text, so that
// records written differently in a zone file and in an answer (SVCB keys
// out of order, upper-case hex, escaped names) are the same records.
// They read as presentation text in JSON and reports.
type Records []dns.RR

// Canonical returns a copy of rr in the form RFC 4034 §6.2 defines for
// comparing: the owner and the domain names inside the RDATA of the
// types the RFC lists lower case, everything as it is on the wire. A
// record that cannot be packed is returned lower-cased as it is.
func Canonical(rr dns.RR) dns.RR {
	if wire, err := pack(rr); err == nil {
		if c, _, err := dns.UnpackRR(wire, 0); err == nil {
			rr = c
		}
	} else {
		rr = Records{rr}.Copy()[0]
	}
	lowerNames(rr)
	return rr
}

// lowerNames lower-cases rr's owner and the names in its RDATA that RFC
// 4034 §6.2 lists (as RFC 6840 §5.1 corrects it), in place.
func lowerNames(rr dns.RR) {
	h := rr.Header()
	h.Name = strings.ToLower(h.Name)
	lower := func(names ...*string) {
		for _, n := range names {
			*n = strings.ToLower(*n)
		}
	}
	switch r := rr.(type) {
	case *dns.NS:
		lower(&r.Ns)
	case *dns.MD:
		lower(&r.Md)
	case *dns.MF:
		lower(&r.Mf)
	case *dns.CNAME:
		lower(&r.Target)
	case *dns.SOA:
		lower(&r.Ns, &r.Mbox)
	case *dns.MB:
		lower(&r.Mb)
	case *dns.MG:
		lower(&r.Mg)
	case *dns.MR:
		lower(&r.Mr)
	case *dns.PTR:
		lower(&r.Ptr)
	case *dns.MINFO:
		lower(&r.Rmail, &r.Email)
	case *dns.MX:
		lower(&r.Mx)
	case *dns.RP:
		lower(&r.Mbox, &r.Txt)
	case *dns.AFSDB:
		lower(&r.Hostname)
	case *dns.RT:
		lower(&r.Host)
	case *dns.SIG:
		lower(&r.SignerName)
	case *dns.PX:
		lower(&r.Map822, &r.Mapx400)
	case *dns.NAPTR:
		lower(&r.Replacement)
	case *dns.KX:
		lower(&r.Exchanger)
	case *dns.SRV:
		lower(&r.Target)
	case *dns.DNAME:
		lower(&r.Target)
	case *dns.RRSIG:
		lower(&r.SignerName)
		// Not NSEC's next name: RFC 6840 §5.1 took it off §6.2's list, and
		// BIND signs it as the zone writes it, capitals and all.
	}
}

// FromWire makes records just unpacked from a message canonical, in
// place (their names need no escaping but lower case), and orders them.
func FromWire(rrs []dns.RR) Records {
	if len(rrs) == 0 {
		return nil
	}
	for _, rr := range rrs {
		lowerNames(rr)
	}
	out := Records(rrs)
	out.sort()
	return out
}

// CanonicalRR renders rr for people: its canonical form (Canonical) as
// presentation text with single spaces, e.g.
// "www.example.com. 60 IN A 192.0.2.10". rr is not modified.
func CanonicalRR(rr dns.RR) string {
	return strings.ReplaceAll(Canonical(rr).String(), "\t", " ")
}

// NormalName is name as it is on the wire, lower case and fully
// qualified, so that "\070oo.example.com" and "foo.example.com." are one
// name. A name that is not valid is only lower-cased.
func NormalName(name string) string {
	name = dns.Fqdn(name)
	buf := make([]byte, 256)
	off, err := dns.PackDomainName(name, buf, 0, nil, false)
	if err != nil {
		return strings.ToLower(name)
	}
	n, _, err := dns.UnpackDomainName(buf[:off], 0)
	if err != nil {
		return strings.ToLower(name)
	}
	return strings.ToLower(n)
}

// SameName reports whether a and b are one domain name, compared on the
// wire with ASCII letters case-insensitive (RFC 4343).
func SameName(a, b string) bool {
	return NormalName(a) == NormalName(b)
}

// packMu serialises dns.PackRR, which writes the RDLENGTH it packed into
// the record's header, and what reads it: a zone's records are shared by
// the goroutines that compare answers with them (the analysis's readers),
// and two packing one record at once were a data race (go test -race on
// the probe tests against real named).
var packMu sync.Mutex

// packRR is dns.PackRR under packMu.
func packRR(rr dns.RR, buf []byte) (int, error) {
	packMu.Lock()
	defer packMu.Unlock()
	return dns.PackRR(rr, buf, 0, nil, false)
}

// Copy is a deep copy of r, safe while other goroutines compare r: use
// it, not dns.Copy, on records a zone holds, since packing one (packRR)
// writes its RDLENGTH.
func (r Records) Copy() Records {
	if r == nil {
		return nil
	}
	packMu.Lock()
	defer packMu.Unlock()
	out := make(Records, len(r))
	for i, rr := range r {
		out[i] = dns.Copy(rr)
	}
	return out
}

// pack is rr on the wire, without name compression.
func pack(rr dns.RR) ([]byte, error) {
	buf := make([]byte, dns.Len(rr)+64)
	off, err := packRR(rr, buf)
	if err != nil {
		return nil, err
	}
	return buf[:off], nil
}

// key is what Records compare and sort by: the owner's labels from the
// right (RFC 4034 §6.1), then type, RDATA and TTL on the wire.
type key struct {
	labels []string
	rtype  uint16
	rdata  []byte
	ttl    uint32
	text   string // for records that cannot be packed
}

func keyOf(rr dns.RR) key {
	h := rr.Header()
	k := key{labels: dns.SplitDomainName(strings.ToLower(h.Name)), rtype: h.Rrtype, ttl: h.Ttl}
	slices.Reverse(k.labels)
	wire, err := pack(rr)
	if err != nil {
		k.text = rr.String()
		return k
	}
	// The RDATA follows the owner, type, class, TTL and RDLENGTH.
	_, off, err := dns.UnpackDomainName(wire, 0)
	if err != nil || off+10 > len(wire) {
		k.text = rr.String()
		return k
	}
	k.rdata = wire[off+10:]
	return k
}

func compareKeys(a, b key) int {
	if c := slices.Compare(a.labels, b.labels); c != 0 {
		return c
	}
	if a.rtype != b.rtype {
		return int(a.rtype) - int(b.rtype)
	}
	if c := bytes.Compare(a.rdata, b.rdata); c != 0 {
		return c
	}
	if a.ttl != b.ttl {
		if a.ttl < b.ttl {
			return -1
		}
		return 1
	}
	return strings.Compare(a.text, b.text)
}

// NewRecords returns rrs in canonical form and order, with the owner of
// each replaced by owner when owner is set (wildcard synthesis).
func NewRecords(rrs []dns.RR, owner string) Records {
	if len(rrs) == 0 {
		return nil
	}
	out := make(Records, 0, len(rrs))
	for _, rr := range rrs {
		rr = Canonical(rr)
		if owner != "" {
			rr.Header().Name = owner
		}
		out = append(out, rr)
	}
	out.sort()
	return out
}

// sort puts r in canonical order; it must already be canonical.
func (r Records) sort() {
	if len(r) < 2 {
		return
	}
	keys := make(map[dns.RR]key, len(r))
	for _, rr := range r {
		keys[rr] = keyOf(rr)
	}
	slices.SortStableFunc(r, func(a, b dns.RR) int { return compareKeys(keys[a], keys[b]) })
}

// Merge is r and more together, in canonical order.
func (r Records) Merge(more Records) Records {
	if len(more) == 0 {
		return r
	}
	out := append(slices.Clone(r), more...)
	out.sort()
	return out
}

// Equal reports whether r and o hold the same records, compared as
// canonical wire data, TTLs included (a TTL change is a real change).
// Both must be canonical (NewRecords, or from a zone's lookups).
func (r Records) Equal(o Records) bool {
	if len(r) != len(o) {
		return false
	}
	if len(r) == 0 {
		return true
	}
	bp := packBufs.Get().(*[2][]byte)
	defer packBufs.Put(bp)
	for i := range r {
		a, errA := packInto(r[i], &bp[0])
		b, errB := packInto(o[i], &bp[1])
		if errA != nil || errB != nil {
			if r[i].String() != o[i].String() {
				return false
			}
			continue
		}
		if !bytes.Equal(a, b) {
			return false
		}
	}
	return true
}

// Holds reports whether r holds rr, compared as Equal compares.
func (r Records) Holds(rr dns.RR) bool {
	return slices.ContainsFunc(r, func(o dns.RR) bool { return Records{rr}.Equal(Records{o}) })
}

// packBufs are buffers for packing the records Equal compares.
var packBufs = sync.Pool{New: func() any { return &[2][]byte{make([]byte, 512), make([]byte, 512)} }}

// packInto packs rr, without compression, into *buf, growing it as needed.
func packInto(rr dns.RR, buf *[]byte) ([]byte, error) {
	off, err := packRR(rr, *buf)
	if err == dns.ErrBuf {
		*buf = make([]byte, dns.Len(rr)+64)
		off, err = packRR(rr, *buf)
	}
	if err != nil {
		return nil, err
	}
	return (*buf)[:off], nil
}

// Strings renders r for people, one CanonicalRR each, in r's order.
func (r Records) Strings() []string {
	if len(r) == 0 {
		return nil
	}
	out := make([]string, len(r))
	// Under packMu: a generic record's text reads the RDLENGTH that a
	// pack of the same record elsewhere writes.
	packMu.Lock()
	defer packMu.Unlock()
	for i, rr := range r {
		out[i] = presentation(rr)
	}
	return out
}

// presentation is rr as text, in RFC 3597's generic form where miekg/dns
// writes one it cannot read back: a GPOS or X25 whose strings are empty
// or hold spaces, which it prints unquoted, and which BIND loads (GPOS
// "" "" ""), and a NULL, which it prints as a comment with its raw bytes,
// which reads back as no record at all. Records cross workflow history as this text (MarshalJSON),
// and an activity result that does not read back fails its workflow
// task. The caller holds packMu.
func presentation(rr dns.RR) string {
	s := strings.ReplaceAll(rr.String(), "\t", " ")
	if t := rr.Header().Rrtype; t != dns.TypeGPOS && t != dns.TypeX25 && t != dns.TypeNULL {
		return s
	}
	if back, err := dns.NewRR(s); err == nil && back != nil && dns.IsDuplicate(back, rr) {
		return s
	}
	buf := make([]byte, dns.Len(rr)+64)
	end, err := dns.PackRR(rr, buf, 0, nil, false)
	if err != nil {
		return s
	}
	_, off, err := dns.UnpackDomainName(buf, 0)
	if err != nil || off+10 > end {
		return s
	}
	h, rdata := rr.Header(), buf[off+10:end]
	return fmt.Sprintf("%s %d %s %s \\# %d %x", h.Name, h.Ttl, dns.Class(h.Class), TypeName(h.Rrtype), len(rdata), rdata)
}

// MarshalJSON writes r as presentation text, for workflow history.
func (r Records) MarshalJSON() ([]byte, error) { return json.Marshal(r.Strings()) }

// UnmarshalJSON reads records written by MarshalJSON.
func (r *Records) UnmarshalJSON(b []byte) error {
	var texts []string
	if err := json.Unmarshal(b, &texts); err != nil {
		return err
	}
	rrs := make([]dns.RR, 0, len(texts))
	for _, t := range texts {
		rr, err := dns.NewRR(t)
		if err != nil {
			return fmt.Errorf("record %q: %w", t, err)
		}
		if rr != nil {
			rrs = append(rrs, rr)
		}
	}
	*r = NewRecords(rrs, "")
	return nil
}

// SerialCompare compares SOA serials in RFC 1982 serial number arithmetic,
// where serials wrap around at 2^32: it returns -1 if a is before b, 0 if
// they are equal, +1 if a is after b, and 2 when the order is undefined
// (the serials are exactly 2^31 apart).
func SerialCompare(a, b uint32) int {
	switch d := b - a; {
	case d == 0:
		return 0
	case d == 1<<31:
		return 2
	case d < 1<<31:
		return -1
	default:
		return 1
	}
}

// SerialBehind reports whether serial a is behind b, i.e. a server holding
// a has not loaded the zone at b yet. An undefined order is not "behind".
func SerialBehind(a, b uint32) bool { return SerialCompare(a, b) == -1 }
