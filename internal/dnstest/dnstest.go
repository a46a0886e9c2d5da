// Package dnstest serves DNS from a test: a function fills in each reply,
// on a loopback UDP port that closes when the test ends.
package dnstest

import (
	"net"
	"testing"

	"github.com/miekg/dns"
)

// Zone is the zone file of example.com that tests start from: serial 7,
// and one nameserver, ns1, with its address. Tests append the records
// they are about.
const Zone = `$ORIGIN example.com.
$TTL 300
@     SOA  ns1 hostmaster 7 3600 600 1209600 300
      NS   ns1
ns1   A    192.0.2.53
`

// Drop, as a reply's Rcode, has ServeUDP send nothing: a lost packet.
const Drop = -1

// ServeUDP serves DNS over UDP on a loopback port until tb ends and
// returns its address. Each reply starts as dns.Msg.SetReply of the query;
// answer fills in the rest, or sets its Rcode to Drop.
func ServeUDP(tb testing.TB, answer func(req, reply *dns.Msg)) string {
	tb.Helper()
	return ServeUDPOn(tb, "127.0.0.1:0", answer)
}

// ServeUDPOn is ServeUDP on addr, such as "127.0.0.2:0": a server of its
// own address, as glue records need (any of 127.0.0.0/8 on Linux).
func ServeUDPOn(tb testing.TB, addr string, answer func(req, reply *dns.Msg)) string {
	tb.Helper()
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(req)
		answer(req, m)
		if m.Rcode == Drop {
			return
		}
		_ = w.WriteMsg(m)
	})}
	go func() { _ = srv.ActivateAndServe() }()
	tb.Cleanup(func() { _ = srv.Shutdown() })
	return pc.LocalAddr().String()
}
