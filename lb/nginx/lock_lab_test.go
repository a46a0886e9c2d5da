package nginx

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/lb/lbtest"
)

// pointedLab is a lab nginx pointed at blue by the real playbook, whose
// command lock the test then holds (lockRig) in place of an earlier
// command that still runs.
func pointedLab(t *testing.T) (*stagedLab, *lockRig) {
	t.Helper()
	s := newLab(t)
	if err := s.d.Point(context.Background(), s.Fleet, s.LB, []dnsroll.Server{s.blue}); err != nil {
		t.Fatalf("Point at blue: %v", err)
	}
	return s, holdLock(t, s.Dir)
}

// A Point (the playbook) held up by an earlier command, whose caller went
// away while a newer flip.sh or inplace.sh command reached the load
// balancer and ran first, must not undo that one; nor may it run while
// the earlier one does. Before, the playbook took neither the lock nor a
// ticket: it ran at once, beside the earlier command, and after the newer
// one.
func TestPlaybookWaitsAndIsRefusedAfterANewerCommand(t *testing.T) {
	s, r := pointedLab(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel) // kills the playbook's process group
	r.wantConflictOvertaken(t, "Point", func() error { return s.d.Point(ctx, s.Fleet, s.LB, []dnsroll.Server{s.green}) })
	lbtest.WantTXT(t, s.LB.Address, "blue")

	// A Point that reaches it next runs, after the newer command.
	if err := s.d.Point(ctx, s.Fleet, s.LB, []dnsroll.Server{s.green}); err != nil {
		t.Fatalf("next Point: %v", err)
	}
	lbtest.WantTXT(t, s.LB.Address, "green")
}

// A flip.sh or inplace.sh command held up at the lock whose caller went
// away while a newer Point (an abort's, pointing back at blue) reached the
// load balancer and ran first: the stale command must not undo the Point.
// Before, the Point took no ticket, and the stale command ran after it.
func TestCommandIsRefusedAfterANewerPlaybook(t *testing.T) {
	s, r := pointedLab(t)
	stale, stderr := r.start(t, "stale")
	r.overtakeWith(t, r.waitBlocked(t, true), func() {
		if err := s.d.Point(context.Background(), s.Fleet, s.LB, []dnsroll.Server{s.green}); err != nil {
			t.Errorf("newer Point: %v", err)
		}
	})
	err := stale.Wait()
	if got, _ := os.ReadFile(r.log); len(got) != 0 {
		t.Errorf("log %q; want the command overtaken by a Point to do nothing", got)
	}
	wantSuperseded(t, err, stderr.String())
	lbtest.WantTXT(t, s.LB.Address, "green")
}

// A Point holds the lock while it applies, here while it waits for a
// backend to accept TCP: a command that reaches the load balancer
// meanwhile waits for it to end. Before, the two ran side by side.
func TestPlaybookHoldsTheLockWhileItApplies(t *testing.T) {
	s, r := pointedLab(t)
	r.release(t)
	port := lbtest.FreePort(t)
	n, _ := strconv.Atoi(port)
	late := dnsroll.Server{Label: "late", IPv4: "127.0.0.1", DNSPort: n}
	done := make(chan error, 1)
	go func() { done <- s.d.Point(context.Background(), s.Fleet, s.LB, []dnsroll.Server{late}) }()
	if g := r.waitLocker(t, false, true); g == syscall.Getpgrp() {
		t.Fatal("the test holds the lock")
	}
	next, _ := r.start(t, "next")
	r.waitBlocked(t, true)
	ln, err := net.Listen("tcp", "127.0.0.1:"+port)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if err := <-done; err != nil {
		t.Fatalf("Point: %v", err)
	}
	if err := next.Wait(); err != nil {
		t.Fatalf("next: %v", err)
	}
	if got, _ := os.ReadFile(r.log); string(got) != "next\n" {
		t.Errorf("log %q; want the next command to run after the Point", got)
	}
}

// A flip.sh or inplace.sh command that reaches the load balancer while a
// Point waits for the lock runs after it: the Point's ticket, recorded in
// command.seq, leaves the command a newer one. Had the Point not recorded
// it, both would hold one ticket and the command would be refused.
func TestCommandQueuedBehindAPlaybookRunsAfterIt(t *testing.T) {
	s, r := pointedLab(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	r.runInOrder(t, func() error { return s.d.Point(ctx, s.Fleet, s.LB, []dnsroll.Server{s.green}) }, func() error { return r.cmd("newer").Run() })
	if got, _ := os.ReadFile(r.log); string(got) != "newer\n" {
		t.Errorf("log %q; want the command to run after the Point", got)
	}
	lbtest.WantTXT(t, s.LB.Address, "green")
}

// A Point after command.seq was lost (removed by hand) takes a ticket
// above the last one run, and runs.
func TestPlaybookRunsAfterTheSequenceRecordIsLost(t *testing.T) {
	s, r := pointedLab(t)
	r.release(t)
	if err := os.Remove(filepath.Join(s.Dir, "command.seq")); err != nil {
		t.Fatal(err)
	}
	if err := s.d.Point(context.Background(), s.Fleet, s.LB, []dnsroll.Server{s.green}); err != nil {
		t.Fatalf("Point after command.seq was removed: %v", err)
	}
	lbtest.WantTXT(t, s.LB.Address, "green")
}

// A Point gives up, having changed nothing, once it has waited its
// timeout (the role's dnsroll_lb_timeout) for the command lock, or for
// the lock of the state directory under which it takes its ticket.
func TestPlaybookGivesUpAtItsTimeout(t *testing.T) {
	s, r := pointedLab(t)
	point := func() error {
		j, err := s.d.job(s.Fleet, s.LB, []dnsroll.Server{s.green}, nil)
		if err != nil {
			t.Fatal(err)
		}
		j.req.Hosts[0].Vars["dnsroll_lb_timeout"] = 1
		// A wait without end fails too, well before the test's timeout.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		return s.d.apply(ctx, j)
	}
	if err := point(); err == nil || !strings.Contains(err.Error(), "still runs after 1 s") {
		t.Errorf("Point behind a command that holds the lock: %v, want it to give up after 1 s", err)
	}
	lbtest.WantTXT(t, s.LB.Address, "blue")

	r.release(t)
	r.lockDir(t)
	if err := point(); err == nil || !strings.Contains(err.Error(), "could not take a ticket in 1 s") {
		t.Errorf("Point with the state directory locked: %v, want it to give up after 1 s", err)
	}
	lbtest.WantTXT(t, s.LB.Address, "blue")
}
