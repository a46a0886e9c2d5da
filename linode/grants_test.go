package linode_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/lab/linodesim"
)

// Denied reads a restricted user's grants: the add_linodes grant, and the
// servers it may only read, which a rollout could not delete or rename.
// An unrestricted user may do all, and a lookup the token may not make
// proves nothing. The simulator refuses what the grants do not allow,
// as Linode does, so the verdicts are checked against the API itself.
func TestDenied(t *testing.T) {
	e := newEnv(t)
	c := ctx(t)
	var servers []dnsroll.Server
	for _, label := range []string{"ns1", "ns2", "lb1"} {
		s, err := e.cloud.Create(c, spec(label, tag))
		if err != nil {
			t.Fatal(err)
		}
		servers = append(servers, s)
	}
	if d, err := e.cloud.Denied(c, servers); err != nil || d.Create || d.ReadOnly != nil {
		t.Fatalf("unrestricted: Denied = %+v, %v; want nothing denied", d, err)
	}

	e.sim.Restrict(linodesim.Grants{ReadOnly: []string{"ns2", "lb1"}})
	d, err := e.cloud.Denied(c, servers)
	if err != nil || !d.Create || d.User == "" || len(d.ReadOnly) != 2 || d.ReadOnly[0].Label != "ns2" || d.ReadOnly[1].Label != "lb1" {
		t.Fatalf("restricted, no add_linodes, ns2 and lb1 read-only: Denied = %+v, %v", d, err)
	}
	if _, err := e.cloud.Create(c, spec("ns3", tag)); !refused(err) {
		t.Errorf("create without add_linodes: %v; want Linode's 403", err)
	}
	if err := e.cloud.Delete(c, servers[1].ID); !refused(err) {
		t.Errorf("delete of a read-only server: %v; want Linode's 403", err)
	}
	if err := e.cloud.Rename(c, servers[0].ID, "ns1-old"); err != nil {
		t.Errorf("rename of a read-write server: %v", err)
	}

	e.sim.Restrict(linodesim.Grants{AddLinodes: true})
	if d, err := e.cloud.Denied(c, servers); err != nil || d.Create || d.ReadOnly != nil {
		t.Errorf("restricted with add_linodes, all read-write: Denied = %+v, %v; want nothing denied", d, err)
	}

	// A token that may not read its grants proves nothing.
	e.sim.Restrict(linodesim.Grants{})
	e.sim.InjectFault(linodesim.Fault{Method: "GET", PathPrefix: "/v4/profile/grants", Status: http.StatusUnauthorized, Count: -1})
	if d, err := e.cloud.Denied(c, servers); err != nil || d.Create || d.ReadOnly != nil {
		t.Errorf("grants unreadable: Denied = %+v, %v; want nothing denied", d, err)
	}
}

// refused tells a 403 from Linode, which no retry passes.
func refused(err error) bool {
	return dnsroll.ErrorCode(err) == dnsroll.EINVALID && strings.Contains(err.Error(), "[403] Unauthorized")
}
