package lab

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dnsroll/dnsroll/internal/needlab"
)

// A disposable lab (tests) kills its Temporal dev server at Stop: the
// graceful shutdown, which drains traffic for a single process that has
// nobody to hand it to, took some 3 s of every e2e test's teardown.
func TestDisposableLabKillsTemporalAtStop(t *testing.T) {
	bin := os.Getenv("DNSROLL_TEMPORAL_BIN")
	if bin == "" {
		bin = filepath.Join("..", "bin", "temporal")
	}
	if _, err := os.Stat(bin); err != nil {
		needlab.Missing(t, "the lab needs Temporal's CLI at %s (run `make tools`)", bin)
	}
	needlab.Slow(t, "a Temporal dev server")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := startDevServer(ctx, Options{Dir: t.TempDir(), TemporalBin: bin, Headless: true, Disposable: true})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	l := &Lab{opts: Options{Disposable: true}, temporal: s}
	l.Stop()
	if took := time.Since(start); took > time.Second {
		t.Errorf("Stop of a disposable lab took %v; want Temporal killed at once", took)
	}
	if s.healthy(ctx) == nil {
		t.Error("Temporal still answers after Stop")
	}
}
