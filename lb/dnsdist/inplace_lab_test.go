package dnsdist

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/activities"
	"github.com/dnsroll/dnsroll/lb"
	"github.com/dnsroll/dnsroll/lb/lbtest"
)

var _ activities.InPlaceUpdater = (*Driver)(nil)

// TestInPlaceDnsdistConfig changes a lab dnsdist's ACL and server policy
// through its console under UDP and TCP load, then undoes it: no query may
// be lost.
func TestInPlaceDnsdistConfig(t *testing.T) {
	l := newStageLab(t)
	ctx := context.Background()
	blue := lbtest.StartTXT(t, "blue")
	l.stage(t, []dnsroll.Server{blue}, nil)
	lbtest.WantTXT(t, l.LB.Address, "blue")
	acl := func() string {
		out, err := l.d.exec(ctx, l.Fleet, l.LB, "showACL()")
		if err != nil {
			t.Fatal(err)
		}
		return out[0]
	}
	before := acl()
	var keep []string
	for _, n := range strings.Fields(before) {
		keep = append(keep, "'"+n+"'")
	}
	u := lb.Update{
		Kind:    lb.UpdateConsole,
		Lua:     "addACL('198.51.100.0/24')\nsetServerPolicy(leastOutstanding)",
		UndoLua: "setACL({" + strings.Join(keep, ",") + "})\nsetServerPolicy(leastOutstanding)",
	}

	load := lbtest.StartInPlaceLoad(t, l.LB.Address)
	const updates = 20
	for i := range updates {
		if _, err := l.d.Update(ctx, l.Fleet, l.LB, u); err != nil {
			t.Fatalf("update %d: %v", i, err)
		}
		if got := acl(); !strings.Contains(got, "198.51.100.0/24") {
			t.Fatalf("after update %d the ACL is %q; want 198.51.100.0/24 in it", i, got)
		}
		if did, err := l.d.Restore(ctx, l.Fleet, l.LB, u); err != nil || !did.Undone {
			t.Fatalf("restore %d: %+v, %v; want undone", i, did, err)
		}
		if got := acl(); got != before {
			t.Fatalf("after restore %d the ACL is %q; want %q", i, got, before)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, lost := load.Report(t, fmt.Sprintf("BENCH in-place dnsdist console change: %d changes and undos", updates)); lost != 0 {
		t.Errorf("%d queries lost in %d console changes; want 0", lost, updates)
	}

	// A chunk that fails is refused as invalid, naming the console.
	_, err := l.d.Update(ctx, l.Fleet, l.LB, lb.Update{Kind: lb.UpdateConsole, Lua: "noSuchFunction()"})
	if dnsroll.ErrorCode(err) != dnsroll.EINVALID || !strings.Contains(err.Error(), "console refused") {
		t.Errorf("a failing chunk: error %v (code %q), want EINVALID saying the console refused it", err, dnsroll.ErrorCode(err))
	}
	// A setting dnsdist takes only from its config file is refused at
	// runtime in plain words, not as an error: still a refusal. Before,
	// the update succeeded and changed nothing.
	_, err = l.d.Update(ctx, l.Fleet, l.LB, lb.Update{Kind: lb.UpdateConsole, Lua: "setMaxUDPOutstanding(65535)"})
	if dnsroll.ErrorCode(err) != dnsroll.EINVALID || !strings.Contains(err.Error(), "at runtime") {
		t.Errorf("a setting dnsdist takes only at startup: error %v (code %q), want EINVALID quoting dnsdist", err, dnsroll.ErrorCode(err))
	}
	lbtest.WantTXT(t, l.LB.Address, "blue")
}

// undoTrace is what the undo_lua of the restore tests adds to the ACL: a
// trace that it ran, as an undo that is not neutral (rmRule(0),
// delDynBlock, a setACL of another list) leaves one.
const undoTrace = "203.0.113.0/24"

// TestInPlaceDnsdistRestoreOnlyWhereTheChunkRan: a restore runs undo_lua
// on a real dnsdist where the update's chunk reached it and may have run,
// and only there, once.
func TestInPlaceDnsdistRestoreOnlyWhereTheChunkRan(t *testing.T) {
	l, d, ch := newFaultyConsoleLab(t)
	ctx := context.Background()
	acl := func() string {
		out, err := d.exec(ctx, l.Fleet, l.LB, "showACL()")
		if err != nil {
			t.Fatal(err)
		}
		return out[0]
	}
	before := acl()
	for _, tt := range []struct {
		name, lua      string
		refuse, deaf   int
		updateErr, ran bool
	}{
		{name: "sent and run", lua: "addACL('198.51.100.0/24')", ran: true},
		{name: "the connection refused", lua: "addACL('198.51.100.0/24')", refuse: 1, updateErr: true},
		// dnsdist compiles a message whole before it runs any of it.
		{name: "a chunk that does not compile", lua: "addACL('198.51.100.0/24')\naddACL(", updateErr: true},
		{name: "a chunk that fails half-way", lua: "addACL('198.51.100.0/24')\nerror('half-way')", updateErr: true, ran: true},
		{name: "the reply lost", lua: "addACL('198.51.100.0/24')", deaf: 1, updateErr: true, ran: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			u := lb.Update{Kind: lb.UpdateConsole, Lua: tt.lua, UndoLua: "addACL('" + undoTrace + "')", ID: t.Name()}
			ch.refuse, ch.deaf = tt.refuse, tt.deaf
			if _, err := d.Update(ctx, l.Fleet, l.LB, u); (err != nil) != tt.updateErr {
				t.Fatalf("update: %v; want an error: %v", err, tt.updateErr)
			}
			did, err := d.Restore(ctx, l.Fleet, l.LB, u)
			if err != nil || did.Undone != tt.ran || strings.Contains(acl(), undoTrace) != tt.ran {
				t.Errorf("restore: %+v, %v, ACL %q; want undo_lua run: %v", did, err, acl(), tt.ran)
			}
			// A second restore (a retry whose first reply was lost) runs
			// no undo_lua again.
			setACL(t, d, l, before)
			did, err = d.Restore(ctx, l.Fleet, l.LB, u)
			if err != nil || did.Undone != tt.ran || acl() != before {
				t.Errorf("second restore: %+v, %v, ACL %q; want nothing run, the ACL %q", did, err, acl(), before)
			}
		})
	}
}

// setACL sets the lab dnsdist's ACL to acl, as showACL() prints it.
func setACL(t *testing.T, d *Driver, l *stageLab, acl string) {
	t.Helper()
	var keep []string
	for _, n := range strings.Fields(acl) {
		keep = append(keep, "'"+n+"'")
	}
	if _, err := d.exec(context.Background(), l.Fleet, l.LB, "setACL({"+strings.Join(keep, ",")+"})"); err != nil {
		t.Fatal(err)
	}
}

// A restore whose reply is lost after dnsdist ran undo_lua is retried by
// Temporal: the retry must not run undo_lua again, which may not be
// neutral (rmRule(0) would remove another rule). Before, the mark was set
// to 'undone' in a message after undo_lua's, and the retry ran it twice.
func TestInPlaceDnsdistRestoreRunsUndoOnceThroughALostReply(t *testing.T) {
	l, d, ch := newFaultyConsoleLab(t)
	ctx := context.Background()
	u := lb.Update{Kind: lb.UpdateConsole, Lua: "addACL('198.51.100.0/24')", UndoLua: "undo_count = (undo_count or 0) + 1", ID: t.Name()}
	if _, err := d.Update(ctx, l.Fleet, l.LB, u); err != nil {
		t.Fatal(err)
	}
	for at := 1; at <= 3; at++ {
		ch.deaf, ch.deafAt = 1, at
		if _, err := d.Restore(ctx, l.Fleet, l.LB, u); err == nil {
			break // the restore sends fewer messages than at
		}
	}
	ch.deaf = 0
	if did, err := d.Restore(ctx, l.Fleet, l.LB, u); err != nil || !did.Undone {
		t.Fatalf("the restore's retry: %+v, %v", did, err)
	}
	out, err := d.exec(ctx, l.Fleet, l.LB, "return tostring(undo_count)")
	if err != nil || strings.TrimSpace(out[0]) != "1" {
		t.Errorf("undo_lua ran %q times through lost replies and retries (%v), want once", strings.TrimSpace(out[0]), err)
	}
}

// An update whose reply was lost after its chunk ran is retried by its
// activity: the retry runs the chunk no second time (an addAction twice
// leaves a rule that undo_lua's one rmRule does not take away), and
// succeeds, the chunk having run.
func TestInPlaceDnsdistUpdateRunsOnceThroughALostReply(t *testing.T) {
	l, d, ch := newFaultyConsoleLab(t)
	ctx := context.Background()
	u := lb.Update{Kind: lb.UpdateConsole, Lua: "update_count = (update_count or 0) + 1", UndoLua: "update_count = update_count - 1", ID: t.Name()}
	ch.deaf, ch.deafAt = 1, 1
	if _, err := d.Update(ctx, l.Fleet, l.LB, u); err == nil {
		t.Fatal("the update whose reply was lost succeeded: the test lost no reply")
	}
	if got, err := d.Update(ctx, l.Fleet, l.LB, u); err != nil || !strings.Contains(got, "had run") {
		t.Errorf("the retry: %q, %v; want success saying the chunk had run", got, err)
	}
	out, err := d.exec(ctx, l.Fleet, l.LB, "return tostring(update_count)")
	if err != nil || strings.TrimSpace(out[0]) != "1" {
		t.Errorf("the chunk ran %q times through a lost reply and a retry (%v), want once", strings.TrimSpace(out[0]), err)
	}
	// Another run's update of the same chunk is its own: it runs.
	other := u
	other.ID = t.Name() + "/2"
	if _, err := d.Update(ctx, l.Fleet, l.LB, other); err != nil {
		t.Fatal(err)
	}
	if out, err := d.exec(ctx, l.Fleet, l.LB, "return tostring(update_count)"); err != nil || strings.TrimSpace(out[0]) != "2" {
		t.Errorf("after another run's update the chunk ran %q times (%v), want twice", strings.TrimSpace(out[0]), err)
	}
}

// newFaultyConsoleLab is a lab dnsdist fronting a blue server, and a
// driver whose console connections to it fail as ch is set.
func newFaultyConsoleLab(t *testing.T) (*stageLab, *Driver, *faultyChannel) {
	t.Helper()
	l := newStageLab(t)
	l.stage(t, []dnsroll.Server{lbtest.StartTXT(t, "blue")}, nil)
	ch := &faultyChannel{Channel: lb.Local{}}
	d := &Driver{Reach: l.Reach()}
	d.Channels = faultyOpener{l.LB.Name: ch}
	return l, d, ch
}
