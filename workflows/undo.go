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

// pushUndo records what undoes a step that is starting. Pushing the undo
// already on top changes nothing: a step that runs once per load balancer
// needs one undo for all of them.
func (r *rollout) pushUndo(name string, run func(ctx workflow.Context) error) {
	if n := len(r.undos); n > 0 && r.undos[n-1].name == name {
		return
	}
	r.undos = append(r.undos, undo{name: name, run: run})
}

// hasUndo reports whether the stack holds name.
func (r *rollout) hasUndo(name string) bool {
	for _, u := range r.undos {
		if u.name == name {
			return true
		}
	}
	return false
}

// trafficMoved reports whether any load balancer may send queries to
// green: a flip or a switch has started and is not undone.
func (r *rollout) trafficMoved() bool {
	return r.hasUndo(UndoFlipBackToBlue) || r.hasUndo(UndoSwitchBackToBlue)
}

// runUndos runs the stack from the top, popping each undo that succeeds;
// it stops at the first that fails, which stays on top for the next round.
func (r *rollout) runUndos(ctx workflow.Context) error {
	for len(r.undos) > 0 {
		top := r.undos[len(r.undos)-1]
		if err := top.run(ctx); err != nil {
			return err
		}
		r.undos = r.undos[:len(r.undos)-1]
	}
	return nil
}
