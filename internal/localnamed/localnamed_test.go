package localnamed

import (
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dnsroll/dnsroll/internal/needlab"
)

// A named whose TCP port another process holds logs "address in use"
// and goes on answering UDP alone, so Start must not hand it out: DNS
// over TCP to it would reach the other process. It is started again on
// another port, as one that exits for its port is.
func TestPortTakenForTCPIsRetried(t *testing.T) {
	needlab.Programs(t, "named")
	// A port from the kernel's ephemeral range, where no test starts a
	// server (internal/freeport): taken here, not by another test's.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	addr := netip.MustParseAddrPort(ln.Addr().String())

	dir := t.TempDir()
	zone := filepath.Join(dir, "t.db")
	if err := os.WriteFile(zone, []byte("$TTL 300\n@ SOA ns1 h 7 1 1 1 1\n@ NS ns1\nns1 A 127.0.0.1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	n, err := Run(dir, Conf(dir, addr, "", Primary("t.", zone)))
	if err != nil {
		t.Fatal(err)
	}
	defer n.Stop()
	s := &Server{Addr: addr.String(), Port: int(addr.Port()), Named: n}
	retry, err := s.waitServing("t.", 7, true)
	if !retry || err == nil {
		t.Fatalf("named without its TCP port: retry %v, err %v; want a retry on another port (log: %s)", retry, err, n.Log())
	}
}

// A zone that named refuses to load (an in-zone NS target with no
// address) is reported as such, with named's reason, once named logs it:
// not after Start has waited out its limit for an answer that never comes.
func TestZoneThatDoesNotLoadIsReported(t *testing.T) {
	needlab.Programs(t, "named")
	dir := t.TempDir()
	zone := filepath.Join(dir, "t.db")
	if err := os.WriteFile(zone, []byte("$TTL 300\n@ SOA ns1 h 7 1 1 1 1\n@ NS ns1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Start(filepath.Join(dir, "named"), "t.", zone, 7)
	if err == nil {
		t.Fatal("Start served a zone that named does not load")
	}
	for _, want := range []string{"named does not load t.", "has no address records"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
}
