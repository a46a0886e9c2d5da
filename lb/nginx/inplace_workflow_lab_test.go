package nginx

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/config"
	"github.com/dnsroll/dnsroll/lb"
	"github.com/dnsroll/dnsroll/lb/lbtest"
	"github.com/dnsroll/dnsroll/workflows"
)

// TestInPlaceNginxWorkflow runs LoadBalancerUpdateWorkflow with the real
// activities against a lab nginx: a binary upgrade between two DNS checks,
// then a config the check after it fails on, which is restored.
func TestInPlaceNginxWorkflow(t *testing.T) {
	s := startStaged(t)
	ctx := context.Background()
	lbtest.UpdateFleet(s.Fleet, 2)
	s.Fleet.LoadBalancers = []config.LoadBalancer{s.LB}
	backend := lbtest.StartSOA(t, s.Fleet.Zones[0].Name)
	if err := s.d.Point(ctx, s.Fleet, s.LB, []dnsroll.Server{backend}); err != nil {
		t.Fatal(err)
	}
	run := func(u lb.Update) (workflows.Status, error) { return lbtest.RunUpdate(t, s.d, s.Fleet, u) }

	master := mustMaster(t, s.Dir)
	out, err := run(lb.Update{Kind: lb.UpdateBinary})
	if err != nil || out.Phase != workflows.PhaseSucceeded {
		t.Fatalf("binary upgrade: phase %s, error %v, steps %s", out.Phase, err, lbtest.Steps(out))
	}
	if got := mustMaster(t, s.Dir); got == master {
		t.Errorf("the master is still %d after the workflow's binary upgrade", got)
	}
	if got, want := lbtest.Steps(out), "CheckBefore lb1 succeeded,Update lb1 succeeded,CheckAfter lb1 succeeded"; got != want {
		t.Errorf("steps\n %s\nwant\n %s", got, want)
	}

	// A valid config that sends the queries nowhere: nginx -t accepts it,
	// the check after it fails, and the config before it comes back.
	conf, _, err := s.d.inplace(ctx, s.Fleet, s.LB)
	if err != nil {
		t.Fatal(err)
	}
	broken := strings.ReplaceAll(conf.conf, backend.DNSAddr(), "127.0.0.1:9")
	broken = strings.Replace(broken, "return \"dnsroll-", "return \"dnsroll-0", 1)
	if broken == conf.conf {
		t.Fatalf("the config has no %s to replace:\n%s", backend.DNSAddr(), conf.conf)
	}
	id0, _ := RunningConfigID(ctx, conf.socket)
	out, err = run(lb.Update{Kind: lb.UpdateConfig, Config: broken})
	if err == nil || out.Phase != workflows.PhaseRolledBack {
		t.Fatalf("broken config: phase %s, error %v; want rolled-back", out.Phase, err)
	}
	if got, want := lbtest.Steps(out), "CheckBefore lb1 succeeded,Update lb1 succeeded,CheckAfter lb1 failed,Restore lb1 succeeded"; got != want {
		t.Errorf("steps\n %s\nwant\n %s", got, want)
	}
	if got, _ := RunningConfigID(ctx, conf.socket); got != id0 {
		t.Errorf("after the restore nginx serves %q, want the config from before, %q", got, id0)
	}
	if got := out.Steps[len(out.Steps)-1].Note; got != "lb1: restored the config from before this update" {
		t.Errorf("the restore's note is %q", got)
	}

	// A config nginx -t refuses, after a successful update: its Restore
	// leaves that update's config in place (the config saved beside it is
	// the earlier update's), and says so.
	running, err := os.ReadFile(filepath.Join(s.Dir, "nginx.conf"))
	if err != nil {
		t.Fatal(err)
	}
	next := strings.Replace(string(running), "return \"dnsroll-", "return \"dnsroll-1", 1)
	if out, err = run(lb.Update{Kind: lb.UpdateConfig, Config: next}); err != nil {
		t.Fatalf("a new config: phase %s, error %v, steps %s", out.Phase, err, lbtest.Steps(out))
	}
	id1, _ := RunningConfigID(ctx, conf.socket)
	if id1 == id0 {
		t.Fatalf("the new config serves under the old ID %q", id0)
	}
	bad := strings.Replace(next, "stream {", "stream { bogus_directive on;", 1)
	out, err = run(lb.Update{Kind: lb.UpdateConfig, Config: bad})
	// Nothing changed, so nothing was rolled back.
	if err == nil || out.Phase != workflows.PhaseFailed {
		t.Fatalf("refused config: phase %s, error %v; want failed", out.Phase, err)
	}
	if got, want := lbtest.Steps(out), "CheckBefore lb1 succeeded,Update lb1 failed,Restore lb1 succeeded"; got != want {
		t.Errorf("steps\n %s\nwant\n %s", got, want)
	}
	if got := out.Steps[len(out.Steps)-1].Note; got != "lb1: nothing to restore: this update never replaced the config" {
		t.Errorf("the restore of a refused update says %q", got)
	}
	if got, _ := RunningConfigID(ctx, conf.socket); got != id1 {
		t.Errorf("after the refused update nginx serves %q, want the last update's %q", got, id1)
	}
}
