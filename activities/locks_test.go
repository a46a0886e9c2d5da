package activities

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"go.temporal.io/sdk/temporal"

	"github.com/dnsroll/dnsroll/lab/linodesim"
)

// mustEnsureLocked ensures the server labelled label and puts a lock of
// the kind given on it, and returns the server and the lock's ID.
func (c *cloudEnv) mustEnsureLocked(t *testing.T, label, kind string) (ServerResult, int) {
	t.Helper()
	res := c.mustEnsure(t, label)
	lock, err := c.sim.LockInstance(res.Server.ID, kind)
	if err != nil {
		t.Fatal(err)
	}
	return res, lock
}

// A rollout deletes blue at its end, past its point of no return, and a
// green an earlier rollout left on its way: a Linode resource lock on one
// of them would stop that delete with both sets of servers running. Plan
// refuses it before any VM exists, naming the server, the lock and how
// to remove it. A token that may not read locks (a restricted user's)
// proves nothing, and the rollout goes on.
func TestPlanRefusesALockedServer(t *testing.T) {
	c := newCloudEnv(t)
	blue, lock := c.mustEnsureLocked(t, "ns1", linodesim.LockCannotDelete)
	err := c.planRefusal(t)
	if app := (*temporal.ApplicationError)(nil); !errors.As(err, &app) || app.Type() != ErrInvalid {
		t.Errorf("refusal %v; want type %s, as the plan API's 422", err, ErrInvalid)
	}
	for _, want := range []string{
		fmt.Sprintf("nameservers[0]: ns1 (Linode %d) has a cannot_delete lock (lock %d), and this run deletes it", blue.Server.ID, lock),
		fmt.Sprintf("linode-cli resource-locks delete %d", lock),
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("refusal %q lacks %q", err, want)
		}
	}
	if n := c.sim.Created(); n != 1 {
		t.Errorf("%d instances created; want only blue's", n)
	}

	// A green an earlier rollout left is deleted on an undo, or replaced.
	left, leftLock := c.mustEnsureLocked(t, "ns1-next", linodesim.LockCannotDeleteWithSubresources)
	err = c.planRefusal(t)
	if want := fmt.Sprintf("nameservers[0]'s green, left by an earlier rollout: ns1-next (Linode %d) has a cannot_delete_with_subresources lock (lock %d)", left.Server.ID, leftLock); !strings.Contains(err.Error(), want) {
		t.Errorf("refusal %q lacks %q", err, want)
	}

	// Only an unrestricted user may read locks: a restricted user's token,
	// which may do all else a rollout does, is not refused for them.
	c.sim.Restrict(linodesim.Grants{AddLinodes: true, AccountAccess: "read_write"})
	if _, err := c.env.ExecuteActivity(c.acts.Plan, PlanInput{Fleet: "t", Revision: "A"}); err != nil {
		t.Errorf("Plan by a token that may not read locks: %v; want it to go on", err)
	}
}

// A load balancer replacement deletes the old load balancers once the
// glue names the new ones: a lock on one is refused before any is made.
func TestNewLoadBalancersRefuseALockedOld(t *testing.T) {
	c := newCloudEnv(t)
	old, lock := c.mustEnsureLocked(t, "lb1", linodesim.LockCannotDelete)
	_, err := c.env.ExecuteActivity(c.acts.CheckNewLoadBalancerOffers, CheckOffersInput{Fleet: c.fleet})
	var app *temporal.ApplicationError
	want := fmt.Sprintf("load_balancers[0]: lb1 (Linode %d) has a cannot_delete lock (lock %d), and this run deletes it", old.Server.ID, lock)
	if !errors.As(err, &app) || !app.NonRetryable() || !strings.Contains(err.Error(), want) {
		t.Fatalf("check: %v; want a refusal containing %q", err, want)
	}
	if n := c.sim.Created(); n != 1 {
		t.Errorf("%d instances created; want only the old load balancer", n)
	}

	// A replacement an earlier run left is reused, or deleted on an undo.
	if err := c.sim.Unlock(lock); err != nil {
		t.Fatal(err)
	}
	left, leftLock := c.mustEnsureLocked(t, "lb1-next", linodesim.LockCannotDelete)
	_, err = c.env.ExecuteActivity(c.acts.CheckNewLoadBalancerOffers, CheckOffersInput{Fleet: c.fleet})
	want = fmt.Sprintf("lb1-next (Linode %d) has a cannot_delete lock (lock %d)", left.Server.ID, leftLock)
	if !errors.As(err, &app) || !app.NonRetryable() || !strings.Contains(err.Error(), want) {
		t.Errorf("check, a replacement left locked: %v; want a refusal containing %q", err, want)
	}
}

// A lock put on a server after Plan (or one the token could not read)
// stops its delete: DeleteServer fails at once, not retried until its
// deadline, saying which lock and how to remove it, and the server stays.
func TestDeleteServerOfALockedServerFailsForGood(t *testing.T) {
	c := newCloudEnv(t)
	blue, lock := c.mustEnsureLocked(t, "ns1", linodesim.LockCannotDelete)
	_, err := c.env.ExecuteActivity(c.acts.DeleteServer, DeleteServerInput{Tag: c.fleet.Tag(), Server: blue.Server})
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || !app.NonRetryable() || app.Type() != ErrConflict {
		t.Fatalf("DeleteServer of a locked server: %v; want a non-retryable %s", err, ErrConflict)
	}
	if want := fmt.Sprintf("ns1 (Linode %d) has a cannot_delete lock (lock %d), which stops its deletion", blue.Server.ID, lock); !strings.Contains(err.Error(), want) {
		t.Errorf("error %q lacks %q", err, want)
	}
	if c.count("ns1") != 1 {
		t.Error("the locked server is gone")
	}
	// DeleteLoadBalancer, by label and by ID (the old load balancers
	// past a replacement's point of no return, the new ones on its undo),
	// too.
	lb, _ := c.mustEnsureLocked(t, "lb1", linodesim.LockCannotDelete)
	for _, in := range []DeleteLoadBalancerInput{{Fleet: c.fleet, Label: "lb1"}, {Fleet: c.fleet, Label: "lb1", ID: lb.Server.ID}} {
		_, err = c.env.ExecuteActivity(c.acts.DeleteLoadBalancer, in)
		if !errors.As(err, &app) || !app.NonRetryable() || !strings.Contains(err.Error(), "which stops its deletion") {
			t.Errorf("DeleteLoadBalancer of a locked lb1 (ID %d): %v; want a non-retryable error naming the lock", in.ID, err)
		}
	}
	if c.count("lb1") != 1 {
		t.Error("the locked load balancer is gone")
	}
	// DeleteGreen, a rollout's undo, too.
	c.mustEnsureLocked(t, "ns1-next", linodesim.LockCannotDelete)
	_, err = c.env.ExecuteActivity(c.acts.DeleteGreen, DeleteGreenInput{Tag: c.fleet.Tag(), Labels: []string{"ns1-next"}})
	if !errors.As(err, &app) || !app.NonRetryable() || !strings.Contains(err.Error(), "which stops its deletion") {
		t.Errorf("DeleteGreen of a locked green: %v; want a non-retryable error naming the lock", err)
	}
}

// Locks that cannot be read for now (Linode answers 503) are not taken
// for none: Plan fails for a retry, which reads them then.
func TestPlanRetriesLocksThatCannotBeRead(t *testing.T) {
	c := newCloudEnv(t)
	c.mustEnsure(t, "ns1")
	c.sim.InjectFault(linodesim.Fault{Method: "GET", PathPrefix: "/v4beta/locks", Status: http.StatusServiceUnavailable, Count: -1})
	dir := t.TempDir()
	writeFleetDir(t, dir)
	c.readFrom(dir)
	_, err := c.env.ExecuteActivity(c.acts.Plan, PlanInput{Fleet: "t", Revision: "A"})
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || app.NonRetryable() || !strings.Contains(err.Error(), "locks") {
		t.Errorf("Plan, locks unreadable for now: %v; want a failure a retry may pass, about the locks", err)
	}
}
