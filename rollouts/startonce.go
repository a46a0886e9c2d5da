package rollouts

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/workflows"
)

// memoStartKey is the memo field of a rollout started with an idempotency
// key (StartOnce): the key's hash and its request's.
const memoStartKey = "dnsroll_start_key"

// startKey is what a keyed start leaves in its memo. Hashes, not the key:
// the memo shows in the Web UI, and a key only needs comparing.
type startKey struct {
	Key     string `json:"key"`
	Request string `json:"request"`
}

func newStartKey(key string, in workflows.RolloutInput) startKey {
	req, _ := json.Marshal(in) // a struct of plain fields: it always encodes
	k, r := sha256.Sum256([]byte(key)), sha256.Sum256(req)
	return startKey{Key: hex.EncodeToString(k[:]), Request: hex.EncodeToString(r[:])}
}

// StartOnce starts a rollout as Start does, once per key: a start whose
// key is that of the fleet's latest rollout, running or ended, returns
// that rollout with replayed true, not a conflict about it nor a second
// rollout. A CI job whose first answer was lost retries with its key and
// gets its own rollout. The key with another request is an EINVALID
// error. An empty key is Start.
func StartOnce(ctx context.Context, c client.Client, in workflows.RolloutInput, key string) (run Run, replayed bool, err error) {
	if key == "" {
		run, err = Start(ctx, c, in)
		return run, false, err
	}
	want := newStartKey(key, in)
	// The latest run first: one that already ended (a quick failure)
	// would otherwise be followed by a second rollout.
	latest := Run{WorkflowID: workflows.WorkflowID(in.Fleet)}
	if run, ok, err := Replayed(ctx, c, in, key); err != nil || ok {
		return run, ok, err
	}
	run, err = start(ctx, c, in, map[string]any{memoStartKey: want})
	var conflict *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &conflict) {
		// Another start with the key may have won the race.
		if mine, ok, kerr := keyedRun(ctx, c, Run{WorkflowID: latest.WorkflowID, RunID: conflict.RunId}, want); kerr != nil || ok {
			return mine, ok, kerr
		}
	}
	return run, false, startErr(in, err)
}

// Replayed is the rollout that StartOnce with in and key returns
// replayed, without starting one: the fleet's latest, if key started it
// with in; ok is false otherwise. The key with another request is an
// EINVALID error.
func Replayed(ctx context.Context, c client.Client, in workflows.RolloutInput, key string) (run Run, ok bool, err error) {
	return keyedRun(ctx, c, Run{WorkflowID: workflows.WorkflowID(in.Fleet)}, newStartKey(key, in))
}

// keyedRun reports whether run (the latest, when its RunID is empty) was
// started with want's key, and refuses the key with another request.
func keyedRun(ctx context.Context, c client.Client, run Run, want startKey) (Run, bool, error) {
	d, err := c.DescribeWorkflowExecution(ctx, run.WorkflowID, run.RunID)
	var missing *serviceerror.NotFound
	if errors.As(err, &missing) {
		return Run{}, false, nil
	}
	if err != nil {
		return Run{}, false, fmt.Errorf("read rollout %s: %w", run.WorkflowID, err)
	}
	info := d.GetWorkflowExecutionInfo()
	var got startKey
	p := info.GetMemo().GetFields()[memoStartKey]
	if p == nil || converter.GetDefaultDataConverter().FromPayload(p, &got) != nil || got.Key != want.Key {
		return Run{}, false, nil
	}
	found := Run{WorkflowID: info.GetExecution().GetWorkflowId(), RunID: info.GetExecution().GetRunId()}
	if got.Request != want.Request {
		return Run{}, false, dnsroll.Errorf(dnsroll.EINVALID, "rollout %s:%s was started with this key and another request; send a new key for a new request",
			found.WorkflowID, found.RunID)
	}
	return found, true, nil
}
