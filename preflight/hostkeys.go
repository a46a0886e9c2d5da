package preflight

import (
	"context"
	"fmt"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/config"
)

// UserDataCloud is a cloud that can say why a new server could not be
// given cloud-init user data; linode.Cloud is one.
type UserDataCloud interface {
	WithoutUserData(ctx context.Context, spec dnsroll.ServerSpec) (string, error)
}

// UngivenKeys says of each nameserver whose green cannot be given its SSH
// host key at creation, where the fleet asks for given keys
// (ansible.host_keys), why not: its key is trusted at first contact
// instead. It says nothing of a fleet that asks for first use, or runs
// Ansible locally (the process lab).
func UngivenKeys(ctx context.Context, c UserDataCloud, f *config.Fleet) ([]string, error) {
	if f.Ansible.Connection != "ssh" || f.Ansible.HostKeys != config.HostKeysGiven {
		return nil, nil
	}
	var out []string
	for _, ns := range f.Nameservers {
		why, err := c.WithoutUserData(ctx, dnsroll.ServerSpec{Label: ns.Label, Region: ns.Region, Type: ns.Type, Image: ns.Image})
		if err != nil {
			return nil, err
		}
		if why != "" {
			out = append(out, fmt.Sprintf("%s cannot be given its SSH host key (%s): its key is trusted at first contact, as with ansible.host_keys: first-use (and refused under ANSIBLE_HOST_KEY_CHECKING=True)", ns.Label+dnsroll.NextSuffix, why))
		}
	}
	return out, nil
}
