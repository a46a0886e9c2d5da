package zone

import (
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/dnsroll/dnsroll/internal/needlab"
	"github.com/dnsroll/dnsroll/internal/signzone"
)

const childText = `$ORIGIN sub.example.com.
$TTL 300
@     SOA  ns1 hostmaster 7 3600 600 1209600 300
      NS   ns1
ns1   A    192.0.2.53
www   A    192.0.2.80
`

const parentText = `$ORIGIN example.com.
$TTL 300
@       SOA  ns1 hostmaster 7 3600 600 1209600 300
        NS   ns1
ns1     A    192.0.2.53
sub     NS   ns1.sub
ns1.sub A    192.0.2.53
`

// signedChild signs the child zone with fresh keys and returns it and the
// DS records dnssec-signzone made for its parent.
func signedChild(t *testing.T) (*Zone, string) {
	t.Helper()
	dir := t.TempDir()
	text, ds, err := signzone.SignDS(dir, "sub.example.com.", childText, signzone.Options{})
	if err != nil {
		t.Fatal(err)
	}
	z, err := Parse(strings.NewReader(text), "sub.example.com.", "sub.zone")
	if err != nil {
		t.Fatal(err)
	}
	return z, ds
}

// A parent's DS must match a key of its child's DNSKEY set when both
// zones are known: otherwise validating resolvers find the child bogus.
func TestCheckDelegationKeys(t *testing.T) {
	needlab.Programs(t, signzone.Tools...)
	child, ds := signedChild(t)
	rolled, _ := signedChild(t) // the same zone under new keys
	unsigned, err := Parse(strings.NewReader(childText), "sub.example.com.", "sub.zone")
	if err != nil {
		t.Fatal(err)
	}
	// The unsigned source file with the keys in it, named instead of the
	// signed file: named serves it without signatures.
	keysOnly, err := Parse(strings.NewReader(childText+strings.Join(child.DNSKEYs().Strings(), "\n")+"\n"), "sub.example.com.", "sub.zone")
	if err != nil {
		t.Fatal(err)
	}
	parse := func(text string) *Zone {
		t.Helper()
		z, err := Parse(strings.NewReader(text), "example.com.", "parent.zone")
		if err != nil {
			t.Fatal(err)
		}
		return z
	}
	withDS, withoutDS := parse(parentText+ds), parse(parentText)
	// The child's DS records with one field changed: the key tag stays, so
	// only the digest or the algorithm tells them from the real ones.
	altered := func(change func(*dns.DS)) *Zone {
		t.Helper()
		var out []string
		for _, line := range strings.Split(strings.TrimSpace(ds), "\n") {
			rr, err := dns.NewRR(line)
			if err != nil {
				t.Fatal(err)
			}
			d := rr.(*dns.DS)
			change(d)
			out = append(out, d.String())
		}
		return parse(parentText + strings.Join(out, "\n") + "\n")
	}
	otherDigest := altered(func(d *dns.DS) {
		// Another first hex digit: the same length, another digest.
		first := "0"
		if d.Digest[0] == '0' {
			first = "1"
		}
		d.Digest = first + d.Digest[1:]
	})
	otherAlgorithm := altered(func(d *dns.DS) { d.Algorithm ^= 1 })
	for _, tt := range []struct {
		name          string
		parent, child *Zone
		want          string // "" for no error
	}{
		{"the DS matches the child's key", withDS, child, ""},
		{"an unsigned delegation", withoutDS, unsigned, ""},
		{"a signed child without DS in the parent", withoutDS, child, ""},
		{"the child's keys rolled before the DS", withDS, rolled, "no key of its DNSKEY set matches the DS records its parent example.com. holds"},
		{"a DS for an unsigned child", withDS, unsigned, "zone sub.example.com. has no DNSKEY, but its parent example.com. holds DS records"},
		{"a DS for an unsigned child that holds the key", withDS, keysOnly, "zone sub.example.com. is not signed, but its parent example.com. holds DS records"},
		// Resolvers match a DS to a key by tag, algorithm and digest: one
		// that agrees in its tag alone validates nothing.
		{"a DS with the key's tag and another digest", otherDigest, child, "no key of its DNSKEY set matches the DS records its parent example.com. holds"},
		{"a DS with the key's tag and digest and another algorithm", otherAlgorithm, child, "no key of its DNSKEY set matches the DS records its parent example.com. holds"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckDelegationKeys(tt.parent, tt.child)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("err = %v, want none", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("err = %v, want %q", err, tt.want)
			}
		})
	}
}
