package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/dnsroll/dnsroll/config"
	"github.com/dnsroll/dnsroll/internal/freeport"
	"github.com/dnsroll/dnsroll/lab"
	"github.com/dnsroll/dnsroll/lab/cluster"
)

func runCluster(ctx context.Context, std streams, args []string) error {
	fs := newFlags(std, "cluster", `
Runs the cluster lab until Ctrl-C: a self-hosted Temporal server (all
services in one process) on a private PostgreSQL, the process lab (Linode API
simulator, named, nginx or dnsdist) using it, and --workers worker processes
on one task queue. Kill one (kill -9) mid-rollout and another takes over.

The server and its SQL tool come from make temporal-server (bin/). Temporal's
state lives in a temporary directory and is removed on exit; the lab's state
stays in --dir. Do not run it beside make dev: both use fleets/lab.yaml's
load balancer ports.`)
	dir := fs.String("dir", ".lab/cluster", "lab state directory")
	fleets := fs.String("fleets", "fleets", "directory of fleet configs; the lab runs fleet \"lab\"")
	binDir := fs.String("bin", "bin", "directory of temporal-server and temporal-sql-tool")
	port := fs.Int("temporal-port", 7233, "Temporal frontend gRPC port (0 = any free port)")
	sim := fs.String("sim-addr", "127.0.0.1:0", "Linode API simulator listen address")
	n := fs.Int("workers", 2, "worker processes")
	if err := parseFlagsOnly(fs, args); err != nil {
		return err
	}
	if err := checkPort("--temporal-port", *port); err != nil {
		return err
	}
	if err := checkListen("--sim-addr", *sim, "127.0.0.1:8711"); err != nil {
		return err
	}
	if *n < 1 {
		// With no worker, no rollout of the lab would ever run.
		return fmt.Errorf("--workers %d: must be at least 1", *n)
	}
	if *port != 0 && !freeport.Free(*port) {
		fmt.Fprintf(std.out, "port %d is taken; the Temporal frontend takes any free port\n", *port)
		*port = 0
	}
	fleet, err := config.Load(filepath.Join(*fleets, "lab.yaml"))
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	adoptLabDaemons()
	defer reapLabDaemons()
	c, err := cluster.Start(ctx, cluster.Options{BinDir: *binDir, Port: *port, Log: std.out})
	if err != nil {
		return err
	}
	defer c.Stop()
	l, err := lab.Start(ctx, lab.Options{Dir: *dir, Fleet: fleet, TemporalAddress: c.Address(), SimAddr: *sim,
		BootDelay: 500 * time.Millisecond, Log: std.out})
	if err != nil {
		return err
	}
	defer l.Stop()
	// The workers get the lab fleet only: a worker checks every fleet in
	// its directory, and fleets/machines.yaml needs SSH keys.
	workerFleets, err := labFleetDir(*fleets, l.Dir())
	if err != nil {
		return err
	}
	var pids []int
	for i := range *n {
		logFile := filepath.Join(l.Dir(), fmt.Sprintf("worker%d.log", i+1))
		w, err := startClusterWorker(self, workerFleets, l, logFile)
		if err != nil {
			return err
		}
		exited := make(chan struct{})
		go func() {
			err := w.Wait()
			select {
			case <-ctx.Done():
			default:
				fmt.Fprintf(std.out, "cluster: worker %d (pid %d) exited: %v (see %s)\n", i+1, w.Process.Pid, err, logFile)
			}
			close(exited)
		}()
		defer func() { _ = w.Process.Signal(syscall.SIGTERM); <-exited }()
		pids = append(pids, w.Process.Pid)
		fmt.Fprintf(std.out, "cluster: worker %d (pid %d, log %s)\n", i+1, w.Process.Pid, logFile)
	}
	fmt.Fprintf(std.out, `
cluster lab is up. Ctrl-C stops everything.
  Temporal:   %[1]s (namespace default; server logs in %[2]s)
  Linode sim: %[3]s (token %[4]q)
  workers:    pids %[5]v; kill -9 one mid-rollout and another takes over

Point dnsroll at it (the same settings work for any cluster or Temporal Cloud):
  export TEMPORAL_ADDRESS=%[1]s     # or --temporal-address on dnsroll worker and api
  export DNSROLL_API_TOKEN=$(openssl rand -hex 24) DNSROLL_API_URL=http://127.0.0.1:8081
  dnsroll api --listen 127.0.0.1:8081 &
  dnsroll rollout start --fleet lab --revision B --wait
  temporal workflow list --query 'Fleet="lab"'
One more worker:
  LINODE_TOKEN=%[4]s dnsroll worker --fleets %[7]s --lab-dir %[6]s --linode-url %[3]s
`, c.Address(), c.Dir(), l.SimURL(), lab.Token, pids, l.Dir(), workerFleets)
	<-ctx.Done()
	fmt.Fprintln(std.out, "\nstopping the cluster lab…")
	return nil
}

// startClusterWorker runs `dnsroll worker` for the lab as a process of its
// own, so that it can be killed alone.
func startClusterWorker(self, fleets string, l *lab.Lab, logFile string) (*exec.Cmd, error) {
	logf, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	w := exec.Command(self, "worker", "--fleets", fleets, "--lab-dir", l.Dir(),
		"--linode-url", l.SimURL(), "--temporal-address", l.TemporalAddress())
	w.Env = append(os.Environ(), l.WorkerEnv()...)
	w.Stdout, w.Stderr = logf, logf
	w.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := w.Start(); err != nil {
		return nil, fmt.Errorf("start worker: %w", err)
	}
	return w, nil
}

// labFleetDir writes <labDir>/fleets/lab.yaml: the lab fleet of fleetsDir
// with its "../" paths made absolute, since they are relative to the file.
func labFleetDir(fleetsDir, labDir string) (string, error) {
	abs, err := filepath.Abs(fleetsDir)
	if err != nil {
		return "", err
	}
	b, err := os.ReadFile(filepath.Join(abs, "lab.yaml"))
	if err != nil {
		return "", err
	}
	dir := filepath.Join(labDir, "fleets")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	text := strings.ReplaceAll(string(b), "../", filepath.Dir(abs)+"/")
	return dir, os.WriteFile(filepath.Join(dir, "lab.yaml"), []byte(text), 0o644)
}
