package zone

import (
	"strconv"
	"strings"

	"github.com/miekg/dns"
)

// TypeName is a record type's mnemonic as BIND prints it, for messages and
// checks: miekg/dns's name, else the name of one of asGeneric's types that
// miekg/dns does not know (A6, not TYPE38), else RFC 3597's TYPEnnn.
func TypeName(t uint16) string {
	if s, ok := dns.TypeToString[t]; ok {
		return s
	}
	if s, ok := genericNames[t]; ok {
		return s
	}
	return "TYPE" + strconv.Itoa(int(t))
}

// TypeCode reads a type as TypeName writes it, in any case: a mnemonic
// BIND or miekg/dns knows, or TYPEnnn.
func TypeCode(s string) (uint16, bool) {
	s = strings.ToUpper(strings.TrimSpace(s))
	if t, ok := dns.StringToType[s]; ok {
		return t, true
	}
	if t, ok := genericTypes[s]; ok {
		return t, true
	}
	if n, ok := strings.CutPrefix(s, "TYPE"); ok {
		if v, err := strconv.ParseUint(n, 10, 16); err == nil {
			return uint16(v), true
		}
	}
	return 0, false
}

// genericNames is genericTypes the other way round.
var genericNames = func() map[uint16]string {
	m := make(map[uint16]string, len(genericTypes))
	for name, t := range genericTypes {
		m[t] = name
	}
	return m
}()
