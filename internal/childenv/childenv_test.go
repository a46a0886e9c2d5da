package childenv

import (
	"slices"
	"testing"
)

// Secrets in dnsroll's environment never reach a child; what a child needs
// to run, and the operator's Ansible settings, do.
func TestFilter(t *testing.T) {
	env := []string{
		"PATH=/usr/bin", "HOME=/root", "LC_ALL=C.UTF-8", "SSH_AUTH_SOCK=/run/agent",
		"ANSIBLE_HOST_KEY_CHECKING=True", "ANSIBLE_PRIVATE_KEY_FILE=/etc/dnsroll/id_ed25519",
		"LINODE_TOKEN=sekret", "DNSROLL_API_TOKEN=sekret", "DNSROLL_WEBHOOK_SECRET=sekret",
		"TEMPORAL_API_KEY=sekret", "AWS_SECRET_ACCESS_KEY=sekret", "PATHOLOGICAL=1",
	}
	got := Filter(env, "ANSIBLE_RETRY_FILES_ENABLED=False")
	want := []string{
		"PATH=/usr/bin", "HOME=/root", "LC_ALL=C.UTF-8", "SSH_AUTH_SOCK=/run/agent",
		"ANSIBLE_HOST_KEY_CHECKING=True", "ANSIBLE_PRIVATE_KEY_FILE=/etc/dnsroll/id_ed25519",
		"ANSIBLE_RETRY_FILES_ENABLED=False",
	}
	if !slices.Equal(got, want) {
		t.Errorf("Filter =\n%q\nwant\n%q", got, want)
	}
}
