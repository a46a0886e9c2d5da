package probe

import (
	"fmt"
	"slices"
	"testing"
)

const expectZone = `$ORIGIN example.com.
$TTL 300
@       SOA ns1 hostmaster 7 7200 900 1209600 300
        NS  ns1
        MX  10 mail
ns1     A   192.0.2.1
www     A   192.0.2.10
        AAAA 2001:db8::10
a.deep  TXT "x"
*.wild  A   192.0.2.99
sub     NS  ns.sub
ns.sub  A   192.0.2.53
`

func TestExpect(t *testing.T) {
	z := parseZone(t, expectZone)
	apex := []string{
		"example.com. SOA NOERROR [example.com. 300 IN SOA ns1.example.com. hostmaster.example.com. 7 7200 900 1209600 300]",
		"example.com. NS NOERROR [example.com. 300 IN NS ns1.example.com.]",
	}
	www := []string{
		"www.example.com. A NOERROR [www.example.com. 300 IN A 192.0.2.10]",
		"www.example.com. AAAA NOERROR [www.example.com. 300 IN AAAA 2001:db8::10]",
	}
	cases := []struct {
		name  string
		names []string
		want  []string // after the apex checks
	}{
		{"apex only", nil, nil},
		{"relative", []string{"www"}, www},
		{"absolute", []string{"WWW.example.com."}, www},
		{"zone suffix without dot", []string{"www.example.com"}, www},
		{"duplicates", []string{"www", "www.example.com.", "www"}, www},
		{"apex names every apex type", []string{"@"}, []string{"example.com. MX NOERROR [example.com. 300 IN MX 10 mail.example.com.]"}},
		{"absent name", []string{"nope"}, []string{"nope.example.com. A NXDOMAIN []"}},
		{"empty non-terminal", []string{"deep"}, []string{"deep.example.com. A NOERROR []"}},
		{"wildcard", []string{"x.wild"}, []string{"x.wild.example.com. A NOERROR [x.wild.example.com. 300 IN A 192.0.2.99]"}},
		{"other zone skipped", []string{"www.example.net."}, nil},
		{"delegation skipped", []string{"sub", "ns.sub", "x.sub"}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var got []string
			for _, ch := range Expect(z, c.names) {
				if ch.Zone != "example.com." {
					t.Errorf("check %s has zone %q", ch, ch.Zone)
				}
				got = append(got, fmt.Sprintf("%s %s %s %v", ch.Name, ch.Type, rcode(ch.Want.Rcode), ch.Want.RRs))
			}
			if want := append(slices.Clone(apex), c.want...); !slices.Equal(got, want) {
				t.Errorf("Expect(%q) =\n%q\nwant\n%q", c.names, got, want)
			}
		})
	}
}
