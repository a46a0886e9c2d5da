package probe

import (
	"context"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// The hot path: many checks over UDP, answered at once, none truncated.
func BenchmarkEngineUDP(b *testing.B) {
	z := parseZone(b, testZone)
	addr := serveUDP(b, func(w dns.ResponseWriter, req *dns.Msg) { _ = w.WriteMsg(zoneReply(z, req)) })
	var checks []Check
	for range 50 {
		checks = append(checks, Checks(z, Scope{All: true})...)
	}
	p := &Prober{Timeout: 2 * time.Second, Attempts: 2}
	for b.Loop() {
		if rep := p.Probe(context.Background(), addr, []string{"udp"}, checks); !rep.OK {
			b.Fatal(rep.Err())
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(checks)), "ns/query")
}
