package preflight

import (
	"context"
	"fmt"
	"strings"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/config"
)

// Holder is a cloud that can say which of its servers hold labels;
// *linode.Cloud is one.
type Holder interface {
	// Holding returns the servers whose label is one of labels (letter
	// case aside), whatever their tags: labels are unique in the account.
	Holding(ctx context.Context, labels []string) ([]dnsroll.Server, error)
}

// Labels refuses a fleet one of whose nameservers' labels, or its -next,
// a server without the fleet's tag holds: made by hand, or another
// fleet's. Linode keeps labels unique in the account, so green would be
// created under its -next and could not take its label at the rename,
// after blue is deleted (or, on a fleet's first rollout, after the
// switch): the rollout would fail past its point of no return. The
// rollout's Plan step and `dnsroll fleet validate --live` refuse it.
func Labels(ctx context.Context, h Holder, fleet *config.Fleet) error {
	var labels []string
	for _, ns := range fleet.Nameservers {
		labels = append(labels, ns.Label, dnsroll.NextLabel(ns.Label))
	}
	holders, err := h.Holding(ctx, labels)
	if err != nil {
		return err
	}
	var errs []string
	for i, ns := range fleet.Nameservers {
		for _, s := range holders {
			exact := s.Label == ns.Label || s.Label == dnsroll.NextLabel(ns.Label)
			switch {
			case !strings.EqualFold(s.Label, ns.Label) && !strings.EqualFold(s.Label, dnsroll.NextLabel(ns.Label)):
			case !s.HasTag(fleet.Tag()):
				errs = append(errs, fmt.Sprintf("nameservers[%d].label: %s is the label of Linode %d (%s), not this fleet's (tag %s): "+
					"labels are unique in a Linode account, so green could not take it; rename or delete that Linode, or give this nameserver another label",
					i, s.Label, s.ID, TagsOf(s), fleet.Tag()))
			case !exact:
				// The fleet's own, but neither blue nor green to dnsroll,
				// which matches labels exactly: Linode's ignore case.
				errs = append(errs, fmt.Sprintf("nameservers[%d].label: Linode %d of this fleet is labelled %s, which Linode takes for %s (its labels ignore letter case): "+
					"rename or delete it", i, s.ID, s.Label, strings.ToLower(s.Label)))
			}
		}
	}
	if len(errs) > 0 {
		return dnsroll.Errorf(dnsroll.EINVALID, "%s", strings.Join(errs, "; "))
	}
	return nil
}

// TagsOf lists s's tags for a message about it.
func TagsOf(s dnsroll.Server) string {
	if len(s.Tags) == 0 {
		return "no tags"
	}
	return "tags " + strings.Join(s.Tags, ", ")
}
