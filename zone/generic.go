package zone

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"

	"github.com/miekg/dns"
)

// asGeneric rewrites, in BIND's output, the records of types that
// miekg/dns cannot read as BIND prints them in the generic form of RFC
// 3597, which it reads whatever the data: GPOS with quoted fields, NSAP,
// X25, NID and L64 (BIND drops a group's leading zeros, which miekg/dns
// requires), types miekg/dns does not know (A6, SINK, DOA, WALLET) or
// knows by number only (ATMA), and NXT and ISDN (see unknowntypes.go).
// The RDATA is built from BIND's presentation, as BIND packs it.
func asGeneric(out []byte) []byte {
	if !genericTypeRE.Match(out) {
		return out
	}
	lines := strings.SplitAfter(string(out), "\n")
	for i, line := range lines {
		m := recordRE.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		owner, ttl, typ, rdata := m[1], m[2], m[3], m[4]
		if typ == "RRSIG" || typ == "SIG" || typ == "NSEC" || typ == "NSEC3" {
			// Types named in the RDATA that miekg/dns has no name for.
			for name, code := range genericTypes {
				if _, known := dns.StringToType[name]; !known {
					lines[i] = nameRE(name).ReplaceAllString(lines[i], fmt.Sprintf("${1}TYPE%d${2}", code))
				}
			}
			continue
		}
		if genericTypes[typ] == 0 {
			continue
		}
		if b, err := genericRdata(typ, rdata); err == nil {
			lines[i] = fmt.Sprintf("%s %s IN TYPE%d \\# %d %x\n", owner, ttl, genericTypes[typ], len(b), b)
		}
	}
	return []byte(strings.Join(lines, ""))
}

var (
	genericTypes = map[string]uint16{
		"GPOS": dns.TypeGPOS, "NSAP": 22, "X25": dns.TypeX25, "NXT": dns.TypeNXT, "ISDN": dns.TypeISDN,
		"NID": dns.TypeNID, "L64": dns.TypeL64, "A6": 38, "ATMA": dns.TypeATMA, "SINK": 40, "DOA": 259, "WALLET": 262,
	}
	genericTypeRE = regexp.MustCompile(`(?m)^\S+\s+\d+\s+IN\s+(GPOS|NSAP|X25|NXT|ISDN|NID|L64|A6|ATMA|SINK|DOA|WALLET)\s|\s(NSAP|NXT|ISDN|A6|SINK|DOA|WALLET)(\s|$)`)
	// recordRE is one record as named-compilezone prints it: owner, TTL,
	// class IN, type, RDATA.
	recordRE = regexp.MustCompile(`^(\S+)\s+(\d+)\s+IN\s+(\S+)\s+(.*?)\s*$`)
)

// nameRE matches a type mnemonic as a word of a record's RDATA.
func nameRE(name string) *regexp.Regexp {
	return regexp.MustCompile(`(\s)` + regexp.QuoteMeta(name) + `(\s|$)`)
}

// genericRdata is the RDATA of one record of asGeneric's types, from
// BIND's presentation of it.
func genericRdata(typ, text string) ([]byte, error) {
	f := strings.Fields(text)
	switch typ {
	case "GPOS", "X25", "ISDN", "WALLET":
		return characterStrings(text)
	case "NXT":
		if b, ok := nxtRdata(f); ok {
			return b, nil
		}
		return nil, fmt.Errorf("NXT %q", text)
	case "NSAP":
		h, ok := strings.CutPrefix(strings.ToLower(strings.Join(f, "")), "0x")
		if !ok {
			return nil, fmt.Errorf("NSAP %q: no 0x", text)
		}
		return hex.DecodeString(strings.ReplaceAll(h, ".", ""))
	case "NID", "L64":
		return preference64(f)
	case "A6":
		return a6Rdata(f)
	case "ATMA":
		return atmaRdata(f)
	case "SINK":
		return sinkRdata(f)
	case "DOA":
		return doaRdata(text)
	}
	return nil, fmt.Errorf("no generic form for %s", typ)
}

// preference64 is NID's and L64's RDATA (RFC 6742): a 16-bit preference,
// then 64 bits written as four groups of up to four hex digits.
func preference64(f []string) ([]byte, error) {
	if len(f) != 2 {
		return nil, fmt.Errorf("want a preference and 64 bits, got %q", f)
	}
	pref, err := strconv.ParseUint(f[0], 10, 16)
	if err != nil {
		return nil, err
	}
	b := binary.BigEndian.AppendUint16(nil, uint16(pref))
	groups := strings.Split(f[1], ":")
	if len(groups) != 4 {
		return nil, fmt.Errorf("%q is not four groups", f[1])
	}
	for _, g := range groups {
		v, err := strconv.ParseUint(g, 16, 16)
		if err != nil || g == "" {
			return nil, fmt.Errorf("group %q of %q", g, f[1])
		}
		b = binary.BigEndian.AppendUint16(b, uint16(v))
	}
	return b, nil
}

// a6Rdata is A6's RDATA (RFC 2874 §3.1): the prefix length, the address
// suffix in as few octets as hold its 128-prefix bits, then the prefix
// name, uncompressed, unless the prefix length is 0.
func a6Rdata(f []string) ([]byte, error) {
	if len(f) == 0 {
		return nil, fmt.Errorf("empty A6")
	}
	plen, err := strconv.ParseUint(f[0], 10, 8)
	if err != nil || plen > 128 {
		return nil, fmt.Errorf("prefix length %q", f[0])
	}
	b, rest := []byte{byte(plen)}, f[1:]
	if plen < 128 {
		if len(rest) == 0 {
			return nil, fmt.Errorf("A6 without its address")
		}
		addr, err := netip.ParseAddr(rest[0])
		if err != nil || !addr.Is6() {
			return nil, fmt.Errorf("address %q", rest[0])
		}
		a := addr.As16()
		b, rest = append(b, a[plen/8:]...), rest[1:]
	}
	if plen > 0 {
		if len(rest) != 1 {
			return nil, fmt.Errorf("A6 without its prefix name")
		}
		return appendName(b, rest[0])
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("A6 with a prefix name and prefix length 0")
	}
	return b, nil
}

// atmaRdata is ATMA's RDATA (ATM Forum af-dans-0152.000): format 1 (E.164)
// for an address that begins with "+", as its digits in ASCII, else format
// 0 (NSAP), as hex.
func atmaRdata(f []string) ([]byte, error) {
	if len(f) != 1 {
		return nil, fmt.Errorf("ATMA %q", f)
	}
	if digits, ok := strings.CutPrefix(f[0], "+"); ok {
		digits = strings.ReplaceAll(digits, ".", "")
		if strings.Trim(digits, "0123456789") != "" || digits == "" {
			return nil, fmt.Errorf("E.164 address %q", f[0])
		}
		return append([]byte{1}, digits...), nil
	}
	h, err := hex.DecodeString(strings.ReplaceAll(f[0], ".", ""))
	if err != nil {
		return nil, err
	}
	return append([]byte{0}, h...), nil
}

// sinkRdata is SINK's RDATA (draft-eastlake-kitchen-sink): meaning,
// coding and subcoding octets, then the data, base64 in presentation.
func sinkRdata(f []string) ([]byte, error) {
	if len(f) < 3 {
		return nil, fmt.Errorf("SINK %q", f)
	}
	var b []byte
	for _, s := range f[:3] {
		v, err := strconv.ParseUint(s, 10, 8)
		if err != nil {
			return nil, err
		}
		b = append(b, byte(v))
	}
	data, err := base64.StdEncoding.DecodeString(strings.Join(f[3:], ""))
	return append(b, data...), err
}

// doaRdata is DOA's RDATA (draft-durand-doa-over-dns): enterprise and type
// as 32 bits, location as 8, the media type as a character-string, then
// the data, base64 in presentation, "-" for none.
func doaRdata(text string) ([]byte, error) {
	f := strings.Fields(text)
	if len(f) < 5 {
		return nil, fmt.Errorf("DOA %q", text)
	}
	var b []byte
	for i, bits := range []int{32, 32, 8} {
		v, err := strconv.ParseUint(f[i], 10, bits)
		if err != nil {
			return nil, err
		}
		if bits == 32 {
			b = binary.BigEndian.AppendUint32(b, uint32(v))
		} else {
			b = append(b, byte(v))
		}
	}
	// The media type is the one quoted string: after it, the data.
	rest := strings.Join(f[3:], " ")
	end := closingQuote(rest)
	if end < 0 {
		return nil, fmt.Errorf("DOA media type in %q", rest)
	}
	media, err := characterStrings(rest[:end+1])
	if err != nil || len(media) == 0 || int(media[0]) != len(media)-1 {
		return nil, fmt.Errorf("DOA media type %q", rest[:end+1])
	}
	b = append(b, media...)
	data := strings.Join(strings.Fields(rest[end+1:]), "")
	if data == "-" {
		return b, nil
	}
	d, err := base64.StdEncoding.DecodeString(data)
	return append(b, d...), err
}

// closingQuote is the index of the quote that closes the quoted string s
// begins with, or -1.
func closingQuote(s string) int {
	if !strings.HasPrefix(s, `"`) {
		return -1
	}
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '"':
			return i
		}
	}
	return -1
}

// characterStrings packs BIND's presentation of one or more
// <character-string>s, each quoted, with \" \\ and \DDD escapes, as each
// string's length octet then its octets (RFC 1035 §3.3).
func characterStrings(text string) ([]byte, error) {
	var b []byte
	s := strings.TrimSpace(text)
	for s != "" {
		end := closingQuote(s)
		if end < 0 {
			return nil, fmt.Errorf("unquoted character-string in %q", text)
		}
		str, err := unescape(s[1:end])
		if err != nil || len(str) > 255 {
			return nil, fmt.Errorf("character-string %s: %v", s[:end+1], err)
		}
		b = append(append(b, byte(len(str))), str...)
		s = strings.TrimSpace(s[end+1:])
	}
	return b, nil
}

// unescape reads a character-string's \X and \DDD escapes.
func unescape(s string) ([]byte, error) {
	var out []byte
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			out = append(out, s[i])
			continue
		}
		if i+3 < len(s) && isDigits(s[i+1:i+4]) {
			v, err := strconv.ParseUint(s[i+1:i+4], 10, 8)
			if err != nil {
				return nil, err
			}
			out, i = append(out, byte(v)), i+3
			continue
		}
		if i+1 >= len(s) {
			return nil, fmt.Errorf("a trailing backslash")
		}
		out, i = append(out, s[i+1]), i+1
	}
	return out, nil
}

func isDigits(s string) bool { return len(s) == 3 && strings.Trim(s, "0123456789") == "" }

// appendName packs name, uncompressed, after b.
func appendName(b []byte, name string) ([]byte, error) {
	buf := make([]byte, 256)
	n, err := dns.PackDomainName(dns.Fqdn(name), buf, 0, nil, false)
	if err != nil {
		return nil, fmt.Errorf("name %q: %w", name, err)
	}
	return append(b, buf[:n]...), nil
}
