package registrar_test

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/dnsroll/dnsroll/registrar"
)

func TestValidate(t *testing.T) {
	a := []netip.Addr{netip.MustParseAddr("192.0.2.1")}
	for _, tc := range []struct {
		ns   []registrar.NameServer
		want string // "" = valid
	}{
		{[]registrar.NameServer{{Name: "ns1.example.com.", Addrs: a}, {Name: "ns.example.net"}}, ""},
		{nil, "at least one"},
		{[]registrar.NameServer{{Name: "ns1.example.com"}}, "needs glue"},
		{[]registrar.NameServer{{Name: "ns.example.net", Addrs: a}}, "give no addresses"},
		{[]registrar.NameServer{{Name: "ns1.example.com", Addrs: a}, {Name: "NS1.example.com.", Addrs: a}}, "listed twice"},
		{[]registrar.NameServer{{Name: "", Addrs: a}}, "no name"},
		// The zero address, as JSON "" decodes, is no glue a registrar takes.
		{[]registrar.NameServer{{Name: "ns1.example.com", Addrs: []netip.Addr{{}}}}, "invalid glue address"},
		// A name that ends in the domain's text but not at a label is
		// outside it: no parent serves glue for it.
		{[]registrar.NameServer{{Name: "ns1.notexample.com", Addrs: a}}, "give no addresses"},
		{[]registrar.NameServer{{Name: "ns1.notexample.com"}}, ""},
	} {
		err := registrar.Validate("example.com", tc.ns)
		if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("Validate(%v) = %v, want %q", tc.ns, err, tc.want)
		}
	}
}

// A parent may hand out addresses for name servers outside the domain
// (sibling glue, from its own zone); a registrar holds glue only for names
// inside it. The delegation is the same.
func TestDelegationKeepsInDomainGlueOnly(t *testing.T) {
	a1, a2 := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("198.51.100.7")
	parent := []registrar.NameServer{{Name: "ns1.example.com", Addrs: []netip.Addr{a1}}, {Name: "ns.provider.net", Addrs: []netip.Addr{a2}}}
	reg := []registrar.NameServer{{Name: "ns1.example.com", Addrs: []netip.Addr{a1}}, {Name: "ns.provider.net"}}
	if registrar.Equal(parent, reg) {
		t.Fatal("the two compare equal with their glue: the test shows nothing")
	}
	if !registrar.Equal(registrar.Delegation("example.com", parent), registrar.Delegation("example.com.", reg)) {
		t.Error("the same delegation, one with sibling glue, differs")
	}
	moved := []registrar.NameServer{{Name: "ns1.example.com", Addrs: []netip.Addr{a2}}, {Name: "ns.provider.net"}}
	if registrar.Equal(registrar.Delegation("example.com", parent), registrar.Delegation("example.com", moved)) {
		t.Error("in-domain glue that differs compares equal")
	}
}

func TestEqualIgnoresOrderCaseAndDots(t *testing.T) {
	a1, a2 := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8::1")
	x := []registrar.NameServer{{Name: "NS1.example.com", Addrs: []netip.Addr{a2, a1}}, {Name: "ns.example.net."}}
	y := []registrar.NameServer{{Name: "ns.example.net"}, {Name: "ns1.example.com.", Addrs: []netip.Addr{a1, a2}}}
	if !registrar.Equal(x, y) {
		t.Error("equal delegations compare unequal")
	}
	if registrar.Equal(x, y[:1]) || registrar.Equal(x, []registrar.NameServer{{Name: "ns.example.net"}, {Name: "ns1.example.com", Addrs: []netip.Addr{a1}}}) {
		t.Error("different delegations compare equal")
	}
}
