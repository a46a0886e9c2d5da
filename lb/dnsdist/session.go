package dnsdist

import (
	"context"
	"errors"
	"fmt"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/config"
	"github.com/dnsroll/dnsroll/lb"
)

// key returns the console key of the dnsdist at addr, read once through ch
// from keyFile on the load balancer and then kept in memory only. It is
// never logged or returned in an error.
func (d *Driver) key(ctx context.Context, ch lb.Channel, fleet *config.Fleet, id, keyFile string) (*[32]byte, error) {
	if k := d.keptKey(id); k != nil {
		return k, nil
	}
	// keyFile passed pathRE when the config was rendered; check again, as
	// it goes into a command line here.
	if !pathRE.MatchString(keyFile) {
		return nil, dnsroll.Errorf(dnsroll.EINVALID, "console key file %q: not a plain absolute path", keyFile)
	}
	cmd := "cat -- '" + keyFile + "'"
	if !d.Place.Place(fleet).InLab() && fleet.Ansible.LoadBalancerUser() != "root" {
		// The key is root:_dnsdist 0640 on a VM; the playbook reads it
		// with become, and so does this.
		cmd = "sudo -n " + cmd
	}
	out, err := ch.Run(ctx, cmd)
	if err != nil {
		return nil, fmt.Errorf("read the console key %s on the load balancer: %w", keyFile, err)
	}
	k, err := ParseKey(out)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", keyFile, err)
	}
	d.keepKey(id, k)
	return k, nil
}

// maxKeys bounds the console keys a driver keeps: enough for every load
// balancer of a fleet and of its replacement (<name>-next) at once. Past
// it the key unused for longest goes, so that the keys of load balancers
// deleted or replaced, which no flip asks for again, do not stay for the
// worker's life; a key that went is read again at its next use.
const maxKeys = 2 * config.MaxLoadBalancers

// keptKey is a console key and when it was last used (Driver.clock).
type keptKey struct {
	key  *[32]byte
	used uint64
}

// keptKey returns the key kept under id, or nil, and marks it used.
func (d *Driver) keptKey(id string) *[32]byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	k := d.keys[id]
	if k == nil {
		return nil
	}
	d.clock++
	k.used = d.clock
	return k.key
}

// keepKey keeps key under id, making room by forgetting the key unused
// for longest.
func (d *Driver) keepKey(id string, key *[32]byte) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.keys == nil {
		d.keys = map[string]*keptKey{}
	}
	if _, ok := d.keys[id]; !ok && len(d.keys) >= maxKeys {
		var oldest string
		var oldestUse uint64
		for other, k := range d.keys {
			if oldestUse == 0 || k.used < oldestUse {
				oldest, oldestUse = other, k.used
			}
		}
		delete(d.keys, oldest)
	}
	d.clock++
	d.keys[id] = &keptKey{key: key, used: d.clock}
}

func (d *Driver) forgetKey(id string) {
	d.mu.Lock()
	delete(d.keys, id)
	d.mu.Unlock()
}

// keyID names a console key: every real load balancer has the same console
// address and key file, so the fleet and balancer names come first.
func keyID(fleet *config.Fleet, balancer config.LoadBalancer, addr, keyFile string) string {
	return fleet.Name + "\x00" + balancer.Name + "\x00" + addr + "\x00" + keyFile
}

// exec runs chunks, in order, in one console session with balancer's
// dnsdist and returns their replies.
func (d *Driver) exec(ctx context.Context, fleet *config.Fleet, balancer config.LoadBalancer, chunks ...string) ([]string, error) {
	var out []string
	err := d.talk(ctx, fleet, balancer, func(c *Console) error {
		out = make([]string, 0, len(chunks))
		for _, lua := range chunks {
			reply, err := c.Exec(ctx, lua)
			if err != nil {
				return err
			}
			out = append(out, reply)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// talk runs converse in one console session with balancer's dnsdist. A
// key kept from an earlier session that dnsdist refuses (a recreated key
// file) is read again once, and converse runs again from its start;
// dnsdist runs nothing it cannot decrypt, so the retry repeats nothing.
func (d *Driver) talk(ctx context.Context, fleet *config.Fleet, balancer config.LoadBalancer, converse func(*Console) error) error {
	st, err := d.console(fleet, balancer)
	if err != nil {
		return err
	}
	addr, keyFile := st.addr, st.keyFile
	ch, err := lb.Open(ctx, d.Channels, "dnsdist", fleet, balancer)
	if err != nil {
		return err
	}
	id := keyID(fleet, balancer, addr, keyFile)
	for attempt := 0; ; attempt++ {
		err := d.session(ctx, ch, fleet, id, addr, keyFile, converse)
		if errors.Is(err, ErrConsoleClosed) && attempt == 0 {
			d.forgetKey(id)
			continue
		}
		return err
	}
}

func (d *Driver) session(ctx context.Context, ch lb.Channel, fleet *config.Fleet, id, addr, keyFile string, converse func(*Console) error) error {
	key, err := d.key(ctx, ch, fleet, id, keyFile)
	if err != nil {
		return err
	}
	conn, err := ch.Dial(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("connect to the console %s: %w", addr, err)
	}
	// Deadlines come from ctx's deadline only: a cancelled step (a
	// stopped rollout) would otherwise wait for a console that does not
	// answer until then, or consoleTimeout, holding the connection.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	c, err := OpenConsole(ctx, conn, key)
	if err == nil {
		defer c.Close()
		err = converse(c)
	}
	if err != nil && ctx.Err() != nil {
		return fmt.Errorf("console %s: %w", addr, ctx.Err())
	}
	return err
}
