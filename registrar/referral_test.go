package registrar_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/dnsroll/dnsroll/lab/delegation"
	"github.com/dnsroll/dnsroll/registrar"
)

var ns1 = []registrar.NameServer{
	{Name: "ns1.example.com", Addrs: []netip.Addr{netip.MustParseAddr("127.0.0.21"), netip.MustParseAddr("::1")}},
	{Name: "ns2.example.com", Addrs: []netip.Addr{netip.MustParseAddr("127.0.0.22")}},
	{Name: "ns.example.net"},
}

func startLab(t *testing.T, nsTTL, glueTTL time.Duration) *delegation.Lab {
	t.Helper()
	l, err := delegation.Start(delegation.Options{Dir: t.TempDir(), Domain: "example.com", NS: ns1, NSTTL: nsTTL, GlueTTL: glueTTL})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Stop)
	return l
}

// TestReferralReportsNamesGlueAndTTLs: the checker reads the parent's
// referral as resolvers get it, including the two TTLs the drain waits on.
func TestReferralReportsNamesGlueAndTTLs(t *testing.T) {
	l := startLab(t, 12*time.Second, 7*time.Second)
	ref, err := registrar.Check(context.Background(), l.ParentServers(), "example.com")
	if err != nil {
		t.Fatal(err)
	}
	if !registrar.Equal(ref.NS, ns1) {
		t.Errorf("referral NS %v, want %v", ref.NS, ns1)
	}
	if ref.NSTTL != 12*time.Second || ref.GlueTTL != 7*time.Second || ref.MaxTTL() != 12*time.Second {
		t.Errorf("referral TTLs NS %v glue %v max %v, want 12s, 7s, 12s", ref.NSTTL, ref.GlueTTL, ref.MaxTTL())
	}
	if ref.Domain != "example.com." || len(ref.Servers) != 1 || ref.Servers[0] != l.ParentServers()[0] {
		t.Errorf("referral for %q from %v", ref.Domain, ref.Servers)
	}
}

// TestReferralNotFromParent: a server that is not the parent (the root
// refers onwards for com.; the registry answers its own zone
// authoritatively) gives no referral for the domain, and the checker
// says so instead of returning a wrong delegation.
func TestReferralNotFromParent(t *testing.T) {
	l := startLab(t, 0, 0)
	if _, err := registrar.Ask(context.Background(), l.ParentServers()[0], "com"); err == nil || !strings.Contains(err.Error(), "authoritatively") {
		t.Errorf("asking the registry for its own zone: %v, want 'authoritatively'", err)
	}
	if _, err := registrar.Ask(context.Background(), l.Root(), "example.com"); err == nil || !strings.Contains(err.Error(), "no delegation") {
		t.Errorf("asking the root for example.com: %v, want 'no delegation'", err)
	}
}

// TestParentServersDisagree: while a registry publishes, its servers may
// refer to different glue; Check reports that instead of picking one.
func TestParentServersDisagree(t *testing.T) {
	l := startLab(t, 0, 0)
	// A second server of com. that still has the old delegation.
	other, err := delegation.Serve(filepath.Join(t.TempDir(), "other"), l.Host(40), "com", `$TTL 10
com. SOA a.registry.com. h.registry.com. 1 60 60 600 5
com. NS a.registry.com.
a.registry.com. A `+l.Host(40).String()+`
example.com. NS ns1.example.com.
ns1.example.com. A 127.0.0.99
`)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(other.Stop)
	_, err = registrar.Check(context.Background(), append(l.ParentServers(), other.AddrPort()), "example.com")
	var dis *registrar.DisagreeError
	if !errors.As(err, &dis) || !strings.Contains(err.Error(), "127.0.0.99") || !strings.Contains(err.Error(), "127.0.0.22") {
		t.Fatalf("Check over disagreeing servers: %v, want a DisagreeError naming both", err)
	}
}

// TestCheckTakesTheLongestTTLs: a resolver may have cached the delegation
// from any of the parent's servers, each glue record for as long as its
// own TTL says, so the drain waits for the longest TTL any server gave for
// any record.
func TestCheckTakesTheLongestTTLs(t *testing.T) {
	l := startLab(t, 12*time.Second, 7*time.Second)
	// A second server of com. with the same delegation, its NS records at a
	// longer TTL and one glue record longer still.
	other, err := delegation.Serve(filepath.Join(t.TempDir(), "other"), l.Host(40), "com", `$TTL 10
com. SOA a.registry.com. h.registry.com. 1 60 60 600 5
com. NS a.registry.com.
a.registry.com. A `+l.Host(40).String()+`
example.com. 30 NS ns1.example.com.
example.com. 30 NS ns2.example.com.
example.com. 30 NS ns.example.net.
ns1.example.com. 45 A 127.0.0.21
ns1.example.com. 5 AAAA ::1
ns2.example.com. 5 A 127.0.0.22
`)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(other.Stop)
	for _, servers := range [][]netip.AddrPort{
		append(l.ParentServers(), other.AddrPort()),
		append([]netip.AddrPort{other.AddrPort()}, l.ParentServers()...),
	} {
		ref, err := registrar.Check(context.Background(), servers, "example.com")
		if err != nil {
			t.Fatal(err)
		}
		if ref.NSTTL != 30*time.Second || ref.GlueTTL != 45*time.Second || ref.MaxTTL() != 45*time.Second {
			t.Errorf("servers %v: referral TTLs NS %v glue %v max %v, want 30s, 45s, 45s", servers, ref.NSTTL, ref.GlueTTL, ref.MaxTTL())
		}
	}
}

// TestAskRetriesATruncatedReferralOverTCP: a referral too large for UDP
// comes truncated, without all of its records; Ask asks again over TCP
// rather than read the delegation from what did fit.
func TestAskRetriesATruncatedReferralOverTCP(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", pc.LocalAddr().String())
	if err != nil {
		pc.Close()
		t.Skipf("TCP port of %s: %v", pc.LocalAddr(), err)
	}
	referral := func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		if _, udp := w.RemoteAddr().(*net.UDPAddr); udp {
			m.Truncated = true
		} else {
			ns, _ := dns.NewRR("example.com. 60 IN NS ns1.example.com.")
			glue, _ := dns.NewRR("ns1.example.com. 60 IN A 127.0.0.21")
			m.Ns, m.Extra = []dns.RR{ns}, []dns.RR{glue}
		}
		_ = w.WriteMsg(m)
	}
	for _, s := range []*dns.Server{{PacketConn: pc, Handler: dns.HandlerFunc(referral)}, {Listener: ln, Handler: dns.HandlerFunc(referral)}} {
		go func() { _ = s.ActivateAndServe() }()
		t.Cleanup(func() { _ = s.Shutdown() })
	}
	ref, err := registrar.Ask(context.Background(), netip.MustParseAddrPort(pc.LocalAddr().String()), "example.com")
	want := []registrar.NameServer{{Name: "ns1.example.com.", Addrs: []netip.Addr{netip.MustParseAddr("127.0.0.21")}}}
	if err != nil || !registrar.Equal(ref.NS, want) {
		t.Errorf("Ask of a server whose UDP referral is truncated: %v, %v; want %v", ref.NS, err, want)
	}
}

// TestCheckFailsWhenAParentServerDoesNotAnswer: a parent server that
// cannot be asked may still serve the old glue, so the others agreeing is
// not the parent serving the delegation.
func TestCheckFailsWhenAParentServerDoesNotAnswer(t *testing.T) {
	l := startLab(t, 0, 0)
	silent, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	servers := append(l.ParentServers(), netip.MustParseAddrPort(silent.LocalAddr().String()))
	if ref, err := registrar.Check(context.Background(), servers, "example.com"); err == nil {
		t.Fatalf("Check with a parent server that never answers = %v, want an error", ref.NS)
	}
}
