// Package worker wires configuration into real clients (Linode, Ansible,
// DNS probes, load balancer drivers) and runs a Temporal worker with the
// rollout workflow and its activities.
package worker

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/activities"
	"github.com/dnsroll/dnsroll/bundle"
	"github.com/dnsroll/dnsroll/config"
	"github.com/dnsroll/dnsroll/hostkeys"
	"github.com/dnsroll/dnsroll/internal/sshkey"
	"github.com/dnsroll/dnsroll/lb"
	"github.com/dnsroll/dnsroll/lb/channel"
	"github.com/dnsroll/dnsroll/lb/dnsdist"
	"github.com/dnsroll/dnsroll/lb/nginx"
	"github.com/dnsroll/dnsroll/linode"
	"github.com/dnsroll/dnsroll/preflight"
	"github.com/dnsroll/dnsroll/provision"
	"github.com/dnsroll/dnsroll/registrar"
	"github.com/dnsroll/dnsroll/registrar/route53domains"
	"github.com/dnsroll/dnsroll/workflows"
)

// Config is everything a worker needs besides its Temporal client. Secrets
// (the Linode token, AWS credentials) come from the environment and never
// reach history.
type Config struct {
	// FleetDir holds one <fleet>.yaml per fleet.
	FleetDir string
	// LabDir is the lab's state directory (lab fleets only).
	LabDir string
	// LinodeURL overrides the Linode API base URL; the lab sets its simulator.
	LinodeURL   string
	LinodeToken string
	// AuthorizedKeys are SSH public keys installed on new VMs.
	AuthorizedKeys []string
	// WebUIURL is the Temporal Web UI base URL for links in notifications.
	WebUIURL string
	// LinodeRetryWait shortens linodego's retry waits (tests, the lab).
	LinodeRetryWait time.Duration
	// CloudPollInterval is how often steps check a server that is booting
	// or being deleted; zero is every 2 s, for Linode (the lab polls its
	// simulator more often).
	CloudPollInterval time.Duration
	// AnsibleEnv is added to ansible-playbook's environment, such as
	// ANSIBLE_PRIVATE_KEY_FILE (the machine lab sets its key).
	AnsibleEnv []string
	// KnownHostsFile is where the worker records SSH host keys (see
	// package hostkeys); empty means hostkeys.DefaultFile.
	KnownHostsFile string
	// HostKeyChecking is the host key policy; empty means trust on first
	// use. FromEnv reads it from ANSIBLE_HOST_KEY_CHECKING.
	HostKeyChecking hostkeys.Mode
	// Route53DomainsEndpoint replaces the Route 53 Domains API URL (the
	// lab's route53sim); empty is AWS itself. Its credentials are the AWS
	// SDK's to find (see Registrars), never the worker's.
	Route53DomainsEndpoint string
	// Channels is the pool of SSH connections, kept open, that load
	// balancer flips go through; the caller closes it on shutdown (see
	// ChannelPool). Nil makes NewActivities open one that is never closed,
	// which suits a process that ends with its activities.
	Channels *channel.Pool
	// BundleRetention says which snapshots of planned revisions the
	// worker's bundle store removes (see RetentionFromEnv); the zero
	// value removes none.
	BundleRetention bundle.Retention
}

// RetentionFromEnv is bundle.DefaultRetention with DNSROLL_BUNDLE_KEEP (a
// count) and DNSROLL_BUNDLE_MAX_AGE (a Go duration, such as 168h) in
// place of its settings when they are set.
func RetentionFromEnv() (bundle.Retention, error) {
	r := bundle.DefaultRetention
	if v := os.Getenv("DNSROLL_BUNDLE_KEEP"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return r, fmt.Errorf("worker: DNSROLL_BUNDLE_KEEP=%q: want a count of snapshots, such as %d", v, r.Keep)
		}
		r.Keep = n
	}
	if v := os.Getenv("DNSROLL_BUNDLE_MAX_AGE"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return r, fmt.Errorf("worker: DNSROLL_BUNDLE_MAX_AGE=%q: want a duration, such as %s (0 keeps every snapshot)", v, r.MaxAge)
		}
		r.MaxAge = d
	}
	return r, nil
}

// FromEnv fills the secret and environment-only settings. The Linode API
// URL comes only from --linode-url or DNSROLL_LINODE_URL, never from
// LINODE_URL, which other Linode tools read: a value left over for them must
// not silently point production at something else.
//
// New VMs accept the public keys in DNSROLL_SSH_AUTHORIZED_KEYS, one per
// line; without it, the key derived from ANSIBLE_PRIVATE_KEY_FILE, or the
// .pub file beside it when that has a passphrase. A line
// that is not a public key is an error, so a bad paste fails here rather
// than as VMs that nobody can log into.
func (c *Config) FromEnv() error {
	if c.LinodeToken == "" {
		c.LinodeToken = os.Getenv("LINODE_TOKEN")
	}
	if c.LinodeURL == "" {
		c.LinodeURL = os.Getenv("DNSROLL_LINODE_URL")
	}
	// Before anything judges fleets by it: "api.linode.com" is no Linode
	// URL, and would pass for a simulator's.
	if err := linode.CheckBaseURL(c.LinodeURL); err != nil {
		return fmt.Errorf("worker: --linode-url or DNSROLL_LINODE_URL: %w", err)
	}
	if c.WebUIURL == "" {
		c.WebUIURL = os.Getenv("DNSROLL_WEB_UI_URL")
	}
	if err := dnsroll.CheckWebUIURL(c.WebUIURL); err != nil {
		return fmt.Errorf("worker: DNSROLL_WEB_UI_URL: %w", err)
	}
	if c.KnownHostsFile == "" {
		c.KnownHostsFile = os.Getenv("DNSROLL_KNOWN_HOSTS")
	}
	if c.Route53DomainsEndpoint == "" {
		c.Route53DomainsEndpoint = os.Getenv("DNSROLL_ROUTE53DOMAINS_ENDPOINT")
	}
	if c.HostKeyChecking == "" {
		mode, err := hostkeys.ModeFromEnv(os.Getenv("ANSIBLE_HOST_KEY_CHECKING"))
		if err != nil {
			return fmt.Errorf("worker: %w", err)
		}
		c.HostKeyChecking = mode
	}
	if len(c.AuthorizedKeys) > 0 {
		return nil
	}
	if text := os.Getenv("DNSROLL_SSH_AUTHORIZED_KEYS"); strings.TrimSpace(text) != "" {
		keys, err := sshkey.Parse(text)
		if err != nil {
			return fmt.Errorf("worker: DNSROLL_SSH_AUTHORIZED_KEYS: %w", err)
		}
		c.AuthorizedKeys = keys
		return nil
	}
	if path := os.Getenv("ANSIBLE_PRIVATE_KEY_FILE"); path != "" {
		key, err := sshkey.FromPrivateKeyFile(path)
		if err != nil && strings.Contains(err.Error(), ".pub") {
			return fmt.Errorf("worker: no DNSROLL_SSH_AUTHORIZED_KEYS, and ANSIBLE_PRIVATE_KEY_FILE: %w; give new VMs the public key with DNSROLL_SSH_AUTHORIZED_KEYS=\"$(cat %s.pub)\"", err, path)
		}
		if err != nil {
			// ssh would refuse the key too: the fix is the key file.
			return fmt.Errorf("worker: ANSIBLE_PRIVATE_KEY_FILE: %w", err)
		}
		c.AuthorizedKeys = []string{key}
	}
	return nil
}

// Target is this worker as preflight checks see it.
func (c Config) Target() preflight.Target {
	keys, _ := sshkey.Parse(strings.Join(c.AuthorizedKeys, "\n"))
	return preflight.Target{Known: true, RealLinode: linode.IsReal(c.LinodeURL), SSHKeys: len(keys)}
}

// NewActivities builds the activities with real clients, and prunes the
// bundle store, which each Plan adds to, as the worker starts.
func NewActivities(cfg Config) (*activities.Activities, error) {
	if cfg.LinodeToken == "" {
		return nil, fmt.Errorf("worker: LINODE_TOKEN is not set")
	}
	keys, err := sshkey.Parse(strings.Join(cfg.AuthorizedKeys, "\n"))
	if err != nil {
		return nil, fmt.Errorf("worker: SSH authorized keys: %w", err)
	}
	cloud, err := linode.New(linode.Options{
		Token: cfg.LinodeToken, BaseURL: cfg.LinodeURL,
		AuthorizedKeys: keys, RetryWait: cfg.LinodeRetryWait,
		Logger: slog.Default().With("component", "linode"),
	})
	if err != nil {
		return nil, err
	}
	labDir, err := filepath.Abs(cfg.LabDir)
	if err != nil {
		return nil, err
	}
	if cfg.WebUIURL == "" {
		cfg.WebUIURL = "http://localhost:8233"
	}
	hk, err := cfg.hostKeys()
	if err != nil {
		return nil, err
	}
	state, err := dnsroll.StateDir()
	if err != nil {
		return nil, fmt.Errorf("worker: %w", err)
	}
	runner := &provision.Runner{Env: cfg.AnsibleEnv, HostKeys: hk}
	if cfg.Channels == nil {
		if cfg.Channels, err = cfg.ChannelPool(); err != nil {
			return nil, err
		}
	}
	bundles := bundle.Store{Dir: filepath.Join(state, "bundles"), Retention: cfg.BundleRetention, Log: slog.Default()}
	if _, err := bundles.Prune(); err != nil {
		slog.Warn("bundle store not pruned", "dir", bundles.Dir, "error", err)
	}
	return &activities.Activities{
		Cloud:        cloud,
		Target:       cfg.Target(),
		Ansible:      runner,
		HostKeys:     hk,
		Drivers:      Drivers(runner, labDir, cfg.Channels),
		Registrars:   cfg.Registrars(),
		Fleets:       FleetLoader(cfg.FleetDir),
		Place:        config.PlaceIn(labDir),
		WebUIURL:     cfg.WebUIURL,
		Bundles:      bundles,
		PollInterval: cfg.CloudPollInterval,
	}, nil
}

// hostKeys opens the worker's known_hosts file with its policy.
func (c Config) hostKeys() (*hostkeys.Keeper, error) {
	path, err := c.knownHosts()
	if err != nil {
		return nil, err
	}
	k, err := hostkeys.New(c.HostKeyChecking, path, nil)
	if err != nil {
		return nil, fmt.Errorf("worker: %w (set DNSROLL_KNOWN_HOSTS or --known-hosts)", err)
	}
	return k, nil
}

// knownHosts is the path of the worker's known_hosts file; empty when host
// key checking is off and none is named.
func (c Config) knownHosts() (string, error) {
	if c.KnownHostsFile != "" || c.HostKeyChecking == hostkeys.Off {
		return c.KnownHostsFile, nil
	}
	path, err := hostkeys.DefaultFile()
	if err != nil {
		return "", fmt.Errorf("worker: %w", err)
	}
	return path, nil
}

// ChannelPool is the pool of SSH connections to load balancers that flips
// go through: logged in with Ansible's key (ANSIBLE_PRIVATE_KEY_FILE in
// AnsibleEnv or the environment, else the ssh-agent), host keys checked
// against the worker's known_hosts file, which the staging playbook fills,
// and recorded there at first contact as the worker's policy allows.
// The caller closes it.
func (c Config) ChannelPool() (*channel.Pool, error) {
	path, err := c.knownHosts()
	if err != nil {
		return nil, err
	}
	p := &channel.Pool{KnownHosts: path, IgnoreHostKeys: c.HostKeyChecking == hostkeys.Off}
	if !p.IgnoreHostKeys {
		// A worker of a cluster may flip a load balancer another staged.
		keys, err := c.hostKeys()
		if err != nil {
			return nil, err
		}
		p.Keys = keys
	}
	for _, kv := range c.AnsibleEnv {
		if v, ok := strings.CutPrefix(kv, "ANSIBLE_PRIVATE_KEY_FILE="); ok {
			p.KeyFile = v
		}
	}
	return p, nil
}

// Drivers are the load balancer drivers, by config.LoadBalancer.Driver name.
// Their playbooks' progress heartbeats the switch activity, so a playbook
// that outlasts the heartbeat timeout on a busy machine is not taken for a
// dead worker and retried. Both flip through channels; nil serves only
// fleets whose Ansible connection is local.
func Drivers(runner activities.PlaybookRunner, labDir string, channels lb.Opener) map[string]activities.LoadBalancer {
	reach := lb.Reach{Runner: runner, Place: config.PlaceIn(labDir), Progress: heartbeat, Channels: channels}
	return map[string]activities.LoadBalancer{
		"nginx":   &nginx.Driver{Reach: reach},
		"dnsdist": &dnsdist.Driver{Reach: reach},
	}
}

// Registrars are the registrars a load balancer replacement may name
// besides manual. route53domains reads the standard AWS configuration
// (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, an instance
// role...) each time it is made: a worker starts without any, and a
// replacement that names it without them stops at its first check, before
// anything is created. The region is always route53domains.Region.
func (c Config) Registrars() map[string]activities.RegistrarMaker {
	return map[string]activities.RegistrarMaker{
		route53domains.Name: func(ctx context.Context) (registrar.Registrar, error) {
			cfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion(route53domains.Region))
			if err != nil {
				return nil, fmt.Errorf("AWS configuration: %w; fix the worker's AWS_* environment or ~/.aws files", err)
			}
			return route53domains.New(cfg, c.Route53DomainsEndpoint), nil
		},
	}
}

// heartbeat records progress when ctx belongs to an activity; the lab also
// calls drivers outside any activity, to start its load balancers.
func heartbeat(ctx context.Context, msg string) {
	if activity.IsActivity(ctx) {
		activity.RecordHeartbeat(ctx, msg)
	}
}

// FleetLoader reads <dir>/<name>.yaml on every call, so an edited config
// applies to the next rollout without restarting workers.
func FleetLoader(dir string) activities.FleetLoader {
	return func(name string) (*config.Fleet, error) {
		if !config.ValidFleetName(name) {
			return nil, dnsroll.Errorf(dnsroll.EINVALID, "fleet: %q is not a fleet name: it must be %s", name, config.FleetNameRule)
		}
		path := filepath.Join(dir, name+".yaml")
		if _, err := os.Stat(path); os.IsNotExist(err) {
			return nil, dnsroll.Errorf(dnsroll.ENOTFOUND, "no fleet %q: there is no %s.yaml among the fleet files (%s)", name, name, fleetNames(dir))
		}
		f, err := config.Load(path)
		if err != nil {
			return nil, dnsroll.Errorf(dnsroll.EINVALID, "%v", err)
		}
		if f.Name != name {
			return nil, dnsroll.Errorf(dnsroll.EINVALID, "%s: fleet is %q, want %q (the file name)", path, f.Name, name)
		}
		return f, nil
	}
}

// fleetNames lists the fleets in dir for a message, without the
// directory, which API clients need not see.
func fleetNames(dir string) string {
	paths, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
	names := make([]string, 0, len(paths))
	for _, p := range paths {
		names = append(names, strings.TrimSuffix(filepath.Base(p), ".yaml"))
	}
	if len(names) == 0 {
		return "there are none"
	}
	return "the fleets are " + strings.Join(names, ", ")
}

// heartbeatThrottle is the longest a step's heartbeat waits before the
// SDK sends it to Temporal, whose answer is how a step learns that the
// rollout was aborted. The SDK's own is four fifths of the heartbeat
// timeout, 24 s of the default 30 s: an abort during provisioning or an
// analysis waited that long. Steps heartbeat every second or two, so this
// costs one small request per running step every 2 s.
const heartbeatThrottle = 2 * time.Second

// DefaultStopGrace is how long a worker told to stop (SIGTERM from
// systemd or docker stop, Ctrl-C) lets its running steps finish before it
// cancels them, unless --stop-grace says otherwise: a flip, a stage or a
// lab provisioning ends within it, and is not cut off to run again on
// another worker once the heartbeat timeout has passed. A longer step is
// cancelled at its end and retried elsewhere, as after a crash. A
// supervisor must wait longer than this before it kills (systemd's
// TimeoutStopSec defaults to 90 s; docker-compose.yml sets
// stop_grace_period).
const DefaultStopGrace = 30 * time.Second

// StopGraceFromEnv is DNSROLL_STOP_GRACE, else DefaultStopGrace.
func StopGraceFromEnv() (time.Duration, error) {
	return aboveZeroFromEnv("DNSROLL_STOP_GRACE", DefaultStopGrace, time.ParseDuration, "a duration")
}

// New registers dnsroll's workflows and acts on a worker for the task
// queue, which runs them as o says, and acts again on a worker for its
// undo queue (workflows.UndoTaskQueue) with slots of its own (see
// undoOptions). Activities registered on the result later go to both.
func New(c client.Client, acts *activities.Activities, o Options) sdkworker.Worker {
	w := &pair{
		Worker: sdkworker.New(c, workflows.TaskQueue, sdkOptions(o)),
		undo:   sdkworker.New(c, workflows.UndoTaskQueue(workflows.TaskQueue), undoOptions(o)),
	}
	workflows.Register(w)
	w.RegisterActivity(acts)
	return w
}

// programs are what a worker runs besides itself, with the Debian
// package of each: ansible-playbook for every step that configures a
// machine, and ssh for Ansible's connections to real VMs.
var programs = []struct{ name, pkg string }{
	{"ansible-playbook", "ansible"},
	{"ssh", "openssh-client"},
}

// CheckPrograms refuses a worker that is missing one of programs, so that
// it says so at start rather than at its first rollout's Provision, after
// creating paid VMs that it would then retry for the step's whole timeout.
func CheckPrograms() error {
	var missing, pkgs []string
	for _, p := range programs {
		if _, err := exec.LookPath(p.name); err != nil {
			missing = append(missing, p.name)
			pkgs = append(pkgs, p.pkg)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return fmt.Errorf("worker: %s not found on PATH: install %s (Debian: apt-get install %s), or use the image the Dockerfile builds",
		strings.Join(missing, " and "), strings.Join(pkgs, " and "), strings.Join(pkgs, " "))
}
