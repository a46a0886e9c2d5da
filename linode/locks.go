package linode

import (
	"context"
	"net/http"
	"slices"
	"strings"

	"github.com/linode/linodego"

	"github.com/dnsroll/dnsroll"
)

// DeleteLocks returns the resource locks on servers: each stops its
// server's deletion until someone removes it. Linode serves locks on its
// v4beta API, and to an unrestricted user alone; a lookup the token may
// not make (401, 403), or an API without locks (404), proves nothing, and
// DeleteLocks then returns none. Other errors are returned, retryable as
// any.
func (c *Cloud) DeleteLocks(ctx context.Context, servers []dnsroll.Server) ([]dnsroll.Lock, error) {
	if len(servers) == 0 {
		return nil, nil
	}
	all, err := c.beta.ListLocks(ctx, &linodego.ListOptions{PageSize: 500})
	if ok, err := lookedUp(ctx, err, "the account's resource locks"); !ok {
		return nil, err
	}
	var out []dnsroll.Lock
	for _, s := range servers {
		for _, l := range all {
			if l.Entity.Type == linodego.EntityLinode && l.Entity.ID == s.ID {
				out = append(out, dnsroll.Lock{ID: l.ID, Type: string(l.LockType), ServerID: s.ID, Label: s.Label})
			}
		}
	}
	return out, nil
}

// lockedDelete is why Linode refused to delete instance id, refusal, when
// a resource lock did it: an error of code ECONFLICT, which no retry
// passes until someone removes the lock. The lock is looked up; where the
// token may not read locks, a refusal whose reason names a lock is taken
// for one. Any other refusal is nil.
func (c *Cloud) lockedDelete(ctx context.Context, id int, refusal error) error {
	all, err := c.beta.ListLocks(ctx, &linodego.ListOptions{PageSize: 500})
	if err == nil {
		i := slices.IndexFunc(all, func(l linodego.Lock) bool { return l.Entity.Type == linodego.EntityLinode && l.Entity.ID == id })
		if i < 0 {
			return nil
		}
		l := dnsroll.Lock{ID: all[i].ID, Type: string(all[i].LockType), ServerID: id, Label: all[i].Entity.Label}
		return dnsroll.Errorf(dnsroll.ECONFLICT, "linode: delete %d refused: %s (Linode %d) has a %s lock (lock %d), which stops its deletion: %s",
			id, l.Label, id, l.Type, l.ID, l.Removal())
	}
	switch httpStatus(err) {
	case http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound:
	default:
		return nil // the refusal is reported as it is
	}
	msg := withoutBody(refusal).Error()
	if !strings.Contains(strings.ToLower(msg), "lock") {
		return nil
	}
	return dnsroll.Errorf(dnsroll.ECONFLICT, "linode: delete %d refused: %s: a resource lock stops its deletion, and this token may not read locks (only an unrestricted user's may): "+
		"an unrestricted user of the account finds it with `linode-cli resource-locks list` and removes it with `linode-cli resource-locks delete <lock id>`, or in Cloud Manager, on the Linode's menu",
		id, msg)
}

// deleteRefusal says whether status, a delete's answer, refuses the
// delete for a reason of the instance's own, as a lock does: not a 404
// (gone already), nor the answers a retry passes (408, 429).
func deleteRefusal(status int) bool {
	return status >= 400 && status < 500 && status != http.StatusNotFound && status != http.StatusRequestTimeout && status != http.StatusTooManyRequests
}
