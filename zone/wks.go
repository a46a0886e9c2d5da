package zone

import (
	"fmt"
	"net"
	"strconv"

	"github.com/miekg/dns"
)

// WKS (RFC 1035 §3.4.2) is a type BIND loads and miekg/dns does not
// know; it is registered with miekg/dns so that zones holding it parse and
// answers holding it compare as data. BIND prints it with numbers:
// "10.0.0.1 6 0 1 2 21 23" (address, protocol, ports).
func init() {
	if _, known := dns.TypeToString[TypeWKS]; !known {
		dns.PrivateHandle("WKS", TypeWKS, func() dns.PrivateRdata { return new(wks) })
	}
}

// TypeWKS is WKS's type code.
const TypeWKS = 11

type wks struct {
	addr     net.IP
	protocol uint8
	bitmap   []byte
}

var wksProtocols = map[string]uint8{"TCP": 6, "UDP": 17}

func (w *wks) ports() []int {
	var out []int
	for i, b := range w.bitmap {
		for bit := 0; bit < 8; bit++ {
			if b&(0x80>>bit) != 0 {
				out = append(out, i*8+bit)
			}
		}
	}
	return out
}

func (w *wks) String() string {
	s := fmt.Sprintf("%s %d", w.addr, w.protocol)
	for _, p := range w.ports() {
		s += " " + strconv.Itoa(p)
	}
	return s
}

func (w *wks) Parse(f []string) error {
	var fields []string
	for _, x := range f {
		if x != "(" && x != ")" {
			fields = append(fields, x)
		}
	}
	if len(fields) < 2 {
		return fmt.Errorf("WKS needs an address and a protocol")
	}
	ip := net.ParseIP(fields[0]).To4()
	if ip == nil {
		return fmt.Errorf("WKS address %q", fields[0])
	}
	proto, ok := mnemonicOrNumber(wksProtocols, fields[1])
	if !ok {
		return fmt.Errorf("WKS protocol %q", fields[1])
	}
	w.addr, w.protocol, w.bitmap = ip, proto, nil
	for _, p := range fields[2:] {
		n, err := strconv.ParseUint(p, 10, 16)
		if err != nil {
			return fmt.Errorf("WKS port %q: BIND's output names ports by number", p)
		}
		for len(w.bitmap) <= int(n)/8 {
			w.bitmap = append(w.bitmap, 0)
		}
		w.bitmap[n/8] |= 0x80 >> (n % 8)
	}
	return nil
}

func (w *wks) Pack(b []byte) (int, error) {
	if len(b) < w.Len() {
		return 0, dns.ErrBuf
	}
	copy(b, w.addr.To4())
	b[4] = w.protocol
	return 5 + copy(b[5:], w.bitmap), nil
}

func (w *wks) Unpack(b []byte) (int, error) {
	if len(b) < 5 {
		return 0, dns.ErrBuf
	}
	w.addr = net.IPv4(b[0], b[1], b[2], b[3]).To4()
	w.protocol = b[4]
	w.bitmap = append([]byte(nil), b[5:]...)
	return len(b), nil
}

func (w *wks) Copy(dest dns.PrivateRdata) error {
	c, ok := dest.(*wks)
	if !ok {
		return dns.ErrRdata
	}
	c.addr, c.protocol, c.bitmap = append(net.IP(nil), w.addr...), w.protocol, append([]byte(nil), w.bitmap...)
	return nil
}

func (w *wks) Len() int { return 5 + len(w.bitmap) }
