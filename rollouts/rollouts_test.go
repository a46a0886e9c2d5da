package rollouts

import (
	"strings"
	"testing"
	"time"

	"github.com/dnsroll/dnsroll/workflows"
)

func TestSummary(t *testing.T) {
	for _, tt := range []struct {
		in   workflows.RolloutInput
		want string
	}{
		{workflows.RolloutInput{Fleet: "lab"}, "roll out lab"},
		{workflows.RolloutInput{Fleet: "lab", Revision: "B", RequestedBy: "ci", Reason: "zone update"}, "roll out lab to revision B, by ci: zone update"},
	} {
		if got := summary(tt.in); got != tt.want {
			t.Errorf("summary(%+v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// The printer prints only what is new, with times when it has a clock,
// including a step's retries with their last error.
func TestPrinter(t *testing.T) {
	var b strings.Builder
	at := time.Date(2026, 12, 1, 15, 4, 5, 0, time.UTC)
	p := &Printer{W: &b, Clock: func() time.Time { return at }}
	st := workflows.Status{Phase: workflows.PhaseDeletingBlue, Steps: []*workflows.Step{{Name: "DeleteServer", Target: "ns1", State: workflows.StepRunning}}}
	p.Update(st)
	st.Retrying = []workflows.Retry{{Activity: "DeleteServer", Attempt: 3, LastError: "[500] Internal Server Error", Progress: "deleting ns1"}}
	p.Update(st)
	p.Update(st)
	want := "15:04:05 ==> deleting-blue\n" +
		"15:04:05     DeleteServer ns1         running    \n" +
		"15:04:05     ~ DeleteServer (deleting ns1): attempt 3 after: [500] Internal Server Error\n"
	if got := b.String(); got != want {
		t.Errorf("printed:\n%q\nwant:\n%q", got, want)
	}
}
