package temporaltest

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"

	"github.com/dnsroll/dnsroll/internal/child"
	"github.com/dnsroll/dnsroll/internal/freeport"
	"github.com/dnsroll/dnsroll/internal/needlab"
)

// DevServer starts a headless Temporal dev server for a test that needs a
// real one, for what the SDK's test environment does not do (a cancelled
// activity that reports its result; the visibility store), with the
// search attributes given, and returns a client of its default
// namespace. Both stop when t ends; the server is a child process
// (package child) that dies with the test, even by kill -9. The temporal
// CLI is $DNSROLL_TEMPORAL_BIN, else the repository's bin/temporal (make
// tools); without it the test fails under make test and is skipped
// elsewhere (needlab).
func DevServer(t testing.TB, searchAttributes ...temporal.SearchAttributeKeyKeyword) client.Client {
	t.Helper()
	bin, err := temporalBin()
	if err != nil {
		needlab.Missing(t, "needs the temporal CLI at $DNSROLL_TEMPORAL_BIN or bin/temporal (make tools): %v", err)
	}
	port, err := freeport.Loopback()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	args := []string{"server", "start-dev", "--headless", "--ip", "127.0.0.1", "--port", strconv.Itoa(port),
		"--db-filename", filepath.Join(dir, "temporal.db"), "--log-level", "error"}
	for _, k := range searchAttributes {
		args = append(args, "--search-attribute", k.GetName()+"=Keyword")
	}
	logFile := filepath.Join(dir, "temporal.log")
	proc, err := child.Start(exec.Command(bin, args...), logFile)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proc.Stop(syscall.SIGTERM, 15*time.Second) })
	var c client.Client
	ready := func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		dialed, err := client.DialContext(ctx, client.Options{HostPort: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), Logger: quiet})
		if err != nil {
			return err
		}
		if _, err := dialed.CheckHealth(ctx, &client.CheckHealthRequest{}); err != nil {
			dialed.Close()
			return err
		}
		c = dialed
		return nil
	}
	if err := proc.WaitFor(t.Context(), 90*time.Second, 300*time.Millisecond, ready); err != nil {
		t.Fatalf("temporal dev server not ready: %v\n%s", err, proc.LogTail(3000))
	}
	t.Cleanup(c.Close)
	return c
}

// quiet drops the SDK's log: the retries of a client that dials a server
// still starting, and the workers' chatter.
var quiet = log.NewStructuredLogger(slog.New(slog.DiscardHandler))

// temporalBin is $DNSROLL_TEMPORAL_BIN, else bin/temporal at the top of
// the module the test runs in.
func temporalBin() (string, error) {
	if bin := os.Getenv("DNSROLL_TEMPORAL_BIN"); bin != "" {
		_, err := os.Stat(bin)
		return bin, err
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			bin := filepath.Join(dir, "bin", "temporal")
			_, err := os.Stat(bin)
			return bin, err
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the test's directory")
		}
		dir = parent
	}
}
