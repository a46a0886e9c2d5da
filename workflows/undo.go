package workflows

import "go.temporal.io/sdk/workflow"

// Compensation is an undo stack, as in Temporal's saga samples: each step
// that changes the world pushes what undoes it when it starts (a step that
// fails may have half happened), and a rollout that stops runs the undos
// in reverse order. The point of no return clears the stack: once blue is
// being deleted, nothing is undone.

// Undo actions, in the order steps push them.
const (
	// UndoDeleteGreen deletes every -next server (createGreen).
	UndoDeleteGreen = "DeleteGreen"
	// UndoReleaseGreen points every load balancer at blue alone, removing
	// a staged green (stageLBs).
	UndoReleaseGreen = "ReleaseGreen"
	// UndoFlipBackToBlue flips every load balancer back to blue (the first
	// flip).
	UndoFlipBackToBlue = "FlipBackToBlue"
	// UndoSwitchBackToBlue points every load balancer back at blue with the
	// driver's playbook (the switch of rollouts from before the two-phase
	// switch, and cleanup-only runs).
	UndoSwitchBackToBlue = "SwitchBackToBlue"
)

// undo is one entry of the stack.
type undo struct {
	name string
	run  func(ctx workflow.Context) error
}

// undoStack is the compensation of every workflow here, top last.
type undoStack []undo

// push records what undoes a step that is starting. Pushing the undo
// already on top changes nothing: a step that runs once per load balancer
// needs one undo for all of them.
func (s *undoStack) push(name string, run func(ctx workflow.Context) error) {
	if n := len(*s); n > 0 && (*s)[n-1].name == name {
		return
	}
	*s = append(*s, undo{name: name, run: run})
}

// has reports whether the stack holds name.
func (s undoStack) has(name string) bool {
	for _, u := range s {
		if u.name == name {
			return true
		}
	}
	return false
}

// run runs the stack from the top, popping each undo that succeeds; it
// stops at the first that fails, which stays on top for the next round.
func (s *undoStack) run(ctx workflow.Context) error {
	for len(*s) > 0 {
		top := (*s)[len(*s)-1]
		if err := top.run(ctx); err != nil {
			return err
		}
		*s = (*s)[:len(*s)-1]
	}
	return nil
}

// trafficMoved reports whether any load balancer may send queries to
// green: a flip or a switch has started and is not undone.
func (r *rollout) trafficMoved() bool {
	return r.undos.has(UndoFlipBackToBlue) || r.undos.has(UndoSwitchBackToBlue)
}
