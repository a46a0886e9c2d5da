package linode_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
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
	stranger, err := e.cloud.Create(c, spec("other", "someone-else"), nil)
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
	s := e.create(t, "ns1")
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

// A first rollout deletes nothing: DeleteLocks asks Linode nothing, so a
// locks API that does not answer cannot hold it up.
func TestDeleteLocksOfNoServersAsksNothing(t *testing.T) {
	e := newEnv(t)
	e.sim.InjectFault(linodesim.Fault{Method: "GET", PathPrefix: "/v4beta/locks", Status: http.StatusServiceUnavailable, Count: -1})
	if locks, err := e.cloud.DeleteLocks(ctx(t), nil); err != nil || len(locks) != 0 {
		t.Errorf("DeleteLocks of no servers = %+v, %v; want none, without asking", locks, err)
	}
}

// Where the locks cannot be read for good (a token without their scope,
// 401; an API without them, 404), a refusal that names a lock is taken
// for one, as for a restricted user. Where the lookup fails for now
// (503), the refusal is reported as it is, for a retry, which reads the
// lock then.
func TestDeleteOfALockedLinodeLocksUnread(t *testing.T) {
	for _, tc := range []struct {
		status int
		locked bool
	}{{http.StatusUnauthorized, true}, {http.StatusNotFound, true}, {http.StatusServiceUnavailable, false}} {
		t.Run(http.StatusText(tc.status), func(t *testing.T) {
			e := newEnv(t)
			c := ctx(t)
			s := e.create(t, "ns1")
			if _, err := e.sim.LockInstance(s.ID, linodesim.LockCannotDelete); err != nil {
				t.Fatal(err)
			}
			e.sim.InjectFault(linodesim.Fault{Method: "GET", PathPrefix: "/v4beta/locks", Status: tc.status, Count: -1})
			err := e.cloud.Delete(c, s.ID)
			if got := dnsroll.ErrorCode(err) == dnsroll.ECONFLICT && strings.Contains(err.Error(), "linode-cli resource-locks list"); err == nil || got != tc.locked {
				t.Errorf("delete of a locked Linode, locks answering %d: %v (code %q); want it taken for a lock: %v", tc.status, err, dnsroll.ErrorCode(err), tc.locked)
			}
		})
	}
}

// A lock on another kind of entity (a NodeBalancer, a volume) whose ID
// is a server's does not keep that server.
func TestLocksOfOtherEntitiesDoNotKeepAServer(t *testing.T) {
	const id = 4321
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.Method + " " + r.URL.Path {
		case "GET /v4beta/locks":
			fmt.Fprintf(w, `{"data": [{"id": 7, "lock_type": "cannot_delete", "entity": {"id": %d, "type": "nodebalancer", "label": "nb1"}}], "page": 1, "pages": 1, "results": 1}`, id)
		case fmt.Sprintf("DELETE /v4/linode/instances/%d", id):
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `{"errors": [{"reason": "Linode has a lock on it"}]}`)
		default:
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `{"errors": [{"reason": "Not found"}]}`)
		}
	}))
	t.Cleanup(srv.Close)
	cloud := newCloud(t, srv.URL+"/v4", token)
	c := ctx(t)
	if locks, err := cloud.DeleteLocks(c, []dnsroll.Server{{ID: id, Label: "ns1"}}); err != nil || len(locks) != 0 {
		t.Errorf("DeleteLocks = %+v, %v; want none: the lock is a NodeBalancer's", locks, err)
	}
	if err := cloud.Delete(c, id); err == nil || dnsroll.ErrorCode(err) == dnsroll.ECONFLICT {
		t.Errorf("delete refused, a NodeBalancer locked: %v (code %q); want the refusal as it is, not a lock's", err, dnsroll.ErrorCode(err))
	}
}

// Where the locks cannot be read, a refusal that names no lock (a clone
// in progress) is not taken for one: a retry may pass it.
func TestDeleteRefusedForAnotherReasonLocksUnread(t *testing.T) {
	e := newEnv(t)
	c := ctx(t)
	s := e.create(t, "ns1")
	e.sim.Restrict(linodesim.Grants{AddLinodes: true, AccountAccess: "read_write"})
	e.sim.InjectFault(linodesim.Fault{Method: "DELETE", PathPrefix: "/v4/linode/instances", Status: http.StatusBadRequest, Reason: "Linode is being cloned", Count: -1})
	if err := e.cloud.Delete(c, s.ID); err == nil || dnsroll.ErrorCode(err) == dnsroll.ECONFLICT {
		t.Errorf("delete refused during a clone, locks unreadable: %v (code %q); want a refusal a retry may pass", err, dnsroll.ErrorCode(err))
	}
}
