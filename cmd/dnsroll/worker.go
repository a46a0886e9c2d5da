package main

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"

	"github.com/dnsroll/dnsroll/bundle"
	"github.com/dnsroll/dnsroll/preflight"
	"github.com/dnsroll/dnsroll/worker"
)

func runWorker(ctx context.Context, std streams, args []string) error {
	fs := newFlags(std, "worker", `
Runs a Temporal worker for the "dnsroll" task queue: the rollout workflow and
its activities (Linode, Ansible, DNS probes, load balancer drivers). Run as many
as you like; a rollout on a worker that dies resumes on another. It needs
ansible-playbook and ssh on PATH (Debian: apt-get install ansible
openssh-client), and refuses to start without them.

{temporal environment} The namespace needs the Keyword search attributes
{search attributes}; the worker checks.

Secrets come from the environment only: LINODE_TOKEN (required), SSH keys via
ssh-agent or ANSIBLE_PRIVATE_KEY_FILE, DNSROLL_SSH_AUTHORIZED_KEYS (public keys
for new VMs, one per line; default: derived from ANSIBLE_PRIVATE_KEY_FILE, or
the .pub file beside it if it has a passphrase).
A fleet that provisions over SSH is refused before any VM is created when
new VMs would get no key.

SSH host keys are pinned in the worker's known_hosts file (--known-hosts),
and a changed key is refused. A new nameserver or replacement load balancer
is given its host key at creation, through cloud-init user data, and must
offer it (the fleet's ansible.host_keys: given, the default, where Linode's
region and image take user data); other machines' keys are trusted on first
use, at first contact.
ANSIBLE_HOST_KEY_CHECKING=True records nothing at first contact (keys must
already be in the file, or be given ones); ANSIBLE_HOST_KEY_CHECKING=False
turns checking off, with a warning.

Plan snapshots each revision's zone files and Ansible files into bundles/ in
the state directory ($DNSROLL_STATE_DIR, else $XDG_STATE_HOME/dnsroll or
~/.local/state/dnsroll), and later steps on this worker use the snapshot. At
start and after each snapshot the worker removes those unused for
--bundle-max-age, except the --bundle-keep most recently used and any used in
the last hour.

Also read: DNSROLL_WEB_UI_URL (the Temporal Web UI's base URL, for links in
notifications); for load balancer replacements with registrar route53domains,
the standard AWS credentials (AWS_PROFILE, AWS_ACCESS_KEY_ID, ...) and
DNSROLL_ROUTE53DOMAINS_ENDPOINT (another endpoint, such as a simulator).`)
	var tf temporalFlags
	var cfg worker.Config
	tf.register(fs)
	retention, err := worker.RetentionFromEnv()
	if err != nil {
		return err
	}
	fs.IntVar(&cfg.BundleRetention.Keep, "bundle-keep", retention.Keep, "bundle snapshots kept whatever their age, the most recently used ($DNSROLL_BUNDLE_KEEP)")
	fs.DurationVar(&cfg.BundleRetention.MaxAge, "bundle-max-age", retention.MaxAge, "remove bundle snapshots unused for this long, beyond --bundle-keep ($DNSROLL_BUNDLE_MAX_AGE; 0 keeps every snapshot)")
	grace, err := worker.StopGraceFromEnv()
	if err != nil {
		return err
	}
	var opts worker.Options
	fs.DurationVar(&opts.StopGrace, "stop-grace", grace, "told to stop (SIGTERM, Ctrl-C), let running steps finish for this long before cancelling them for another worker to retry ($DNSROLL_STOP_GRACE); the supervisor must wait longer before it kills")
	maxActs, err := worker.MaxConcurrentActivitiesFromEnv()
	if err != nil {
		return err
	}
	fs.IntVar(&opts.MaxConcurrentActivities, "max-concurrent-activities", maxActs, "the most steps (ansible-playbook runs, probes, Linode calls) this worker runs at once ($DNSROLL_MAX_CONCURRENT_ACTIVITIES); a step past the cap waits for a free slot here or on another worker, on its step timeout's clock; undo steps have as many slots again, of their own")
	metricsAddr := fs.String("metrics-addr", os.Getenv("DNSROLL_METRICS_ADDR"), "serve Prometheus metrics (the SDK's worker metrics) on this host:port at /metrics ($DNSROLL_METRICS_ADDR; default: off)")
	fs.StringVar(&cfg.FleetDir, "fleets", cmp.Or(os.Getenv("DNSROLL_FLEETS"), "fleets"), "directory of fleet configs, one <fleet>.yaml each ($DNSROLL_FLEETS)")
	fs.StringVar(&cfg.LabDir, "lab-dir", ".lab/dev", "lab state directory (lab fleets only)")
	fs.StringVar(&cfg.KnownHostsFile, "known-hosts", "", "known_hosts file of the machines' SSH host keys ($DNSROLL_KNOWN_HOSTS; default: known_hosts in $DNSROLL_STATE_DIR, else in $XDG_STATE_HOME/dnsroll or ~/.local/state/dnsroll)")
	fs.StringVar(&cfg.LinodeURL, "linode-url", "", "Linode API base URL ($DNSROLL_LINODE_URL; default: the real API; LINODE_URL is ignored)")
	if err := parseFlagsOnly(fs, args); err != nil {
		return err
	}
	if opts.StopGrace <= 0 {
		return fmt.Errorf("--stop-grace %s: want a duration above 0, such as %s", opts.StopGrace, worker.DefaultStopGrace)
	}
	if opts.MaxConcurrentActivities <= 0 {
		return fmt.Errorf("--max-concurrent-activities %d: want 1 or more steps at once, such as %d", opts.MaxConcurrentActivities, worker.DefaultMaxConcurrentActivities)
	}
	if cfg.BundleRetention.Keep < 0 {
		return fmt.Errorf("--bundle-keep %d: want 0 or more snapshots", cfg.BundleRetention.Keep)
	}
	if cfg.BundleRetention.MaxAge < 0 {
		return fmt.Errorf("--bundle-max-age %s: want 0 (keep every snapshot) or more, such as %s", cfg.BundleRetention.MaxAge, bundle.DefaultRetention.MaxAge)
	}
	if err := cfg.FromEnv(); err != nil {
		return err
	}
	if err := worker.CheckPrograms(); err != nil {
		return err
	}
	// Every fleet file is checked now, not at its first rollout.
	skipped, err := preflight.Dir(cfg.FleetDir, cfg.Target())
	if err != nil {
		return err
	}
	for _, why := range skipped {
		slog.Warn("fleet passed over: its rollouts will be refused", "why", why)
	}
	// Flips go through SSH connections kept open for the worker's life.
	pool, err := cfg.ChannelPool()
	if err != nil {
		return err
	}
	defer pool.Close()
	cfg.Channels = pool
	acts, err := worker.NewActivities(cfg)
	if err != nil {
		return err
	}
	if *metricsAddr != "" {
		reg, handler, closeMetrics := newMetrics()
		defer closeMetrics()
		tf.metrics = handler
		ln, err := net.Listen("tcp", *metricsAddr)
		if err != nil {
			return fmt.Errorf("--metrics-addr (or DNSROLL_METRICS_ADDR) %s: %w (want host:port, such as 127.0.0.1:9090 or :9090)", *metricsAddr, err)
		}
		go func() { _ = serveHTTP(ctx, ln, metricsHandler(reg)) }()
		slog.Info("serving metrics", "addr", ln.Addr().String())
	}
	c, err := tf.dialReady(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	w := worker.New(c, acts, opts)
	slog.Info("worker started", "temporal", tf.address, "namespace", tf.namespace, "fleets", cfg.FleetDir, "max_concurrent_activities", opts.MaxConcurrentActivities)
	return w.Run(interruptCh(ctx))
}

// interruptCh adapts ctx to the worker's stop channel.
func interruptCh(ctx context.Context) <-chan any {
	ch := make(chan any)
	go func() { <-ctx.Done(); close(ch) }()
	return ch
}
