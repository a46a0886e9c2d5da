package rollouts

import (
	"testing"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/internal/temporaltest"
	"github.com/dnsroll/dnsroll/workflows"
)

// A run Temporal does not know is ENOTFOUND to each reader of one, as
// their callers answer a 404 for it, not a 500: its input, its status, a
// retry of it and a signal to it.
func TestUnknownRunIsNotFound(t *testing.T) {
	c := temporaltest.DevServer(t, workflows.SearchAttributes...)
	for _, r := range []Run{{WorkflowID: "rollout-nobody"}, {WorkflowID: "rollout-nobody", RunID: "8e1f3a52-5a62-4bd0-9c1e-0d6a8f1b2c3d"}} {
		if _, err := Input(t.Context(), c, r); dnsroll.ErrorCode(err) != dnsroll.ENOTFOUND {
			t.Errorf("Input(%+v): %v (code %q), want not found", r, err, dnsroll.ErrorCode(err))
		}
		if _, err := Status(t.Context(), c, r); dnsroll.ErrorCode(err) != dnsroll.ENOTFOUND {
			t.Errorf("Status(%+v): %v (code %q), want not found", r, err, dnsroll.ErrorCode(err))
		}
		if _, _, err := Retry(t.Context(), c, r); dnsroll.ErrorCode(err) != dnsroll.ENOTFOUND {
			t.Errorf("Retry(%+v): %v (code %q), want not found", r, err, dnsroll.ErrorCode(err))
		}
		if err := Signal(t.Context(), c, r, workflows.SignalAbort, workflows.SignalInput{}); dnsroll.ErrorCode(err) != dnsroll.ENOTFOUND {
			t.Errorf("Signal(%+v): %v (code %q), want not found", r, err, dnsroll.ErrorCode(err))
		}
	}
}
