package lbtest

import (
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// A query answered late, as on a loaded machine, is no query lost; one
// refused is.
func TestLoadCountsLateAnswersAsNoLoss(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]int{}
	srv := Serve(t, "slow", dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		proto := w.RemoteAddr().Network()
		mu.Lock()
		seen[proto]++
		n := seen[proto]
		mu.Unlock()
		m := new(dns.Msg)
		switch n {
		case 3:
			time.Sleep(loadTimeout + loadTimeout/2)
			m.SetReply(req)
		case 6:
			m.SetRcode(req, dns.RcodeRefused)
		default:
			m.SetReply(req)
		}
		_ = w.WriteMsg(m)
	}))
	l := StartLoad(t, srv.DNSAddr(), 1, 1, 10*time.Millisecond)
	time.Sleep(2 * loadTimeout)
	sent, lost, errs := l.Stop()
	t.Logf("sent %v, lost %v, late %v; errors %q", sent, lost, l.late, errs)
	for _, proto := range []string{"udp", "tcp"} {
		if lost[proto] != 1 {
			t.Errorf("%d %s queries lost, want 1: the one refused, not the one answered after %s", lost[proto], proto, loadTimeout+loadTimeout/2)
		}
		if l.late[proto] == 0 {
			t.Errorf("no %s query counted late", proto)
		}
	}
}
