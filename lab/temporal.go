package lab

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"

	"github.com/dnsroll/dnsroll/internal/child"
	"github.com/dnsroll/dnsroll/internal/childenv"
	"github.com/dnsroll/dnsroll/internal/freeport"
	"github.com/dnsroll/dnsroll/workflows"
)

// devServer is a `temporal server start-dev` process.
type devServer struct {
	proc    *child.Proc
	address string
	uiURL   string
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
	s := &devServer{address: net.JoinHostPort("127.0.0.1", strconv.Itoa(port))}
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
	logFile := filepath.Join(opts.Dir, "temporal.log")
	if err := os.Remove(logFile); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	cmd := exec.Command(opts.TemporalBin, args...)
	cmd.Env = childenv.Minimal()
	if s.proc, err = child.Start(cmd, logFile); err != nil {
		return nil, fmt.Errorf("lab: start temporal (run `make tools`?): %w", err)
	}
	if err := s.proc.WaitFor(ctx, 90*time.Second, 300*time.Millisecond, s.healthy); err != nil {
		s.stop(false)
		return nil, fmt.Errorf("lab: temporal dev server not ready (see %s): %w", logFile, err)
	}
	return s, nil
}

func (s *devServer) healthy(ctx context.Context) error {
	c, err := client.Dial(client.Options{HostPort: s.address, Logger: QuietLogger()})
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = c.CheckHealth(ctx, &client.CheckHealthRequest{})
	return err
}

// stop stops the dev server this lab started; one it was only given the
// address of keeps running.
func (s *devServer) stop(kill bool) {
	switch {
	case s.proc == nil:
	case kill:
		s.proc.Stop(syscall.SIGKILL, 0)
	default:
		s.proc.Stop(syscall.SIGTERM, 15*time.Second)
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

// QuietLogger is a Temporal SDK logger that drops everything: the
// connection-retry noise of a client that dials a server still starting.
func QuietLogger() log.Logger { return log.NewStructuredLogger(slog.New(slog.DiscardHandler)) }

// DevServer is a Temporal dev server of its own, for labs started one after
// another against it (Options.TemporalAddress): make bench-scale runs every
// fleet size on one instead of starting and stopping a server per size.
type DevServer struct{ s *devServer }

// StartDevServer starts a headless dev server that keeps its state in dir.
func StartDevServer(ctx context.Context, dir, temporalBin string) (*DevServer, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	s, err := startDevServer(ctx, Options{Dir: dir, TemporalBin: temporalBin, Headless: true})
	if err != nil {
		return nil, err
	}
	return &DevServer{s: s}, nil
}

// Address is its gRPC host:port, for Options.TemporalAddress.
func (d *DevServer) Address() string { return d.s.address }

// Stop stops it.
func (d *DevServer) Stop() { d.s.stop(false) }
