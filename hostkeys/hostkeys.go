// Package hostkeys keeps the SSH host keys of the machines a worker runs
// Ansible on, trusted on first use: a machine's keys are recorded in the
// worker's known_hosts file at first contact and pinned afterwards, so a
// long-lived load balancer whose key changes is refused instead of being
// sent a new config. A nameserver that a rollout created is recorded right
// after creation, replacing whatever an earlier instance at its address
// left (Linode reuses addresses), and forgotten when it is deleted; where
// the cloud takes cloud-init user data, it is given its key at creation
// instead (Give), and first contact checks it (TrustGiven).
//
// Only a given key's private half leaves this package, in the user data
// Give returns; logs carry SHA256 fingerprints.
package hostkeys

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/dnsroll/dnsroll"
)

// Mode is how host keys are checked.
type Mode string

const (
	// TOFU records a machine's keys at first contact and pins them. It is
	// the default (ANSIBLE_HOST_KEY_CHECKING unset).
	TOFU Mode = "tofu"
	// Strict records nothing: every key must already be in the file
	// (ANSIBLE_HOST_KEY_CHECKING=True).
	Strict Mode = "strict"
	// Off checks nothing (ANSIBLE_HOST_KEY_CHECKING=False).
	Off Mode = "off"
)

// ModeFromEnv maps ANSIBLE_HOST_KEY_CHECKING's value to a mode, reading
// booleans as Ansible does: unset or empty is TOFU.
func ModeFromEnv(value string) (Mode, error) {
	switch strings.ToLower(strings.TrimSpace(value)) {
	case "":
		return TOFU, nil
	case "1", "true", "yes", "on", "y", "t":
		return Strict, nil
	case "0", "false", "no", "off", "n", "f":
		return Off, nil
	}
	return "", fmt.Errorf("ANSIBLE_HOST_KEY_CHECKING=%q: use True (only keys already in the known_hosts file), False (no checking), or leave it unset (trust on first use)", value)
}

// DefaultFile is the known_hosts file of a worker that names none:
// known_hosts in $DNSROLL_STATE_DIR, else in $XDG_STATE_HOME/dnsroll, else
// in ~/.local/state/dnsroll.
func DefaultFile() (string, error) {
	dir, err := dnsroll.StateDir()
	if err != nil {
		return "", fmt.Errorf("%w (or set DNSROLL_KNOWN_HOSTS)", err)
	}
	return filepath.Join(dir, "known_hosts"), nil
}

// Keeper applies a Mode with a Store. A nil *Keeper checks nothing and
// changes nothing in Ansible's settings.
type Keeper struct {
	Mode  Mode
	Store *Store // nil only when Mode is Off
	// Port is sshd's port; zero means 22.
	Port int
	Log  *slog.Logger
}

// New returns a keeper for mode with the file at path (unused when off).
// Turning checking off is logged as a warning.
func New(mode Mode, path string, log *slog.Logger) (*Keeper, error) {
	if log == nil {
		log = slog.Default()
	}
	k := &Keeper{Mode: mode, Log: log}
	switch mode {
	case Off:
		log.Warn("SSH host key checking is off (ANSIBLE_HOST_KEY_CHECKING=False): a machine that impersonates a load balancer or nameserver would get its config and the worker's logins; unset it to trust keys on first use and pin them")
		return k, nil
	case "":
		k.Mode = TOFU
	case TOFU, Strict:
	default:
		return nil, fmt.Errorf("host key mode %q: want tofu, strict or off", mode)
	}
	s, err := OpenStore(path)
	if err != nil {
		return nil, err
	}
	k.Store = s
	return k, nil
}

// Error is a host key that the policy refuses: a changed one, or, in strict
// mode, one not in the file. Its dnsroll code is EINVALID: retrying cannot
// fix it, the operator can.
type Error struct {
	Name, Addr, File string
	// Host is the name in the file, which ssh-keygen -R takes.
	Host string
	// Changed is set for a key that differs from the recorded one; else the
	// key is unknown and strict mode records nothing.
	Changed bool
	// Revoked is set for a key that a @revoked line in the file names.
	Revoked bool
	// Given is set for a new server that offers a key other than the
	// ones dnsroll gave it at creation (Keeper.Give).
	Given bool
	// New is set for a server the rollout created without giving it a
	// key, which strict mode refuses as unknown.
	New bool
	// Offered is the SHA256 fingerprint of the key the machine presented.
	Offered string
}

func (e *Error) Error() string {
	if e.Revoked {
		// Not ssh-keygen -R: it would delete the revocation too, and the
		// next first contact would trust the revoked key.
		return fmt.Sprintf("SSH host key of %s (%s) is revoked: it offers %s, which a @revoked line in %s names, so dnsroll will not log in. "+
			"Give the machine a new host key (rebuild it, or regenerate its keys from its console) and start again; leave the @revoked line in place",
			e.Name, e.Addr, e.Offered, e.File)
	}
	if e.Given {
		return fmt.Sprintf("SSH host key of %s (%s) is not the one dnsroll gave it at creation: it offers %s, and the keys it was given are recorded in %s as %s. "+
			"Either its image did not apply the cloud-init user data that carried the key (set ansible.host_keys: first-use in the fleet to trust new servers' keys on first use instead), or someone is intercepting the connection",
			e.Name, e.Addr, e.Offered, e.File, e.Host)
	}
	if e.Changed {
		return fmt.Sprintf("SSH host key of %s (%s) changed: it offers %s, which is not the key recorded in %s. "+
			"If the machine was rebuilt and you expect this, remove the old key with `ssh-keygen -R %s -f %s` and start again; otherwise someone may be intercepting the connection",
			e.Name, e.Addr, e.Offered, e.File, e.Host, e.File)
	}
	if e.New {
		return fmt.Sprintf("SSH host key of %s (%s), a server this rollout created, is not in %s, and ANSIBLE_HOST_KEY_CHECKING=True allows no trust on first use: "+
			"it was not given its key at creation (the fleet sets ansible.host_keys: first-use, or Linode takes no cloud-init user data in its region or from its image: Plan's warnings say which). "+
			"Use ansible.host_keys: given with a region that has Linode's Metadata service and an image with cloud-init, or unset ANSIBLE_HOST_KEY_CHECKING to trust new servers' keys at first contact",
			e.Name, e.Addr, e.File)
	}
	return fmt.Sprintf("SSH host key of %s (%s) is not in %s, and ANSIBLE_HOST_KEY_CHECKING=True allows no trust on first use: "+
		"add it after checking its fingerprint (%s) with `ssh-keyscan %s >> %s`, or unset ANSIBLE_HOST_KEY_CHECKING to record new machines' keys at first contact",
		e.Name, e.Addr, e.File, e.Offered, e.Addr, e.File)
}

// Unwrap gives the error its dnsroll code.
func (e *Error) Unwrap() error { return &dnsroll.Error{Code: dnsroll.EINVALID, Message: e.Error()} }

// addr is addr's sshd as host:port.
func (k *Keeper) addr(host string) string {
	port := k.Port
	if port == 0 {
		port = 22
	}
	return net.JoinHostPort(host, strconv.Itoa(port))
}

// Verify checks the key that the machine name at addr offers against the
// file. An unknown machine is recorded (TOFU) or refused (strict); a
// changed key is always refused with *Error. It connects to sshd but never
// logs in.
func (k *Keeper) Verify(ctx context.Context, name, addr string) error {
	if k == nil || k.Mode == Off {
		return nil
	}
	hp := k.addr(addr)
	refuse := func(st state, key ssh.PublicKey) error {
		return k.refusal(name, addr, st, key)
	}
	key, st, err := k.check(ctx, hp)
	switch {
	case err != nil:
		return err
	case st == pinned:
		return nil
	case st != unknown, k.Mode == Strict:
		return refuse(st, key)
	}
	keys, err := scan(ctx, hp)
	if err != nil {
		return fmt.Errorf("record the host key of %s: %w", name, err)
	}
	added, err := k.Store.Add(knownhosts.Normalize(hp), keys, "")
	if err != nil {
		return err
	}
	if added {
		k.Log.Info("recorded SSH host key at first contact", "host", name, "addr", addr, "keys", fingerprints(keys), "file", k.Store.Path())
	}
	// Another worker sharing the file may have recorded other keys first.
	key, st, err = k.check(ctx, hp)
	if err == nil && st != pinned {
		if st == unknown {
			st = changed
		}
		return refuse(st, key)
	}
	return err
}

// refusal is the *Error for a key that the file does not pin: st is
// changed, revoked, or unknown (strict mode).
func (k *Keeper) refusal(name, addr string, st state, key ssh.PublicKey) error {
	return &Error{Name: name, Addr: addr, File: k.Store.Path(), Host: knownhosts.Normalize(k.addr(addr)),
		Changed: st == changed, Revoked: st == revokedKey, Offered: ssh.FingerprintSHA256(key)}
}

// state is what the file says of an offered key.
type state int

const (
	unknown    state = iota // no entry for the host
	pinned                  // an entry holds this key
	changed                 // the host's entries hold other keys
	revokedKey              // a @revoked line names the key
)

// check returns the key hp offers and what the file says of it.
func (k *Keeper) check(ctx context.Context, hp string) (ssh.PublicKey, state, error) {
	cb, err := knownhosts.New(k.Store.Path())
	if err != nil {
		return nil, unknown, fmt.Errorf("known_hosts: %w", err)
	}
	remote := tcpAddr(hp)
	key, err := offered(ctx, hp, nil)
	if err != nil {
		return nil, unknown, err
	}
	verdict := cb(hp, remote, key)
	var ke *knownhosts.KeyError
	if errors.As(verdict, &ke) && len(ke.Want) > 0 && !hasType(ke.Want, key.Type()) {
		// The file holds other types for this host: ask for one of them,
		// as ssh does when it knows a host's keys.
		var algs []string
		for _, w := range ke.Want {
			algs = append(algs, algorithmsFor(w.Key.Type())...)
		}
		if key, err = offered(ctx, hp, algs); err != nil {
			return nil, unknown, err
		}
		verdict = cb(hp, remote, key)
	}
	var revoked *knownhosts.RevokedError
	switch {
	case verdict == nil:
		return key, pinned, nil
	case errors.As(verdict, &ke) && len(ke.Want) == 0:
		return key, unknown, nil
	case errors.As(verdict, &revoked):
		return key, revokedKey, nil
	case errors.As(verdict, &ke):
		return key, changed, nil
	}
	return nil, unknown, fmt.Errorf("known_hosts: %w", verdict)
}

// revokedAmong returns the first of keys that a @revoked line names for
// hp, or nil; a file it cannot read revokes nothing here, as check reports
// that error.
func (k *Keeper) revokedAmong(hp string, keys []ssh.PublicKey) ssh.PublicKey {
	cb, err := knownhosts.New(k.Store.Path())
	if err != nil {
		return nil
	}
	remote := tcpAddr(hp)
	for _, key := range keys {
		var re *knownhosts.RevokedError
		if errors.As(cb(hp, remote, key), &re) {
			return key
		}
	}
	return nil
}

// tcpAddr is hp as the remote address a known_hosts check takes.
func tcpAddr(hp string) *net.TCPAddr {
	host, port, _ := net.SplitHostPort(hp)
	p, _ := strconv.Atoi(port)
	return &net.TCPAddr{IP: net.ParseIP(host), Port: p}
}

// tagPrefix starts the comment of entries that TrustNew records, followed
// by the instance.
const tagPrefix = "dnsroll:"

// TrustNew records the keys of a machine that this rollout created,
// instance (its cloud ID, such as "linode-123"), at addr. Entries left by
// another instance at the same address are replaced: the cloud reuses
// addresses, and this machine is known to be new. Entries already recorded
// for this instance are pinned, so a retry does not trust again. Strict
// mode records nothing and requires the key to be known. Keys given to
// fleet's server name (Give) go: the cloud created the machine without
// them.
func (k *Keeper) TrustNew(ctx context.Context, fleet, name, addr, instance string) error {
	if k == nil || k.Mode == Off {
		return nil
	}
	if err := k.trustNew(ctx, name, addr, instance); err != nil {
		return err
	}
	return k.dropGiven(fleet, name, nil)
}

func (k *Keeper) trustNew(ctx context.Context, name, addr, instance string) error {
	if k.Mode == Strict {
		err := k.Verify(ctx, name, addr)
		var he *Error
		if errors.As(err, &he) && !he.Changed && !he.Revoked {
			he.New = true
		}
		return err
	}
	hp, host, tag, met, err := k.contact(addr, instance)
	if err != nil {
		return err
	}
	if met {
		return k.Verify(ctx, name+" ("+instance+")", addr)
	}
	keys, err := scan(ctx, hp)
	if err != nil {
		return fmt.Errorf("record the host key of %s: %w", name, err)
	}
	if key := k.revokedAmong(hp, keys); key != nil {
		return k.refusal(name, addr, revokedKey, key)
	}
	removed, err := k.Store.Replace(host, keys, tag)
	if err != nil {
		return err
	}
	k.Log.Info("recorded SSH host key of a new machine", "host", name, "addr", addr, "instance", instance,
		"keys", fingerprints(keys), "replaced", removed, "file", k.Store.Path())
	return nil
}

// contact is where instance's sshd at addr is (host:port), its name in
// the file and the tag of its entries; met reports that an entry of the
// instance is already recorded. Any such entry makes a first contact a
// retry: a line added since (by hand, or by another worker) does not make
// it a first contact again.
func (k *Keeper) contact(addr, instance string) (hp, host, tag string, met bool, err error) {
	hp = k.addr(addr)
	host = knownhosts.Normalize(hp)
	tag = tagPrefix + instance
	old, err := k.Store.Entries(host)
	return hp, host, tag, err == nil && anyTagged(old, tag), err
}

// Forget removes the entries for addr once instance, the machine there, is
// deleted: its own entries and untagged ones, but not those of another
// instance that the cloud has since given the address; and the keys given
// to fleet's server named name (Give) that it never offered, as when a
// rollout that created it failed before first contact.
func (k *Keeper) Forget(addr, instance, fleet, name string) error {
	if k == nil || k.Store == nil {
		return nil
	}
	if name != "" {
		if err := k.dropGiven(fleet, name, nil); err != nil {
			return err
		}
	}
	if addr == "" {
		return nil
	}
	mine := func(e Entry) bool { return !strings.HasPrefix(e.Comment, tagPrefix) || e.Comment == tagPrefix+instance }
	n, err := k.Store.Remove(knownhosts.Normalize(k.addr(addr)), mine)
	if err == nil && n > 0 {
		k.Log.Info("removed SSH host keys of a deleted machine", "addr", addr, "instance", instance, "entries", n, "file", k.Store.Path())
	}
	return err
}

// AnsibleEnv is the environment that makes ansible-playbook's ssh apply
// the mode; extraArgs is the inherited ANSIBLE_SSH_EXTRA_ARGS, kept after
// dnsroll's options (ssh takes the first value of an option).
func (k *Keeper) AnsibleEnv(extraArgs string) []string {
	if k == nil {
		return nil
	}
	var checking, opts string
	if k.Mode == Off {
		checking, opts = "False", "-o UserKnownHostsFile=/dev/null"
	} else {
		// Only the worker's file counts, for ssh as for Verify.
		checking = "True"
		opts = "-o StrictHostKeyChecking=yes -o UserKnownHostsFile=" + k.Store.Path() +
			" -o GlobalKnownHostsFile=/dev/null -o UpdateHostKeys=no"
	}
	return []string{"ANSIBLE_HOST_KEY_CHECKING=" + checking, "ANSIBLE_SSH_EXTRA_ARGS=" + strings.TrimSpace(opts+" "+extraArgs)}
}

func anyTagged(es []Entry, tag string) bool {
	for _, e := range es {
		if e.Comment == tag {
			return true
		}
	}
	return false
}

func hasType(es []knownhosts.KnownKey, typ string) bool {
	for _, e := range es {
		if e.Key.Type() == typ {
			return true
		}
	}
	return false
}

func fingerprints(keys []ssh.PublicKey) string {
	fs := make([]string, len(keys))
	for i, k := range keys {
		fs[i] = k.Type() + " " + ssh.FingerprintSHA256(k)
	}
	return strings.Join(fs, ", ")
}
