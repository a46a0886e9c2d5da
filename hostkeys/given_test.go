package hostkeys

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
	"gopkg.in/yaml.v3"
)

// machineGiven is the host key that cloud-init would install from user
// data that Give returned: it reads the document as cloud-init's ssh module
// does, and checks what else the document asks of the machine.
func machineGiven(t *testing.T, userData []byte) ssh.Signer {
	t.Helper()
	if !bytes.HasPrefix(userData, []byte("#cloud-config\n")) {
		t.Fatalf("user data does not start with #cloud-config: cloud-init would not read it as one:\n%s", userData)
	}
	var doc struct {
		DeleteKeys  *bool             `yaml:"ssh_deletekeys"`
		GenKeyTypes *[]string         `yaml:"ssh_genkeytypes"`
		Keys        map[string]string `yaml:"ssh_keys"`
	}
	if err := yaml.Unmarshal(userData, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.DeleteKeys == nil || !*doc.DeleteKeys || doc.GenKeyTypes == nil || len(*doc.GenKeyTypes) != 0 {
		t.Fatalf("ssh_deletekeys %v, ssh_genkeytypes %v: want true and [], so that the given key is the machine's only one", doc.DeleteKeys, doc.GenKeyTypes)
	}
	priv, err := ssh.ParsePrivateKey([]byte(doc.Keys["ed25519_private"]))
	if err != nil {
		t.Fatalf("ed25519_private: %v", err)
	}
	pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(doc.Keys["ed25519_public"]))
	if err != nil || !bytes.Equal(pub.Marshal(), priv.PublicKey().Marshal()) {
		t.Fatalf("ed25519_public %q is not the private key's public half (%v)", doc.Keys["ed25519_public"], err)
	}
	return priv
}

// wantGiven fails the test unless fleet's name has n given keys on record.
func wantGiven(t *testing.T, k *Keeper, fleet, name string, n int) {
	t.Helper()
	if left, err := k.Store.Entries(givenHost(fleet, name)); err != nil || len(left) != n {
		t.Fatalf("keys given to %s of %s = %+v (%v), want %d", name, fleet, left, err, n)
	}
}

func give(t *testing.T, k *Keeper, fleet, name string) ssh.Signer {
	t.Helper()
	ud, err := k.Give(fleet, name)
	if err != nil {
		t.Fatal(err)
	}
	return machineGiven(t, ud)
}

// A server that was given its key is trusted without first use: even strict
// mode, which records nothing, accepts it, and the key is pinned after.
func TestGivenKeyNeedsNoTrustOnFirstUse(t *testing.T) {
	for _, mode := range []Mode{TOFU, Strict} {
		t.Run(string(mode), func(t *testing.T) {
			s := startSSHD(t)
			k := newKeeper(t, mode, s)
			key := give(t, k, "prod", "ns1-next")
			s.rekey(key)
			if err := k.TrustGiven(ctx(t), "prod", "ns1-next", "127.0.0.1", "linode-7"); err != nil {
				t.Fatalf("TrustGiven: %v", err)
			}
			es := entries(t, k, s)
			if len(es) != 1 || !hasKey(es, key.PublicKey()) || es[0].Comment != "dnsroll:linode-7" {
				t.Fatalf("entries = %+v, want only the given key, tagged with its instance", es)
			}
			wantGiven(t, k, "prod", "ns1-next", 0)
			// ssh reads the same file: the key is pinned for Ansible too.
			if err := k.Verify(ctx(t), "ns1-next", "127.0.0.1"); err != nil {
				t.Fatalf("Verify after TrustGiven: %v", err)
			}
			// A retry of the step checks the recorded key...
			if err := k.TrustGiven(ctx(t), "prod", "ns1-next", "127.0.0.1", "linode-7"); err != nil {
				t.Fatalf("retry: %v", err)
			}
			// ...and refuses a changed one.
			s.rekey(ed25519Key(t))
			if err := k.TrustGiven(ctx(t), "prod", "ns1-next", "127.0.0.1", "linode-7"); !isChanged(err) {
				t.Fatalf("retry with a changed key: err = %v, want a changed-key *Error", err)
			}
		})
	}
}

// A machine offering a key other than the one given is refused, and none of
// its keys is recorded: it is not the server dnsroll created, or its image
// ignored the user data.
func TestGivenKeyRefusesAnyOther(t *testing.T) {
	impostor := ed25519Key(t)
	s := startSSHD(t, impostor, ecdsaKey(t))
	k := newKeeper(t, TOFU, s)
	give(t, k, "prod", "ns1-next")
	err := k.TrustGiven(ctx(t), "prod", "ns1-next", "127.0.0.1", "linode-7")
	var he *Error
	if !errors.As(err, &he) || !he.Given || he.Offered != ssh.FingerprintSHA256(impostor.PublicKey()) {
		t.Fatalf("err = %v, want a *Error naming the offered key as not given", err)
	}
	for _, want := range []string{"ns1-next", "not the one dnsroll gave it", "host_keys: first-use", k.Store.Path()} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if es := entries(t, k, s); len(es) != 0 {
		t.Fatalf("entries = %+v, want none for a machine that offers another key", es)
	}
	// The given key stays on record: the operator may find the machine's
	// cloud-init late, and a retry then succeeds.
	wantGiven(t, k, "prod", "ns1-next", 1)
}

// A create retried after a lost response gave a second key, but the
// machine booted with the first: both are accepted until first contact.
func TestGivenKeyOfAnEarlierAttempt(t *testing.T) {
	s := startSSHD(t)
	k := newKeeper(t, Strict, s)
	first := give(t, k, "prod", "ns2-next")
	give(t, k, "prod", "ns2-next")
	give(t, k, "prod", "ns1-next") // another server's key is not this one's
	s.rekey(first)
	if err := k.TrustGiven(ctx(t), "prod", "ns2-next", "127.0.0.1", "linode-8"); err != nil {
		t.Fatalf("the first attempt's key: %v", err)
	}
	s2 := startSSHD(t, first)
	k.Port = s2.port
	var he *Error
	if err := k.TrustGiven(ctx(t), "prod", "ns1-next", "127.0.0.1", "linode-9"); !errors.As(err, &he) || !he.Given {
		t.Fatalf("ns1-next offering ns2-next's key: err = %v, want it refused", err)
	}
}

// A server created with user data by a worker with another file has no key
// on record here: it is trusted on first use, as before, or refused in
// strict mode.
func TestGivenElsewhereFallsBackToFirstUse(t *testing.T) {
	key := ed25519Key(t)
	s := startSSHD(t, key)
	k := newKeeper(t, TOFU, s)
	if err := k.TrustGiven(ctx(t), "prod", "ns1-next", "127.0.0.1", "linode-7"); err != nil {
		t.Fatalf("TOFU fallback: %v", err)
	}
	if es := entries(t, k, s); len(es) != 1 || !hasKey(es, key.PublicKey()) {
		t.Fatalf("entries = %+v, want the key recorded at first contact", es)
	}
	strict := newKeeper(t, Strict, s)
	var he *Error
	if err := strict.TrustGiven(ctx(t), "prod", "ns1-next", "127.0.0.1", "linode-7"); !errors.As(err, &he) || he.Changed || he.Given || he.New {
		t.Fatalf("strict fallback: err = %v, want an unknown-key *Error that does not say the server got no key", err)
	}
}

// With checking off there is nothing to give: no user data, no file.
func TestGiveWithCheckingOff(t *testing.T) {
	k, err := New(Off, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if ud, err := k.Give("prod", "ns1-next"); ud != nil || err != nil {
		t.Fatalf("Give = %q, %v; want nothing", ud, err)
	}
}

// The given keys never stand where ssh would take them for a host: their
// name is under .invalid, and the file stays one ssh reads.
func TestGivenKeysAreNoHostOfSSH(t *testing.T) {
	s := startSSHD(t)
	k := newKeeper(t, TOFU, s)
	give(t, k, "prod", "ns1-next")
	data, err := os.ReadFile(k.Store.Path())
	if err != nil {
		t.Fatal(err)
	}
	line := strings.TrimSpace(string(data))
	if !strings.HasPrefix(line, "ns1-next.prod.given.dnsroll.invalid ssh-ed25519 ") || !strings.HasSuffix(line, " dnsroll-given") {
		t.Fatalf("file = %q, want one line for ns1-next.prod.given.dnsroll.invalid", data)
	}
	if _, _, _, _, _, err := ssh.ParseKnownHosts(data); err != nil {
		t.Fatalf("ssh cannot read the file: %v", err)
	}
}

// A server deleted before its first contact (its rollout failed) takes the
// keys it was given with it: none waits in the file for a later server of
// that name.
func TestForgetDropsGivenKeys(t *testing.T) {
	s := startSSHD(t)
	k := newKeeper(t, TOFU, s)
	give(t, k, "prod", "ns1-next")
	give(t, k, "prod", "ns2-next")
	if err := k.Forget("127.0.0.1", "linode-3", "prod", "ns1-next"); err != nil {
		t.Fatal(err)
	}
	wantGiven(t, k, "prod", "ns1-next", 0)
	wantGiven(t, k, "prod", "ns2-next", 1)
	// A server deleted before it had an address still takes them.
	if err := k.Forget("", "linode-4", "prod", "ns2-next"); err != nil {
		t.Fatal(err)
	}
	wantGiven(t, k, "prod", "ns2-next", 0)
}

// The private half of a given key is in the user data alone: neither the
// log nor the known_hosts file holds any line of it.
func TestGiveKeepsThePrivateKeyOutOfLogAndFile(t *testing.T) {
	s := startSSHD(t)
	k := newKeeper(t, TOFU, s)
	var log bytes.Buffer
	k.Log = slog.New(slog.NewTextHandler(&log, nil))
	ud, err := k.Give("prod", "ns1-next")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Keys map[string]string `yaml:"ssh_keys"`
	}
	if err := yaml.Unmarshal(ud, &doc); err != nil {
		t.Fatal(err)
	}
	raw, err := ssh.ParseRawPrivateKey([]byte(doc.Keys["ed25519_private"]))
	priv, ok := raw.(*ed25519.PrivateKey)
	if err != nil || !ok || log.Len() == 0 {
		t.Fatalf("no ed25519 private key in the user data (%v), or nothing logged (%q): the test checks nothing", err, log.String())
	}
	file := readFile(t, k.Store.Path())
	// The seed is the secret; look for it raw, in hex, as fmt and slog
	// print bytes, and in base64 at each of the three alignments it may
	// have inside a longer encoding.
	seed := priv.Seed()
	secrets := []string{string(seed), hex.EncodeToString(seed), strings.Trim(fmt.Sprint(seed[:8]), "[]"), strconv.Quote(string(seed))[1:9]}
	for pad := range 3 {
		enc := base64.StdEncoding.EncodeToString(append(make([]byte, pad), seed...))
		secrets = append(secrets, enc[4:len(enc)-4])
	}
	for _, secret := range secrets {
		if strings.Contains(log.String(), secret) || strings.Contains(file, secret) {
			t.Fatalf("the private key is in the log or the file:\nlog: %s\nfile: %s", log.String(), file)
		}
	}
	if strings.Contains(log.String(), "PRIVATE") || strings.Contains(file, "PRIVATE") {
		t.Fatalf("a private key is in the log or the file:\nlog: %s\nfile: %s", log.String(), file)
	}
}

// Linode reuses addresses: the key an earlier instance at the address left
// in the file goes when the new server offers its given key, or ssh would
// still accept the old machine's key there.
func TestGivenKeyReplacesAReusedAddress(t *testing.T) {
	s := startSSHD(t, ed25519Key(t))
	k := newKeeper(t, TOFU, s)
	if err := k.TrustNew(ctx(t), "prod", "ns1-next", "127.0.0.1", "linode-1"); err != nil {
		t.Fatal(err)
	}
	key := give(t, k, "prod", "ns1-next")
	s.rekey(key)
	if err := k.TrustGiven(ctx(t), "prod", "ns1-next", "127.0.0.1", "linode-2"); err != nil {
		t.Fatal(err)
	}
	if es := entries(t, k, s); len(es) != 1 || !hasKey(es, key.PublicKey()) || es[0].Comment != "dnsroll:linode-2" {
		t.Fatalf("entries = %+v, want only the given key of linode-2", es)
	}
}

// A given key that the file lists as @revoked is refused, not recorded.
func TestGivenKeyThatIsRevoked(t *testing.T) {
	s := startSSHD(t)
	k := newKeeper(t, TOFU, s)
	key := give(t, k, "prod", "ns1-next")
	s.rekey(key)
	revoked := "@revoked " + s.host() + " " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key.PublicKey()))) + "\n"
	appendFile(t, k.Store.Path(), revoked)
	var he *Error
	if err := k.TrustGiven(ctx(t), "prod", "ns1-next", "127.0.0.1", "linode-2"); !errors.As(err, &he) || !he.Revoked {
		t.Fatalf("err = %v, want a *Error for a revoked key", err)
	}
	if es := entries(t, k, s); len(es) != 0 {
		t.Fatalf("entries = %+v, want the revoked key not recorded", es)
	}
}

// A server that Linode created without the user data (a region without
// Metadata) is met on first use: the key given to its label goes then, or
// every rollout there would leave one more line in the file for good (the
// label it is deleted under later is the promoted one, not this one).
func TestFirstUseDropsTheKeysGivenToTheLabel(t *testing.T) {
	for _, mode := range []Mode{TOFU, Strict} {
		t.Run(string(mode), func(t *testing.T) {
			key := ed25519Key(t)
			s := startSSHD(t, key)
			k := newKeeper(t, mode, s)
			give(t, k, "prod", "ns1-next")
			give(t, k, "prod", "ns2-next")
			if mode == Strict {
				if _, err := k.Store.Add(s.host(), []ssh.PublicKey{key.PublicKey()}, ""); err != nil {
					t.Fatal(err)
				}
			}
			if err := k.TrustNew(ctx(t), "prod", "ns1-next", "127.0.0.1", "linode-7"); err != nil {
				t.Fatal(err)
			}
			wantGiven(t, k, "prod", "ns1-next", 0)
			wantGiven(t, k, "prod", "ns2-next", 1)
		})
	}
}

// A retry of a first contact whose key was recorded, but whose given keys
// were not yet dropped (the worker stopped between), drops them.
func TestGivenKeyRetryDropsTheGivenKeys(t *testing.T) {
	s := startSSHD(t)
	k := newKeeper(t, TOFU, s)
	key := give(t, k, "prod", "ns1-next")
	s.rekey(key)
	if _, err := k.Store.Replace(s.host(), []ssh.PublicKey{key.PublicKey()}, tagPrefix+"linode-7"); err != nil {
		t.Fatal(err)
	}
	if err := k.TrustGiven(ctx(t), "prod", "ns1-next", "127.0.0.1", "linode-7"); err != nil {
		t.Fatal(err)
	}
	wantGiven(t, k, "prod", "ns1-next", 0)
}

// A retry of a first contact keeps the keys given by label alone that the
// server did not offer: another fleet's server of that label, created
// before the upgrade and not yet met, still needs its own, or it would be
// trusted on first use (or refused, in strict mode).
func TestGivenKeyRetryKeepsAnotherServersLegacyKey(t *testing.T) {
	s, k, mine, other := givenByLabelAlone(t, TOFU)
	// The first attempt recorded the key, then the worker stopped.
	if _, err := k.Store.Replace(s.host(), []ssh.PublicKey{mine.PublicKey()}, tagPrefix+"linode-7"); err != nil {
		t.Fatal(err)
	}
	if err := k.TrustGiven(ctx(t), "prod", "ns1-next", "127.0.0.1", "linode-7"); err != nil {
		t.Fatal(err)
	}
	wantByLabelAlone(t, k, other)
}

// Strict checking refuses a new server that was not given its key, and
// says how it could have been: given keys need no trust on first use.
func TestStrictRefusalOfANewServerNamesGivenKeys(t *testing.T) {
	s := startSSHD(t, ed25519Key(t))
	k := newKeeper(t, Strict, s)
	err := k.TrustNew(ctx(t), "prod", "ns1-next", "127.0.0.1", "linode-7")
	var he *Error
	if !errors.As(err, &he) || he.Changed || !strings.Contains(err.Error(), "ansible.host_keys: given") {
		t.Fatalf("err = %v, want an unknown-key *Error naming ansible.host_keys: given", err)
	}
	// A load balancer is no server dnsroll created: nothing to give.
	if err := k.Verify(ctx(t), "lb1", "127.0.0.1"); err == nil || strings.Contains(err.Error(), "host_keys") {
		t.Fatalf("load balancer's refusal = %v, want one that does not speak of given keys", err)
	}
}

// One worker may serve two fleets in two Linode accounts that both name a
// server ns1-next. Each fleet's server must offer the key given to it, not
// the other's; meeting or deleting one leaves the other's key on record.
// Strict mode shows it: a server whose given key went would be refused.
func TestGivenKeysOfTwoFleetsWithOneLabel(t *testing.T) {
	s := startSSHD(t)
	k := newKeeper(t, Strict, s)
	prod, staging := give(t, k, "prod", "ns1-next"), give(t, k, "staging", "ns1-next")
	s.rekey(staging)
	var he *Error
	if err := k.TrustGiven(ctx(t), "prod", "ns1-next", "127.0.0.1", "linode-7"); !errors.As(err, &he) || !he.Given {
		t.Fatalf("prod's ns1-next offering staging's key: err = %v, want it refused as not given", err)
	}
	s.rekey(prod)
	if err := k.TrustGiven(ctx(t), "prod", "ns1-next", "127.0.0.1", "linode-7"); err != nil {
		t.Fatalf("prod's ns1-next: %v", err)
	}
	wantGiven(t, k, "prod", "ns1-next", 0)
	wantGiven(t, k, "staging", "ns1-next", 1)
	if err := k.Forget("127.0.0.1", "linode-7", "prod", "ns1-next"); err != nil {
		t.Fatal(err)
	}
	wantGiven(t, k, "staging", "ns1-next", 1)
	k.Port = startSSHD(t, staging).port
	if err := k.TrustGiven(ctx(t), "staging", "ns1-next", "127.0.0.1", "linode-9"); err != nil {
		t.Fatalf("staging's ns1-next after prod's was met and deleted: %v", err)
	}
	wantGiven(t, k, "staging", "ns1-next", 0)
}

// Keys given before they were kept by fleet, named by label alone, are
// still accepted at first contact (a rollout in flight during an upgrade):
// the one the server offers goes, another fleet's server's stays for it.
// Deleting the server drops the rest, which no later server could offer.
func TestLegacyGivenKeysAreAcceptedAtFirstContact(t *testing.T) {
	_, k, _, other := givenByLabelAlone(t, Strict)
	give(t, k, "prod", "ns1-next") // the create retried after the upgrade
	if err := k.TrustGiven(ctx(t), "prod", "ns1-next", "127.0.0.1", "linode-7"); err != nil {
		t.Fatalf("the key given by label alone: %v", err)
	}
	wantGiven(t, k, "prod", "ns1-next", 0)
	wantByLabelAlone(t, k, other)
	if err := k.Forget("127.0.0.1", "linode-8", "staging", "ns1-next"); err != nil {
		t.Fatal(err)
	}
	if left, err := k.Store.Entries("ns1-next.dnsroll-given.invalid"); err != nil || len(left) != 0 {
		t.Fatalf("keys given by label alone after the server was deleted = %+v (%v), want none", left, err)
	}
}

// givenByLabelAlone is a keeper in mode for sshd s offering mine, with
// mine and other given to ns1-next by label alone, as before keys were
// kept by fleet.
func givenByLabelAlone(t *testing.T, mode Mode) (s *sshd, k *Keeper, mine, other ssh.Signer) {
	t.Helper()
	mine, other = ed25519Key(t), ed25519Key(t)
	s = startSSHD(t, mine)
	k = newKeeper(t, mode, s)
	for _, key := range []ssh.Signer{mine, other} {
		if err := k.Store.Append("ns1-next.dnsroll-given.invalid", []ssh.PublicKey{key.PublicKey()}, givenComment); err != nil {
			t.Fatal(err)
		}
	}
	return s, k, mine, other
}

// wantByLabelAlone fails the test unless key alone is given to ns1-next
// by label alone.
func wantByLabelAlone(t *testing.T, k *Keeper, key ssh.Signer) {
	t.Helper()
	left, err := k.Store.Entries("ns1-next.dnsroll-given.invalid")
	if err != nil || len(left) != 1 || !hasKey(left, key.PublicKey()) {
		t.Fatalf("keys given by label alone = %+v (%v), want only the other server's", left, err)
	}
}
