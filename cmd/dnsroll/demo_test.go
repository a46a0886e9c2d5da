package main

import (
	"strings"
	"testing"
)

// The demo's Web UI link names the run in the demo's own Temporal state
// (.lab/demo), which it removes unless --keep: make dev's lab, on
// .lab/dev, has no such run, so the hint must not send the operator there.
func TestDemoUIHintNamesTheDemosOwnState(t *testing.T) {
	for _, keep := range []bool{false, true} {
		hint := demoUIHint(".lab/demo", keep)
		if strings.Contains(hint, "make dev") || !strings.Contains(hint, "dnsroll dev --dir .lab/demo") {
			t.Errorf("keep %v: hint %q; want it to name dnsroll dev --dir .lab/demo, not make dev", keep, hint)
		}
		if !keep && !strings.Contains(hint, "--keep") {
			t.Errorf("without --keep: hint %q; want it to say that --keep keeps the run", hint)
		}
	}
}
