// Package childenv builds the environment of the programs dnsroll starts
// (ansible-playbook and through it ssh, named, nginx and dnsdist; the lab's
// Temporal server and machines; ssh-keygen, named-compilezone). They get
// what they need to run and nothing else: the worker's own environment
// holds LINODE_TOKEN, webhook secrets and API tokens, which no child needs
// and every child would otherwise inherit and pass on to its own.
package childenv

import (
	"os"
	"strings"
)

// kept are the variables a child inherits from dnsroll, by exact name.
var kept = map[string]bool{
	"PATH": true, "HOME": true, "USER": true, "LOGNAME": true, "SHELL": true,
	"LANG": true, "LANGUAGE": true, "TZ": true, "TMPDIR": true, "TERM": true,
	// ssh-agent, for operators whose Ansible key lives in one.
	"SSH_AUTH_SOCK": true,
	// Proxies, for Ansible behind one.
	"http_proxy": true, "https_proxy": true, "no_proxy": true,
	"HTTP_PROXY": true, "HTTPS_PROXY": true, "NO_PROXY": true,
}

// keptPrefixes are kept by prefix: locale settings, and the operator's own
// Ansible settings (ANSIBLE_CONFIG, ANSIBLE_PRIVATE_KEY_FILE, ...), which
// name files and switches, not secrets.
var keptPrefixes = []string{"LC_", "ANSIBLE_"}

// Minimal is the environment for a child: the kept variables of this
// process's environment, then extra ("NAME=value"), which win.
func Minimal(extra ...string) []string {
	return Filter(os.Environ(), extra...)
}

// Filter is Minimal over env instead of this process's environment.
func Filter(env []string, extra ...string) []string {
	var out []string
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		if Kept(name) {
			out = append(out, kv)
		}
	}
	return append(out, extra...)
}

// Kept reports whether a child inherits the variable name.
func Kept(name string) bool {
	if kept[name] {
		return true
	}
	for _, p := range keptPrefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}
