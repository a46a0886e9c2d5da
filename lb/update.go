package lb

import (
	"strconv"
	"strings"
)

// Update is one in-place change to a running load balancer (the
// LoadBalancerUpdateWorkflow): it keeps serving throughout, and a failed
// update is undone on that load balancer alone.
type Update struct {
	// Kind is one of the Update* kinds.
	Kind string `json:"kind"`
	// Config is the new nginx.conf (UpdateConfig); empty reloads the
	// config in place as it stands, validated.
	Config string `json:"config,omitempty"`
	// Lua is the console chunk that changes a dnsdist (UpdateConsole),
	// such as addACL('198.51.100.0/24'); UndoLua puts back what it
	// changed, and runs when the update fails, where Lua reached dnsdist.
	Lua     string `json:"lua,omitempty"`
	UndoLua string `json:"undo_lua,omitempty"`
	// ID tells this update from another with the same fields, and is the
	// same for its retries and its undo: the activities set it to their
	// workflow run's, so that a driver's Restore undoes only what this
	// update did. Not part of a request.
	ID string `json:"-"`
}

// Restored is what a driver's Restore of an Update did.
type Restored struct {
	// Undone says that the update's change was put back. It is false when
	// the update never changed the load balancer (refused, or nothing to
	// change), and when its change stays: something replaced it since, or
	// it went past its point of no return.
	Undone bool
	// Note says what the restore did, for the operator.
	Note string
}

// Kinds of Update.
const (
	// UpdateConfig is a validated nginx reload (nginx -t, then HUP).
	UpdateConfig = "config"
	// UpdateBinary is nginx's binary upgrade: a new master from the
	// binary now installed (USR2), the old workers drained (WINCH), the
	// old master stopped (QUIT). The package is installed beforehand.
	UpdateBinary = "binary"
	// UpdateConsole runs a Lua chunk on dnsdist's console.
	UpdateConsole = "console"
)

// UpdateKinds are the kinds of Update each driver takes, by driver name.
// An update workflow checks every chosen load balancer against them before
// it changes the first; each driver's Update refuses any other kind.
var UpdateKinds = map[string][]string{
	"nginx":   {UpdateConfig, UpdateBinary},
	"dnsdist": {UpdateConsole},
}

// KindsText is a driver's kinds for a message: "config" or "binary".
func KindsText(driver string) string {
	var quoted []string
	for _, k := range UpdateKinds[driver] {
		quoted = append(quoted, strconv.Quote(k))
	}
	return strings.Join(quoted, " or ")
}
