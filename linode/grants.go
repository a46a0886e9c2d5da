package linode

import (
	"context"

	"github.com/linode/linodego"

	"github.com/dnsroll/dnsroll"
)

// Denied says what of a rollout's work the token's user may not do:
// create Linodes (a restricted user without the add_linodes grant), or
// change and delete those of servers it may only read (a read_only
// grant). An unrestricted user may do all of it. A lookup the token may
// not make proves nothing, and neither does a server the grants do not
// list: Denied errs towards letting the rollout try.
func (c *Cloud) Denied(ctx context.Context, servers []dnsroll.Server) (dnsroll.Denied, error) {
	p, err := c.client.GetProfile(ctx)
	if ok, err := lookedUp(ctx, err, "the token's profile"); !ok || !p.Restricted {
		return dnsroll.Denied{}, err
	}
	g, err := c.client.GrantsList(ctx)
	if ok, err := lookedUp(ctx, err, "the token's grants"); !ok {
		return dnsroll.Denied{}, err
	}
	d := dnsroll.Denied{User: p.Username, Create: !g.Global.AddLinodes}
	readOnly := map[int]bool{}
	for _, e := range g.Linode {
		readOnly[e.ID] = e.Permissions == linodego.AccessLevelReadOnly
	}
	for _, s := range servers {
		if readOnly[s.ID] {
			d.ReadOnly = append(d.ReadOnly, s)
		}
	}
	return d, nil
}
