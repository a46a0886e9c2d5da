package rollouts

import (
	"testing"

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
