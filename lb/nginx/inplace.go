package nginx

import (
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/config"
	"github.com/dnsroll/dnsroll/lb"
)

// In-place updates of a running nginx, each a few commands over the
// kept-open channel (inplace.sh): a config change is nginx -t and a
// reload, its previous config kept beside it for that update's Restore
// (and no other's: see updateID); a binary
// upgrade is nginx's own: USR2 starts a new master from the binary now
// installed, WINCH drains the old workers once the new ones run, and only
// when the new workers answer on the control socket does QUIT stop the
// old master. A failure before that sends the old master HUP and the new
// one QUIT, which leaves nginx as it was. After QUIT there is no going
// back (a quitting master ignores HUP), and none is needed: the new
// master, checked to serve, is nginx now; Restore lets the old one finish.

//go:embed inplace.sh
var inplaceScript string

// upgradeTimeout bounds each wait on nginx: a new master, drained
// workers, an old master's exit, which the old workers' busy TCP
// connections may hold up for the config's shutdown timeout.
func upgradeTimeout(j job) time.Duration { return j.data.shutdownTimeout() + 20*time.Second }

// Update applies u to balancer's running nginx and returns once the new
// config or binary serves. It is idempotent: a retry of a config change
// that went in keeps the config saved from before it, and a retry of an
// upgrade carries on from the new master it finds.
func (d *Driver) Update(ctx context.Context, fleet *config.Fleet, balancer config.LoadBalancer, u lb.Update) (string, error) {
	note, err := d.update(ctx, fleet, balancer, u)
	return note, wrap("update", balancer.Name, err)
}

func (d *Driver) update(ctx context.Context, fleet *config.Fleet, balancer config.LoadBalancer, u lb.Update) (string, error) {
	j, ch, err := d.inplace(ctx, fleet, balancer)
	if err != nil {
		return "", err
	}
	switch u.Kind {
	case lb.UpdateConfig:
		if u.Config != "" {
			if err := ownID(ctx, ch, j, u.Config); err != nil {
				return "", err
			}
		}
		if _, err := runConfig(ctx, ch, j, "reload", u); err != nil {
			return "", err
		}
		conf, err := ch.Run(ctx, "cat -- "+quote(j.paths.conf))
		if err != nil {
			return "", err
		}
		id, err := configID(string(conf))
		if err != nil {
			return "", err
		}
		if err := waitServing(ctx, ch, job{socket: j.socket, id: id}); err != nil {
			return "", err
		}
		return "reloaded; serving " + id, nil
	case lb.UpdateBinary:
		return d.upgrade(ctx, ch, j, u.ID) // "" (no run): no retry to know
	}
	return "", dnsroll.Errorf(dnsroll.EINVALID, "kind %q: nginx updates in place with kind %s", u.Kind, lb.KindsText("nginx"))
}

// ownID refuses an operator's nginx.conf whose control server is missing,
// or returns the ID of the config nginx runs while the config differs:
// the check after the reload could not tell nginx's new workers from the
// old ones. The same config again, as in a retry of an update that went
// in, is a reload.
func ownID(ctx context.Context, ch lb.Channel, j job, config string) error {
	id, err := configID(config)
	if err != nil {
		return noControlServer(j.socket)
	}
	live, err := ch.Run(ctx, "cat -- "+quote(j.paths.conf))
	if err != nil {
		return err
	}
	if liveID, _ := configID(string(live)); id == liveID && string(live) != config {
		return dnsroll.Errorf(dnsroll.EINVALID, "update.config: its dnsroll control server returns %s, the ID of the config nginx runs, yet the config differs; "+
			"give it an ID of its own (dnsroll-<other hex digits>), by which the worker tells nginx's new workers from the old ones after the reload", id)
	}
	return nil
}

// noControlServer refuses an operator's nginx.conf without the control
// server, in nginx's words rather than the template's: the block to keep,
// with this load balancer's socket.
func noControlServer(socket string) error {
	return dnsroll.Errorf(dnsroll.EINVALID, "update.config: the new nginx.conf has no dnsroll control server, by which the worker checks that nginx's workers run it after the reload; "+
		"keep the live config's, in the stream block, with an ID of its own so that new workers can be told from old ones: "+
		"server { listen unix:%s; return \"dnsroll-<hex digits>\\n\"; }", socket)
}

// upgrade is nginx's binary upgrade, update's; see above.
func (d *Driver) upgrade(ctx context.Context, ch lb.Channel, j job, update string) (string, error) {
	op := func(name string) ([]byte, error) { return runScript(ctx, ch, j, name, [][2]string{{"update", update}}) }
	out, err := op("upgrade-start")
	if err != nil {
		return "", d.abort(ctx, ch, j, update, err)
	}
	pids := strings.Fields(string(out))
	if len(pids) == 2 && pids[0] == "done" {
		return "binary upgrade: done by an earlier attempt; master " + pids[1] + " serves", nil
	}
	if len(pids) != 2 {
		return "", d.abort(ctx, ch, j, update, fmt.Errorf("upgrade: the old and new master pids, not %q", out))
	}
	if _, err := op("upgrade-drain"); err != nil {
		return "", d.abort(ctx, ch, j, update, err)
	}
	// Only the new master's workers are left to answer.
	conf, err := ch.Run(ctx, "cat -- "+quote(j.paths.conf))
	if err == nil {
		var id string
		if id, err = configID(string(conf)); err == nil {
			err = waitServing(ctx, ch, job{socket: j.socket, id: id})
		}
	}
	if err != nil {
		return "", d.abort(ctx, ch, j, update, fmt.Errorf("upgrade: the new master %s does not serve: %w", pids[1], err))
	}
	if _, err := op("upgrade-finish"); err != nil {
		return "", err
	}
	return fmt.Sprintf("binary upgrade: master %s → %s", pids[0], pids[1]), nil
}

// abort puts the old master back after update's failed upgrade and
// returns cause, with the abort's own failure if it had one.
func (d *Driver) abort(ctx context.Context, ch lb.Channel, j job, update string, cause error) error {
	if _, err := runScript(ctx, ch, j, "upgrade-abort", [][2]string{{"update", update}}); err != nil {
		return fmt.Errorf("%w; and putting the old master back failed: %v", cause, err)
	}
	return fmt.Errorf("%w (the old master serves again)", cause)
}

// Restore undoes a failed update u: the config from before it, reloaded,
// or an upgrade still under way, aborted; an upgrade whose old master was
// already told to quit is finished instead, since only the new master can
// serve (see above). It returns what it did. Restoring with nothing to
// restore changes nothing: a config update that never replaced the config
// (refused, or stopped before) leaves it, and so does one whose config
// something else has replaced since.
func (d *Driver) Restore(ctx context.Context, fleet *config.Fleet, balancer config.LoadBalancer, u lb.Update) (lb.Restored, error) {
	j, ch, err := d.inplace(ctx, fleet, balancer)
	var out []byte
	if err == nil {
		if u.Kind == lb.UpdateBinary {
			out, err = runScript(ctx, ch, j, "upgrade-abort", [][2]string{{"update", u.ID}})
		} else {
			out, err = runConfig(ctx, ch, j, "restore", u)
		}
	}
	if err != nil {
		return lb.Restored{}, wrap("restore", balancer.Name, err)
	}
	return restoredBy(string(out)), nil
}

// restoredBy reads inplace.sh's word on a restore: a note beginning
// "nothing to restore" (the update changed nothing) or "nothing restored"
// (its change stays) undid nothing.
func restoredBy(out string) lb.Restored {
	note := strings.TrimSpace(out)
	if note == "" {
		note = "restored"
	}
	return lb.Restored{Note: note, Undone: !strings.HasPrefix(note, "nothing to restore") && !strings.HasPrefix(note, "nothing restored")}
}

// updateID is what identifies config update u on the load balancer, the
// same for its retries and its Restore: u.ID (the workflow run's) with
// its config. It is recorded with the config it saves for Restore, which
// restores that config for this update only. Without u.ID, an update is
// known by its config alone.
func updateID(u lb.Update) string {
	h := sha256.Sum256([]byte(u.ID + "\x00" + u.Config))
	return hex.EncodeToString(h[:12])
}

// runConfig runs inplace.sh's config op, reload or restore, for u.
func runConfig(ctx context.Context, ch lb.Channel, j job, op string, u lb.Update) ([]byte, error) {
	return runScript(ctx, ch, j, op, [][2]string{{"config", u.Config}, {"update", updateID(u)}})
}

// inplace works out balancer's paths and opens its channel.
func (d *Driver) inplace(ctx context.Context, fleet *config.Fleet, balancer config.LoadBalancer) (job, lb.Channel, error) {
	j, err := d.job(fleet, balancer, nil, nil)
	if err != nil {
		return job{}, nil, err
	}
	ch, err := d.channel(ctx, fleet, balancer)
	return j, ch, err
}

// runInplace runs one op of inplace.sh with config conf.
func runInplace(ctx context.Context, ch lb.Channel, j job, op, conf string) ([]byte, error) {
	return runScript(ctx, ch, j, op, [][2]string{{"config", conf}})
}

// runScript runs op of inplace.sh with vars, mapping its exit codes.
func runScript(ctx context.Context, ch lb.Channel, j job, op string, vars [][2]string) ([]byte, error) {
	out, err := ch.Run(ctx, command(j, upgradeTimeout(j), inplaceScript, append([][2]string{{"op", op}}, vars...)))
	if err != nil {
		return out, fmt.Errorf("%s: %w", op, scriptError(err))
	}
	return out, nil
}
