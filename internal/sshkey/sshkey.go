// Package sshkey reads the SSH public keys that new VMs are created with.
// A VM created without a usable key accepts no login, so Ansible could
// never provision it: a mistake here must fail loudly, before any VM
// exists.
package sshkey

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"strings"

	"github.com/dnsroll/dnsroll/internal/childenv"
)

// Parse reads authorized_keys lines: blank lines and # comments are
// skipped, every other line must be a public key ("ssh-ed25519 AAAA...
// comment"), and the keys are returned without surrounding space.
func Parse(text string) ([]string, error) {
	var keys []string
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if err := check(line); err != nil {
			return nil, fmt.Errorf("line %d: %w", i+1, err)
		}
		keys = append(keys, line)
	}
	return keys, nil
}

// check verifies that line is "<type> <base64 blob> [comment]" and that
// the blob is a key of that type, as sshd reads it. Options before the
// type (from="...") are not accepted: Linode installs keys verbatim.
func check(line string) error {
	f := strings.Fields(line)
	typed := strings.HasPrefix(f[0], "ssh-") || strings.HasPrefix(f[0], "ecdsa-") || strings.HasPrefix(f[0], "sk-")
	if len(f) < 2 || !typed {
		return fmt.Errorf("%q is not an SSH public key (want \"ssh-ed25519 AAAA... comment\")", abbrev(line))
	}
	blob, err := base64.StdEncoding.DecodeString(f[1])
	if err != nil {
		return fmt.Errorf("%s key: the key data is not base64", f[0])
	}
	if len(blob) < 4 {
		return fmt.Errorf("%s key: the key data is too short", f[0])
	}
	n := binary.BigEndian.Uint32(blob)
	if int(n) > len(blob)-4 || string(blob[4:4+n]) != f[0] {
		return fmt.Errorf("%s key: the key data is not a %s key", f[0], f[0])
	}
	if !linodeInstalls[f[0]] {
		return fmt.Errorf("%s key: Linode does not install %s keys on new Linodes (it takes %s): give a key of one of those types", f[0], f[0], strings.Join(linodeTypes, ", "))
	}
	return nil
}

// linodeTypes are the key types Linode installs on a new Linode (its API
// reference for authorized_keys); any other fails the create.
var linodeTypes = []string{"ssh-ed25519", "ssh-rsa", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521",
	"ssh-dss", "sk-ecdsa-sha2-nistp256@openssh.com"}

var linodeInstalls = func() map[string]bool {
	m := map[string]bool{}
	for _, t := range linodeTypes {
		m[t] = true
	}
	return m
}()

func abbrev(s string) string {
	if len(s) > 24 {
		return s[:24] + "..."
	}
	return s
}

// FromPrivateKeyFile derives the public key of a private key file with
// ssh-keygen, so that the key Ansible logs in with and the key new VMs
// accept cannot disagree. Where that fails for a passphrase, or for want
// of ssh-keygen, it reads the <path>.pub that ssh-keygen writes beside it.
func FromPrivateKeyFile(path string) (string, error) {
	var stderr bytes.Buffer
	cmd := exec.Command("ssh-keygen", "-y", "-P", "", "-f", path)
	cmd.Stderr = &stderr
	cmd.Env = childenv.Minimal()
	out, err := cmd.Output()
	if err == nil {
		keys, err := Parse(string(out))
		if err != nil || len(keys) != 1 {
			return "", fmt.Errorf("derive the public key of %s: ssh-keygen printed no key", path)
		}
		return keys[0], nil
	}
	derr := fmt.Errorf("derive the public key of %s: %v: %s", path, err, strings.TrimSpace(stderr.String()))
	switch {
	case errors.Is(err, exec.ErrNotFound):
		derr = fmt.Errorf("derive the public key of %s: ssh-keygen is not on PATH (Debian: apt-get install openssh-client)", path)
	case !strings.Contains(stderr.String(), "passphrase"):
		// A key ssh will not use (its permissions, a broken file) fails
		// here, not at the first login to a new VM.
		return "", derr
	}
	text, err := os.ReadFile(path + ".pub")
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("%w; and there is no %s.pub beside it to read instead", derr, path)
	}
	if err != nil {
		return "", fmt.Errorf("%w; and %w", derr, err)
	}
	keys, err := Parse(string(text))
	if err != nil {
		return "", fmt.Errorf("%s.pub: %w", path, err)
	}
	if len(keys) != 1 {
		return "", fmt.Errorf("%s.pub: want one public key, found %d", path, len(keys))
	}
	return keys[0], nil
}
