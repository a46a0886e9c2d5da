package progress

import (
	"fmt"

	"github.com/dnsroll/dnsroll/activities"
	"github.com/dnsroll/dnsroll/bundle"
)

// ChangeLines says what a rollout changes against the live revision
// (workflows.Status.Changes), a few lines for the approval gate and the
// CLI's status; none when the rollout's plan did not record it.
func ChangeLines(c *activities.Changes) []string {
	if c == nil {
		return nil
	}
	against := "the live revision"
	if c.Live != "" {
		against += " " + bundle.Short(c.Live)
	}
	zones := "zones whose serial differs from blue's: " + listed(&c.ZonesChanged)
	if c.ZonesUnread > 0 {
		zones += fmt.Sprintf(" (%d zones blue did not tell)", c.ZonesUnread)
	}
	lines := []string{"changes against " + against + ":", zones}
	if c.Unknown != "" {
		return append(lines, "zones added or removed, and Ansible files changed: "+c.Unknown)
	}
	return append(lines,
		"zones added: "+listed(c.ZonesAdded)+"; removed: "+listed(c.ZonesRemoved),
		"Ansible files changed: "+listed(c.AnsibleChanged)+"; added: "+listed(c.AnsibleAdded)+"; removed: "+listed(c.AnsibleRemoved))
}

// listed is a count and its names, or none.
func listed(n *activities.Names) string {
	if n == nil || n.Count == 0 {
		return "none"
	}
	return fmt.Sprintf("%d (%s)", n.Count, n)
}
