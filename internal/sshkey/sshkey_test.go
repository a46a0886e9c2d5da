package sshkey

import (
	"encoding/base64"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dnsroll/dnsroll/internal/needlab"
)

const ed = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEqYxgaMlqXm8mnGNYHRN6kcLI8EqCCCvw7FJ10SMoRd ops@example"

// keyOfType is an authorized_keys line whose key data names typ.
func keyOfType(typ string) string {
	blob := binary.BigEndian.AppendUint32(nil, uint32(len(typ)))
	blob = append(append(blob, typ...), 0, 0, 0, 1, 'x')
	return typ + " " + base64.StdEncoding.EncodeToString(blob) + " yubikey"
}

func TestParse(t *testing.T) {
	for _, tt := range []struct {
		name, text string
		want       int
		err        string
	}{
		{"one key", ed, 1, ""},
		{"blank and comment lines are skipped", "\n# ops\n" + ed + "\n\n", 1, ""},
		{"nothing usable", "\n\n", 0, ""},
		{"not a key", "hello world", 0, "line 1: \"hello world\" is not an SSH public key"},
		{"truncated paste", "ssh-ed25519", 0, "not an SSH public key"},
		{"broken key data", "ssh-ed25519 AAAA!!", 0, "not base64"},
		{"type and blob disagree", strings.Replace(ed, "ssh-ed25519", "ssh-rsa", 1), 0, "not a ssh-rsa key"},
		// Linode refuses a security key of type ed25519 at the create,
		// after Plan: refused here, before any VM exists.
		{"a type Linode does not install", keyOfType("sk-ssh-ed25519@openssh.com"), 0, "Linode does not install sk-ssh-ed25519@openssh.com keys"},
		{"the security key type Linode takes", keyOfType("sk-ecdsa-sha2-nistp256@openssh.com"), 1, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			keys, err := Parse(tt.text)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil || len(keys) != tt.want {
				t.Fatalf("keys %q, err %v; want %d keys", keys, err, tt.want)
			}
		})
	}
}

func TestFromPrivateKeyFile(t *testing.T) {
	needlab.Programs(t, "ssh-keygen")
	key := filepath.Join(t.TempDir(), "id")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "t", "-f", key).CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if err := os.Remove(key + ".pub"); err != nil {
		t.Fatal(err)
	}
	pub, err := FromPrivateKeyFile(key)
	if err != nil || !strings.HasPrefix(pub, "ssh-ed25519 ") {
		t.Fatalf("pub %q, err %v", pub, err)
	}
	if _, err := FromPrivateKeyFile(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("a missing key file gave no error")
	}
}

// A key with a passphrase cannot give its public half without it: the
// key.pub beside it, as ssh-keygen leaves it, is read instead, and
// without one the error says so.
func TestFromPrivateKeyFileWithPassphrase(t *testing.T) {
	needlab.Programs(t, "ssh-keygen")
	key := filepath.Join(t.TempDir(), "id")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "secret", "-C", "ops", "-f", key).CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	want, err := os.ReadFile(key + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	pub, err := FromPrivateKeyFile(key)
	if err != nil || pub != strings.TrimSpace(string(want)) {
		t.Errorf("pub %q, err %v; want key.pub's %q", pub, err, want)
	}
	if err := os.Remove(key + ".pub"); err != nil {
		t.Fatal(err)
	}
	if _, err := FromPrivateKeyFile(key); err == nil || !strings.Contains(err.Error(), key+".pub") {
		t.Errorf("no key.pub: err %v, want one naming %s.pub", err, key)
	}
	if err := os.WriteFile(key+".pub", []byte("not a key\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := FromPrivateKeyFile(key); err == nil || !strings.Contains(err.Error(), key+".pub") {
		t.Errorf("a broken key.pub: err %v, want one naming it", err)
	}
}

// Only a passphrase (or no ssh-keygen) sends the worker to key.pub: a
// private key ssh-keygen will not read for another reason, such as
// permissions ssh refuses, fails here, where Ansible's ssh would refuse
// it only once VMs exist.
func TestFromPrivateKeyFileRefusesAnUnreadableKey(t *testing.T) {
	needlab.Programs(t, "ssh-keygen")
	key := filepath.Join(t.TempDir(), "id")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "t", "-f", key).CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if err := os.Chmod(key, 0o644); err != nil {
		t.Fatal(err)
	}
	if pub, err := FromPrivateKeyFile(key); err == nil || !strings.Contains(err.Error(), "bad permissions") {
		t.Errorf("a key ssh refuses for its permissions: pub %q, err %v; want the refusal", pub, err)
	}
}
