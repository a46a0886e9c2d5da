package corpus

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/dnsroll/dnsroll/activities"
	"github.com/dnsroll/dnsroll/config"
	"github.com/dnsroll/dnsroll/internal/freeport"
	"github.com/dnsroll/dnsroll/internal/localnamed"
	"github.com/dnsroll/dnsroll/internal/needlab"
)

// A fleet that serves a zone and a child zone it delegates to: named
// answers the child's names from the child, with the AA flag, where the
// parent alone would refer. Two identical servers pass the rollout's
// analysis (every rollout of such a fleet used to stop at green), and a
// green that serves the child wrong still fails it.
func TestParentAndChildZoneOnOneServer(t *testing.T) {
	needlab.Programs(t, "named")
	fleet, err := config.Parse([]byte(fleetYAML))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name, text string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	parent := write("example.com.zone", `$TTL 300
@        SOA ns1 hostmaster 1 3600 600 86400 300
         NS  ns1
ns1      A   192.0.2.1
www      A   192.0.2.10
sub      NS  ns1.sub
ns1.sub  A   192.0.2.2
`)
	child := `$TTL 300
@        SOA ns1 hostmaster 1 3600 600 86400 300
         NS  ns1
ns1      A   192.0.2.2
www      A   %s
`
	goodChild := write("sub.good.zone", fmt.Sprintf(child, "192.0.2.3"))
	badChild := write("sub.bad.zone", fmt.Sprintf(child, "192.0.2.99"))
	serve := func(name, childFile string) string {
		port, err := freeport.Loopback()
		if err != nil {
			t.Fatal(err)
		}
		addr := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port))
		ndir := filepath.Join(dir, name)
		if err := os.MkdirAll(ndir, 0o755); err != nil {
			t.Fatal(err)
		}
		n, err := localnamed.Run(ndir, localnamed.Conf(ndir, addr, "",
			localnamed.Primary("example.com.", parent)+localnamed.Primary("sub.example.com.", childFile)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(n.Stop)
		err = n.Await(30*time.Second, func() error {
			for _, origin := range []string{"example.com.", "sub.example.com."} {
				m := new(dns.Msg)
				m.SetQuestion(origin, dns.TypeSOA)
				if r, err := dns.Exchange(m, addr.String()); err != nil || len(r.Answer) == 0 {
					return fmt.Errorf("%s not served yet", origin)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatalf("named %s: %v\n%s", name, err, n.Log())
		}
		return addr.String()
	}
	blue := serve("blue", goodChild)
	analyse := func(green string) error {
		in := activities.VerifyInput{
			StepFleet: activities.StepFleet{Fleet: fleet},
			Targets:   []activities.ProbeTarget{{Name: "ns1-next", Addr: green}},
			Baseline:  []activities.ProbeTarget{{Name: "ns1", Addr: blue}},
			Zones: []activities.ZoneFile{
				{Name: "example.com.", Path: parent, Serial: 1},
				{Name: "sub.example.com.", Path: goodChild, Serial: 1},
			},
			Serials: map[string]uint32{"example.com.": 1, "sub.example.com.": 1},
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		_, err := (&activities.Activities{}).Verify(ctx, in)
		return err
	}
	if err := analyse(serve("green", goodChild)); err != nil {
		t.Errorf("an identical green failed the analysis: %v", err)
	}
	if err := analyse(serve("wrong-green", badChild)); err == nil {
		t.Error("a green serving www.sub.example.com. wrong passed the analysis")
	}
}
