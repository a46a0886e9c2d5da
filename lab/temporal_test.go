package lab

import (
	"slices"
	"testing"

	"github.com/dnsroll/dnsroll/workflows"
)

// The lab's Temporal registers every search attribute rollouts set, as a
// Keyword; one it missed would fail every start in the lab.
func TestSearchAttributes(t *testing.T) {
	for _, name := range []string{"Fleet", "Phase", "Revision"} {
		if !slices.Contains(SearchAttributes, name+"=Keyword") {
			t.Errorf("SearchAttributes = %v, missing %s=Keyword", SearchAttributes, name)
		}
	}
	if got, want := len(SearchAttributes), len(workflows.SearchAttributes); got != want {
		t.Errorf("the lab registers %d search attributes, rollouts set %d", got, want)
	}
}
