package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"

	"github.com/dnsroll/dnsroll/worker"
)

// temporalFlags are the connection settings every Temporal-facing command shares.
type temporalFlags struct {
	address   string
	namespace string
}

func (t *temporalFlags) dial() (client.Client, error) {
	c, err := client.Dial(client.Options{
		HostPort:  t.address,
		Namespace: t.namespace,
		Logger:    tlog.NewStructuredLogger(slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))),
	})
	if err != nil {
		return nil, fmt.Errorf("connect to Temporal at %s: %w", t.address, err)
	}
	return c, nil
}

func runWorker(ctx context.Context, args []string) error {
	fs := newFlags("worker", `
Runs a Temporal worker for the "dnsroll" task queue: the rollout workflow and
its activities (Linode, Ansible, DNS probes, load balancer drivers). Run as many
as you like; a rollout on a worker that dies resumes on another.

Secrets come from the environment only: LINODE_TOKEN (required), SSH keys via
ssh-agent or ANSIBLE_PRIVATE_KEY_FILE, DNSROLL_SSH_AUTHORIZED_KEYS (public keys
for new VMs, one per line).`)
	var tf temporalFlags
	var cfg worker.Config
	fs.StringVar(&tf.address, "temporal-address", envOr("TEMPORAL_ADDRESS", "127.0.0.1:7233"), "Temporal frontend host:port ($TEMPORAL_ADDRESS)")
	fs.StringVar(&tf.namespace, "namespace", envOr("TEMPORAL_NAMESPACE", "default"), "Temporal namespace ($TEMPORAL_NAMESPACE)")
	fs.StringVar(&cfg.FleetDir, "fleets", "fleets", "directory of fleet configs, one <fleet>.yaml each")
	fs.StringVar(&cfg.LabDir, "lab-dir", ".lab/dev", "lab state directory (lab fleets only)")
	fs.StringVar(&cfg.LinodeURL, "linode-url", "", "Linode API base URL ($LINODE_URL; default: the real API)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg.FromEnv()
	acts, err := worker.NewActivities(cfg)
	if err != nil {
		return err
	}
	c, err := tf.dial()
	if err != nil {
		return err
	}
	defer c.Close()
	w := worker.New(c, acts)
	slog.Info("worker started", "temporal", tf.address, "namespace", tf.namespace, "fleets", cfg.FleetDir)
	return w.Run(interruptCh(ctx))
}

// interruptCh adapts ctx to the worker's stop channel.
func interruptCh(ctx context.Context) <-chan any {
	ch := make(chan any)
	go func() { <-ctx.Done(); close(ch) }()
	return ch
}

