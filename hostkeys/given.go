package hostkeys

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"

	"golang.org/x/crypto/ssh"
	"gopkg.in/yaml.v3"
)

// A server the rollout creates can be given its host key instead of having
// it trusted at first contact: Give makes a key pair, records the public
// half, and returns cloud-init user data that installs the pair; the cloud
// hands the user data to the new machine (Linode's Metadata service), and
// TrustGiven checks at first contact that the machine offers that key.
//
// The public half waits in the known_hosts file under the server's label
// with givenSuffix, a name ssh never connects to (.invalid, RFC 6761), and
// is kept until first contact: a create whose response was lost is found
// by label on the retry, and the key it was given must still be on record.
const (
	givenSuffix  = ".dnsroll-given.invalid"
	givenComment = "dnsroll-given"
)

// givenHost is the known_hosts name of the keys given to the server name.
func givenHost(name string) string { return name + givenSuffix }

// Give makes a new ed25519 host key for the server that is about to be
// created as name, records its public half as the key to expect at first
// contact, and returns cloud-init user data that makes the pair the
// machine's only host key. The user data holds the private key: it goes to
// the cloud's create request and nowhere else (no log, no workflow
// history). With checking off it returns nil: there is nothing to check.
//
// Each call records one more key for name and none replaces another: a
// create that Linode made but did not yet list may be retried with a new
// key while the machine boots with the first.
func (k *Keeper) Give(name string) ([]byte, error) {
	if k == nil || k.Mode == Off {
		return nil, nil
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("host key for %s: %w", name, err)
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("host key for %s: %w", name, err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		return nil, fmt.Errorf("host key for %s: %w", name, err)
	}
	if err := k.Store.Append(givenHost(name), []ssh.PublicKey{sshPub}, givenComment); err != nil {
		return nil, err
	}
	k.Log.Info("gave a new server its SSH host key", "host", name, "key", ssh.FingerprintSHA256(sshPub), "file", k.Store.Path())
	return cloudConfig(pem.EncodeToMemory(block), sshPub), nil
}

// cloudConfig is the #cloud-config document for cloud-init's ssh module
// (cc_ssh) that deletes the image's host keys, generates none, and
// installs the given ed25519 pair.
func cloudConfig(privatePEM []byte, pub ssh.PublicKey) []byte {
	doc := struct {
		DeleteKeys  bool              `yaml:"ssh_deletekeys"`
		GenKeyTypes []string          `yaml:"ssh_genkeytypes"`
		Keys        map[string]string `yaml:"ssh_keys"`
	}{
		DeleteKeys:  true,
		GenKeyTypes: []string{},
		Keys: map[string]string{
			"ed25519_private": string(privatePEM),
			"ed25519_public":  string(bytes.TrimSpace(ssh.MarshalAuthorizedKey(pub))),
		},
	}
	out, err := yaml.Marshal(doc)
	if err != nil {
		panic(err) // a fixed struct of strings always marshals
	}
	return append([]byte("#cloud-config\n"), out...)
}

// TrustGiven is TrustNew for a server that was created with user data from
// Give: the key it offers must be one that Give recorded for name, and
// becomes its only recorded key; the keys given to name are then dropped.
// A machine offering another key is refused with an *Error (Given set): it
// is not the machine dnsroll created, or its image ignored the user data.
// When no key was given to name on this worker (another worker with its
// own file created it), it falls back to TrustNew.
func (k *Keeper) TrustGiven(ctx context.Context, name, addr, instance string) error {
	if k == nil || k.Mode == Off {
		return nil
	}
	hp, host, tag, met, err := k.contact(addr, instance)
	if err != nil {
		return err
	}
	if met {
		// A retry after the key was recorded.
		if err := k.Verify(ctx, name+" ("+instance+")", addr); err != nil {
			return err
		}
		_, err := k.Store.Remove(givenHost(name), nil)
		return err
	}
	given, err := k.Store.Entries(givenHost(name))
	if err != nil {
		return err
	}
	if len(given) == 0 {
		k.Log.Warn("a new server was given its SSH host key, but no key given to it is recorded in this worker's file: trusting its key on first use",
			"host", name, "addr", addr, "instance", instance, "file", k.Store.Path())
		err := k.TrustNew(ctx, name, addr, instance)
		var he *Error
		if errors.As(err, &he) {
			he.New = false // it was given a key, by another worker
		}
		return err
	}
	var algs []string
	for _, e := range given {
		algs = append(algs, algorithmsFor(e.Key.Type())...)
	}
	key, err := offered(ctx, hp, algs)
	if err != nil {
		return fmt.Errorf("check the host key of %s: %w", name, err)
	}
	if !givenKey(given, key) {
		return &Error{Name: name, Addr: addr, File: k.Store.Path(), Host: givenHost(name), Given: true, Offered: ssh.FingerprintSHA256(key)}
	}
	if revoked := k.revokedAmong(hp, []ssh.PublicKey{key}); revoked != nil {
		return k.refusal(name, addr, revokedKey, revoked)
	}
	removed, err := k.Store.Replace(host, []ssh.PublicKey{key}, tag)
	if err != nil {
		return err
	}
	if _, err := k.Store.Remove(givenHost(name), nil); err != nil {
		return err
	}
	k.Log.Info("a new server offers the SSH host key it was given", "host", name, "addr", addr, "instance", instance,
		"key", ssh.FingerprintSHA256(key), "replaced", removed, "file", k.Store.Path())
	return nil
}

func givenKey(given []Entry, key ssh.PublicKey) bool {
	for _, e := range given {
		if bytes.Equal(e.Key.Marshal(), key.Marshal()) {
			return true
		}
	}
	return false
}
