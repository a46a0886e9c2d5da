package nginx

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/config"
	"github.com/dnsroll/dnsroll/lb"
	"github.com/dnsroll/dnsroll/lb/channel"
	"github.com/dnsroll/dnsroll/lb/channel/sshdtest"
)

// lockRig is a load balancer's state directory, whose command lock the
// test holds in place of an earlier command that still runs.
type lockRig struct {
	dir, log string
	j        job
	lock     *os.File
}

func newLockRig(t *testing.T) *lockRig {
	t.Helper()
	return holdLock(t, t.TempDir())
}

// holdLock is the rig for the state directory dir, which exists.
func holdLock(t *testing.T, dir string) *lockRig {
	t.Helper()
	r := &lockRig{dir: dir, log: filepath.Join(dir, "log")}
	r.j = job{paths: paths{conf: filepath.Join(dir, "nginx.conf"), pid: filepath.Join(dir, "nginx.pid"), stateDir: dir}}
	f, err := os.OpenFile(filepath.Join(dir, "command.lock"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	r.lock = f
	return r
}

// cmd is a command that appends name to the log once it runs, in a
// process group of its own, as sshd starts one.
func (r *lockRig) cmd(name string) *exec.Cmd {
	c := exec.Command("/bin/sh", "-c", command(r.j, 30*time.Second, "echo "+name+" >>"+r.log+"\n", nil))
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	return c
}

// start starts the command name, killed when the test ends, and returns
// it with its stderr.
func (r *lockRig) start(t *testing.T, name string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	c := r.cmd(name)
	var stderr bytes.Buffer
	c.Stderr = &stderr
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(-c.Process.Pid, syscall.SIGKILL); _ = c.Wait() })
	return c, &stderr
}

// mustRun runs the command name, which must succeed.
func (r *lockRig) mustRun(t *testing.T, name string) {
	t.Helper()
	if out, err := r.cmd(name).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v: %s", name, err, out)
	}
}

// lockDir holds the lock of the state directory, under which a command
// takes its ticket, until the test ends.
func (r *lockRig) lockDir(t *testing.T) {
	t.Helper()
	d, err := os.Open(r.dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	if err := syscall.Flock(int(d.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
}

// release lets the earlier command end.
func (r *lockRig) release(t *testing.T) {
	t.Helper()
	if err := syscall.Flock(int(r.lock.Fd()), syscall.LOCK_UN); err != nil {
		t.Fatal(err)
	}
}

// waitBlocked waits until a process waits for the command lock, and
// returns its process group; or with want false, until none does.
func (r *lockRig) waitBlocked(t *testing.T, want bool) int {
	t.Helper()
	return r.waitLocker(t, true, want)
}

// waitLocker waits until a process waits for the command lock (waiting),
// or holds it, and returns its process group; or with want false, until
// none does.
func (r *lockRig) waitLocker(t *testing.T, waiting, want bool) int {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		pgid := 0
		if g := r.lockers(t, waiting); len(g) > 0 {
			pgid = g[len(g)-1]
		}
		if (pgid != 0) == want {
			return pgid
		}
	}
	what := "holds"
	if waiting {
		what = "waits for"
	}
	t.Fatalf("a command %s the lock: %v, want %v", what, !want, want)
	return 0
}

// lockers lists the process groups of the processes that wait for the
// command lock (waiting), or hold it, now.
func (r *lockRig) lockers(t *testing.T, waiting bool) []int {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(r.lock.Name(), &st); err != nil {
		t.Fatal(err)
	}
	id := fmt.Sprintf("%02x:%02x:%d", unix.Major(st.Dev), unix.Minor(st.Dev), st.Ino)
	locks, _ := os.ReadFile("/proc/locks")
	var groups []int
	for _, line := range strings.Split(string(locks), "\n") {
		// "1: -> FLOCK  ADVISORY  WRITE <pid> <maj>:<min>:<inode> 0 EOF",
		// without "->" for the holder.
		f := strings.Fields(line)
		if len(f) < 7 || (f[1] == "->") != waiting {
			continue
		}
		if waiting {
			f = f[1:]
		}
		if f[5] == id {
			pid, _ := strconv.Atoi(f[4])
			if g, err := syscall.Getpgid(pid); err == nil { // not gone meanwhile
				groups = append(groups, g)
			}
		}
	}
	return groups
}

// overtake lets a newer command run while the one waiting for the lock in
// process group pgid waits on: the kernel does not hand out a lock in
// order, so the retry of a step, or an abort's flip back to blue, may get
// it before a command whose caller died while it waited. Stopped, the
// waiter leaves the lock's queue (its flock call starts again when it
// continues).
func (r *lockRig) overtake(t *testing.T, pgid int) {
	t.Helper()
	r.overtakeWith(t, pgid, func() {
		if out, err := r.cmd("newer").CombinedOutput(); err != nil {
			t.Fatalf("newer: %v: %s", err, out)
		}
	})
}

// overtakeWith is overtake with newer as the newer command.
func (r *lockRig) overtakeWith(t *testing.T, pgid int, newer func()) {
	t.Helper()
	if pgid == syscall.Getpgrp() {
		t.Fatalf("the command waiting for the lock is in the test's process group %d", pgid)
	}
	if err := syscall.Kill(-pgid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	r.waitBlocked(t, false)
	r.release(t)
	newer()
	if err := syscall.Kill(-pgid, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
}

// A command held up at the lock whose caller went away (a worker killed,
// its SSH connection gone), while something newer (the retry of its step,
// an abort's flip back to blue) reached the load balancer after it and
// ran first: once the lock is free, the stale one must not undo the newer
// one. Before, it ran, and put back the config its dead caller sent, such
// as green's, about to be deleted.
func TestLibRefusesACommandOvertakenByANewerOne(t *testing.T) {
	r := newLockRig(t)
	stale, stderr := r.start(t, "stale")
	r.overtake(t, r.waitBlocked(t, true))
	err := stale.Wait()
	if got, _ := os.ReadFile(r.log); string(got) != "newer\n" {
		t.Errorf("log %q; want only the newer command to have run", got)
	}
	wantSuperseded(t, err, stderr.String())

	// Commands that reach it in turn all run, each after the one before.
	r.mustRun(t, "next")
	if got, _ := os.ReadFile(r.log); string(got) != "newer\nnext\n" {
		t.Errorf("log %q; want the next command to run", got)
	}
}

// A command held up at the lock whose caller has gone, with nothing newer
// yet: sshd closes its end of the command's output when the worker's
// connection ends (a worker killed, a step cancelled), and the command
// does nothing once it gets the lock. Before, it ran on, after the
// workflow had moved on without it.
func TestLibDropsACommandWhoseCallerLeft(t *testing.T) {
	r := newLockRig(t)
	gone := r.cmd("gone")
	stdout, err := gone.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := gone.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(-gone.Process.Pid, syscall.SIGKILL); _ = gone.Wait() })
	r.waitBlocked(t, true)
	stdout.Close()
	r.release(t)
	err = gone.Wait()
	if got, _ := os.ReadFile(r.log); len(got) != 0 || err == nil {
		t.Errorf("log %q, %v; want the command whose caller left to do nothing", got, err)
	}
}

// The driver reads a command refused as overtaken as a conflict, which no
// retry fixes: a retry would reach the load balancer after the newer
// command, and undo it. Before, it was an error like any other, retried.
func TestOvertakenCommandIsAConflict(t *testing.T) {
	r := newLockRig(t)
	r.wantConflictOvertaken(t, "reload", func() error {
		_, err := runScript(context.Background(), lb.Local{}, r.j, "reload", nil)
		return err
	})
}

// wantConflictOvertaken runs run, which must wait for the lock, lets a
// newer command overtake it, and checks that only the newer one ran and
// that run failed as a conflict.
func (r *lockRig) wantConflictOvertaken(t *testing.T, what string, run func() error) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- run() }()
	r.overtake(t, r.waitBlocked(t, true))
	err := <-done
	if got, _ := os.ReadFile(r.log); string(got) != "newer\n" {
		t.Errorf("log %q; want only the newer command to have run", got)
	}
	if dnsroll.ErrorCode(err) != dnsroll.ECONFLICT {
		t.Errorf("overtaken %s: %v (code %s), want code %s", what, err, dnsroll.ErrorCode(err), dnsroll.ECONFLICT)
	}
}

// The same over a real sshd, whose end of the command's output is what
// closes when the worker's connection ends: here the connection is cut
// while the command waits for the lock.
func TestLibDropsACommandWhoseConnectionEnded(t *testing.T) {
	r := newLockRig(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	sshd, ch := sshChannel(ctx, t)
	done := make(chan error, 1)
	go func() { _, err := ch.Run(ctx, r.cmd("gone").Args[2]); done <- err }()
	// sshd makes the command the leader of a session of its own.
	leader := r.waitBlocked(t, true)
	t.Cleanup(func() { _ = syscall.Kill(-leader, syscall.SIGKILL) })
	parent := parentOf(leader)
	sshd.Drop()
	if err := <-done; err == nil {
		t.Fatal("the command succeeded through a cut connection")
	}
	for deadline := time.Now().Add(10 * time.Second); parentOf(leader) == parent; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("sshd (pid %d) still runs the command 10 s after its connection was cut", parent)
		}
	}
	r.release(t)
	for deadline := time.Now().Add(10 * time.Second); syscall.Kill(-leader, 0) == nil; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the command still runs 10 s after the lock was free")
		}
	}
	if got, _ := os.ReadFile(r.log); len(got) != 0 {
		t.Errorf("log %q; want the command whose connection ended to do nothing", got)
	}
}

// The driver runs its commands over SSH, where the exit status comes
// back in another error type than a local command's: a command overtaken
// there is a conflict too.
func TestOvertakenCommandOverSSHIsAConflict(t *testing.T) {
	r := newLockRig(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, ch := sshChannel(ctx, t)
	r.wantConflictOvertaken(t, "reload over SSH", func() error {
		_, err := runScript(ctx, ch, r.j, "reload", nil)
		return err
	})
}

// sshChannel starts an sshd and opens a channel to it, as to a load
// balancer.
func sshChannel(ctx context.Context, t *testing.T) (*sshdtest.Server, lb.Channel) {
	t.Helper()
	sshd := sshdtest.Start(t)
	pool := &channel.Pool{KnownHosts: sshdtest.KnownHosts(t, sshd.Addr, sshd.HostKey), KeyFile: sshd.KeyFile, AgentSocket: "/nonexistent", Port: sshdtest.Port(sshd.Addr)}
	t.Cleanup(func() { pool.Close() })
	fleet := &config.Fleet{Name: "prod", Ansible: config.Ansible{Connection: "ssh", SSHUser: "root"}}
	ch, err := pool.Open(ctx, fleet, config.LoadBalancer{Name: "lb1", Address: "192.0.2.10:53", SSHHost: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	return sshd, ch
}

// wantSuperseded checks that a command exited with err and stderr as
// nginx.sh does when a newer command ran first.
func wantSuperseded(t *testing.T, err error, stderr string) {
	t.Helper()
	if code := exitCode(err); code != superseded || !strings.Contains(stderr, "newer") {
		t.Errorf("stale command: exit %d, %q; want %d saying a newer command ran", code, stderr, superseded)
	}
}

// parentOf is pid's parent, 0 once pid is gone.
func parentOf(pid int) int {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	s := string(b)
	// "<pid> (<comm>) <state> <ppid> ...": comm may hold spaces.
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 2 {
		return 0
	}
	ppid, _ := strconv.Atoi(f[1])
	return ppid
}

// Two commands held up behind an earlier one, the older of which gets
// the lock first: the newer still runs after it, since its ticket is
// above the older's. Tickets are handed out in order of arrival, each
// one above the last given, not above the last run: given the same
// ticket, the newer would be refused as overtaken by the older.
func TestLibRunsCommandsQueuedInTheirOrder(t *testing.T) {
	r := newLockRig(t)
	r.runInOrder(t, func() error { return r.cmd("older").Run() }, func() error { return r.cmd("newer").Run() })
	if got, _ := os.ReadFile(r.log); string(got) != "older\nnewer\n" {
		t.Errorf("log %q; want both commands, in their order", got)
	}
}

// runInOrder runs older and then newer, each in a process group of its
// own, both waiting for the lock the rig holds, and lets older have it
// first: the kernel does not hand out a lock in order, so the test stops
// newer until older is done. Both must succeed.
func (r *lockRig) runInOrder(t *testing.T, older, newer func() error) {
	t.Helper()
	olderDone, newerDone := make(chan error, 1), make(chan error, 1)
	go func() { olderDone <- older() }()
	olderGroup := r.waitBlocked(t, true)
	go func() { newerDone <- newer() }()
	newerGroup := r.waitBlockedOtherThan(t, olderGroup)
	if newerGroup == syscall.Getpgrp() {
		t.Fatalf("the newer command is in the test's process group %d", newerGroup)
	}
	if err := syscall.Kill(-newerGroup, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	// Stopped, the newer leaves the lock's queue.
	for deadline := time.Now().Add(10 * time.Second); slices.Contains(r.lockers(t, true), newerGroup); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the stopped command still waits for the lock")
		}
	}
	r.release(t)
	if err := <-olderDone; err != nil {
		t.Fatalf("older: %v", err)
	}
	if err := syscall.Kill(-newerGroup, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	if err := <-newerDone; err != nil {
		t.Fatalf("newer, run after the older: %v", err)
	}
}

// waitBlockedOtherThan waits until a process group other than pgid waits
// for the command lock, and returns it.
func (r *lockRig) waitBlockedOtherThan(t *testing.T, pgid int) int {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		for _, g := range r.lockers(t, true) {
			if g != pgid {
				return g
			}
		}
	}
	t.Fatalf("no command but process group %d waits for the lock", pgid)
	return 0
}

// A command.seq removed by hand (or lost) never makes a command take a
// ticket that already ran: the next command still runs. Tickets start
// above command.applied too.
func TestLibRunsAfterTheSequenceRecordIsLost(t *testing.T) {
	r := newLockRig(t)
	r.release(t)
	r.mustRun(t, "first")
	if err := os.Remove(filepath.Join(r.dir, "command.seq")); err != nil {
		t.Fatal(err)
	}
	r.mustRun(t, "second")
	if got, _ := os.ReadFile(r.log); string(got) != "first\nsecond\n" {
		t.Errorf("log %q; want both commands to have run", got)
	}
}

// A command takes its ticket under a lock of the state directory, so
// that two arriving at once never take the same one: while something
// holds that lock past the command's timeout, the command does nothing
// and exits 4, saying so.
func TestLibTakesItsTicketUnderTheDirectoryLock(t *testing.T) {
	r := newLockRig(t)
	r.release(t)
	r.lockDir(t)
	out, err := exec.Command("/bin/sh", "-c", command(r.j, time.Second, "echo ran >>"+r.log+"\n", nil)).CombinedOutput()
	if code := exitCode(err); code != 4 || !strings.Contains(string(out), "could not take a ticket") {
		t.Errorf("with the directory locked: exit %d, %q; want 4 saying it could not take a ticket", code, out)
	}
	if got, _ := os.ReadFile(r.log); len(got) != 0 {
		t.Errorf("log %q; want the command to have done nothing", got)
	}
}
