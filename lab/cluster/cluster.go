// Package cluster runs a self-hosted Temporal cluster for tests and `make
// cluster`: the real Temporal server (go.temporal.io/server, all four
// services in one process) on SQL persistence, in a private PostgreSQL
// instance from Debian's packages. Unlike `temporal server start-dev`, it
// has separate frontend, history and matching services, SQL visibility and a
// database that can be restarted on its own, as in production.
//
// Everything runs as child processes on free loopback ports, with state in a
// temporary directory; a system PostgreSQL service is never touched.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/dnsroll/dnsroll/internal/child"
	"github.com/dnsroll/dnsroll/internal/freeport"
	"github.com/dnsroll/dnsroll/lab"
)

// Namespace is the namespace the cluster registers, dnsroll's default.
const Namespace = "default"

// Options configure a cluster.
type Options struct {
	// BinDir holds temporal-server and temporal-sql-tool (`make
	// temporal-server` installs them into ./bin).
	BinDir string
	// PGBinDir holds initdb and postgres; empty means the one of Debian's
	// /usr/lib/postgresql/<version>/bin that sorts last.
	PGBinDir string
	// Port is the frontend's gRPC port; 0 picks a free one.
	Port int
	// Log receives progress lines for humans.
	Log io.Writer
}

// Cluster is a running Temporal server and its PostgreSQL.
type Cluster struct {
	opts   Options
	dir    string // state: pgdata, server config, logs
	pgPort int
	ports  serverPorts
	pg     *child.Proc
	server *child.Proc
}

// serverPorts are the server's listening ports: gRPC and membership of
// each service, and the frontend's HTTP API.
type serverPorts struct {
	frontend, frontendHTTP, frontendMember int
	history, historyMember                 int
	matching, matchingMember               int
	worker, workerMember                   int
}

// Start brings up PostgreSQL, creates Temporal's schemas in it, starts the
// server and registers namespace "default" with the lab's search attributes.
// Stop the cluster to remove its state.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	if opts.Log == nil {
		opts.Log = io.Discard
	}
	for _, b := range []string{"temporal-server", "temporal-sql-tool"} {
		if _, err := os.Stat(filepath.Join(opts.BinDir, b)); err != nil {
			return nil, fmt.Errorf("cluster: no %s in BinDir %q: run `make temporal-server`", b, opts.BinDir)
		}
	}
	if opts.PGBinDir == "" {
		dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
		if len(dirs) == 0 {
			return nil, errors.New("cluster: no PostgreSQL in /usr/lib/postgresql: run `make deps` (Debian package postgresql) or set PGBinDir")
		}
		opts.PGBinDir = dirs[len(dirs)-1]
	}
	// A directory of its own, not the caller's (often a 0700 test dir):
	// PostgreSQL runs as an unprivileged user who must reach its data.
	dir, err := os.MkdirTemp("", "dnsroll-cluster-")
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	c := &Cluster{opts: opts, dir: dir}
	if err := c.start(ctx); err != nil {
		c.Stop()
		return nil, err
	}
	return c, nil
}

func (c *Cluster) start(ctx context.Context) error {
	pg, err := freeport.LoopbackN(1)
	if err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	c.pgPort = pg[0]
	if err := c.initPostgres(ctx); err != nil {
		return err
	}
	if err := c.startPostgres(ctx); err != nil {
		return err
	}
	fmt.Fprintf(c.opts.Log, "cluster: PostgreSQL on 127.0.0.1:%d (data in %s)\n", c.pgPort, c.pgData())
	for _, s := range []struct{ db, schema string }{
		{"temporal", "postgresql/v12/temporal"},
		{"temporal_visibility", "postgresql/v12/visibility"},
	} {
		if err := c.setupSchema(ctx, s.db, s.schema); err != nil {
			return err
		}
	}
	// A free port can be taken before the server binds it (it binds
	// nine), so a server that exits at once gets fresh ports.
	for attempt := 1; ; attempt++ {
		ports, err := freeport.LoopbackN(9)
		if err != nil {
			return fmt.Errorf("cluster: %w", err)
		}
		if c.opts.Port != 0 {
			ports[0] = c.opts.Port
		}
		c.ports = serverPorts{ports[0], ports[1], ports[2], ports[3], ports[4], ports[5], ports[6], ports[7], ports[8]}
		if err := c.writeConfig(); err != nil {
			return err
		}
		err = c.startServer(ctx)
		if err == nil {
			break
		}
		if attempt == 3 || !errors.Is(err, child.ErrExited) {
			return err
		}
		fmt.Fprintf(c.opts.Log, "cluster: %v\ncluster: trying again on other ports\n", err)
	}
	fmt.Fprintf(c.opts.Log, "cluster: Temporal server on %s (logs in %s)\n", c.Address(), c.dir)
	return c.register(ctx)
}

// Address is the frontend's gRPC host:port, for --temporal-address.
func (c *Cluster) Address() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(c.ports.frontend))
}

// Dir holds the cluster's state and logs (server.log, postgres.log).
func (c *Cluster) Dir() string { return c.dir }

// Stop stops the server and PostgreSQL and removes their state.
func (c *Cluster) Stop() {
	if c.server != nil {
		c.server.Stop(syscall.SIGTERM, 20*time.Second)
	}
	if c.pg != nil {
		c.pg.Stop(syscall.SIGINT, 20*time.Second) // fast shutdown
	}
	_ = os.RemoveAll(c.dir)
}

// RestartServer stops the Temporal server gracefully and starts it again
// on the same ports and database, as an operator's restart does.
func (c *Cluster) RestartServer(ctx context.Context) error {
	c.server.Stop(syscall.SIGTERM, 20*time.Second)
	return c.startServer(ctx)
}

// RestartPostgres stops PostgreSQL (fast shutdown: open connections are
// cut) and starts it again; the server reconnects on its own.
func (c *Cluster) RestartPostgres(ctx context.Context) error {
	c.pg.Stop(syscall.SIGINT, 20*time.Second)
	return c.startPostgres(ctx)
}

func (c *Cluster) pgData() string { return filepath.Join(c.dir, "pgdata") }

// pgUser is who PostgreSQL runs as: the caller, unless root, which
// PostgreSQL refuses; then the "postgres" user Debian's package creates.
func pgUser() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("cluster: PostgreSQL cannot run as root and there is no postgres user (install the Debian package postgresql): %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

func (c *Cluster) initPostgres(ctx context.Context) error {
	cred, err := pgUser()
	if err != nil {
		return err
	}
	if cred != nil {
		if err := os.Chown(c.dir, int(cred.Uid), int(cred.Gid)); err != nil {
			return fmt.Errorf("cluster: %w", err)
		}
	}
	// Trust on loopback: the instance is private to this machine's tests.
	cmd := exec.CommandContext(ctx, filepath.Join(c.opts.PGBinDir, "initdb"), "-D", c.pgData(), "-U", "postgres",
		"--auth=trust", "-E", "UTF8", "--no-sync", "--no-instructions")
	cmd.Dir = c.dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("cluster: initdb: %v: %s", err, out)
	}
	return nil
}

func (c *Cluster) startPostgres(ctx context.Context) error {
	cred, err := pgUser()
	if err != nil {
		return err
	}
	// fsync off: the lab's data is thrown away, and the disk is shared.
	log := filepath.Join(c.dir, "postgres.log")
	p, err := startProc(filepath.Join(c.opts.PGBinDir, "postgres"), log, cred,
		"-D", c.pgData(), "-c", "listen_addresses=127.0.0.1", "-c", "port="+strconv.Itoa(c.pgPort),
		"-c", "unix_socket_directories="+c.dir, "-c", "fsync=off", "-c", "full_page_writes=off",
		"-c", "max_connections=200")
	if err != nil {
		return fmt.Errorf("cluster: start postgres: %w", err)
	}
	c.pg = p
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(c.pgPort))
	if err := p.WaitFor(ctx, 60*time.Second, 300*time.Millisecond, func(context.Context) error {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			conn.Close()
		}
		return err
	}); err != nil {
		return fmt.Errorf("cluster: postgres not ready: %w\n%s", err, logTail(log))
	}
	return nil
}

// setupSchema creates db and its schema from the sql tool's embedded files.
func (c *Cluster) setupSchema(ctx context.Context, db, schema string) error {
	base := []string{"--plugin", "postgres12", "--endpoint", "127.0.0.1", "--port", strconv.Itoa(c.pgPort),
		"--user", "postgres", "--password", "lab", "--database", db}
	for _, args := range [][]string{
		{"create-database"},
		{"setup-schema", "--version", "0.0"},
		{"update-schema", "--schema-name", schema},
	} {
		// PostgreSQL accepts connections a moment before it accepts
		// logins, so the first command may need a retry.
		var out []byte
		var err error
		for range 20 {
			out, err = exec.CommandContext(ctx, filepath.Join(c.opts.BinDir, "temporal-sql-tool"), append(base, args...)...).CombinedOutput()
			if err == nil || !strings.Contains(string(out), "starting up") {
				break
			}
			time.Sleep(250 * time.Millisecond)
		}
		if err != nil {
			return fmt.Errorf("cluster: temporal-sql-tool %s on %s: %v: %s", args[0], db, err, out)
		}
	}
	return nil
}

func (c *Cluster) startServer(ctx context.Context) error {
	log := filepath.Join(c.dir, "server.log")
	p, err := startProc(filepath.Join(c.opts.BinDir, "temporal-server"), log, nil,
		"--root", c.dir, "--config", "config", "--env", "cluster", "--allow-no-auth", "start")
	if err != nil {
		return fmt.Errorf("cluster: start temporal-server: %w", err)
	}
	c.server = p
	if err := p.WaitFor(ctx, 90*time.Second, 300*time.Millisecond, c.healthy); err != nil {
		return fmt.Errorf("cluster: Temporal server not ready: %w\n%s", err, logTail(log))
	}
	return nil
}

// healthy is true once the frontend answers and a namespace call reaches
// persistence.
func (c *Cluster) healthy(ctx context.Context) error {
	cl, err := client.Dial(client.Options{HostPort: c.Address(), Logger: lab.QuietLogger()})
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err = cl.WorkflowService().ListNamespaces(ctx, &workflowservice.ListNamespacesRequest{})
	return err
}

// register creates the namespace and the search attributes the lab's
// rollouts set (lab.SearchAttributes), then waits until the frontend
// accepts them, since it learns of a new namespace from its cache.
func (c *Cluster) register(ctx context.Context) error {
	cl, err := client.Dial(client.Options{HostPort: c.Address(), Logger: lab.QuietLogger()})
	if err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	defer cl.Close()
	_, err = cl.WorkflowService().RegisterNamespace(ctx, &workflowservice.RegisterNamespaceRequest{
		Namespace: Namespace, WorkflowExecutionRetentionPeriod: durationpb.New(72 * time.Hour),
	})
	var exists *serviceerror.NamespaceAlreadyExists
	if err != nil && !errors.As(err, &exists) {
		return fmt.Errorf("cluster: register namespace %s: %w", Namespace, err)
	}
	attrs := map[string]enumspb.IndexedValueType{}
	for _, sa := range lab.SearchAttributes {
		name, typ, ok := strings.Cut(sa, "=")
		v, known := enumspb.IndexedValueType_value["INDEXED_VALUE_TYPE_"+strings.ToUpper(typ)]
		if !ok || !known {
			return fmt.Errorf("cluster: search attribute %q: want Name=Type", sa)
		}
		attrs[name] = enumspb.IndexedValueType(v)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		_, err = cl.OperatorService().AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{
			Namespace: Namespace, SearchAttributes: attrs,
		})
		var already *serviceerror.AlreadyExists
		if err == nil || errors.As(err, &already) {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cluster: add search attributes %v: %w", lab.SearchAttributes, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
	for {
		_, err = cl.WorkflowService().DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: Namespace})
		if err == nil {
			_, err = cl.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Namespace: Namespace, Query: `Fleet="probe"`})
		}
		if err == nil {
			fmt.Fprintf(c.opts.Log, "cluster: namespace %s with search attributes %v\n", Namespace, lab.SearchAttributes)
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cluster: namespace %s not ready: %w", Namespace, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}
