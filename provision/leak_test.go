package provision

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dnsroll/dnsroll/internal/leaktest"
)

// A worker runs thousands of playbooks, some cancelled midway: each run,
// finished or cancelled, must leave no goroutine, descriptor, process or
// temporary directory behind. A stand-in for ansible-playbook that starts
// a child of its own and outlives the cancel makes the test quick.
func TestRunsLeaveNothingBehind(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	bin := filepath.Join(t.TempDir(), "ansible-playbook")
	sleep := sleepArg()
	script := "#!/bin/sh\nsleep " + sleep + " &\nsleep " + sleep + "\n"
	if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	r := &Runner{Binary: bin, ProgressInterval: 10 * time.Millisecond}
	req := Request{Playbook: "testdata/ok.yml", Hosts: localHosts("h1"), Connection: "local"}
	run := func(i int) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Duration(20+i%5*20)*time.Millisecond)
		defer cancel()
		if _, err := r.Run(ctx, req, func(string) {}); err == nil {
			t.Fatal("cancelled run succeeded")
		}
	}
	run(0)
	base := leaktest.Take(t)
	for i := range 20 {
		run(i)
	}
	leaktest.Check(t, base, 0, 3*time.Second)
	waitFor(t, "the stand-in's sleeps to die", func() bool { return len(matching("sleep "+sleep)) == 0 })
	left, err := os.ReadDir(tmp)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) > 0 {
		t.Errorf("%d temporary directories left, such as %s", len(left), left[0].Name())
	}
}
