package linode

import (
	"cmp"
	"context"

	"github.com/linode/linodego"

	"github.com/dnsroll/dnsroll"
)

// Denied says what of a rollout's work the token's user may not do:
// create Linodes (a restricted user without the add_linodes grant), tag
// them (one without read_write account_access), or change and delete
// those of servers it may only read (a read_only grant). An unrestricted user may do all of it. Denied errs towards
// letting the rollout try: a lookup the token may not make proves
// nothing, and neither do grants that leave out a server the user sees
// (a restricted user sees only what it is granted, so such grants do not
// describe this user's access: an account on Linode's role-based Identity
// and Access, say).
func (c *Cloud) Denied(ctx context.Context, servers []dnsroll.Server) (dnsroll.Denied, error) {
	p, err := c.client.GetProfile(ctx)
	if ok, err := lookedUp(ctx, err, "the token's profile"); !ok || !p.Restricted {
		return dnsroll.Denied{}, err
	}
	g, err := c.client.GrantsList(ctx)
	if ok, err := lookedUp(ctx, err, "the token's grants"); !ok {
		return dnsroll.Denied{}, err
	}
	granted := map[int]linodego.GrantPermissionLevel{}
	for _, e := range g.Linode {
		granted[e.ID] = e.Permissions
	}
	var readOnly []dnsroll.Server
	for _, s := range servers {
		switch granted[s.ID] {
		case linodego.AccessLevelReadOnly:
			readOnly = append(readOnly, s)
		case linodego.AccessLevelReadWrite:
		default:
			return dnsroll.Denied{}, nil
		}
	}
	// Linode lets a restricted user tag a Linode only with read-write
	// account access (Cloud Manager's "Billing Access").
	tag := g.Global.AccountAccess == nil || *g.Global.AccountAccess != linodego.AccessLevelReadWrite
	return dnsroll.Denied{User: cmp.Or(p.Username, "the token's user"), Create: !g.Global.AddLinodes, Tag: tag, ReadOnly: readOnly}, nil
}
