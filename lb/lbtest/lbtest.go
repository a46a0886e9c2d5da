// Package lbtest holds what every load balancer driver's tests share: the
// contract every driver must pass (Contract), a lab load balancer (NewLab),
// a tiny DNS backend whose answer says which one it is, a check of what a
// load balancer answers over UDP and TCP, a load to measure updates by, the
// skip-or-fail rule for missing lab programs, and for tests without a lab
// a fake playbook runner and the checks of a rendered config and of what a
// driver asks its playbook for.
package lbtest

import (
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/config"
	"github.com/dnsroll/dnsroll/internal/freeport"
	"github.com/dnsroll/dnsroll/lb"
	"github.com/dnsroll/dnsroll/provision"
)

// QueryName is the name WantTXT asks for; backends answer any name.
const QueryName = "probe.dnsroll.test."

// StartTXT starts a DNS server on one loopback port for UDP and TCP that
// answers every query (a health check's too) with TXT answer, and returns
// it as a backend labelled answer. It stops when the test ends.
func StartTXT(t testing.TB, answer string) dnsroll.Server {
	t.Helper()
	return Serve(t, answer, dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		m.Authoritative = true
		m.Answer = []dns.RR{&dns.TXT{
			Hdr: dns.RR_Header{Name: r.Question[0].Name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 60},
			Txt: []string{answer},
		}}
		_ = w.WriteMsg(m)
	}))
}

// StartSOA starts a backend on loopback that answers every query with
// zone's SOA, authoritatively: what an update workflow's DNS check asks,
// over UDP and TCP. It stops when the test ends.
func StartSOA(t testing.TB, zone string) dnsroll.Server {
	t.Helper()
	return Serve(t, "soa", dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		m.Authoritative = true
		m.Answer = []dns.RR{&dns.SOA{Hdr: dns.RR_Header{Name: dns.Fqdn(zone), Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: 60},
			Ns: "ns1." + dns.Fqdn(zone), Mbox: "admin." + dns.Fqdn(zone), Serial: 7, Refresh: 60, Retry: 60, Expire: 600, Minttl: 60}}
		_ = w.WriteMsg(m)
	}))
}

// Serve starts a DNS server with handler h on one loopback port for UDP
// and TCP, and returns it as a backend labelled label. It stops when the
// test ends.
func Serve(t testing.TB, label string, h dns.Handler) dnsroll.Server {
	t.Helper()
	pc, ln := listenBoth(t)
	port := pc.LocalAddr().(*net.UDPAddr).Port
	// No limit on the queries a TCP connection carries (miekg/dns closes
	// it after 128 by default): like BIND, so busy clients keep theirs.
	for _, srv := range []*dns.Server{{PacketConn: pc, Handler: h}, {Listener: ln, Handler: h, MaxTCPQueries: -1}} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		go func() { _ = srv.ActivateAndServe() }()
		<-started
		t.Cleanup(func() { _ = srv.Shutdown() })
	}
	return dnsroll.Server{Label: label, IPv4: "127.0.0.1", DNSPort: port}
}

// listenBoth binds one loopback port for UDP and TCP. The sockets are held,
// not handed to another process, so port 0 is safe here.
func listenBoth(t testing.TB) (net.PacketConn, net.Listener) {
	t.Helper()
	for range 50 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := pc.LocalAddr().(*net.UDPAddr).Port
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err == nil {
			return pc, ln
		}
		pc.Close()
	}
	t.Fatal("no loopback port free for both UDP and TCP")
	return nil, nil
}

// WantTXT queries QueryName TXT through addr over UDP and TCP and fails the
// test unless both answer exactly TXT want. A driver's Point promises the
// new backends serve when it returns, so a wrong answer fails at once; only
// a query with no reply is retried.
func WantTXT(t testing.TB, addr, want string) {
	t.Helper()
	for _, proto := range []string{"udp", "tcp"} {
		c := &dns.Client{Net: proto, Timeout: 2 * time.Second}
		m := new(dns.Msg)
		m.SetQuestion(QueryName, dns.TypeTXT)
		var r *dns.Msg
		var err error
		for range 3 {
			if r, _, err = c.Exchange(m, addr); err == nil {
				break
			}
		}
		if err != nil {
			t.Fatalf("%s query through %s: %v", proto, addr, err)
		}
		if len(r.Answer) != 1 {
			t.Fatalf("%s query through %s: rcode %s, answer %v; want one TXT", proto, addr, dns.RcodeToString[r.Rcode], r.Answer)
		}
		if txt, ok := r.Answer[0].(*dns.TXT); !ok || len(txt.Txt) != 1 || txt.Txt[0] != want {
			t.Fatalf("%s query through %s: answer %v, want TXT %q", proto, addr, r.Answer[0], want)
		}
	}
}

// FreePort returns a loopback port, free for UDP and TCP, for a load
// balancer to listen on.
func FreePort(t testing.TB) string {
	t.Helper()
	port, err := freeport.Loopback()
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprint(port)
}

// LabFleet is a lab fleet for a driver's lab tests: this repository's
// playbooks over connection local, and one zone that the health checks of
// dnsdist ask for.
func LabFleet(t testing.TB) *config.Fleet {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return &config.Fleet{
		Name: "lab", Dir: root, Lab: &config.Lab{DNSPortBase: 15300},
		Ansible: config.Ansible{Connection: "local", LoadBalancerPlaybook: "ansible/loadbalancer.yml", SSHUser: "root"},
		Zones:   []config.Zone{{Name: "dnsroll.test"}},
	}
}

// Lab is one lab load balancer for a driver's lab tests, not started:
// lb1 on a free loopback port in LabFleet, placed by Place in a new
// temporary directory, Dir.
type Lab struct {
	Fleet *config.Fleet
	LB    config.LoadBalancer
	Place config.Placer
	Dir   string
}

// Reach is how a lab driver reaches l: the real playbook runner, with
// l's placement.
func (l Lab) Reach() lb.Reach { return lb.Reach{Runner: &provision.Runner{}, Place: l.Place} }

// NewLab is a Lab for the named driver.
func NewLab(t testing.TB, driver string) Lab {
	t.Helper()
	l := Lab{
		Fleet: LabFleet(t),
		LB:    config.LoadBalancer{Name: "lb1", Address: "127.0.0.1:" + FreePort(t), Fronts: config.Labels{"ns1"}, Driver: driver},
		Place: config.PlaceIn(t.TempDir()),
	}
	var err error
	if l.Dir, err = lb.Dir(l.Place.Place(l.Fleet), l.LB.Name); err != nil {
		t.Fatal(err)
	}
	return l
}
