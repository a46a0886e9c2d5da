package pid1

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/dnsroll/dnsroll/internal/needlab"
)

// programEnv names what this test binary does when a test starts it as a
// PID namespace's first process (see program).
const programEnv = "DNSROLL_PID1_TEST_PROGRAM"

func TestMain(m *testing.M) {
	if what := os.Getenv(programEnv); what != "" {
		if code, ok := Supervise(); ok {
			os.Exit(code)
		}
		program(what)
	}
	os.Exit(m.Run())
}

// program stands in for dnsroll: "orphan" leaves an orphan behind, as an
// Ansible run does its SSH master, and reports the zombies it then sees;
// "killed" is killed by SIGKILL; "foreground" says whether its group
// is its terminal's foreground; "term" waits for SIGTERM.
func program(what string) {
	switch what {
	case "orphan":
		if err := exec.Command("/bin/sh", "-c", "sleep 0.2 & exit 0").Run(); err != nil {
			fmt.Println("sh:", err)
			os.Exit(1)
		}
		time.Sleep(time.Second)
		fmt.Printf("pid %d, zombies %d\n", os.Getpid(), zombies())
		os.Exit(7)
	case "killed":
		// As a run killed by the kernel's OOM killer, or kill -9.
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		time.Sleep(10 * time.Second)
	case "foreground":
		fg, err := unix.IoctlGetInt(0, unix.TIOCGPGRP)
		fmt.Printf("foreground %v (%v)\n", err == nil && fg == syscall.Getpgrp(), err)
		os.Exit(0)
	case "term":
		sigs := make(chan os.Signal, 1)
		signal.Notify(sigs, syscall.SIGTERM)
		fmt.Println("ready")
		<-sigs
		fmt.Println("terminated")
		os.Exit(0)
	}
	os.Exit(2)
}

// zombies counts the processes that have exited but are not yet reaped.
func zombies() int {
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	n := 0
	for _, f := range stats {
		b, err := os.ReadFile(f)
		if i := strings.LastIndexByte(string(b), ')'); err == nil && i > 0 && strings.HasPrefix(string(b[i:]), ") Z") {
			n++
		}
	}
	return n
}

// asPID1 starts this test binary as the first process of a PID namespace
// of its own (unshare, with its own /proc), playing program what.
func asPID1(t *testing.T, ctx context.Context, what string, env ...string) *exec.Cmd {
	t.Helper()
	needlab.Programs(t, "unshare")
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, "unshare", "--pid", "--fork", "--kill-child", "--mount-proc", self)
	cmd.Env = append(append(os.Environ(), programEnv+"="+what), env...)
	if out, err := exec.Command("unshare", "--pid", "--fork", "--mount-proc", "true").CombinedOutput(); err != nil {
		needlab.Missing(t, "cannot make a PID namespace (needs root): %v: %s", err, out)
	}
	return cmd
}

func exitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

// As PID 1, dnsroll reaps the orphans handed to it and exits as its own
// work does. The same program run as PID 1 without it keeps the zombie:
// the failure this package exists for.
func TestSupervisorReapsOrphans(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	out, err := asPID1(t, ctx, "orphan", childEnv+"=1").Output()
	if got := strings.TrimSpace(string(out)); exitCode(err) != 7 || got != "pid 1, zombies 1" {
		t.Fatalf("unsupervised PID 1: %q, exit %d (%v); want its orphan left a zombie, exit 7", got, exitCode(err), err)
	}

	// The work is not PID 1 (nor pid 2: the supervisor's threads have
	// pids too).
	out, err = asPID1(t, ctx, "orphan").Output()
	var pid, left int
	got := strings.TrimSpace(string(out))
	if _, serr := fmt.Sscanf(got, "pid %d, zombies %d", &pid, &left); serr != nil || pid == 1 || left != 0 || exitCode(err) != 7 {
		t.Errorf("supervised: %q, exit %d (%v); want the work as a child of PID 1, no zombie, and its exit status 7", got, exitCode(err), err)
	}
}

// A container runtime stops its first process with SIGTERM: it reaches
// the work, which stops as it would anywhere.
func TestSupervisorPassesSIGTERMOn(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd, lines, first := startTermAsPID1(t, ctx)
	if err := syscall.Kill(first, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	wantTerminated(t, cmd, lines, "after SIGTERM to PID 1")
}

// startTermAsPID1 starts program "term" as PID 1, once it is ready, and
// returns its output's lines to come and PID 1's pid here.
func startTermAsPID1(t *testing.T, ctx context.Context) (*exec.Cmd, *bufio.Scanner, int) {
	t.Helper()
	cmd := asPID1(t, ctx, "term")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(stdout)
	if !lines.Scan() || lines.Text() != "ready" {
		t.Fatalf("first line %q, want ready", lines.Text())
	}
	// unshare's one child is the namespace's PID 1.
	first, err := onlyChild(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	return cmd, lines, first
}

// wantTerminated checks that program "term" took SIGTERM and exited 0.
func wantTerminated(t *testing.T, cmd *exec.Cmd, lines *bufio.Scanner, after string) {
	t.Helper()
	var rest []string
	for lines.Scan() {
		rest = append(rest, lines.Text())
	}
	if err := cmd.Wait(); err != nil || strings.Join(rest, "\n") != "terminated" {
		t.Errorf("%s: output %q, %v; want the work to take SIGTERM and exit 0", after, rest, err)
	}
}

// A run killed by a signal (the OOM killer's SIGKILL) ends the container
// as a shell reports it, 128 plus the signal, so that the runtime and its
// restart policy see the run killed, not a clean exit.
func TestSupervisorExitsAsTheWorkKilledByASignal(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := asPID1(t, ctx, "killed").CombinedOutput()
	if got, want := exitCode(err), 128+int(syscall.SIGKILL); got != want {
		t.Errorf("PID 1 whose work was killed by SIGKILL: exit %d (%v, %q); want %d", got, err, out, want)
	}
}

// Ctrl-Z on a container's terminal (docker run -it) stops nothing, as it
// did not when dnsroll itself was PID 1, which the kernel spares: no shell
// in the container could resume the work, and a stopped work leaves the
// terminal dead and takes no SIGTERM until a SIGCONT.
func TestSupervisedWorkIgnoresCtrlZ(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd, lines, first := startTermAsPID1(t, ctx)
	work, err := onlyChild(first)
	if err != nil {
		t.Fatal(err)
	}
	// The terminal sends it to the foreground group: the work's.
	if err := syscall.Kill(-work, syscall.SIGTSTP); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	if err := syscall.Kill(first, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	wantTerminated(t, cmd, lines, "after Ctrl-Z, then SIGTERM to PID 1")
}

// onlyChild is the one child of process pid, whichever of its threads
// started it.
func onlyChild(pid int) (int, error) {
	files, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	var kids []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return 0, err
		}
		kids = append(kids, strings.Fields(string(b))...)
	}
	if len(kids) != 1 {
		return 0, fmt.Errorf("process %d has children %q, want one", pid, kids)
	}
	return strconv.Atoi(kids[0])
}

// On a container's terminal (docker run -it), the work is in its
// foreground, where Ctrl-C reaches it.
func TestSupervisedWorkHasTheTerminalsForeground(t *testing.T) {
	// A session whose controlling terminal is the pty, as a runtime makes.
	got, err := onPTY(t, "foreground", &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0})
	if err != nil || !strings.HasPrefix(got, "foreground true") {
		t.Errorf("supervised on its controlling terminal: %q, %v; want the work in the foreground", got, err)
	}
}

// onPTY runs the supervisor as PID 1 for what, in a session made by attr,
// its stdin a pseudo-terminal, and returns its output trimmed.
func onPTY(t *testing.T, what string, attr *syscall.SysProcAttr) (string, error) {
	t.Helper()
	_, pts := openPTY(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := asPID1(t, ctx, what)
	cmd.Stdin = pts
	cmd.SysProcAttr = attr
	out, err := cmd.Output()
	return strings.TrimSpace(string(out)), err
}

// openPTY opens a pseudo-terminal, its output drained, and returns its
// two ends.
func openPTY(t *testing.T) (ptmx, pts *os.File) {
	t.Helper()
	ptmx, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Skipf("no pty: %v", err)
	}
	t.Cleanup(func() { ptmx.Close() })
	if err := unix.IoctlSetPointerInt(int(ptmx.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Skipf("unlockpt: %v", err)
	}
	n, err := unix.IoctlGetInt(int(ptmx.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Skipf("ptsname: %v", err)
	}
	pts, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("open the pty: %v", err)
	}
	t.Cleanup(func() { pts.Close() })
	go func() { _, _ = io.Copy(io.Discard, ptmx) }()
	return ptmx, pts
}

// A terminal on stdin that is not the container's controlling terminal
// (a runtime that hands the work a pty without making it the session's)
// has no foreground to give the work: it runs all the same.
func TestSupervisorRunsWithATerminalItDoesNotControl(t *testing.T) {
	// A session of its own, with no controlling terminal.
	got, err := onPTY(t, "orphan", &syscall.SysProcAttr{Setsid: true})
	if exitCode(err) != 7 || !strings.HasPrefix(got, "pid ") {
		var stderr []byte
		if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
			stderr = ee.Stderr
		}
		t.Errorf("supervised, stdin a terminal it does not control: %q, exit %d (%v: %s); want the work run, exit 7", got, exitCode(err), err, stderr)
	}
}
