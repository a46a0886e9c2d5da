package api

import (
	"maps"
	"net/http"
	"slices"

	"github.com/dnsroll/dnsroll/rollouts"
	"github.com/dnsroll/dnsroll/workflows"
)

// cleanupLeft is what a cleanup after ro is told to undo besides the
// fleet's -next servers: what ro listed left, the green servers it knew,
// and, for a cleanup-only run whose workflow ended mid-way, the servers
// its own request named. The fleet file may since have dropped or renamed
// their nameservers, and its labels alone would miss them.
//
// A run that ended cleanup-failed listed all of them in cleanup.left. One
// that ended mid-way (terminated) listed nothing, though its status may
// record a cleanup begun: cleanup.left is filled only when a run ends
// cleanup-failed. Its status still has the green servers it knew, but a
// cleanup-only run's request is only in its input.
func (s *Server) cleanupLeft(r *http.Request, ro Rollout) ([]workflows.Leftover, error) {
	var left []workflows.Leftover
	if ro.Cleanup != nil {
		left = workflows.AddLeft(left, ro.Cleanup.Left...)
	}
	for _, label := range slices.Sorted(maps.Keys(ro.Green)) {
		g := ro.Green[label]
		left = workflows.AddLeft(left, workflows.Leftover{Kind: workflows.LeftoverServer, Name: g.Label, ID: g.ID, Action: "delete"})
	}
	if !endedMidWay(ro) {
		return left, nil
	}
	in, err := s.cfg.Backend.Input(r.Context(), rollouts.Run{WorkflowID: ro.WorkflowID, RunID: ro.RunID})
	if err != nil {
		return nil, err
	}
	if in.CleanUp != nil {
		left = workflows.AddLeft(left, in.CleanUp.Left...)
	}
	return left, nil
}

// endedMidWay reports whether ro's workflow ended without reaching an end
// of its own (terminated, timed out): none of its undo steps ran, nor did
// it list what is left.
func endedMidWay(ro Rollout) bool {
	return !Open(ro.State) && !ro.Phase.Done()
}
