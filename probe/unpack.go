package probe

import (
	"encoding/binary"
	"errors"

	"github.com/miekg/dns"
)

// unpackAnswer decodes an answer for the checks. Most answers are an
// authoritative NOERROR with records, where the checks read the header,
// the answer section and the OPT record alone; BIND also sends the
// zone's NS records and their addresses there (its default for queries
// without RD), which were most of the decoding. Those answers have their
// authority and additional sections walked but not decoded, but for the
// OPT record, a wildcard answer's NSEC or NSEC3 proof and the SOA that
// ends a CNAME chain in no data. Any other answer (an error, a referral,
// NODATA, truncated, one that does not walk) is decoded in full by
// miekg/dns.
func unpackAnswer(raw []byte) (*dns.Msg, error) {
	if m, ok := unpackAnswerSection(raw); ok {
		return m, nil
	}
	m := new(dns.Msg)
	return m, m.Unpack(raw)
}

// Header bits (RFC 1035 §4.1.1) that decide whether the short form does.
const (
	flagQR = 1 << 15
	flagAA = 1 << 10
	flagTC = 1 << 9
)

// unpackAnswerSection is unpackAnswer's short form, or false where it
// does not apply.
func unpackAnswerSection(raw []byte) (*dns.Msg, bool) {
	if len(raw) < 12 {
		return nil, false
	}
	flags := binary.BigEndian.Uint16(raw[2:])
	qd, an := binary.BigEndian.Uint16(raw[4:]), binary.BigEndian.Uint16(raw[6:])
	ns, ar := binary.BigEndian.Uint16(raw[8:]), binary.BigEndian.Uint16(raw[10:])
	opcode, rc := (flags>>11)&0xF, flags&0xF
	if flags&flagQR == 0 || flags&flagAA == 0 || flags&flagTC != 0 || opcode != dns.OpcodeQuery || rc != dns.RcodeSuccess || qd != 1 || an == 0 {
		return nil, false
	}
	m := &dns.Msg{MsgHdr: dns.MsgHdr{
		Id: binary.BigEndian.Uint16(raw), Response: true, Opcode: int(opcode), Authoritative: true,
		RecursionDesired: flags&(1<<8) != 0, RecursionAvailable: flags&(1<<7) != 0, Zero: flags&(1<<6) != 0,
		AuthenticatedData: flags&(1<<5) != 0, CheckingDisabled: flags&(1<<4) != 0, Rcode: int(rc),
	}}
	name, off, err := dns.UnpackDomainName(raw, 12)
	if err != nil || off+4 > len(raw) {
		return nil, false
	}
	m.Question = []dns.Question{{Name: name, Qtype: binary.BigEndian.Uint16(raw[off:]), Qclass: binary.BigEndian.Uint16(raw[off+2:])}}
	off += 4
	// The count is the sender's word: no more records than the bytes
	// left hold (11 octets at the least) are made room for, and a record
	// must take some. miekg/dns reads one at the end of the message as
	// an empty record of type 0, without an error, and takes the end of
	// its records for the end of the section.
	m.Answer = make([]dns.RR, 0, min(int(an), (len(raw)-off)/11))
	for range an {
		var rr dns.RR
		start := off
		if rr, off, err = dns.UnpackRR(raw, off); err != nil || rr == nil || off == start {
			return nil, false
		}
		m.Answer = append(m.Answer, rr)
	}
	// A wildcard answer's NSEC or NSEC3 proof, and its signatures, which
	// the DNSSEC checks verify; the SOA of a CNAME chain that ends in no
	// data, whose proof they check too.
	if m.Ns, off, err = walkSection(raw, off, ns, func(rtype uint16, start int) bool {
		return rtype == dns.TypeSOA || rtype == dns.TypeNSEC || rtype == dns.TypeNSEC3 || (rtype == dns.TypeRRSIG && coversProof(raw, start))
	}); err != nil {
		return nil, false
	}
	if m.Extra, off, err = walkSection(raw, off, ar, func(rtype uint16, _ int) bool { return rtype == dns.TypeOPT }); err != nil {
		return nil, false
	}
	if off != len(raw) {
		return nil, false // trailing bytes: miekg/dns's judgement
	}
	if opt := m.IsEdns0(); opt != nil {
		m.Rcode |= opt.ExtendedRcode()
	}
	return m, true
}

var errShort = errors.New("record overflows the message")

// walkSection walks the count records of a section from off without
// decoding them but for those keep picks, given each one's type and
// offset. It returns them and the offset after the section.
func walkSection(raw []byte, off int, count uint16, keep func(rtype uint16, start int) bool) ([]dns.RR, int, error) {
	var rrs []dns.RR
	for range count {
		start := off
		next, rtype, err := skipRRType(raw, start)
		if err != nil {
			return nil, 0, err
		}
		off = next
		if !keep(rtype, start) {
			continue
		}
		rr, _, err := dns.UnpackRR(raw, start)
		if err != nil {
			return nil, 0, err
		}
		rrs = append(rrs, rr)
	}
	return rrs, off, nil
}

// coversProof reports whether the RRSIG at off covers NSEC or NSEC3, read
// from the first field of its data without decoding it: BIND signs the
// NS set it sends with every answer too.
func coversProof(raw []byte, off int) bool {
	off, err := skipName(raw, off)
	if err != nil || off+12 > len(raw) {
		return false
	}
	covered := binary.BigEndian.Uint16(raw[off+10:])
	return covered == dns.TypeNSEC || covered == dns.TypeNSEC3
}

// skipRRType is the offset after the record at off, and its type.
func skipRRType(raw []byte, off int) (int, uint16, error) {
	off, err := skipName(raw, off)
	if err != nil {
		return 0, 0, err
	}
	if off+10 > len(raw) {
		return 0, 0, errShort
	}
	rtype := binary.BigEndian.Uint16(raw[off:])
	end := off + 10 + int(binary.BigEndian.Uint16(raw[off+8:]))
	if end > len(raw) {
		return 0, 0, errShort
	}
	return end, rtype, nil
}

// skipName is the offset after the (possibly compressed) name at off.
func skipName(raw []byte, off int) (int, error) {
	for {
		if off >= len(raw) {
			return 0, errShort
		}
		switch l := int(raw[off]); {
		case l == 0:
			return off + 1, nil
		case l&0xC0 == 0xC0:
			if off+2 > len(raw) {
				return 0, errShort
			}
			return off + 2, nil
		case l&0xC0 != 0:
			return 0, errors.New("reserved label type")
		default:
			off += 1 + l
		}
	}
}
