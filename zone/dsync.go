package zone

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/miekg/dns"
)

// TypeDSYNC is the DSYNC record (RFC 9859), which BIND 9.18 loads and
// miekg/dns does not know; it is registered with miekg/dns so that zones
// holding it parse, and answers holding it compare as data.
const TypeDSYNC = 66

func init() {
	if _, known := dns.TypeToString[TypeDSYNC]; !known {
		dns.PrivateHandle("DSYNC", TypeDSYNC, func() dns.PrivateRdata { return new(dsync) })
	}
}

// dsync is DSYNC's RDATA: the type whose changes are reported, the
// scheme, the port and the target name.
type dsync struct {
	rrtype uint16
	scheme uint8
	port   uint16
	target string
}

// dsyncSchemes are the scheme mnemonics of RFC 9859 §6.
var dsyncSchemes = map[string]uint8{"NOTIFY": 1}

// mnemonicOrNumber reads a one-byte field that presentation format writes
// as a mnemonic from names (any case) or as a decimal number.
func mnemonicOrNumber(names map[string]uint8, s string) (uint8, bool) {
	if v, ok := names[strings.ToUpper(s)]; ok {
		return v, true
	}
	n, err := strconv.ParseUint(s, 10, 8)
	return uint8(n), err == nil
}

func (d *dsync) String() string {
	return fmt.Sprintf("%s %d %d %s", dns.Type(d.rrtype), d.scheme, d.port, d.target)
}

func (d *dsync) Parse(f []string) error {
	if len(f) != 4 {
		return fmt.Errorf("DSYNC needs 4 fields, got %d", len(f))
	}
	t, ok := dns.StringToType[strings.ToUpper(f[0])]
	if !ok {
		n, err := strconv.ParseUint(strings.TrimPrefix(strings.ToUpper(f[0]), "TYPE"), 10, 16)
		if err != nil {
			return fmt.Errorf("DSYNC type %q", f[0])
		}
		t = uint16(n)
	}
	scheme, ok := mnemonicOrNumber(dsyncSchemes, f[1])
	if !ok {
		return fmt.Errorf("DSYNC scheme %q", f[1])
	}
	port, err := strconv.ParseUint(f[2], 10, 16)
	if err != nil {
		return fmt.Errorf("DSYNC port %q", f[2])
	}
	if !dns.IsFqdn(f[3]) {
		return fmt.Errorf("DSYNC target %q is not fully qualified", f[3])
	}
	d.rrtype, d.scheme, d.port, d.target = t, scheme, uint16(port), f[3]
	return nil
}

func (d *dsync) Pack(b []byte) (int, error) {
	if len(b) < 5 {
		return 0, dns.ErrBuf
	}
	b[0], b[1], b[2], b[3], b[4] = byte(d.rrtype>>8), byte(d.rrtype), d.scheme, byte(d.port>>8), byte(d.port)
	off, err := dns.PackDomainName(d.target, b, 5, nil, false)
	return off, err
}

func (d *dsync) Unpack(b []byte) (int, error) {
	if len(b) < 6 {
		return 0, dns.ErrBuf
	}
	d.rrtype, d.scheme, d.port = uint16(b[0])<<8|uint16(b[1]), b[2], uint16(b[3])<<8|uint16(b[4])
	name, off, err := dns.UnpackDomainName(b, 5)
	d.target = name
	return off, err
}

func (d *dsync) Copy(dest dns.PrivateRdata) error {
	c, ok := dest.(*dsync)
	if !ok {
		return dns.ErrRdata
	}
	*c = *d
	return nil
}

func (d *dsync) Len() int { return 5 + len(d.target) + 1 }
