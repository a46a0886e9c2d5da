package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/dnsroll/dnsroll/internal/needlab"
)

// The history budget of issue 14, item 1, on a real lab rollout of a
// 100,000-zone fleet (the fleet's first, which plans, creates, provisions
// and analyses every zone): the whole history stays under 5 MB and no
// payload in it is over 256 KB, both measured from the history Temporal
// keeps. make bench-scale measures the same, with a second rollout
// against blue, for every size.
func TestHistoryBudgetOf100000Zones(t *testing.T) {
	o := labOptions(t, "a lab rollout of 100,000 zones")
	bin := filepath.Join(t.TempDir(), "dnsroll")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/dnsroll").CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/dnsroll: %v\n%s", err, out)
	}
	o.dnsroll = bin
	dir, err := os.MkdirTemp(defaultDir(), "dnsroll-budget-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sz, err := startSize(t.Context(), o, dir, 100_000)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sz.stop)
	w, err := sz.startWorker(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	h, err := rollout(t.Context(), sz.client, o.timeout, sz.fleet.Name, "A")
	if err != nil {
		t.Fatalf("the rollout of 100,000 zones: %v%s", err, logTail(sz.logPath))
	}
	t.Logf("100,000 zones: rollout %s, history %d bytes in %d events, largest payload %d bytes (%s)", h.Wall().Round(time.Second), h.Bytes, h.Events, h.MaxPayload, h.Where)
	if h.Events == 0 || h.Bytes >= historyBudget {
		t.Errorf("history %d bytes in %d events, want under %d", h.Bytes, h.Events, historyBudget)
	}
	if h.MaxPayload > payloadBudget {
		t.Errorf("a payload of %d bytes in %s, want at most %d", h.MaxPayload, h.Where, payloadBudget)
	}
}

// labOptions skips t under -short, and fails or skips it (needlab) without
// what a size's lab needs; it returns the options of a lab of this tree.
func labOptions(t *testing.T, what string) options {
	t.Helper()
	needlab.Slow(t, what)
	temporalBin := os.Getenv("DNSROLL_TEMPORAL_BIN")
	if temporalBin == "" {
		needlab.Missing(t, "DNSROLL_TEMPORAL_BIN is not set: the lab needs the temporal CLI (make tools; make test sets it)")
	}
	for _, p := range []string{"named", "nginx", "ansible-playbook"} {
		if _, err := exec.LookPath(p); err != nil {
			needlab.Missing(t, "the lab needs %s (make deps)", p)
		}
	}
	ansible, err := filepath.Abs("../../ansible")
	if err != nil {
		t.Fatal(err)
	}
	return options{temporalBin: temporalBin, ansibleDir: ansible, timeout: 15 * time.Minute, changed: 3}
}
