package nginx

import (
	"context"
	"testing"

	"github.com/dnsroll/dnsroll/config"
	"github.com/dnsroll/dnsroll/lb/lbtest"
)

// TestLabQueries reads a lab nginx's query counter (stub_status on the
// status socket the playbook's config serves) as a drain does: it rises by
// at least every UDP and TCP query sent through nginx, and stays flat while
// nothing is sent, however often it is read; the same over SSH.
func TestLabQueries(t *testing.T) {
	s := startStaged(t)
	check := func(t *testing.T, fleet *config.Fleet) {
		ctx := context.Background()
		read := func() uint64 {
			t.Helper()
			n, err := s.d.Queries(ctx, fleet, s.LB)
			if err != nil {
				t.Fatalf("Queries: %v", err)
			}
			return n
		}
		before := read()
		const udp, both = 30, 10
		countAnswers(t, s.LB.Address, udp)
		for range both {
			lbtest.WantTXT(t, s.LB.Address, "blue") // one UDP and one TCP query
		}
		after := read()
		if sent := uint64(udp + 2*both); after-before < sent {
			t.Errorf("counter rose %d -> %d (+%d) for %d UDP and %d TCP queries; want at least +%d", before, after, after-before, udp+both, both, sent)
		} else {
			t.Logf("counter +%d for %d queries sent", after-before, sent)
		}
		for range 5 {
			if n := read(); n != after {
				t.Fatalf("idle counter moved from %d to %d: its own reads must not count", after, n)
			}
		}
	}
	t.Run("local", func(t *testing.T) { check(t, s.Fleet) })
	t.Run("over SSH", func(t *testing.T) {
		fleet, _ := s.overSSH(t)
		defer func() { s.d.Channels, s.LB.SSHHost = nil, "" }()
		check(t, fleet)
	})
}
