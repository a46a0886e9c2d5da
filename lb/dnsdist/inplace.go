package dnsdist

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/config"
	"github.com/dnsroll/dnsroll/lb"
)

// A console chunk leaves nothing on dnsdist by which a restore could tell
// whether it ran, and undo_lua run where it never did may change a
// healthy load balancer (an rmRule(0) removes another rule). So Update
// sends each chunk with a mark of its own update in front of it, in the
// same message and on its first line (the chunk's line numbers stay):
// markTable[<mark>] = 'sent' in dnsdist's Lua state. dnsdist compiles a
// message whole before it runs any of it, so the mark is there exactly
// when the chunk reached dnsdist and began to run: not when the
// connection or the key failed, nor when the chunk does not compile.
// Restore runs undo_lua only where it finds the mark, and then marks it
// 'undone'. A restart of dnsdist drops the mark together with what the
// chunk changed.
const markTable = "dnsroll_sent"

// Update changes balancer's running dnsdist through its console: u.Lua in
// one session, marked as u's (see markTable), once: where u's mark is
// already set, a retry of u runs nothing. dnsdist applies console
// settings at once, with no restart and no lost query. A chunk that raises
// an error fails with EINVALID. Changes made this way live until dnsdist
// restarts; the role's config is where lasting ones belong.
func (d *Driver) Update(ctx context.Context, fleet *config.Fleet, balancer config.LoadBalancer, u lb.Update) (string, error) {
	if u.Kind != lb.UpdateConsole {
		return "", dnsroll.Errorf(dnsroll.EINVALID, "dnsdist: update %s: kind %q: dnsdist updates in place with kind %s (a console chunk)", balancer.Name, u.Kind, lb.KindsText("dnsdist"))
	}
	if strings.TrimSpace(u.Lua) == "" {
		return "", dnsroll.Errorf(dnsroll.EINVALID, "dnsdist: update %s: lua is empty: give the console chunk to run, such as addACL('198.51.100.0/24')", balancer.Name)
	}
	guard := ""
	if u.ID != "" {
		// A retry after a lost reply finds the mark and runs nothing.
		guard = fmt.Sprintf("if %s['%s'] then return '%s' .. %[1]s['%[2]s'] end; ", markTable, mark(u), ranAlready)
	}
	lua := fmt.Sprintf("%[1]s = %[1]s or {}; %[2]s%[1]s['%[3]s'] = 'sent'; %[4]s", markTable, guard, mark(u), u.Lua)
	out, err := d.exec(ctx, fleet, balancer, lua)
	if err == nil {
		err = refused(out[0])
	}
	if err != nil {
		return "", fmt.Errorf("dnsdist: update %s: %w", balancer.Name, err)
	}
	switch strings.TrimSpace(out[0]) {
	case ranAlready + "sent":
		return "console (had run, its reply lost): " + firstLine(u.Lua), nil
	case ranAlready + "undone":
		return "", dnsroll.Errorf(dnsroll.ECONFLICT, "dnsdist: update %s: this update's chunk ran and its undo_lua since: not run again", balancer.Name)
	}
	return "console: " + firstLine(u.Lua), nil
}

// ranAlready begins the reply of an update whose chunk had reached
// dnsdist before; its mark follows.
const ranAlready = "dnsroll: ran already: "

// Restore runs u.UndoLua, which puts back what u.Lua changed, where u's
// chunk reached dnsdist (see markTable), once; elsewhere, and without
// undo_lua, there is nothing to run.
func (d *Driver) Restore(ctx context.Context, fleet *config.Fleet, balancer config.LoadBalancer, u lb.Update) (lb.Restored, error) {
	if strings.TrimSpace(u.UndoLua) == "" {
		return lb.Restored{Note: "nothing restored: the update has no undo_lua"}, nil
	}
	var did lb.Restored
	err := d.talk(ctx, fleet, balancer, func(c *Console) error {
		var err error
		did, err = undo(ctx, c, u)
		return err
	})
	if err != nil {
		return lb.Restored{}, fmt.Errorf("dnsdist: restore %s: %w", balancer.Name, err)
	}
	return did, nil
}

// undo is Restore's session: u's mark read, then, if it says 'sent',
// the mark set to 'undone' and undo_lua run, in one message.
func undo(ctx context.Context, c *Console, u lb.Update) (lb.Restored, error) {
	entry := fmt.Sprintf("%s['%s']", markTable, mark(u))
	state, err := c.Exec(ctx, fmt.Sprintf("return (%s and %s) or 'none'", markTable, entry))
	if err != nil {
		return lb.Restored{}, err
	}
	switch strings.TrimSpace(state) {
	case "none":
		return lb.Restored{Note: "nothing restored: this update's chunk never reached dnsdist (or dnsdist restarted since, which dropped it), so undo_lua did not run"}, nil
	case "undone":
		return lb.Restored{Note: "undo_lua had run already", Undone: true}, nil
	case "sent":
	default:
		return lb.Restored{}, fmt.Errorf("reading whether this update's chunk reached dnsdist: the console answered %q", strings.TrimSpace(state))
	}
	// The mark turns 'undone' in undo_lua's own message, which dnsdist
	// compiles whole before it runs any of it: a retry after a lost reply
	// finds it so and runs nothing again. A chunk that fails is the
	// operator's to look at (EINVALID), not retried.
	reply, err := c.Exec(ctx, entry+" = 'undone'; "+u.UndoLua)
	if err == nil {
		err = refused(reply)
	}
	if err != nil {
		return lb.Restored{}, err
	}
	return lb.Restored{Note: "ran undo_lua", Undone: true}, nil
}

// mark names update u in markTable, the same for its retries and its
// Restore: u.ID (the workflow run's) with its chunk, hashed, so that it
// needs no quoting in Lua. Without u.ID, an update is known by its chunk
// alone.
func mark(u lb.Update) string {
	h := sha256.Sum256([]byte(u.ID + "\x00" + u.Lua))
	return hex.EncodeToString(h[:12])
}

// refused is EINVALID when reply, the console's, reports a Lua error.
func refused(reply string) error {
	if luaFailed(reply) {
		return dnsroll.Errorf(dnsroll.EINVALID, "the console refused the chunk: %s", strings.TrimSpace(reply))
	}
	return nil
}

// luaFailed reports whether a console reply is a Lua error, as dnsdist
// words it, or its refusal of a setting it takes only from its config
// file ("Max UDP outstanding cannot be altered at runtime!"), which is no
// error to Lua and changes nothing.
func luaFailed(reply string) bool {
	return strings.Contains(reply, "Error: ") || strings.Contains(reply, "[string \"") || strings.HasPrefix(reply, "Fatal") ||
		strings.Contains(reply, " at runtime!")
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " …"
	}
	return s
}
