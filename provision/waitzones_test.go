package provision

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/miekg/dns"

	"github.com/dnsroll/dnsroll/internal/needlab"
)

// wait-zones.py, the nameserver role's last step, passes only when every
// zone's SOA is served at its installed serial, and otherwise names how
// many are not and the first of them. The server here answers 2,000
// zones with compressed names, as named does, but one zone with SERVFAIL
// (still loading) and one at an older serial.
func TestWaitZonesScript(t *testing.T) {
	needlab.Programs(t, "python3")
	const n = 2000
	serial := func(i int) uint32 { return 2026120200 + uint32(i%7) }
	var loading, stale atomic.Int32
	loading.Store(-1)
	stale.Store(-1)
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(req)
		m.Compress = true
		var i int
		if _, err := fmt.Sscanf(strings.ToLower(req.Question[0].Name), "z%05d.example.", &i); err != nil || req.Question[0].Qtype != dns.TypeSOA {
			m.Rcode = dns.RcodeRefused
		} else if int32(i) == loading.Load() {
			m.Rcode = dns.RcodeServerFailure
		} else {
			s := serial(i)
			if int32(i) == stale.Load() {
				s--
			}
			m.Authoritative = true
			m.Answer = []dns.RR{&dns.SOA{
				Hdr: dns.RR_Header{Name: req.Question[0].Name, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: 300},
				Ns:  "ns1." + req.Question[0].Name, Mbox: "hostmaster." + req.Question[0].Name,
				Serial: s, Refresh: 3600, Retry: 600, Expire: 86400, Minttl: 300,
			}}
		}
		_ = w.WriteMsg(m)
	})}
	go func() { _ = srv.ActivateAndServe() }()
	t.Cleanup(func() { _ = srv.Shutdown() })

	var list strings.Builder
	for i := range n {
		fmt.Fprintf(&list, "Z%05d.example %d\n", i, serial(i)) // named writes names as configured
	}
	serials := filepath.Join(t.TempDir(), "serials")
	if err := os.WriteFile(serials, []byte(list.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	port := fmt.Sprint(pc.LocalAddr().(*net.UDPAddr).Port)
	run := func() (string, error) {
		out, err := exec.Command("python3", "../ansible/roles/nameserver/files/wait-zones.py", port, serials).CombinedOutput()
		return string(out), err
	}
	if out, err := run(); err != nil {
		t.Fatalf("every zone served: %v: %s", err, out)
	}
	loading.Store(1500)
	stale.Store(42)
	out, err := run()
	if err == nil || !strings.Contains(out, "does not yet serve 2 of 2000 zones at their installed serial: Z00042.example (serial 2026120200) Z01500.example (serial 2026120202)") {
		t.Errorf("a zone loading and one stale: %v: %s", err, out)
	}
}
