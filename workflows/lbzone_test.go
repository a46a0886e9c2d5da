package workflows

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/dnsroll/dnsroll/config"
	"github.com/dnsroll/dnsroll/registrar"
)

// zoneRollouts mocks the rollouts a replacement runs for its zone records:
// each takes the zone from the next of zones (the revision's records as
// served once it ends) and ends as ends says (nil: succeeded).
type zoneRollouts struct {
	w     *world
	got   []RolloutInput
	zones [][]registrar.NameServer
	ends  []error
	// takes is how long each rollout runs.
	takes time.Duration
}

func mockZoneRollouts(env *testsuite.TestWorkflowEnvironment, w *world, zones [][]registrar.NameServer, ends ...error) *zoneRollouts {
	z := &zoneRollouts{w: w, zones: zones, ends: ends}
	env.OnWorkflow(RolloutWorkflow, mock.Anything, mock.Anything).Return(func(ctx workflow.Context, in RolloutInput) (Status, error) {
		i := len(z.got)
		z.got = append(z.got, in)
		w.add("Rollout " + in.Revision)
		if err := workflow.Sleep(ctx, z.takes); err != nil {
			return Status{}, err
		}
		var end error
		if i < len(z.ends) {
			end = z.ends[i]
		}
		if end != nil {
			// A rollout that failed put blue back: the zone is as it was.
			return Status{Run: Run{Phase: PhaseRolledBack}}, end
		}
		w.mu.Lock()
		w.zoneAddrs = z.zones[i]
		w.mu.Unlock()
		return Status{Run: Run{Phase: PhaseSucceeded}}, nil
	})
	return z
}

// The zone gives its name servers the old load balancers' addresses, which
// resolvers take over the glue: once the new load balancers serve, the
// replacement waits for a revision naming theirs, rolls it out through the
// old and new load balancers under its own hold of the fleet, and only
// then moves the glue; the drain waits out the old records' TTL, and the
// replacement, whose zone now names the new load balancers, refuses an
// abort rather than delete them. A revision that still names an old one
// gets another wait.
func TestLBReplaceRollsOutTheZonesOwnAddresses(t *testing.T) {
	env, w := newLBReplaceEnv(t, false)
	w.zoneAddrs = oldGlue
	half := glueTo("203.0.113.1", "198.51.100.2") // the revision forgot ns2
	z := mockZoneRollouts(env, w, [][]registrar.NameServer{half, newGlue})
	var waiting LBReplaceStatus
	env.RegisterDelayedCallback(func() { waiting = queryLBStatus(t, env) }, 30*time.Minute)
	// Sent while the new load balancers are made: ignored.
	w.createAfter = 10 * time.Minute
	signalAt(env, time.Minute, SignalZoneRevision, SignalInput{Revision: "early"})
	signalAt(env, time.Hour, SignalZoneRevision, SignalInput{Revision: "r2", By: "ana"})
	signalAt(env, 2*time.Hour, SignalZoneRevision, SignalInput{Revision: "r3", By: "ana"})
	signalAt(env, 3*time.Hour, SignalAbort, SignalInput{Reason: "second thoughts"})
	st := runLBReplace(t, env, lbInput(), PhaseSucceeded)

	if waiting.Phase != PhaseAwaitingZoneRevision || waiting.Zone == nil ||
		strings.Join(waiting.Zone.Replace, ",") != "198.51.100.1 -> 203.0.113.1,198.51.100.2 -> 203.0.113.2" ||
		!strings.Contains(waiting.Zone.Instructions, "dnsroll lb zone-revision --fleet test") {
		t.Errorf("while waiting: phase %s, zone %+v; want awaiting-zone-revision with the addresses to change and the command", waiting.Phase, waiting.Zone)
	}
	if len(z.got) != 2 || z.got[0].Revision != "r2" || z.got[1].Revision != "r3" {
		t.Fatalf("zone rollouts %+v; want r2, then r3 (r2 still named lb2)", z.got)
	}
	in := z.got[0]
	if in.HeldBy == "" || in.Fleet != "test" || in.RequestedBy != "ana" || len(in.ExtraLoadBalancers) != 2 ||
		in.ExtraLoadBalancers[0].Name != "lb1-next" || in.ExtraLoadBalancers[1].Address != "203.0.113.2:53" {
		t.Errorf("zone rollout input %+v; want the fleet, held by the replacement, switching lb1-next and lb2-next too", in)
	}
	// The revision changes records by design, whatever the fleet's
	// probe.expect_changes says.
	if in.ExpectChanges == nil || !*in.ExpectChanges {
		t.Errorf("zone rollout expect_changes %v; want true", in.ExpectChanges)
	}
	if rolled, moved := w.index("Rollout r3"), w.index("SetGlue new"); rolled < 0 || moved < rolled {
		t.Errorf("the glue moved before the zone named the new load balancers; calls %v", w.calls)
	}
	if st.Drain == nil || st.Drain.TTL.D() != 24*time.Hour {
		t.Errorf("drain %+v; want the old records' TTL (24h) waited out", st.Drain)
	}
	if !hasEvent(st, "abort rejected: "+zoneNoWayBack) || !hasEvent(st, SignalZoneRevision+" ignored") {
		t.Errorf("events %+v; want the early zone-revision ignored and the abort rejected", st.Events)
	}
	if strings.Contains(strings.Join(st.Warnings, "\n"), "roll out a revision") {
		t.Errorf("warnings %q: the zone names the new addresses", st.Warnings)
	}
	if w.index("Delete lb1") < 0 || w.index("Delete lb1-next") >= 0 {
		t.Errorf("calls %v; want the old load balancers deleted and the new ones kept", w.calls)
	}
}

// Until the zone names a new load balancer, a stop undoes the replacement:
// a zone rollout that failed (and put blue back), an abort while waiting
// for the revision, or no revision within glue_wait each end with the new
// load balancers deleted and the glue never touched.
func TestLBReplaceZoneRolloutStopsUndo(t *testing.T) {
	for _, c := range []struct {
		name   string
		signal func(env *testsuite.TestWorkflowEnvironment)
		fail   error
		want   Phase
		reason string
	}{

		// One that failed (blue back) leaves the zone as it was: the wait
		// for another revision goes on, to glue_wait.
		{"rollout failed, no other revision", func(env *testsuite.TestWorkflowEnvironment) {
			signalAt(env, time.Hour, SignalZoneRevision, SignalInput{Revision: "r2"})
		}, temporal.NewNonRetryableApplicationError("VerifyGreen: ns1-next answers SERVFAIL", ErrTypeRolledBack, nil), PhaseFailed, "no zone-revision within"},
		{"aborted while waiting", func(env *testsuite.TestWorkflowEnvironment) {
			signalAt(env, time.Hour, SignalAbort, SignalInput{Reason: "not today"})
		}, nil, PhaseAborted, "not today"},
		{"no revision", func(*testsuite.TestWorkflowEnvironment) {}, nil, PhaseFailed, "no zone-revision within 72h0m0s (glue_wait)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			env, w := newLBReplaceEnv(t, false)
			w.zoneAddrs = oldGlue
			mockZoneRollouts(env, w, [][]registrar.NameServer{newGlue}, c.fail)
			c.signal(env)
			env.ExecuteWorkflow(LoadBalancerReplaceWorkflow, lbInput())
			var st LBReplaceStatus
			var app *temporal.ApplicationError
			if err := env.GetWorkflowError(); err != nil && errors.As(err, &app) {
				_ = app.Details(&st)
			} else if err == nil {
				st = lbResult(t, env)
			}
			if st.Phase != c.want || !strings.Contains(st.Failure, c.reason) {
				t.Errorf("phase %s, failure %q; want %s saying %q", st.Phase, st.Failure, c.want, c.reason)
			}
			if w.index("Delete lb1-next") < 0 || w.index("Delete lb2-next") < 0 || w.index("SetGlue new") >= 0 || w.index("Delete lb1") >= 0 {
				t.Errorf("calls %v; want the new load balancers deleted, the glue and old ones untouched", w.calls)
			}
		})
	}
}

// An abort that comes while the zone's rollout runs cancels that rollout;
// one past its own point of no return (blue being deleted) ends all the
// same, and the zone then names the new load balancers: the abort is
// rejected, and the replacement goes on rather than fail half-way with
// both sets of load balancers serving. (A rollout that takes the cancel
// and puts blue back is undone as any stop before: the lab's
// TestZoneRolloutStoppedUndoesTheReplacement.)
func TestLBReplaceAbortAfterTheZoneNamesTheNewLoadBalancersIsRejected(t *testing.T) {
	env, w := newLBReplaceEnv(t, false)
	w.zoneAddrs = oldGlue
	z := mockZoneRollouts(env, w, [][]registrar.NameServer{newGlue})
	z.takes = time.Hour
	signalAt(env, time.Hour, SignalZoneRevision, SignalInput{Revision: "r2"})
	signalAt(env, 90*time.Minute, SignalAbort, SignalInput{Reason: "wrong revision"})
	st := runLBReplace(t, env, lbInput(), PhaseSucceeded)
	if !hasEvent(st, "abort requested: wrong revision") || !hasEvent(st, "abort rejected: "+zoneNoWayBack) {
		t.Errorf("events %+v; want the abort taken, then rejected once the zone named the new load balancers", st.Events)
	}
	if w.index("SetGlue new") < 0 || w.index("Delete lb1-next") >= 0 {
		t.Errorf("calls %v; want the glue moved and the new load balancers kept", w.calls)
	}
}

// A zone rollout that could not undo itself (cleanup-failed) may leave the
// old load balancers on green, which serves the revision naming the new
// ones, while the new ones are back on blue. Each load balancer is asked:
// the old ones' answer names the new load balancers, so those stay, and
// the replacement fails without undo, the glue untouched. Before, the
// first answer (a new load balancer's, from blue) alone decided, and the
// new load balancers were deleted while resolvers could still be sent to
// them.
func TestLBReplaceZoneRolloutHalfUndoneKeepsTheNewLoadBalancers(t *testing.T) {
	env, w := newLBReplaceEnv(t, false)
	w.zoneAddrs = oldGlue
	cleanupFailed := temporal.NewNonRetryableApplicationError("FlipBackToBlue lb1-next: ssh: connection refused", ErrTypeFailed, nil, Status{Run: Run{Phase: PhaseCleanupFailed}})
	env.OnWorkflow(RolloutWorkflow, mock.Anything, mock.Anything).Return(func(workflow.Context, RolloutInput) (Status, error) {
		w.mu.Lock()
		w.zoneAddrsAt = map[string][]registrar.NameServer{"198.51.100.1:53": newGlue, "198.51.100.2:53": newGlue, "203.0.113.1:53": oldGlue, "203.0.113.2:53": oldGlue}
		w.mu.Unlock()
		return Status{}, cleanupFailed
	})
	signalAt(env, time.Hour, SignalZoneRevision, SignalInput{Revision: "r2"})
	env.ExecuteWorkflow(LoadBalancerReplaceWorkflow, lbInput())
	var st LBReplaceStatus
	var app *temporal.ApplicationError
	if err := env.GetWorkflowError(); !errors.As(err, &app) || app.Details(&st) != nil {
		t.Fatalf("error %v; want the replacement failed with its status", err)
	}
	if st.Phase != PhaseFailed || st.NoWayBack != zoneNoWayBack || !hasEvent(st, "ended cleanup-failed") {
		t.Errorf("phase %s, no_way_back %q, events %+v; want failed past the point of no return, saying how the rollout ended", st.Phase, st.NoWayBack, st.Events)
	}
	// The fleet config knows only the old load balancers: the operator is
	// told to add the new ones before any rollout.
	if w := strings.Join(st.Warnings, "\n"); !strings.Contains(w, "add them to the fleet config") || !strings.Contains(w, "lb1-next 203.0.113.1:53") {
		t.Errorf("warnings %q; want the new load balancers named, to add to the fleet config", st.Warnings)
	}
	if w.index("Delete lb1-next") >= 0 || w.index("SetGlue new") >= 0 {
		t.Errorf("calls %v; want the new load balancers kept and the glue untouched", w.calls)
	}
	// It fails at once, freeing the fleet for the rollout's cleanup, and
	// asks for no other revision, whose rollout's Plan would refuse load
	// balancers left on green, nor an abort, which is refused. Before, it
	// said to send either and held the fleet until glue_wait.
	if took := st.EndedAt.Sub(st.StartedAt); took > 2*time.Hour || hasEvent(st, "send "+SignalZoneRevision+" again") {
		t.Errorf("ended %s after it started, events %+v; want it failed at once, asking for no other revision", took, st.Events)
	}
}

// A zone rollout that fails past its own point of no return (a rename
// that fails once blue is deleted) leaves green serving the revision
// through the old and new load balancers: the zone names the new ones, so
// the replacement goes on, moving the glue, and warns that the rollout is
// to be finished. Before, it failed half-way, both sets of load balancers
// serving and the new ones in no fleet config.
func TestLBReplaceZoneRolloutFailedPastNoReturnGoesOn(t *testing.T) {
	env, w := newLBReplaceEnv(t, false)
	w.zoneAddrs = oldGlue
	env.OnWorkflow(RolloutWorkflow, mock.Anything, mock.Anything).Return(func(ctx workflow.Context, in RolloutInput) (Status, error) {
		w.add("Rollout " + in.Revision)
		_ = workflow.Sleep(ctx, 30*time.Minute)
		w.mu.Lock()
		w.zoneAddrs = newGlue // the load balancers front green
		w.mu.Unlock()
		st := Status{Run: Run{Phase: PhaseFailed}, Failure: "RenameServer ns1-next: label ns1 is taken; blue is (partly) deleted, green serves"}
		return st, temporal.NewNonRetryableApplicationError(st.Failure, ErrTypeFailed, nil, st)
	})
	signalAt(env, time.Hour, SignalZoneRevision, SignalInput{Revision: "r2"})
	env.ExecuteWorkflow(LoadBalancerReplaceWorkflow, lbInput())
	var st LBReplaceStatus
	if err := env.GetWorkflowError(); err != nil {
		var app *temporal.ApplicationError
		if errors.As(err, &app) {
			_ = app.Details(&st)
		}
	} else {
		st = lbResult(t, env)
	}
	if st.Phase != PhaseSucceeded || w.index("SetGlue new") < 0 || w.index("Delete lb1-next") >= 0 {
		t.Errorf("phase %s (%s), glue moved %v, lb1-next deleted %v; want the replacement to go on: the zone names the new load balancers",
			st.Phase, st.Failure, w.index("SetGlue new") >= 0, w.index("Delete lb1-next") >= 0)
	}
	if w := strings.Join(st.Warnings, "\n"); !strings.Contains(w, "label ns1 is taken") || !strings.Contains(w, "start a rollout of test to finish it") {
		t.Errorf("warnings %q; want the rollout's failure and what to do", st.Warnings)
	}
}

// The zone's rollout compares with the live revision the zone-revision
// signal carries, which the API looks up as it does for a rollout's start
// (a workflow cannot read visibility); a signal without it, as `temporal
// workflow signal` sends, has the rollout say why the comparison is
// unknown rather than that nothing succeeded before.
func TestLBReplaceZoneRolloutComparesWithTheLiveRevision(t *testing.T) {
	for _, c := range []struct {
		name        string
		signal      map[string]string
		bundle, why string
	}{
		{"looked up", map[string]string{"revision": "r2", "live_bundle": "sha256:live"}, "sha256:live", ""},
		{"lookup failed", map[string]string{"revision": "r2", "live_unknown": "visibility: unavailable"}, "", "visibility: unavailable"},
		{"not carried", map[string]string{"revision": "r2"}, "", "the zone-revision signal did not carry the fleet's live revision"},
	} {
		t.Run(c.name, func(t *testing.T) {
			env, w := newLBReplaceEnv(t, false)
			w.zoneAddrs = oldGlue
			z := mockZoneRollouts(env, w, [][]registrar.NameServer{newGlue})
			signalAt(env, time.Hour, SignalZoneRevision, c.signal)
			runLBReplace(t, env, lbInput(), PhaseSucceeded)
			if len(z.got) != 1 {
				t.Fatalf("zone rollouts %+v; want one", z.got)
			}
			if in := z.got[0]; in.LiveBundle != c.bundle || !strings.HasPrefix(in.LiveUnknown, c.why) || (c.why == "") != (in.LiveUnknown == "") {
				t.Errorf("zone rollout live_bundle %q, live_unknown %q; want %q, %q", in.LiveBundle, in.LiveUnknown, c.bundle, c.why)
			}
		})
	}
}

// A run from before zone-revision carried the live revision took those
// fields for unknown ones and ignored the signal: replayed, it must decide
// as it did.
func TestLBReplaceOldRunIgnoresLiveFields(t *testing.T) {
	env, w := newLBReplaceEnv(t, false)
	env.OnGetVersion(versionLiveInSignal, workflow.DefaultVersion, 1).Return(workflow.DefaultVersion)
	w.zoneAddrs = oldGlue
	z := mockZoneRollouts(env, w, [][]registrar.NameServer{newGlue})
	signalAt(env, time.Hour, SignalZoneRevision, map[string]string{"revision": "r2", "live_bundle": "sha256:live"})
	signalAt(env, 2*time.Hour, SignalZoneRevision, SignalInput{Revision: "r3"})
	st := runLBReplace(t, env, lbInput(), PhaseSucceeded)
	if len(z.got) != 1 || z.got[0].Revision != "r3" {
		t.Errorf("zone rollouts %+v; want r3 alone", z.got)
	}
	if !hasEvent(st, SignalZoneRevision+` ignored: its payload has the unknown field "live_bundle"`) {
		t.Errorf("events %+v; want the signal with live_bundle ignored", st.Events)
	}
}

// A run from before versionLiveInSignal ignored a zone-revision whose
// object had a live_bundle or live_unknown key, whatever its value: it
// replays so, an empty or null value included.
func TestLBReplaceOldRunIgnoresEmptyLiveFields(t *testing.T) {
	for _, body := range []string{`{"revision":"r2","live_bundle":""}`, `{"revision":"r2","live_unknown":null}`} {
		t.Run(body, func(t *testing.T) {
			env, w := newLBReplaceEnv(t, false)
			env.OnGetVersion(versionLiveInSignal, workflow.DefaultVersion, 1).Return(workflow.DefaultVersion)
			w.zoneAddrs = oldGlue
			z := mockZoneRollouts(env, w, [][]registrar.NameServer{newGlue})
			var raw map[string]any
			if err := json.Unmarshal([]byte(body), &raw); err != nil {
				t.Fatal(err)
			}
			signalAt(env, time.Hour, SignalZoneRevision, raw)
			signalAt(env, 2*time.Hour, SignalZoneRevision, SignalInput{Revision: "r3"})
			runLBReplace(t, env, lbInput(), PhaseSucceeded)
			if len(z.got) != 1 || z.got[0].Revision != "r3" {
				t.Errorf("zone rollouts %+v; want r3 alone: an old run ignored r2 (an unknown key)", z.got)
			}
		})
	}
}

// A zone that names one new load balancer is past the point of no return
// as one that names them all: resolvers may be sent to that one, so a
// later abort is refused and the new load balancers stay.
func TestLBReplaceZoneNamingOneNewLoadBalancerIsPastNoReturn(t *testing.T) {
	env, w := newLBReplaceEnv(t, false)
	w.zoneAddrs = oldGlue
	mockZoneRollouts(env, w, [][]registrar.NameServer{glueTo("203.0.113.1", "198.51.100.2")})
	signalAt(env, time.Hour, SignalZoneRevision, SignalInput{Revision: "r2"})
	signalAt(env, 3*time.Hour, SignalAbort, SignalInput{Reason: "wrong revision"})
	env.ExecuteWorkflow(LoadBalancerReplaceWorkflow, lbInput())
	var st LBReplaceStatus
	var app *temporal.ApplicationError
	switch err := env.GetWorkflowError(); {
	case err == nil:
		st = lbResult(t, env)
	case !errors.As(err, &app) || app.Details(&st) != nil:
		t.Fatalf("error %v; want the replacement's status", err)
	}
	if !hasEvent(st, "abort rejected: "+zoneNoWayBack) || st.NoWayBack != zoneNoWayBack {
		t.Errorf("no_way_back %q, events %+v; want the abort rejected once the zone named a new load balancer", st.NoWayBack, st.Events)
	}
	if w.index("Delete lb1-next") >= 0 || w.index("Delete lb2-next") >= 0 {
		t.Errorf("calls %v; want the new load balancers kept", w.calls)
	}
}

// A zone that cannot be asked once its rollout has ended (no load
// balancer answers) is asked again, a poll apart: it may answer, here
// naming the new load balancers, and the replacement goes on. One that
// never answers may name the new load balancers: the replacement fails
// without undo, keeping them and the glue as they are, and says why there
// is no way back.
func TestLBReplaceZoneUnaskedAfterItsRollout(t *testing.T) {
	for _, c := range []struct {
		name  string
		fails int
		want  Phase
	}{
		{"once", 4, PhaseSucceeded},
		{"ever", 1000, PhaseFailed},
	} {
		t.Run(c.name, func(t *testing.T) {
			env, w := newLBReplaceEnv(t, false)
			w.zoneAddrs = oldGlue
			mockZoneRollouts(env, w, [][]registrar.NameServer{newGlue})
			signalAt(env, time.Hour, SignalZoneRevision, SignalInput{Revision: "r2"}, func() {
				w.mu.Lock()
				defer w.mu.Unlock()
				w.parentFails, w.parentFailsAt = c.fails, w.env.Now()
			})
			env.ExecuteWorkflow(LoadBalancerReplaceWorkflow, lbInput())
			if c.want == PhaseSucceeded {
				if st := lbResult(t, env); st.Phase != c.want || w.index("SetGlue new") < 0 {
					t.Errorf("phase %s (%s), calls %v; want the zone asked again and the glue moved", st.Phase, st.Failure, w.calls)
				}
				return
			}
			st := failureStatus[LBReplaceStatus](t, env.GetWorkflowError())
			if st.Phase != c.want || !strings.Contains(st.NoWayBack, "the zone could not be asked") {
				t.Errorf("phase %s, no_way_back %q, failure %q; want failed past the point of no return, the zone unasked", st.Phase, st.NoWayBack, st.Failure)
			}
			if w.index("Delete lb1-next") >= 0 || w.index("Delete lb2-next") >= 0 || w.index("SetGlue new") >= 0 {
				t.Errorf("calls %v; want the new load balancers kept and the glue untouched", w.calls)
			}
		})
	}
}

// glue_wait bounds the whole wait for the zone's revision, however many
// are tried: one whose rollout failed does not start the wait over, and
// the status's wait_until stays true.
func TestLBReplaceZoneRevisionWaitEndsAtGlueWait(t *testing.T) {
	env, w := newLBReplaceEnv(t, false)
	w.zoneAddrs = oldGlue
	mockZoneRollouts(env, w, [][]registrar.NameServer{newGlue}, temporal.NewNonRetryableApplicationError("VerifyGreen: ns1-next answers SERVFAIL", ErrTypeRolledBack, nil))
	in := lbInput()
	in.GlueWait = config.Duration(6 * time.Hour)
	signalAt(env, 5*time.Hour, SignalZoneRevision, SignalInput{Revision: "r2"})
	env.ExecuteWorkflow(LoadBalancerReplaceWorkflow, in)
	st := failureStatus[LBReplaceStatus](t, env.GetWorkflowError())
	if !strings.Contains(st.Failure, "no zone-revision within 6h0m0s (glue_wait)") {
		t.Errorf("failure %q; want glue_wait passed with no revision rolled out", st.Failure)
	}
	if deleted, by := w.at["Delete lb1-next"], w.at["Create lb1"].Add(6*time.Hour+5*time.Minute); deleted.IsZero() || deleted.After(by) {
		t.Errorf("lb1-next deleted %s after it was created, want once glue_wait (6h) ends; calls %v", deleted.Sub(w.at["Create lb1"]), w.calls)
	}
}
