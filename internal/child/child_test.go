package child

import (
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dnsroll/dnsroll/internal/pidfile"
)

// A process that exits while waited for is ErrExited, and what it wrote
// is appended to its log after an earlier run's.
func TestWaitForExitedAndLogAppended(t *testing.T) {
	log := filepath.Join(t.TempDir(), "x.log")
	for _, word := range []string{"first", "second"} {
		p, err := Start(exec.Command("sh", "-c", "echo "+word+"; echo "+word+" >&2; exit 3"), log)
		if err != nil {
			t.Fatal(err)
		}
		err = p.WaitFor(context.Background(), time.Minute, time.Millisecond, func(context.Context) error { return errors.New("not ready") })
		if !errors.Is(err, ErrExited) || !strings.Contains(err.Error(), "exit status 3") {
			t.Fatalf("WaitFor = %v, want ErrExited with the exit status", err)
		}
	}
	if got, want := Tail(log, 1000), "first\nfirst\nsecond\nsecond\n"; got != want {
		t.Errorf("log = %q, want %q", got, want)
	}
	if got := Tail(log, 7); got != "…second\n" {
		t.Errorf("Tail(7) = %q", got)
	}
}

// WaitFor gives up after limit with ready's error; a process that
// ignores Stop's signal is killed after grace with its whole group.
func TestStopKillsTheGroup(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "grandchild.pid")
	// Both ignore SIGTERM, so only the SIGKILL after grace ends them.
	p, err := Start(exec.Command("sh", "-c", "trap '' TERM; sh -c 'echo $$ > "+pidFile+"; sleep 60' & wait"), "")
	if err != nil {
		t.Fatal(err)
	}
	var grandchild int
	err = p.WaitFor(context.Background(), 10*time.Second, 10*time.Millisecond, func(context.Context) error {
		grandchild, err = pidfile.Running(pidFile, "sh")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	notYet := errors.New("never ready")
	if err := p.WaitFor(context.Background(), 50*time.Millisecond, 10*time.Millisecond, func(context.Context) error { return notYet }); err != notYet {
		t.Errorf("WaitFor past its limit = %v, want ready's error", err)
	}
	p.Stop(syscall.SIGTERM, 200*time.Millisecond)
	select {
	case <-p.Exited():
	default:
		t.Fatal("Stop returned before the process exited")
	}
	deadline := time.Now().Add(5 * time.Second)
	for pidfile.Alive(grandchild, "sh") {
		if time.Now().After(deadline) {
			t.Fatalf("grandchild %d outlived Stop", grandchild)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
