package cluster

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/dnsroll/dnsroll/internal/needlab"
	"github.com/dnsroll/dnsroll/lab"
	"github.com/dnsroll/dnsroll/workflows"
)

// binDir is where make temporal-server installs the server: beside
// $DNSROLL_TEMPORAL_BIN (make test sets it), else the repository's bin/.
func binDir(t *testing.T) string {
	t.Helper()
	dir, _ := filepath.Abs("../../bin")
	if b := os.Getenv("DNSROLL_TEMPORAL_BIN"); b != "" {
		dir = filepath.Dir(b)
	}
	_, err := os.Stat(filepath.Join(dir, "temporal-server"))
	pg, _ := filepath.Glob("/usr/lib/postgresql/*/bin/postgres")
	if err != nil || len(pg) == 0 {
		needlab.Missing(t, "the cluster needs temporal-server in %s and PostgreSQL (run `make deps temporal-server`)", dir)
	}
	needlab.Slow(t, "the cluster")
	return dir
}

func echo(_ workflow.Context, s string) (string, error) { return s, nil }

// The cluster runs workflows on SQL persistence with the rollouts' search
// attributes, survives a PostgreSQL restart without a server restart, and
// leaves nothing behind.
func TestClusterRunsWorkflowsAcrossPostgresRestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	c, err := Start(ctx, Options{BinDir: binDir(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	cl, err := client.Dial(client.Options{HostPort: c.Address(), Logger: lab.QuietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()

	sa, err := cl.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: Namespace})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range workflows.SearchAttributes {
		if got := sa.GetCustomAttributes()[k.GetName()]; got != enumspb.INDEXED_VALUE_TYPE_KEYWORD {
			t.Errorf("search attribute %s is %v, want Keyword", k.GetName(), got)
		}
	}

	w := worker.New(cl, "cluster-test", worker.Options{})
	w.RegisterWorkflow(echo)
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	run := func(id string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		r, err := cl.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: "cluster-test"}, echo, id)
		if err != nil {
			t.Fatalf("start %s: %v", id, err)
		}
		var got string
		if err := r.Get(ctx, &got); err != nil || got != id {
			t.Fatalf("%s = %q, %v", id, got, err)
		}
	}
	run("before")
	if err := c.RestartPostgres(ctx); err != nil {
		t.Fatal(err)
	}
	run("after-postgres-restart")

	w.Stop()
	dir := c.Dir()
	c.Stop()
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("Stop left %s behind: %v", dir, err)
	}
}

// Without the server binaries, Start says which make target installs them.
func TestStartNamesTheMissingBinary(t *testing.T) {
	_, err := Start(context.Background(), Options{BinDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "temporal-server") || !strings.Contains(err.Error(), "make temporal-server") {
		t.Fatalf("err = %v, want one naming temporal-server and make temporal-server", err)
	}
}
