package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/dnsroll/dnsroll/lab"
)

// workerProc is `dnsroll worker` run as a process of its own, so that its
// peak memory is its own and not the benchmark's or the lab's.
type workerProc struct {
	cmd *exec.Cmd
	log *os.File
}

// startWorker runs bin's worker for l's fleets in fleetDir. stateDir is
// its DNSROLL_STATE_DIR (bundle snapshots, known_hosts), inside the
// benchmark's temporary directory so that nothing outlives the run.
func startWorker(bin, fleetDir, stateDir, logPath string, l *lab.Lab) (*workerProc, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "worker", "--fleets", fleetDir, "--lab-dir", l.Dir(),
		"--linode-url", l.SimURL(), "--temporal-address", l.TemporalAddress())
	cmd.Env = append(os.Environ(), l.WorkerEnv()...)
	cmd.Env = append(cmd.Env, "DNSROLL_STATE_DIR="+stateDir)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group, so that stopping it stops the Ansible runs
	// it started; and it dies with the benchmark.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start worker: %w", err)
	}
	return &workerProc{cmd: cmd, log: logf}, nil
}

// PeakKB is the worker's peak resident memory so far (VmHWM, in KiB).
func (w *workerProc) PeakKB() (int, error) { return vmHWM(w.cmd.Process.Pid) }

// Stop ends the worker and everything in its process group: SIGTERM,
// then SIGKILL after a few seconds.
func (w *workerProc) Stop() {
	pgid := w.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = w.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-done
	}
	// Children that left the group's leader behind.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	w.log.Close()
}

// vmHWM reads a process's peak resident set size from /proc.
func vmHWM(pid int) (int, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "VmHWM:"); ok {
			return strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
		}
	}
	return 0, fmt.Errorf("no VmHWM in /proc/%d/status", pid)
}
