package workflows

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/workflow"
)

// listenForSignals turns abort and rollback signals into a stop of the
// forward steps. Once blue deletion has begun, there is nothing to roll back
// to: the signal is recorded as rejected and the rollout carries on.
func (r *rollout) listenForSignals(ctx workflow.Context) {
	listenSignals(ctx, []string{SignalAbort, SignalRollback, SignalApprove}, r.event,
		func(ctx workflow.Context, name string, in SignalInput) {
			if name == SignalApprove {
				r.onApprove(ctx, in)
			} else {
				r.onStopSignal(ctx, name, in)
			}
		})
}

// listenSignals receives the named signals for the life of a workflow and
// hands each payload, decoded, to handle. A payload that cannot be read is
// reported through event and otherwise ignored. The names are a slice, not
// a map: workflow code must not depend on map order.
func listenSignals(ctx workflow.Context, names []string, event func(workflow.Context, string),
	handle func(ctx workflow.Context, name string, in SignalInput)) {
	chans := make([]workflow.ReceiveChannel, len(names))
	for i, n := range names {
		chans[i] = workflow.GetSignalChannel(ctx, n)
	}
	for {
		sel := workflow.NewSelector(ctx)
		for i, ch := range chans {
			name := names[i]
			sel.AddReceive(ch, func(c workflow.ReceiveChannel, _ bool) {
				var raw converter.RawValue
				c.Receive(ctx, &raw)
				in, err := decodeSignal(raw, signalFields[name]...)
				gateUnknown := false
				for _, added := range fieldsAdded {
					old := slices.DeleteFunc(slices.Clone(signalFields[name]), added.has)
					if len(old) == len(signalFields[name]) {
						continue
					}
					// Runs from before took the added field, whatever its
					// value, for an unknown one. The two are compared as
					// refusals of one shape, so that only what the payload
					// says can tell them apart.
					if _, oldErr := decodeSignalWant(raw, signalShape(signalFields[name]), old...); fmt.Sprint(oldErr) != fmt.Sprint(err) &&
						workflow.GetVersion(ctx, added.version, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
						in, err = decodeSignal(raw, old...)
						gateUnknown = gateUnknown || added.version == versionApproveGate
					}
				}
				var unknown *unknownFieldsError
				if errors.As(err, &unknown) && workflow.GetVersion(ctx, versionStrictSignals, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
					in, err = unknown.in, nil
				}
				if gateUnknown {
					// Nor did they compare it with the open gate.
					in.Gate = 0
				}
				if err != nil {
					event(ctx, name+" ignored: "+err.Error())
					return
				}
				handle(ctx, name, in)
			})
		}
		sel.Select(ctx)
	}
}

// stopping is how every workflow takes abort and rollback signals: the
// stop asked for, and whether the point of no return is passed.
type stopping struct {
	// stop is set by an abort or rollback signal.
	stop *stopRequest
	// committed is set once the old servers' deletion starts: there is no
	// way back after it.
	committed bool
	// failedFirst is a step's failure that had happened, unawaited, when
	// the stop was taken: the run ends with it (takeFailedFirst).
	failedFirst error
}

// takeFailedFirst keeps, for a stop just taken, the failure of a step of
// run that had ended but not been acted on (Run.alreadyFailed): the run
// ends with it, not the stop. Each workflow gates it with its own version.
func (s *stopping) takeFailedFirst(ctx workflow.Context, run *Run, version string) {
	if failed := run.alreadyFailed(ctx); failed != nil && workflow.GetVersion(ctx, version, workflow.DefaultVersion, 1) == 1 {
		s.failedFirst = failed
	}
}

// requestStop takes an abort or rollback signal: rejected once committed
// (why says why, for the operator), ignored while already stopping, else
// recorded as the stop. Each gets an event; it reports whether the caller
// stops its forward steps now.
func (s *stopping) requestStop(ctx workflow.Context, event func(workflow.Context, string), name string, in SignalInput, why string) bool {
	switch {
	case s.committed:
		event(ctx, name+" rejected: "+why)
	case s.stop != nil:
		event(ctx, name+" ignored: already stopping ("+s.stop.signal+")")
	default:
		s.stop = &stopRequest{signal: name, in: in}
		event(ctx, name+" requested"+in.describe())
		return true
	}
	return false
}

// commit passes the point of no return, unless a stop was taken first. A
// step that was running when the stop cancelled the forward steps, and
// that does not heartbeat, learns of the cancel only when it ends: on a
// real server it then reports its result, not a cancellation, and the
// forward steps would carry on past the stop the operator was told of.
func (s *stopping) commit(ctx workflow.Context) error {
	if s.stop != nil || ctx.Err() != nil {
		return workflow.ErrCanceled
	}
	s.committed = true
	return nil
}

// versionNoCommitAfterStop marks the change that has a load balancer
// replacement, and a rollout with a load balancer that fronts no blue,
// check for a stop before they commit (stopping.commit), as rollouts did
// before deleting blue; and a load balancer update check for an abort
// before a load balancer keeps its update.
const versionNoCommitAfterStop = "no-commit-after-stop"

func (r *rollout) onStopSignal(ctx workflow.Context, name string, in SignalInput) {
	if r.st.Phase.Done() {
		r.event(ctx, name+" ignored: the rollout has ended")
		return
	}
	// The undo under way already flips every load balancer back and
	// deletes green; a stop would start a second flip back, racing it.
	// Runs from before this check did.
	if r.undoing && workflow.GetVersion(ctx, versionStopWhileUndoing, workflow.DefaultVersion, 1) == 1 {
		r.event(ctx, name+" ignored: the rollout is already being undone ("+r.st.Failure+")")
		return
	}
	if r.requestStop(ctx, r.event, name, in, r.noWayBack()) {
		r.takeFailedFirst(ctx, &r.st.Run, versionFailedBeforeStop)
		r.flipBackNow(ctx)
		r.cancelSteps()
	}
}

// versionFailedBeforeStop marks the change that has a rollout stopped
// while a step's failure waited to be acted on end with that failure
// (rollout.failedFirst). Runs from before ended aborted or rolled back:
// a webhook that wants only one of those events would be sent another.
const versionFailedBeforeStop = "failed-before-stop"

// versionStopWhileUndoing marks the change that has a stop signal during
// the undo ignored.
const versionStopWhileUndoing = "stop-while-undoing-ignored"

func (r *rollout) event(ctx workflow.Context, msg string) {
	r.st.Events = append(r.st.Events, Event{At: workflow.Now(ctx), Message: msg})
	workflow.GetLogger(ctx).Info(msg, "fleet", r.st.Fleet)
}

func (r *rollout) onApprove(ctx workflow.Context, in SignalInput) {
	if r.st.Phase != PhaseAwaitingApproval {
		r.event(ctx, "approve ignored: the rollout is "+string(r.st.Phase)+", not awaiting approval")
		return
	}
	if why := otherGate(in, r.st.ApprovalGate); why != "" {
		r.event(ctx, "approve ignored: "+why)
		return
	}
	r.approved = true
	r.event(ctx, "approved"+in.describe())
}

// otherGate says why an approve is not for the open gate, or "" when it
// is, or names none.
func otherGate(in SignalInput, open int) string {
	if in.Gate == 0 || in.Gate == open {
		return ""
	}
	return fmt.Sprintf("it is for approval gate %d, but gate %d is open: approve it with gate %d once you have checked what it holds back (see the status)", in.Gate, open, open)
}

// decodeSignal reads a signal's payload: {"reason": ..., "by": ...} and
// the signal's own fields, a plain string (the reason), or nothing. An
// object with other fields is an *unknownFieldsError, as the API refuses
// it. Anything else is an error that
// quotes the payload, so the operator sees in the events what was sent
// instead of a signal that silently did nothing. Every workflow reads its
// signals here, and the reason and by come back clipped (clipped).
func decodeSignal(raw converter.RawValue, fields ...string) (SignalInput, error) {
	return decodeSignalWant(raw, signalShape(fields), fields...)
}

// decodeSignalWant is decodeSignal, its refusals naming want as the shape
// the signal takes.
func decodeSignalWant(raw converter.RawValue, want string, fields ...string) (SignalInput, error) {
	p := raw.Payload()
	if p == nil {
		return SignalInput{}, nil
	}
	data := bytes.TrimSpace(p.GetData())
	switch enc := string(p.GetMetadata()[converter.MetadataEncoding]); {
	case enc == converter.MetadataEncodingNil || len(data) == 0 || string(data) == "null":
		return SignalInput{}, nil
	case enc != converter.MetadataEncodingJSON:
		return SignalInput{}, fmt.Errorf("its payload is %s, not JSON", enc)
	}
	var in SignalInput
	err := json.Unmarshal(data, &in)
	if err == nil {
		if unknown := unknownFields(data, fields); len(unknown) > 0 {
			return SignalInput{}, &unknownFieldsError{in: in.clipped(), fields: unknown, want: want}
		}
		return in.clipped(), nil
	}
	var reason string
	if json.Unmarshal(data, &reason) == nil {
		return SignalInput{Reason: reason}.clipped(), nil
	}
	text := string(data)
	if len(text) > 200 {
		text = text[:200] + "..."
	}
	// An object whose field has the wrong type, such as {"gate": "2"}.
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) && typeErr.Field != "" {
		return SignalInput{}, fmt.Errorf(`its payload %s has a %s for %q, which takes a %s: want %s or a string`,
			text, typeErr.Value, typeErr.Field, jsonKind(typeErr.Type.Kind().String()), want)
	}
	return SignalInput{}, fmt.Errorf(`its payload %s is neither %s nor a string`, text, want)
}

// signalShape is the JSON object a signal that takes fields besides reason
// and by takes, for the operator who sent another: {"reason": "...", "by":
// "...", "gate": 1}.
func signalShape(fields []string) string {
	shape := `{"reason": "...", "by": "..."`
	for _, f := range fields {
		if f == "gate" {
			shape += `, "gate": 1`
		} else {
			shape += fmt.Sprintf(`, %q: "..."`, f)
		}
	}
	return shape + "}"
}

// jsonKind names a Go kind as JSON does.
func jsonKind(kind string) string {
	switch {
	case strings.HasPrefix(kind, "int"), strings.HasPrefix(kind, "uint"), strings.HasPrefix(kind, "float"):
		return "number"
	case kind == "bool":
		return "boolean"
	}
	return kind
}

// signalFields are the fields a signal takes besides reason and by.
var signalFields = map[string][]string{
	SignalZoneRevision: {"revision", "live_bundle", "live_unknown"},
	SignalApprove:      {"gate"},
}

// fieldsAdded are the signal fields added while runs were under way, each
// with the version that added it: runs from before ignored a signal
// naming one, as one with an unknown field. A slice, for a deterministic
// order of GetVersion calls.
var fieldsAdded = []fieldsAddedAt{
	{versionLiveInSignal, []string{"live_bundle", "live_unknown"}},
	{versionApproveGate, []string{"gate"}},
}

type fieldsAddedAt struct {
	version string
	fields  []string
}

func (a fieldsAddedAt) has(f string) bool { return slices.Contains(a.fields, f) }

// versionLiveInSignal marks the change that has zone-revision take the
// fleet's live revision (SignalInput.LiveBundle, LiveUnknown).
const versionLiveInSignal = "zone-revision-live"

// versionApproveGate marks the change that has approve name its gate
// (SignalInput.Gate).
const versionApproveGate = "approve-gate"

// gatesNumbered says whether the run numbers its approval gates: one from
// before versionApproveGate (whose first gate opened, or whose first
// approve naming a gate came, on a worker from before) ignores an approve
// that names a gate, so its status numbers none, and nothing asks for one.
func gatesNumbered(ctx workflow.Context) bool {
	return workflow.GetVersion(ctx, versionApproveGate, workflow.DefaultVersion, 1) == 1
}

// unknownFields lists, sorted, the keys of the JSON object data that
// name neither reason, by nor one of fields, matched as json.Unmarshal
// matches them.
func unknownFields(data []byte, fields []string) []string {
	var keys map[string]json.RawMessage
	if json.Unmarshal(data, &keys) != nil {
		return nil
	}
	known := append([]string{"reason", "by"}, fields...)
	var unknown []string
	for k := range keys {
		if !slices.ContainsFunc(known, func(f string) bool { return strings.EqualFold(k, f) }) {
			unknown = append(unknown, strconv.Quote(k))
		}
	}
	slices.Sort(unknown)
	return unknown
}

// unknownFieldsError is a signal object with fields besides reason and
// by, such as {"reson": "wrong zone"}; in is what the rest of it says,
// which runs from before versionStrictSignals acted on.
type unknownFieldsError struct {
	in     SignalInput
	fields []string
	// want is the shape the signal takes (signalShape).
	want string
}

func (e *unknownFieldsError) Error() string {
	noun := "field"
	if len(e.fields) > 1 {
		noun = "fields"
	}
	return fmt.Sprintf(`its payload has the unknown %s %s: want %s or a string`, noun, strings.Join(e.fields, ", "), e.want)
}

// The most of a signal's reason and by kept, in bytes (see
// SignalInput.clipped).
const (
	maxSignalReason = 1000
	maxSignalBy     = 200
)

// clipped bounds the reason and by: both are copied into the events, the
// status failure and the workflow's failure message (whose details hold
// the status again), and a signal may carry up to 2 MB. A reason of 700 KB
// made Temporal terminate the run (failure exceeds size limit); one of
// 1.5 MB failed every workflow task (gRPC message too large), so the run
// never ended and the fleet stayed locked. What is cut says how long it
// was, and so does every event and failure that quotes it.
func (s SignalInput) clipped() SignalInput {
	s.Reason = clipText(s.Reason, maxSignalReason)
	s.By = clipText(s.By, maxSignalBy)
	s.LiveBundle = clipText(s.LiveBundle, maxSignalBy)
	s.LiveUnknown = clipText(s.LiveUnknown, maxSignalReason)
	return s
}

// clipText cuts s to at most n bytes, on a rune boundary, and says so.
func clipText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return fmt.Sprintf("%s…(clipped, %d bytes)", s[:cut], len(s))
}

// versionStrictSignals marks the change that has a signal whose object
// names a field besides reason and by ignored, as the API refuses it;
// runs from before acted on it.
const versionStrictSignals = "strict-signal-fields"
