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
	servers := e.createAll(t, "ns1", "ns2", "lb1")
	if d, err := e.cloud.Denied(c, servers); err != nil || d.Create || d.Tag || d.ReadOnly != nil {
		t.Fatalf("unrestricted: Denied = %+v, %v; want nothing denied", d, err)
	}
	// As on Linode, an unrestricted user has no grants to list (which
	// linodego would read as no add_linodes): Denied must not ask.
	req, _ := http.NewRequestWithContext(c, "GET", e.srv.URL+"/v4/profile/grants", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusNoContent {
		t.Errorf("unrestricted GET /v4/profile/grants: %v, %v; want 204 No Content", resp, err)
	} else {
		resp.Body.Close()
	}

	e.sim.Restrict(linodesim.Grants{ReadOnly: []string{"ns2", "lb1"}})
	d, err := e.cloud.Denied(c, servers)
	if err != nil || !d.Create || d.User == "" || len(d.ReadOnly) != 2 || d.ReadOnly[0].Label != "ns2" || d.ReadOnly[1].Label != "lb1" {
		t.Fatalf("restricted, no add_linodes, ns2 and lb1 read-only: Denied = %+v, %v", d, err)
	}
	if _, err := e.cloud.Create(c, spec("ns3", tag), nil); !refused(err) {
		t.Errorf("create without add_linodes: %v; want Linode's 403", err)
	}
	if err := e.cloud.Delete(c, servers[1].ID); !refused(err) {
		t.Errorf("delete of a read-only server: %v; want Linode's 403", err)
	}
	if err := e.cloud.Rename(c, servers[0].ID, "ns1-old"); err != nil {
		t.Errorf("rename of a read-write server: %v", err)
	}

	// Without read-write account access, a restricted user may create
	// Linodes but not tag them: the fleet's tag is refused.
	e.sim.Restrict(linodesim.Grants{AddLinodes: true, AccountAccess: "read_only"})
	if d, err := e.cloud.Denied(c, servers); err != nil || d.Create || !d.Tag || d.ReadOnly != nil {
		t.Errorf("restricted with add_linodes, read-only account access: Denied = %+v, %v; want tagging denied", d, err)
	}
	if _, err := e.cloud.Create(c, spec("ns3", tag), nil); dnsroll.ErrorCode(err) != dnsroll.EINVALID || !strings.Contains(err.Error(), "[403] [tags] Unauthorized") {
		t.Errorf("a tagged create without read-write account access: %v; want Linode's 403", err)
	}
	e.sim.Restrict(linodesim.Grants{AddLinodes: true, AccountAccess: "read_write"})
	if d, err := e.cloud.Denied(c, servers); err != nil || d.Create || d.Tag || d.ReadOnly != nil {
		t.Errorf("restricted with add_linodes and read-write account access, all read-write: Denied = %+v, %v; want nothing denied", d, err)
	}
	if s, err := e.cloud.Create(c, spec("ns3", tag), nil); err != nil || !s.HasTag(tag) {
		t.Errorf("a tagged create with the grants: %+v, %v", s, err)
	}

	// Grants that leave out a server the user sees do not describe its
	// access (role-based access): they prove nothing.
	e.sim.Restrict(linodesim.Grants{ReadOnly: []string{"ns2"}, Unlisted: []string{"lb1"}})
	if d, err := e.cloud.Denied(c, servers); err != nil || d.Create || d.Tag || d.ReadOnly != nil {
		t.Errorf("grants that leave out lb1: Denied = %+v, %v; want nothing denied", d, err)
	}

	// Linode's failure to answer is an error a retry may pass.
	e.sim.InjectFault(linodesim.Fault{Method: "GET", PathPrefix: "/v4/profile", Status: http.StatusServiceUnavailable, Count: -1})
	if _, err := e.cloud.Denied(c, servers); err == nil || dnsroll.ErrorCode(err) == dnsroll.EINVALID {
		t.Errorf("profile unavailable: Denied error %v; want one a retry may pass", err)
	}
	e.sim.ClearFaults()

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
