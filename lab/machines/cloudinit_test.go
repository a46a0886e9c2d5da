package machines

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// newHostKey makes an ed25519 key pair for a cloud-config to carry.
func newHostKey(t *testing.T) (private, public string) {
	t.Helper()
	f := filepath.Join(t.TempDir(), "k")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "given", "-f", f).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v: %s", err, out)
	}
	priv, _ := os.ReadFile(f)
	pub, _ := os.ReadFile(f + ".pub")
	return string(priv), strings.TrimSpace(string(pub))
}

// imageRoot is a machine root whose image came with an RSA host key.
func imageRoot(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	dir := filepath.Join(root, "etc", "ssh")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for f, text := range map[string]string{"ssh_host_rsa_key": "IMAGE-PRIVATE\n", "ssh_host_rsa_key.pub": "ssh-rsa IMAGE\n", "sshd_config": "# kept\n"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// sshFiles are the files in root's /etc/ssh with their modes.
func sshFiles(t *testing.T, root string) map[string]os.FileMode {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(root, "etc", "ssh"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]os.FileMode{}
	for _, e := range ents {
		fi, _ := e.Info()
		out[e.Name()] = fi.Mode().Perm()
	}
	return out
}

func indent(s string) string {
	return "    " + strings.ReplaceAll(strings.TrimSpace(s), "\n", "\n    ")
}

// Each cloud-config is what cloud-init's cc_ssh module would make of it
// on a first boot: host keys deleted unless told not to, given keys
// written with cloud-init's modes (and nothing generated besides, even
// with ssh_genkeytypes), or the missing ones of ssh_genkeytypes made.
func TestCloudInitHostKeys(t *testing.T) {
	if _, err := exec.LookPath("ssh-keygen"); err != nil {
		t.Skip("needs ssh-keygen")
	}
	priv, pub := newHostKey(t)
	given := "ssh_keys:\n  ed25519_private: |\n" + indent(priv) + "\n  ed25519_public: " + pub + "\n"
	all := []string{"ssh_host_rsa_key", "ssh_host_rsa_key.pub", "ssh_host_ecdsa_key", "ssh_host_ecdsa_key.pub", "ssh_host_ed25519_key", "ssh_host_ed25519_key.pub"}
	cases := []struct {
		name, userData string
		want           []string // host key files afterwards, besides sshd_config
		imageKeyKept   bool
	}{
		{"given key, genkeytypes empty", "#cloud-config\n" + given + "ssh_genkeytypes: []\n", []string{"ssh_host_ed25519_key", "ssh_host_ed25519_key.pub"}, false},
		{"given key alone generates nothing", "#cloud-config\n" + given, []string{"ssh_host_ed25519_key", "ssh_host_ed25519_key.pub"}, false},
		{"given key, image's kept", "#cloud-config\nssh_deletekeys: false\n" + given,
			[]string{"ssh_host_ed25519_key", "ssh_host_ed25519_key.pub", "ssh_host_rsa_key", "ssh_host_rsa_key.pub"}, true},
		{"private key alone, public derived", "#cloud-config\nssh_keys:\n  ed25519_private: |\n" + indent(priv) + "\n",
			[]string{"ssh_host_ed25519_key", "ssh_host_ed25519_key.pub"}, false},
		{"generate ed25519 only", "#cloud-config\nssh_genkeytypes: [ed25519]\n", []string{"ssh_host_ed25519_key", "ssh_host_ed25519_key.pub"}, false},
		{"generate none", "#cloud-config\nssh_genkeytypes: []\n", nil, false},
		{"generate the missing, keep the image's", "#cloud-config\nssh_deletekeys: false\n", all, true},
		{"defaults", "#cloud-config\n", all, false},
		{"a script is not simulated: defaults", "#!/bin/sh\necho hi\n", all, false},
		{"malformed: skipped, defaults", "#cloud-config\nssh_genkeytypes: [ed25519\n", all, false},
		{"unknown key names skipped", "#cloud-config\nssh_genkeytypes: [../../../tmp/x]\nssh_keys:\n  dsa_private: x\n  ed25519_certificate: y\n", nil, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			root := imageRoot(t)
			var logged []string
			warn := func(f string, a ...any) { logged = append(logged, fmt.Sprintf(f, a...)) }
			if err := cloudInitHostKeys(root, []byte(tc.userData), warn); err != nil {
				t.Fatal(err)
			}
			files := sshFiles(t, root)
			if files["sshd_config"] == 0 {
				t.Error("sshd_config deleted with the host keys")
			}
			delete(files, "sshd_config")
			var names []string
			for f, mode := range files {
				names = append(names, f)
				want := os.FileMode(0o600)
				if strings.HasSuffix(f, ".pub") {
					want = 0o644
				}
				if imageKey := strings.HasPrefix(f, "ssh_host_rsa"); mode != want && !(imageKey && tc.imageKeyKept) {
					t.Errorf("%s has mode %o, want %o", f, mode, want)
				}
			}
			slices.Sort(names)
			want := slices.Sorted(slices.Values(tc.want))
			if !slices.Equal(names, want) {
				t.Errorf("host key files %v, want %v", names, want)
			}
			rsa, _ := os.ReadFile(filepath.Join(root, "etc/ssh/ssh_host_rsa_key"))
			if kept := string(rsa) == "IMAGE-PRIVATE\n"; kept != tc.imageKeyKept {
				t.Errorf("image's RSA key kept: %v, want %v", kept, tc.imageKeyKept)
			}
			if strings.Contains(tc.userData, "ssh_keys") && slices.Contains(tc.want, "ssh_host_ed25519_key") {
				gotPriv, _ := os.ReadFile(filepath.Join(root, "etc/ssh/ssh_host_ed25519_key"))
				gotPub, _ := os.ReadFile(filepath.Join(root, "etc/ssh/ssh_host_ed25519_key.pub"))
				if strings.TrimSpace(string(gotPriv)) != strings.TrimSpace(priv) {
					t.Error("the private host key is not the one given")
				}
				if f := strings.Fields(string(gotPub)); len(f) < 2 || !strings.HasPrefix(pub, f[0]+" "+f[1]) {
					t.Errorf("public host key %q, want the given key %q", gotPub, pub)
				}
			}
			// cloud-init warns of what it skips, and of nothing else.
			if skips := strings.Contains(tc.name, "skipped"); skips != (len(logged) > 0) {
				t.Errorf("logged %q", logged)
			}
		})
	}
}

// A cloud-config that does not fit is logged by where, never by what: a
// value in the wrong place may be a private key.
func TestCloudInitNeverLogsKeys(t *testing.T) {
	var logged []string
	warn := func(f string, a ...any) { logged = append(logged, fmt.Sprintf(f, a...)) }
	for _, doc := range []string{
		"#cloud-config\nssh_keys: \"SECRET key material\"\n",
		"#cloud-config\nssh_keys:\n  ed25519_private: [SECRET]\n",
	} {
		logged = nil
		cfg := parseCloudConfig([]byte(doc), warn)
		if cfg.Keys != nil || len(logged) != 1 {
			t.Errorf("%q: parsed %+v, logged %q; want skipped and logged", doc, cfg, logged)
		}
		if strings.Contains(strings.Join(logged, ""), "SECRET") || !strings.Contains(strings.Join(logged, ""), "line ") {
			t.Errorf("logged %q, want the line and no key material", logged)
		}
	}
}

// A machine booted with a cloud-config that gives its ed25519 host key
// offers that key and no other, as a Linode whose cloud-init ran cc_ssh
// on it does: a client that recorded the key before the boot can check
// the first connection.
func TestMachineOffersTheHostKeyOfItsUserData(t *testing.T) {
	h := openHost(t)
	priv, pub := newHostKey(t)
	addr := netip.MustParseAddr("10.231.0.97")
	userData := "#cloud-config\nssh_keys:\n  ed25519_private: |\n" + indent(priv) + "\n  ed25519_public: " + pub + "\n"
	bootWaitSSH(t, h, Spec{Name: "cloudinit", Addr: addr, UserData: []byte(userData)})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ssh-keyscan", "-t", "rsa,ecdsa,ed25519", addr.String()).Output()
	if err != nil {
		t.Fatalf("ssh-keyscan: %v", err)
	}
	var offered []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if f := strings.Fields(l); len(f) == 3 && !strings.HasPrefix(l, "#") {
			offered = append(offered, f[1]+" "+f[2])
		}
	}
	f := strings.Fields(pub)
	if want := f[0] + " " + f[1]; !slices.Equal(offered, []string{want}) {
		t.Errorf("sshd offers %q, want only the user data's %q", offered, want)
	}
}
