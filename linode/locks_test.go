package linode_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/lab/linodesim"
	"github.com/dnsroll/dnsroll/linode"
	"github.com/dnsroll/dnsroll/preflight"
)

// The worker gives the activities a *linode.Cloud, which Plan asks for
// locks only if it is a preflight.Locker.
var _ preflight.Locker = (*linode.Cloud)(nil)

// DeleteLocks reads Linode's resource locks (v4beta) on the servers a
// rollout would delete. Only an unrestricted user may read them: a lookup
// the token may not make proves nothing, and Linode's failure to answer
// is an error a retry may pass.
func TestDeleteLocks(t *testing.T) {
	e := newEnv(t)
	c := ctx(t)
	servers := e.createAll(t, "ns1", "ns2", "lb1")
	stranger, err := e.cloud.Create(c, spec("other", "someone-else"))
	if err != nil {
		t.Fatal(err)
	}
	if locks, err := e.cloud.DeleteLocks(c, servers); err != nil || len(locks) != 0 {
		t.Fatalf("no locks: DeleteLocks = %+v, %v", locks, err)
	}
	ns1Lock, err := e.sim.LockInstance(servers[0].ID, linodesim.LockCannotDelete)
	if err != nil {
		t.Fatal(err)
	}
	lbLock, err := e.sim.LockInstance(servers[2].ID, linodesim.LockCannotDeleteWithSubresources)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.sim.LockInstance(stranger.ID, linodesim.LockCannotDelete); err != nil {
		t.Fatal(err)
	}
	locks, err := e.cloud.DeleteLocks(c, servers)
	if err != nil || len(locks) != 2 ||
		locks[0] != (dnsroll.Lock{ID: ns1Lock, Type: "cannot_delete", ServerID: servers[0].ID, Label: "ns1"}) ||
		locks[1] != (dnsroll.Lock{ID: lbLock, Type: "cannot_delete_with_subresources", ServerID: servers[2].ID, Label: "lb1"}) {
		t.Fatalf("DeleteLocks = %+v, %v; want ns1's and lb1's locks, not the stranger's", locks, err)
	}

	e.sim.InjectFault(linodesim.Fault{Method: "GET", PathPrefix: "/v4beta/locks", Status: http.StatusServiceUnavailable, Count: -1})
	if _, err := e.cloud.DeleteLocks(c, servers); err == nil || dnsroll.ErrorCode(err) == dnsroll.EINVALID {
		t.Errorf("locks unavailable: DeleteLocks error %v; want one a retry may pass", err)
	}
	e.sim.ClearFaults()
	// A token without the scope (401), or an API without locks (404).
	for _, status := range []int{http.StatusUnauthorized, http.StatusNotFound} {
		e.sim.InjectFault(linodesim.Fault{Method: "GET", PathPrefix: "/v4beta/locks", Status: status, Count: -1})
		if locks, err := e.cloud.DeleteLocks(c, servers); err != nil || len(locks) != 0 {
			t.Errorf("locks answered %d: DeleteLocks = %+v, %v; want nothing known", status, locks, err)
		}
		e.sim.ClearFaults()
	}
	// A restricted user may not read locks (403).
	e.sim.Restrict(linodesim.Grants{AddLinodes: true, AccountAccess: "read_write"})
	if locks, err := e.cloud.DeleteLocks(c, servers); err != nil || len(locks) != 0 {
		t.Errorf("restricted user: DeleteLocks = %+v, %v; want nothing known", locks, err)
	}
}

// A delete Linode refuses for a lock is no refusal "for now": no retry
// passes it until someone removes the lock. The error, of code
// ECONFLICT, names the Linode and the lock and says how to remove it;
// where the token may not read locks, it says what Linode said and how
// to find the lock.
func TestDeleteOfALockedLinode(t *testing.T) {
	e := newEnv(t)
	c := ctx(t)
	s, err := e.cloud.Create(c, spec("ns1", tag))
	if err != nil {
		t.Fatal(err)
	}
	lock, err := e.sim.LockInstance(s.ID, linodesim.LockCannotDelete)
	if err != nil {
		t.Fatal(err)
	}
	err = e.cloud.Delete(c, s.ID)
	if dnsroll.ErrorCode(err) != dnsroll.ECONFLICT {
		t.Fatalf("delete of a locked Linode: %v (code %q); want code %q, which no retry passes", err, dnsroll.ErrorCode(err), dnsroll.ECONFLICT)
	}
	for _, want := range []string{
		fmt.Sprintf("ns1 (Linode %d) has a cannot_delete lock (lock %d)", s.ID, lock),
		fmt.Sprintf("linode-cli resource-locks delete %d", lock),
		"Cloud Manager",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if got, err := e.cloud.Get(c, s.ID); err != nil || got.Status == dnsroll.StatusDeleting {
		t.Errorf("locked Linode after its delete: %+v, %v", got, err)
	}

	e.sim.Restrict(linodesim.Grants{AddLinodes: true, AccountAccess: "read_write"})
	err = e.cloud.Delete(c, s.ID)
	if dnsroll.ErrorCode(err) != dnsroll.ECONFLICT || !strings.Contains(err.Error(), "lock") || !strings.Contains(err.Error(), "linode-cli resource-locks list") {
		t.Errorf("delete of a locked Linode, locks unreadable: %v (code %q); want code %q, saying how to find the lock", err, dnsroll.ErrorCode(err), dnsroll.ECONFLICT)
	}
}
