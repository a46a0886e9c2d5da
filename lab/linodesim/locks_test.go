package linodesim_test

import (
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/linode/linodego"

	"github.com/dnsroll/dnsroll/lab/linodesim"
)

// betaClient is linodego on the simulator's v4beta, where Linode serves
// its resource locks.
func (e *env) betaClient(t *testing.T) *linodego.Client {
	t.Helper()
	c := newClient(t, e.srv.URL, token)
	if _, err := c.UseURL(e.srv.URL + "/v4beta"); err != nil {
		t.Fatal(err)
	}
	return c
}

// A resource lock stops the deletion of its Linode, as on Linode: the
// delete is refused with a 400 that names the lock, and the instance
// stays, running, until the lock is removed. linodego's Locks client
// (v4beta) creates, lists, reads and removes locks.
func TestLocksStopADelete(t *testing.T) {
	e := newEnv(t, linodesim.Options{})
	c := ctx(t)
	beta := e.betaClient(t)
	ns1, ns2 := e.create(t, "ns1"), e.create(t, "ns2")

	lock, err := beta.CreateLock(c, linodego.LockCreateOptions{EntityType: linodego.EntityLinode, EntityID: ns1.ID, LockType: linodego.LockTypeCannotDelete})
	if err != nil {
		t.Fatalf("create lock: %v", err)
	}
	if lock.ID == 0 || lock.LockType != linodego.LockTypeCannotDelete || lock.Entity.ID != ns1.ID || lock.Entity.Type != linodego.EntityLinode ||
		lock.Entity.Label != "ns1" || lock.Entity.URL != "/v4/linode/instances/1001" {
		t.Fatalf("created lock %+v", lock)
	}
	if _, err := beta.CreateLock(c, linodego.LockCreateOptions{EntityType: linodego.EntityLinode, EntityID: ns1.ID, LockType: linodego.LockTypeCannotDeleteWithSubresources}); apiStatus(err) != http.StatusBadRequest {
		t.Errorf("a second lock on ns1: %v; want a 400 (one lock per resource)", err)
	}
	if _, err := beta.CreateLock(c, linodego.LockCreateOptions{EntityType: linodego.EntityLinode, EntityID: 9999, LockType: linodego.LockTypeCannotDelete}); apiStatus(err) != http.StatusNotFound {
		t.Errorf("a lock on no Linode: %v; want a 404", err)
	}
	if _, err := beta.CreateLock(c, linodego.LockCreateOptions{EntityType: linodego.EntityLinode, EntityID: ns2.ID, LockType: "cannot_touch"}); apiStatus(err) != http.StatusBadRequest {
		t.Errorf("a lock of an unknown type: %v; want a 400", err)
	}
	sub, err := beta.CreateLock(c, linodego.LockCreateOptions{EntityType: linodego.EntityLinode, EntityID: ns2.ID, LockType: linodego.LockTypeCannotDeleteWithSubresources})
	if err != nil {
		t.Fatal(err)
	}
	if locks, err := beta.ListLocks(c, nil); err != nil || len(locks) != 2 || locks[0].ID != lock.ID || locks[1].ID != sub.ID {
		t.Fatalf("list locks: %+v, %v", locks, err)
	}
	if got, err := beta.GetLock(c, sub.ID); err != nil || got.LockType != linodego.LockTypeCannotDeleteWithSubresources || got.Entity.ID != ns2.ID {
		t.Fatalf("get lock: %+v, %v", got, err)
	}

	// Both kinds of lock refuse the delete.
	for _, inst := range []*linodego.Instance{ns1, ns2} {
		r := e.do(t, "DELETE", "/v4/linode/instances/"+strconv.Itoa(inst.ID), "")
		if reason, _ := r.reason(t); r.status != http.StatusBadRequest || !strings.Contains(strings.ToLower(reason), "lock") {
			t.Errorf("delete of locked %s: %d %q; want a 400 whose reason names the lock", inst.Label, r.status, reason)
		}
		if got, err := e.lc.GetInstance(c, inst.ID); err != nil || got.Status == linodego.InstanceDeleting {
			t.Errorf("locked %s after its delete: %+v, %v; want it kept", inst.Label, got, err)
		}
	}
	// A rename follows the label the lock's entity shows.
	if _, err := e.lc.RenameInstance(c, ns1.ID, "ns1-old"); err != nil {
		t.Fatal(err)
	}
	if got, err := beta.GetLock(c, lock.ID); err != nil || got.Entity.Label != "ns1-old" {
		t.Errorf("lock after a rename: %+v, %v", got, err)
	}

	// Locks are a v4beta API.
	if r := e.do(t, "GET", "/v4/locks", ""); r.status != http.StatusNotFound {
		t.Errorf("GET /v4/locks: %d; want 404, locks are served on v4beta", r.status)
	}

	if err := beta.DeleteLock(c, lock.ID); err != nil {
		t.Fatalf("remove lock: %v", err)
	}
	if _, err := beta.GetLock(c, lock.ID); apiStatus(err) != http.StatusNotFound {
		t.Errorf("removed lock: %v; want a 404", err)
	}
	if err := e.lc.DeleteInstance(c, ns1.ID); err != nil {
		t.Errorf("delete once the lock is removed: %v", err)
	}
	if err := beta.DeleteLock(c, lock.ID); apiStatus(err) != http.StatusNotFound {
		t.Errorf("remove a removed lock: %v; want a 404", err)
	}
	// Another kind of entity, which the simulator does not have, takes
	// no lock, whatever its ID.
	ns3 := e.create(t, "ns3")
	if _, err := beta.CreateLock(c, linodego.LockCreateOptions{EntityType: "nodebalancer", EntityID: ns3.ID, LockType: linodego.LockTypeCannotDelete}); apiStatus(err) != http.StatusNotFound {
		t.Errorf("a lock on a NodeBalancer with a Linode's ID: %v; want a 404", err)
	}
}

// Only an unrestricted user may see or manage locks (Linode's docs): a
// restricted user is answered 403, whatever its grants on the Linode.
func TestLocksNeedAnUnrestrictedUser(t *testing.T) {
	e := newEnv(t, linodesim.Options{})
	c := ctx(t)
	beta := e.betaClient(t)
	ns1 := e.create(t, "ns1")
	if _, err := beta.CreateLock(c, linodego.LockCreateOptions{EntityType: linodego.EntityLinode, EntityID: ns1.ID, LockType: linodego.LockTypeCannotDelete}); err != nil {
		t.Fatal(err)
	}
	e.sim.Restrict(linodesim.Grants{AddLinodes: true, AccountAccess: "read_write"})
	if _, err := beta.ListLocks(c, nil); apiStatus(err) != http.StatusForbidden {
		t.Errorf("a restricted user lists locks: %v; want a 403", err)
	}
	if _, err := beta.CreateLock(c, linodego.LockCreateOptions{EntityType: linodego.EntityLinode, EntityID: ns1.ID, LockType: linodego.LockTypeCannotDelete}); apiStatus(err) != http.StatusForbidden {
		t.Errorf("a restricted user creates a lock: %v; want a 403", err)
	}
	// The lock holds for the restricted user too.
	if err := e.lc.DeleteInstance(c, ns1.ID); apiStatus(err) != http.StatusBadRequest {
		t.Errorf("a restricted user deletes a locked Linode: %v; want a 400", err)
	}
}

// Locks are part of the simulator's state: a restart of the lab keeps them.
func TestLocksSurviveRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	e := newEnv(t, linodesim.Options{StateFile: path})
	ns1 := e.create(t, "ns1")
	id, err := e.sim.LockInstance(ns1.ID, string(linodego.LockTypeCannotDelete))
	if err != nil {
		t.Fatal(err)
	}
	e2 := newEnv(t, linodesim.Options{StateFile: path})
	if got, err := e2.betaClient(t).GetLock(ctx(t), id); err != nil || got.Entity.ID != ns1.ID {
		t.Fatalf("lock after restart: %+v, %v", got, err)
	}
	if err := e2.lc.DeleteInstance(ctx(t), ns1.ID); apiStatus(err) != http.StatusBadRequest {
		t.Errorf("delete of a locked Linode after restart: %v; want a 400", err)
	}
	n := e2.create(t, "ns2")
	if again, err := e2.sim.LockInstance(n.ID, string(linodego.LockTypeCannotDelete)); err != nil || again == id {
		t.Errorf("a new lock after restart: %d, %v; want a new ID", again, err)
	}
}

// A Linode being deleted takes no lock: it is as good as gone.
func TestLockOnADeletingLinodeIsNotFound(t *testing.T) {
	e := newEnv(t, linodesim.Options{DeleteDelay: time.Hour})
	c := ctx(t)
	ns1 := e.create(t, "ns1")
	if err := e.lc.DeleteInstance(c, ns1.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.betaClient(t).CreateLock(c, linodego.LockCreateOptions{EntityType: linodego.EntityLinode, EntityID: ns1.ID, LockType: linodego.LockTypeCannotDelete}); apiStatus(err) != http.StatusNotFound {
		t.Errorf("a lock on a deleting Linode: %v; want a 404", err)
	}
}
