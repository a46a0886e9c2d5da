package dnsdist

import (
	"context"
	"strings"
	"testing"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/config"
	"github.com/dnsroll/dnsroll/lb"
	"github.com/dnsroll/dnsroll/lb/lbtest"
	"github.com/dnsroll/dnsroll/workflows"
)

// TestInPlaceDnsdistWorkflow runs LoadBalancerUpdateWorkflow with the real
// activities against two lab dnsdists. A console update that fails at
// lb2, whose console refused the connection before the chunk was sent,
// leaves lb2 as it was: its restore runs no undo_lua there, and lb1,
// updated, checked and baked, keeps the update. One whose check after lb1 fails
// runs undo_lua on lb1, where the chunk ran, and never reaches lb2.
func TestInPlaceDnsdistWorkflow(t *testing.T) {
	l := newStageLab(t)
	ctx := context.Background()
	fleet := l.Fleet
	lbtest.UpdateFleet(fleet, 1)
	lb2 := config.LoadBalancer{Name: "lb2", Address: "127.0.0.1:" + lbtest.FreePort(t), Fronts: config.Labels{"ns2"}, Driver: "dnsdist"}
	dir2, err := l.d.Dir(fleet, lb2.Name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = Stop(context.Background(), dir2) })
	fleet.LoadBalancers = []config.LoadBalancer{l.LB, lb2}
	backend := lbtest.StartSOA(t, fleet.Zones[0].Name)
	for _, b := range fleet.LoadBalancers {
		if err := l.d.Point(ctx, fleet, b, []dnsroll.Server{backend}); err != nil {
			t.Fatal(err)
		}
	}
	opener := faultyOpener{"lb1": {Channel: lb.Local{}}, "lb2": {Channel: lb.Local{}}}
	d := &Driver{Reach: l.Reach()}
	d.Channels = opener
	acls := func() string {
		var out []string
		for _, b := range fleet.LoadBalancers {
			r, err := d.exec(ctx, fleet, b, "showACL()")
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, b.Name+": "+strings.Join(strings.Fields(r[0]), " "))
		}
		return strings.Join(out, "; ")
	}
	run := func(u lb.Update) (workflows.Status, string) {
		out, _ := lbtest.RunUpdate(t, d, fleet, u)
		return out, lbtest.Steps(out)
	}
	before := acls()
	if want := "lb1: 0.0.0.0/0 ::/0; lb2: 0.0.0.0/0 ::/0"; before != want {
		t.Fatalf("ACLs before: %s, want %s", before, want)
	}

	opener["lb2"].refuse = 1
	out, steps := run(lb.Update{Kind: lb.UpdateConsole, Lua: "addACL('198.51.100.0/24')", UndoLua: "addACL('" + undoTrace + "')"})
	if want := "CheckBefore lb1 succeeded,Update lb1 succeeded,CheckAfter lb1 succeeded,Bake lb1 succeeded,CheckBefore lb2 succeeded,Update lb2 failed,Restore lb2 succeeded"; steps != want {
		t.Errorf("steps\n %s\nwant\n %s", steps, want)
	}
	// Nothing was put back: lb2 was never changed.
	if out.Phase != workflows.PhaseFailed || !strings.Contains(out.Failure, "never reached dnsdist") {
		t.Errorf("phase %s, failure %q; want failed, saying lb2's chunk never reached dnsdist", out.Phase, out.Failure)
	}
	if got, want := acls(), "lb1: 0.0.0.0/0 198.51.100.0/24 ::/0; lb2: 0.0.0.0/0 ::/0"; got != want {
		t.Errorf("ACLs after\n %s\nwant\n %s", got, want)
	}

	// An ACL that lets no check through: the check after lb1 fails, and
	// lb1 gets its ACL back.
	out, steps = run(lb.Update{Kind: lb.UpdateConsole, Lua: "setACL({'192.0.2.0/24'})", UndoLua: "setACL({'0.0.0.0/0', '198.51.100.0/24', '::/0'})"})
	if want := "CheckBefore lb1 succeeded,Update lb1 succeeded,CheckAfter lb1 failed,Restore lb1 succeeded"; steps != want {
		t.Errorf("steps\n %s\nwant\n %s", steps, want)
	}
	if out.Phase != workflows.PhaseRolledBack {
		t.Errorf("phase %s, failure %q; want rolled-back", out.Phase, out.Failure)
	}
	if got, want := acls(), "lb1: 0.0.0.0/0 198.51.100.0/24 ::/0; lb2: 0.0.0.0/0 ::/0"; got != want {
		t.Errorf("ACLs after\n %s\nwant\n %s", got, want)
	}
}
