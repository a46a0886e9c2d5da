package dnsdist

import (
	"context"
	"fmt"
	"strings"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/config"
	"github.com/dnsroll/dnsroll/lb"
)

// Update changes balancer's running dnsdist through its console: u.Lua in
// one session. dnsdist applies console settings at once, with no restart
// and no lost query. A chunk that raises an error fails with EINVALID.
// Changes made this way live until dnsdist restarts; the role's config
// is where lasting ones belong.
func (d *Driver) Update(ctx context.Context, fleet *config.Fleet, balancer config.LoadBalancer, u lb.Update) (string, error) {
	if u.Kind != lb.UpdateConsole {
		return "", dnsroll.Errorf(dnsroll.EINVALID, "dnsdist: update %s: kind %q: dnsdist updates in place with kind %s (a console chunk)", balancer.Name, u.Kind, lb.KindsText("dnsdist"))
	}
	if strings.TrimSpace(u.Lua) == "" {
		return "", dnsroll.Errorf(dnsroll.EINVALID, "dnsdist: update %s: lua is empty: give the console chunk to run, such as addACL('198.51.100.0/24')", balancer.Name)
	}
	if err := d.console1(ctx, fleet, balancer, u.Lua); err != nil {
		return "", fmt.Errorf("dnsdist: update %s: %w", balancer.Name, err)
	}
	return "console: " + firstLine(u.Lua), nil
}

// Restore runs u.UndoLua, which puts back what u.Lua changed; without it
// there is nothing to run.
func (d *Driver) Restore(ctx context.Context, fleet *config.Fleet, balancer config.LoadBalancer, u lb.Update) (lb.Restored, error) {
	if strings.TrimSpace(u.UndoLua) == "" {
		return lb.Restored{Note: "nothing restored: the update has no undo_lua"}, nil
	}
	if err := d.console1(ctx, fleet, balancer, u.UndoLua); err != nil {
		return lb.Restored{}, fmt.Errorf("dnsdist: restore %s: %w", balancer.Name, err)
	}
	return lb.Restored{Note: "ran undo_lua", Undone: true}, nil
}

// console1 runs one chunk; a reply that reports a Lua error is EINVALID.
func (d *Driver) console1(ctx context.Context, fleet *config.Fleet, balancer config.LoadBalancer, lua string) error {
	out, err := d.exec(ctx, fleet, balancer, lua)
	if err != nil {
		return err
	}
	if len(out) == 1 && luaFailed(out[0]) {
		return dnsroll.Errorf(dnsroll.EINVALID, "the console refused the chunk: %s", strings.TrimSpace(out[0]))
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
