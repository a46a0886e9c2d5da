package zone

import (
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/dnsroll/dnsroll/internal/needlab"
)

// NXT records (obsolete, still loaded by BIND) parse, in their own wire
// form: the next name, then a flat bitmap of types 0-127.
func TestNXT(t *testing.T) {
	text := `$ORIGIN example.nil.
$TTL 3600
@      SOA  ns hostmaster 1 3600 600 1209600 300
       NS   ns
ns     A    192.0.2.1
nxt01  NXT  a.secure ( NS SOA MX SIG KEY LOC NXT )
nxt04  NXT  . ( 127 )
`
	needlab.Programs(t, "named-compilezone")
	z, err := Parse(strings.NewReader(text), "example.nil.", "nxt.zone")
	if err != nil {
		t.Fatal(err)
	}
	got := z.RRset("nxt04.example.nil.", dns.TypeNXT)
	if len(got) != 1 {
		t.Fatalf("nxt04: %v", got)
	}
	g, ok := got[0].(*dns.RFC3597)
	// "." is one zero octet; type 127 is the last bit of octet 15.
	if want := "00" + strings.Repeat("00", 15) + "01"; !ok || g.Rdata != want {
		t.Errorf("nxt04 rdata = %+v, want generic %s", got[0], want)
	}
	got = z.RRset("nxt01.example.nil.", dns.TypeNXT)
	g, ok = got[0].(*dns.RFC3597)
	// a.secure.example.nil., then NS(2) SOA(6): 0x22, MX(15): 0x01, none of
	// 16-23, SIG(24) KEY(25) LOC(29) NXT(30): 0xc6.
	if want := "016106736563757265076578616d706c65036e696c00" + "220100c6"; !ok || g.Rdata != want {
		t.Errorf("nxt01 rdata = %+v, want generic %s", got[0], want)
	}
}
