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
// The public half waits in the known_hosts file under the server's fleet
// and label with givenSuffix, a name ssh never connects to (.invalid, RFC
// 6761), and is kept until first contact: a create whose response was lost
// is found by label on the retry, and the key it was given must still be
// on record. The fleet is in the name because labels are unique only
// within a Linode account, and one worker may serve fleets in several.
const (
	givenSuffix  = ".given.dnsroll.invalid"
	givenComment = "dnsroll-given"
	// legacySuffix named keys by label alone, before they were kept by
	// fleet. Keys a rollout in flight during the upgrade gave that way are
	// still accepted at first contact.
	legacySuffix = ".dnsroll-given.invalid"
)

// givenHost is the known_hosts name of the keys given to the server label
// of fleet. A fleet's name has no dot, so no two pairs share a name, and
// none is a legacy name, whose last label before .invalid differs.
func givenHost(fleet, label string) string { return label + "." + fleet + givenSuffix }

func legacyGivenHost(label string) string { return label + legacySuffix }

// Give makes a new ed25519 host key for the server of fleet that is about
// to be created as name, records its public half as the key to expect at first
// contact, and returns cloud-init user data that makes the pair the
// machine's only host key. The user data holds the private key: it goes to
// the cloud's create request and nowhere else (no log, no workflow
// history). With checking off it returns nil: there is nothing to check.
//
// Each call records one more key for name and none replaces another: a
// create that Linode made but did not yet list may be retried with a new
// key while the machine boots with the first.
func (k *Keeper) Give(fleet, name string) ([]byte, error) {
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
	if err := k.Store.Append(givenHost(fleet, name), []ssh.PublicKey{sshPub}, givenComment); err != nil {
		return nil, err
	}
	k.Log.Info("gave a new server its SSH host key", "fleet", fleet, "host", name, "key", ssh.FingerprintSHA256(sshPub), "file", k.Store.Path())
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

// TrustGiven is TrustNew for a server of fleet that was created with user
// data from Give: the key it offers must be one that Give recorded for
// fleet and name, and becomes its only recorded key; the keys given to it
// are then dropped. A machine offering another key is refused with an
// *Error (Given set): it is not the machine dnsroll created, or its image
// ignored the user data. When no key was given to it on this worker
// (another worker with its own file created it), it falls back to
// TrustNew.
func (k *Keeper) TrustGiven(ctx context.Context, fleet, name, addr, instance string) error {
	if k == nil || k.Mode == Off {
		return nil
	}
	hp, host, tag, met, err := k.contact(addr, instance)
	if err != nil {
		return err
	}
	if met {
		// A retry after the key was recorded. Of the keys named by label
		// alone, only the one it offered is this server's.
		if err := k.Verify(ctx, name+" ("+instance+")", addr); err != nil {
			return err
		}
		pinned, err := k.Store.Entries(host)
		if err != nil {
			return err
		}
		var keys []ssh.PublicKey
		for _, e := range pinned {
			if e.Comment == tag {
				keys = append(keys, e.Key)
			}
		}
		return k.dropGiven(fleet, name, keys)
	}
	given, err := k.Store.Entries(givenHost(fleet, name))
	if err != nil {
		return err
	}
	legacy, err := k.Store.Entries(legacyGivenHost(name))
	if err != nil {
		return err
	}
	given = append(given, legacy...)
	if len(given) == 0 {
		k.Log.Warn("a new server was given its SSH host key, but no key given to it is recorded in this worker's file: trusting its key on first use",
			"fleet", fleet, "host", name, "addr", addr, "instance", instance, "file", k.Store.Path())
		err := k.TrustNew(ctx, fleet, name, addr, instance)
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
		return &Error{Name: name, Addr: addr, File: k.Store.Path(), Host: givenHost(fleet, name), Given: true, Offered: ssh.FingerprintSHA256(key)}
	}
	if revoked := k.revokedAmong(hp, []ssh.PublicKey{key}); revoked != nil {
		return k.refusal(name, addr, revokedKey, revoked)
	}
	removed, err := k.Store.Replace(host, []ssh.PublicKey{key}, tag)
	if err != nil {
		return err
	}
	if err := k.dropGiven(fleet, name, []ssh.PublicKey{key}); err != nil {
		return err
	}
	k.Log.Info("a new server offers the SSH host key it was given", "fleet", fleet, "host", name, "addr", addr, "instance", instance,
		"key", ssh.FingerprintSHA256(key), "replaced", removed, "file", k.Store.Path())
	return nil
}

// dropGiven removes the keys given to fleet's server name. Of the keys a
// label alone names (legacySuffix), which may be another fleet's server's,
// it removes those among met, the keys the server offered, or all when met
// is nil: the server is gone or was met without a given key, and such a
// key would otherwise stay in the file for good.
func (k *Keeper) dropGiven(fleet, name string, met []ssh.PublicKey) error {
	if _, err := k.Store.Remove(givenHost(fleet, name), nil); err != nil {
		return err
	}
	var match func(Entry) bool
	if met != nil {
		match = func(e Entry) bool { return givenKey([]Entry{e}, met...) }
	}
	_, err := k.Store.Remove(legacyGivenHost(name), match)
	return err
}

// givenKey reports whether any of keys is among given's.
func givenKey(given []Entry, keys ...ssh.PublicKey) bool {
	for _, e := range given {
		for _, key := range keys {
			if bytes.Equal(e.Key.Marshal(), key.Marshal()) {
				return true
			}
		}
	}
	return false
}
