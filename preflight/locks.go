package preflight

import (
	"context"
	"fmt"
	"strings"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/config"
)

// Locker is a cloud that can say which servers carry a lock that stops
// their deletion; *linode.Cloud is one.
type Locker interface {
	// DeleteLocks returns the locks on servers. A token that may not
	// read locks gets none, and no error: nothing is known either way.
	DeleteLocks(ctx context.Context, servers []dnsroll.Server) ([]dnsroll.Lock, error)
}

// Locks refuses, before anything is created, a run that would delete a
// server a lock keeps: the servers it replaces (blue at the end of a
// rollout, the old load balancers at the end of a replacement) and
// those an earlier run left (which it deletes on an undo, or replaces).
// Linode would refuse each such delete, after the switch, with both sets
// of servers running. The refusal names each server, its lock and how to
// remove it.
func Locks(ctx context.Context, l Locker, fleet *config.Fleet, deleting []dnsroll.Server) error {
	locks, err := l.DeleteLocks(ctx, deleting)
	if err != nil {
		return fmt.Errorf("checking the servers this run deletes for locks: %w", err)
	}
	var refusals []string
	for _, lock := range locks {
		refusals = append(refusals, fmt.Sprintf("%s: %s (Linode %d) has a %s lock (lock %d), and this run deletes it, which the lock stops: "+
			"if it may go, %s; a new server does not inherit the lock, so lock it again once the run is done, if you want to",
			serverField(fleet, lock.Label), lock.Label, lock.ServerID, lock.Type, lock.ID, lock.Removal()))
	}
	if len(refusals) > 0 {
		return dnsroll.Errorf(dnsroll.EINVALID, "%s", strings.Join(refusals, "; "))
	}
	return nil
}
