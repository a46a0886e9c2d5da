package lab

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/dnsroll/dnsroll/internal/childenv"
	"github.com/dnsroll/dnsroll/internal/freeport"
	"github.com/dnsroll/dnsroll/workflows"
)

// devServer is a `temporal server start-dev` process.
type devServer struct {
	cmd     *exec.Cmd
	address string
	uiURL   string
	done    chan struct{}
}

// SearchAttributes are the custom search attributes the lab registers, as
// Name=Type: every one that rollouts set (workflows.SearchAttributes), so
// the Web UI and `temporal workflow list --query` can filter and show them.
var SearchAttributes = searchAttributeSpecs(workflows.SearchAttributes)

func searchAttributeSpecs(keys []temporal.SearchAttributeKeyKeyword) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = k.GetName() + "=Keyword"
	}
	return out
}

func startDevServer(ctx context.Context, opts Options) (*devServer, error) {
	port, err := portOrFree(opts.TemporalPort)
	if err != nil {
		return nil, err
	}
	args := []string{"server", "start-dev",
		"--db-filename", filepath.Join(opts.Dir, "temporal.db"),
		"--ip", "127.0.0.1", "--port", strconv.Itoa(port),
		"--log-level", "error",
	}
	for _, sa := range SearchAttributes {
		args = append(args, "--search-attribute", sa)
	}
	s := &devServer{address: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), done: make(chan struct{})}
	if opts.Headless {
		args = append(args, "--headless")
	} else {
		ui, err := portOrFree(opts.UIPort)
		if err != nil {
			return nil, err
		}
		args = append(args, "--ui-port", strconv.Itoa(ui))
		s.uiURL = fmt.Sprintf("http://127.0.0.1:%d", ui)
	}
	logf, err := os.Create(filepath.Join(opts.Dir, "temporal.log"))
	if err != nil {
		return nil, err
	}
	s.cmd = exec.Command(opts.TemporalBin, args...)
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	s.cmd.Env = childenv.Minimal()
	// Its own process group, and it dies with us even on kill -9.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("lab: start temporal (run `make tools`?): %w", err)
	}
	go func() { _ = s.cmd.Wait(); logf.Close(); close(s.done) }()
	if err := s.waitReady(ctx, 90*time.Second); err != nil {
		s.stop()
		return nil, fmt.Errorf("lab: temporal dev server not ready (see %s): %w", logf.Name(), err)
	}
	return s, nil
}

func (s *devServer) waitReady(ctx context.Context, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	var last error
	for time.Now().Before(deadline) {
		select {
		case <-s.done:
			return fmt.Errorf("exited early")
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		c, err := client.Dial(client.Options{HostPort: s.address, Logger: quietLogger{}})
		if err == nil {
			_, err = c.CheckHealth(ctx, &client.CheckHealthRequest{})
			c.Close()
			if err == nil {
				return nil
			}
		}
		last = err
		time.Sleep(300 * time.Millisecond)
	}
	return last
}

func (s *devServer) stop() {
	if s.cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(15 * time.Second):
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.done
	}
}

func portOrFree(p int) (int, error) {
	if p != 0 {
		return p, nil
	}
	return FreePort()
}

// FreePort returns a loopback port, free for TCP and UDP, for a server that
// another process will bind; see package freeport for why not port 0.
func FreePort() (int, error) { return freeport.Loopback() }

// quietLogger drops the SDK's connection-retry noise while waiting.
type quietLogger struct{}

func (quietLogger) Debug(string, ...any) {}
func (quietLogger) Info(string, ...any)  {}
func (quietLogger) Warn(string, ...any)  {}
func (quietLogger) Error(string, ...any) {}
