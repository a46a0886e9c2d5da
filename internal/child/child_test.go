package child

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
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
	start := time.Now()
	p.Stop(syscall.SIGTERM, 200*time.Millisecond)
	// Killed with its group, not when its sleeping grandchild ends it.
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("Stop took %v with a grace of 200ms", took)
	}
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

// Signal reaches the whole group: a server's workers stop with it, even
// when the process that leads them ignores the signal.
func TestSignalReachesTheGroup(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "worker.pid")
	// The worker starts before the leader ignores SIGTERM, so it does not.
	p, err := Start(exec.Command("sh", "-c", "sh -c 'echo $$ > "+pidFile+"; exec sleep 60' & trap '' TERM; wait"), "")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop(syscall.SIGKILL, time.Second)
	var worker int
	if err := p.WaitFor(context.Background(), 10*time.Second, 10*time.Millisecond, func(context.Context) error {
		worker, err = pidfile.Running(pidFile, "sleep")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	p.Signal(syscall.SIGTERM)
	for deadline := time.Now().Add(5 * time.Second); pidfile.Alive(worker, "sleep"); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("worker %d outlived SIGTERM to its group", worker)
		}
	}
}

// parentEnv, set, makes this test binary the parent in
// TestChildDiesWithItsParent: it starts a child, writes its pid there, and
// waits to be killed.
const parentEnv = "DNSROLL_CHILD_TEST_PARENT"

// A child dies with whoever started it, even one killed with kill -9,
// which runs no cleanup: the kernel kills it (Pdeathsig).
func TestChildDiesWithItsParent(t *testing.T) {
	if pidFile := os.Getenv(parentEnv); pidFile != "" {
		p, err := Start(exec.Command("sleep", "60"), "")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(pidFile, []byte(strconv.Itoa(p.cmd.Process.Pid)), 0o600); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Minute)
		return
	}
	pidFile := filepath.Join(t.TempDir(), "child.pid")
	parent := exec.Command(os.Args[0], "-test.run=^TestChildDiesWithItsParent$")
	parent.Env = append(os.Environ(), parentEnv+"="+pidFile)
	if err := parent.Start(); err != nil {
		t.Fatal(err)
	}
	defer parent.Wait() //nolint:errcheck // killed
	var child int
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		var err error
		if child, err = pidfile.Running(pidFile, "sleep"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			_ = parent.Process.Kill()
			t.Fatalf("the parent started no child: %v", err)
		}
	}
	_ = parent.Process.Kill()
	for deadline := time.Now().Add(5 * time.Second); pidfile.Alive(child, "sleep"); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			_ = syscall.Kill(child, syscall.SIGKILL)
			t.Fatalf("child %d outlived its parent's kill -9", child)
		}
	}
}
