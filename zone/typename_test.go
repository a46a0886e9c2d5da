package zone

import (
	"strconv"
	"testing"

	"github.com/miekg/dns"
)

// Operators read types as BIND names them: A6, not TYPE38, even for the
// types dnsroll makes miekg/dns treat as unknown.
func TestTypeNamesAreBINDs(t *testing.T) {
	names := []struct {
		code uint16
		name string
	}{
		{dns.TypeA, "A"}, {dns.TypeNXT, "NXT"}, {dns.TypeISDN, "ISDN"}, {38, "A6"}, {40, "SINK"},
		{259, "DOA"}, {262, "WALLET"}, {22, "NSAP"}, {dns.TypeATMA, "ATMA"}, {TypeDSYNC, "DSYNC"},
		{65534, "TYPE65534"},
	}
	for _, n := range names {
		if got := TypeName(n.code); got != n.name {
			t.Errorf("TypeName(%d) = %q, want %q", n.code, got, n.name)
		}
		for _, s := range []string{n.name, "type" + strconv.Itoa(int(n.code))} {
			if got, ok := TypeCode(s); !ok || got != n.code {
				t.Errorf("TypeCode(%q) = %d, %v; want %d", s, got, ok, n.code)
			}
		}
	}
	for _, s := range []string{"", "TYPE", "TYPE65536", "NOPE", "TYPE-1"} {
		if got, ok := TypeCode(s); ok {
			t.Errorf("TypeCode(%q) = %d, want no type", s, got)
		}
	}
}
