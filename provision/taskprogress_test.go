package provision

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/dnsroll/dnsroll/internal/testfiles"
)

// The callback path dnsroll sets keeps the one Ansible would have used: an
// operator's callbacks (ARA's, say) still load beside dnsroll's.
func TestCallbackPathKeepsTheOperators(t *testing.T) {
	work := t.TempDir()
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("ANSIBLE_CALLBACK_PLUGINS", "")
	t.Setenv("ANSIBLE_CONFIG", "")
	t.Setenv("ANSIBLE_HOME", "")

	if got, want := callbackPath(work), "~/.ansible/plugins/callback:/usr/share/ansible/plugins/callback"; got != want && !etcConfigExists() {
		t.Errorf("no config: %q, want Ansible's default %q", got, want)
	}
	t.Setenv("ANSIBLE_HOME", "/opt/ansible")
	if got, want := callbackPath(work), "/opt/ansible/plugins/callback:/usr/share/ansible/plugins/callback"; got != want && !etcConfigExists() {
		t.Errorf("ANSIBLE_HOME: %q, want %q", got, want)
	}
	testfiles.Write(t, filepath.Join(home, ".ansible.cfg"), "[defaults]\ncallback_plugins = /home/plugins\n")
	if got := callbackPath(work); got != "/home/plugins" {
		t.Errorf("~/.ansible.cfg: %q, want /home/plugins", got)
	}
	// The working directory's file comes first, and one file is read:
	// relative entries are relative to it.
	testfiles.Write(t, filepath.Join(work, "ansible.cfg"), "# dnsroll's\n[ssh_connection]\ncallback_plugins = no\n[defaults]\nforks = 20\ncallback_plugins = plugins/callback:/usr/lib/ara/plugins/callback\n")
	if got, want := callbackPath(work), filepath.Join(work, "plugins/callback")+":/usr/lib/ara/plugins/callback"; got != want {
		t.Errorf("./ansible.cfg: %q, want %q", got, want)
	}
	testfiles.Write(t, filepath.Join(work, "ansible.cfg"), "[defaults]\nforks = 20\n")
	if got := callbackPath(work); got == "/home/plugins" {
		t.Errorf("./ansible.cfg without callback_plugins: %q, read from ~/.ansible.cfg, which Ansible does not read then", got)
	}
	cfg := filepath.Join(t.TempDir(), "mine.cfg")
	testfiles.Write(t, cfg, "[defaults]\ncallback_plugins: /mine\n")
	t.Setenv("ANSIBLE_CONFIG", cfg)
	if got := callbackPath(work); got != "/mine" {
		t.Errorf("ANSIBLE_CONFIG: %q, want /mine", got)
	}
	t.Setenv("ANSIBLE_CALLBACK_PLUGINS", "/from/env")
	if got := callbackPath(work); got != "/from/env" {
		t.Errorf("ANSIBLE_CALLBACK_PLUGINS: %q, want /from/env", got)
	}
}

func etcConfigExists() bool {
	_, err := os.Stat("/etc/ansible/ansible.cfg")
	return err == nil
}
