// Package config reads and validates fleet configuration files.
//
// A fleet is the set of nameservers and load balancers that one rollout
// replaces and switches. The file is YAML; every field is documented in
// docs/configuration.md, with examples in fleets/ and examples/.
package config

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/miekg/dns"
	"gopkg.in/yaml.v3"

	"github.com/dnsroll/dnsroll"
)

// RevisionPlaceholder in a zone file path is replaced by the rollout's revision.
const RevisionPlaceholder = "{revision}"

// Fleet is one fleet's configuration.
type Fleet struct {
	// Name identifies the fleet; rollouts of one fleet never overlap.
	Name          string         `yaml:"fleet" json:"fleet"`
	Nameservers   []Nameserver   `yaml:"nameservers" json:"nameservers"`
	LoadBalancers []LoadBalancer `yaml:"load_balancers" json:"load_balancers"`
	Ansible       Ansible        `yaml:"ansible" json:"ansible"`
	Zones         []Zone         `yaml:"zones" json:"zones"`
	Probe         Probe          `yaml:"probe" json:"probe"`
	Steps         Steps          `yaml:"steps" json:"steps"`
	Rollout       Rollout        `yaml:"rollout" json:"rollout"`
	LBUpdate      LBUpdate       `yaml:"lb_update" json:"lb_update"`
	Notifications Notifications  `yaml:"notifications" json:"notifications"`
	// Lab, when set, runs the fleet in the local lab: VMs are named
	// processes on loopback ports and load balancers are local nginx.
	Lab *Lab `yaml:"lab,omitempty" json:"lab,omitempty"`

	// Dir is the directory of the config file; relative paths resolve from it.
	Dir string `yaml:"-" json:"dir"`
	// ZoneCount is set on ForSteps copies, whose Zones are only the first
	// of the fleet's zones.
	ZoneCount int `yaml:"-" json:"zone_count,omitempty"`
}

// Nameserver is one nameserver slot; a rollout replaces the VM behind it.
type Nameserver struct {
	Label  string `yaml:"label" json:"label"`
	Region string `yaml:"region" json:"region"`
	Type   string `yaml:"type" json:"type"`
	Image  string `yaml:"image" json:"image"`
	// FirewallID is a Linode Cloud Firewall that new servers are created
	// behind; 0 names none, and Linode then applies the account's default
	// firewall for Linodes, if it has one. docs/configuration.md lists the
	// rules it needs.
	FirewallID int `yaml:"firewall_id,omitempty" json:"firewall_id,omitempty"`
}

// LoadBalancer fronts one or more nameserver slots; a slot may be behind
// several load balancers.
type LoadBalancer struct {
	Name string `yaml:"name" json:"name"`
	// Address is the public host:port that clients (and glue records) use.
	Address string `yaml:"address" json:"address"`
	// Fronts are the labels of the nameserver slots behind this load
	// balancer: `fronts: ns1` or `fronts: [ns1, ns2]`.
	Fronts Labels `yaml:"fronts" json:"fronts"`
	// Driver switches the upstream: "nginx" (the default; its switch is a
	// reload, which can lose a few in-flight UDP queries) or "dnsdist" (a
	// runtime backend swap through its console that loses none; see
	// docs/benchmarks.md).
	Driver string `yaml:"driver" json:"driver"`
	// SSHHost is where Ansible reaches the load balancer; defaults to the
	// host part of Address. Unused with connection: local.
	SSHHost string `yaml:"ssh_host,omitempty" json:"ssh_host,omitempty"`
	// FirewallID is the Linode Cloud Firewall that a load balancer
	// replacement creates <name>-next behind; 0 means none. Its rules are
	// not a nameserver's: DNS from anywhere (docs/configuration.md).
	FirewallID int `yaml:"firewall_id,omitempty" json:"firewall_id,omitempty"`
}

// SSHTarget is where Ansible and the switch reach the load balancer over
// SSH: SSHHost, else the host part of Address. An IP address is in its
// plain form however the fleet writes it (IPv4-mapped, upper case), so
// that its pinned host key is found under one name; a host name is as
// written, as the known_hosts entries pinned under it are.
func (lb LoadBalancer) SSHTarget() string {
	host := lb.SSHHost
	if host == "" {
		h, _, err := net.SplitHostPort(lb.Address)
		if err != nil {
			return lb.Address
		}
		host = h
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		return ip.Unmap().String()
	}
	return host
}

// Ansible says how provisioning reaches machines.
type Ansible struct {
	// Connection is "ssh" for real VMs or "local" for the lab.
	Connection           string `yaml:"connection" json:"connection"`
	NameserverPlaybook   string `yaml:"nameserver_playbook" json:"nameserver_playbook"`
	LoadBalancerPlaybook string `yaml:"loadbalancer_playbook" json:"loadbalancer_playbook"`
	// SSHUser logs into every machine; a non-root user escalates with sudo
	// (become). NameserverSSHUser and LoadBalancerSSHUser, when set,
	// replace it for one role, for images whose users differ.
	SSHUser             string `yaml:"ssh_user,omitempty" json:"ssh_user,omitempty"`
	NameserverSSHUser   string `yaml:"nameserver_ssh_user,omitempty" json:"nameserver_ssh_user,omitempty"`
	LoadBalancerSSHUser string `yaml:"loadbalancer_ssh_user,omitempty" json:"loadbalancer_ssh_user,omitempty"`
	// HostKeys is how a new server's SSH host key comes to be trusted:
	// HostKeysGiven (the default) or HostKeysFirstUse.
	HostKeys string `yaml:"host_keys,omitempty" json:"host_keys,omitempty"`
}

// The values of ansible.host_keys.
const (
	// HostKeysGiven gives each new server a host key in cloud-init user
	// data, where the region and image take it, and expects that key at
	// first contact; elsewhere the key is trusted on first use.
	HostKeysGiven = "given"
	// HostKeysFirstUse gives none and trusts a new server's key on first
	// use, for images whose cloud-init does not install given keys.
	HostKeysFirstUse = "first-use"
)

// newServersAcceptTheUser refuses a non-root nameserver user on Linode's
// own images (NewServerUser).
func (f *Fleet) newServersAcceptTheUser() error {
	for i := range f.Nameservers {
		if err := f.NewServerUser(i, false); err != nil {
			return err
		}
	}
	return nil
}

// NewServerUser refuses the SSH user of a new server made from
// nameservers[slot]'s image (a nameserver's green, or with loadBalancer a
// load balancer's replacement) when the image is one of Linode's: a VM
// made from one has only root, with the keys the worker gives it, so every
// provisioning attempt would be refused until the step's deadline. A
// private image may have the user; Ansible's local connection logs in as
// nobody.
func (f *Fleet) NewServerUser(slot int, loadBalancer bool) error {
	a := f.Ansible
	role, user, own := "nameserver", a.NameserverUser(), a.NameserverSSHUser
	if loadBalancer {
		role, user, own = "loadbalancer", a.LoadBalancerUser(), a.LoadBalancerSSHUser
	}
	image := f.Nameservers[slot].Image
	if a.Connection != "ssh" || user == "root" || !OnlyRoot(image) {
		return nil
	}
	field := "ansible.ssh_user"
	if own != "" {
		field = "ansible." + role + "_ssh_user"
	}
	return fieldErr(field, "%q logs into new %ss, but nameservers[%d].image %s is one of Linode's images, whose new VMs have only root: "+
		"set %s_ssh_user: root, or make them from a private image that has the user with passwordless sudo", user, strings.ReplaceAll(role, "loadbalancer", "load balancer"), slot, image, role)
}

// ReplacementSlot is the index in f.Nameservers of the first nameserver
// lb fronts: a load balancer replacement makes lb's successor in its
// region, plan and image.
func (f *Fleet) ReplacementSlot(lb LoadBalancer) (int, error) {
	for i, ns := range f.Nameservers {
		if len(lb.Fronts) > 0 && ns.Label == lb.Fronts[0] {
			return i, nil
		}
	}
	return 0, fmt.Errorf("load_balancers %s: fronts %q is not a nameserver label", lb.Name, lb.Fronts)
}

// OnlyRoot says whether a new VM made from image has only root to log in
// as: Linode's own images ("linode/debian12") do; a private image
// ("private/123") may have other users.
func OnlyRoot(image string) bool { return strings.HasPrefix(image, "linode/") }

// NameserverUser is the SSH user for nameservers.
func (a Ansible) NameserverUser() string {
	if a.NameserverSSHUser != "" {
		return a.NameserverSSHUser
	}
	return a.SSHUser
}

// LoadBalancerUser is the SSH user for load balancers.
func (a Ansible) LoadBalancerUser() string {
	if a.LoadBalancerSSHUser != "" {
		return a.LoadBalancerSSHUser
	}
	return a.SSHUser
}

// Zone is one zone served by every nameserver.
type Zone struct {
	Name string `yaml:"name" json:"name"`
	// File is the zone file; "{revision}" is replaced by the rollout's revision.
	File string `yaml:"file" json:"file"`
}

// Steps bounds how long each step may take. A step's timeout is its
// deadline: errors that a retry may fix (5xx, 429, timeouts, lost
// connections) are retried with exponential backoff until it passes, and
// errors that no retry fixes (invalid input, a rejected config, other 4xx)
// fail the step at once.
type Steps struct {
	CreateTimeout    Duration `yaml:"create_timeout" json:"create_timeout"`
	ProvisionTimeout Duration `yaml:"provision_timeout" json:"provision_timeout"`
	ProbeTimeout     Duration `yaml:"probe_timeout" json:"probe_timeout"`
	SwitchTimeout    Duration `yaml:"switch_timeout" json:"switch_timeout"`
	// HeartbeatTimeout is how soon a step on a dead worker is retried elsewhere.
	HeartbeatTimeout Duration `yaml:"heartbeat_timeout" json:"heartbeat_timeout"`
	// RetryInitialInterval and RetryMaximumInterval bound the backoff
	// between attempts, which doubles from the first to the second.
	RetryInitialInterval Duration `yaml:"retry_initial_interval" json:"retry_initial_interval"`
	RetryMaximumInterval Duration `yaml:"retry_maximum_interval" json:"retry_maximum_interval"`
	// MaxAttempts caps the attempts of a step; 0, the default, retries
	// until the step's deadline.
	MaxAttempts int `yaml:"max_attempts" json:"max_attempts"`
	// CleanupTimeout is how long a rollout that stopped before the point of
	// no return keeps trying to put the load balancers back on blue and
	// delete green, in rounds with the backoff above, before it ends
	// cleanup-failed with the list of what is left to undo.
	CleanupTimeout Duration `yaml:"cleanup_timeout" json:"cleanup_timeout"`
}

// Lab settings; present only for fleets that run in the local lab.
type Lab struct {
	// DNSPortBase: lab VM with Linode ID n answers on DNSPortBase + n%1000.
	DNSPortBase int `yaml:"dns_port_base" json:"dns_port_base"`
}

// Duration is a time.Duration written as "30s" in YAML and JSON.
type Duration time.Duration

// UnmarshalYAML parses "1m30s". A value that does not parse is a
// *yaml.TypeError, so that decoding goes on and reports every wrong value
// in the file at once.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	// In yaml.v3's words, so that explainValues names the field.
	switch n.Kind {
	case yaml.SequenceNode:
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: cannot unmarshal !!seq into config.Duration", n.Line)}}
	case yaml.MappingNode:
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: cannot unmarshal !!map into config.Duration", n.Line)}}
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %q is not a duration such as 30s or 5m%s", n.Line, n.Value, durationHint(n.Value))}}
	}
	*d = Duration(v)
	return nil
}

// String writes "1m30s", as in the config.
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalText writes "1m30s".
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText parses "1m30s".
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("%q is not a duration such as \"30s\" or \"72h\"%s", b, durationHint(string(b)))
	}
	*d = Duration(v)
	return nil
}

// daysRE is a duration in days or weeks, which Go's durations lack.
var daysRE = regexp.MustCompile(`^(\d{1,6})\s*(d|days?|w|weeks?)$`)

// durationHint says how to write s, which time.ParseDuration refuses,
// where it is a common slip: days or weeks, or spaces between the parts.
// durationShapeRE is how a Go duration is written: one that does not
// parse is out of range.
var durationShapeRE = regexp.MustCompile(`^[-+]?(([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))+$`)

func durationHint(s string) string {
	if m := daysRE.FindStringSubmatch(strings.TrimSpace(s)); m != nil {
		n, _ := strconv.Atoi(m[1])
		if m[2][0] == 'w' {
			n *= 7
		}
		return fmt.Sprintf(": the longest unit is h (write %dh for %s)", 24*n, s)
	}
	if durationShapeRE.MatchString(s) {
		if strings.HasPrefix(strings.TrimSpace(s), "-") {
			return ": a duration here is never negative"
		}
		return fmt.Sprintf(": it is longer than the longest, %dh", int64(math.MaxInt64/int64(time.Hour)))
	}
	if joined := strings.Join(strings.Fields(s), ""); joined != s {
		if _, err := time.ParseDuration(joined); err == nil {
			return ": write it without spaces, " + joined
		}
	}
	return ""
}

// D returns the time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// Load reads, defaults and validates the fleet config at path.
func Load(path string) (*Fleet, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	f, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	abs, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	f.Dir = abs
	return f, nil
}

// Parse decodes, defaults and validates a fleet config. Unknown fields are errors.
func Parse(data []byte) (*Fleet, error) {
	var f Fleet
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var doc yaml.Node
	err := yaml.Unmarshal(data, &doc)
	if err == nil && (len(doc.Content) == 0 || doc.Content[0].ShortTag() == "!!null") {
		// Nothing, comments alone, or a lone "---".
		err = io.EOF
	}
	if err == nil {
		err = dec.Decode(&f)
	}
	if errors.Is(err, io.EOF) {
		return nil, errors.New("the file is empty: a fleet has at least fleet:, nameservers:, load_balancers: and zones: (docs/configuration.md)")
	} else if err != nil {
		return nil, listed(explain(data, err))
	}
	if err := oneDocument(dec); err != nil {
		return nil, err
	}
	if msgs := fractions(&doc, reflect.TypeFor[Fleet](), ""); len(msgs) > 0 {
		return nil, listed(&yaml.TypeError{Errors: msgs})
	}
	f.setDefaults()
	if err := zeroDefaulted(doc.Content[0], reflect.ValueOf(&f).Elem(), ""); err != nil {
		return nil, err
	}
	if err := f.Validate(); err != nil {
		return nil, err
	}
	f.canonicalAddresses()
	return &f, nil
}

// canonicalAddresses writes each load balancer's IP address in the one
// form the glue, the zone's records and the checks give it: an
// IPv4-mapped IPv6 address as IPv4 ([::ffff:192.0.2.1]:53 is
// 192.0.2.1:53), IPv6 in lower case and shortest, the port as a plain
// number. Matched as written, a load balancer glued at 192.0.2.1 but
// written mapped was no address of the glue's, and a replacement left its
// glue on the machine it then deleted. A host name stays as written, as
// the SSH host keys pinned under it are (SSHTarget). Validate has passed.
func (f *Fleet) canonicalAddresses() {
	for i := range f.LoadBalancers {
		lb := &f.LoadBalancers[i]
		if ap, err := netip.ParseAddrPort(lb.Address); err == nil {
			lb.Address = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()).String()
		}
	}
}

// The default playbooks: fleets live in fleets/, beside ansible/, in the
// repository and in the container image (/app/fleets, /app/ansible).
const (
	DefaultNameserverPlaybook   = "../ansible/nameserver.yml"
	DefaultLoadBalancerPlaybook = "../ansible/loadbalancer.yml"
)

func (f *Fleet) setDefaults() {
	for i := range f.LoadBalancers {
		if f.LoadBalancers[i].Driver == "" {
			f.LoadBalancers[i].Driver = "nginx"
		}
	}
	a := &f.Ansible
	if a.Connection == "" {
		a.Connection = "ssh"
	}
	if a.HostKeys == "" {
		a.HostKeys = HostKeysGiven
	}
	if a.NameserverPlaybook == "" {
		a.NameserverPlaybook = DefaultNameserverPlaybook
	}
	if a.LoadBalancerPlaybook == "" {
		a.LoadBalancerPlaybook = DefaultLoadBalancerPlaybook
	}
	if a.SSHUser == "" {
		a.SSHUser = "root"
	}
	f.Probe.setDefaults()
	f.Rollout.setDefaults()
	f.LBUpdate.setDefaults()
	f.Notifications.setDefaults()
	s := &f.Steps
	setDur(&s.CreateTimeout, 10*time.Minute)
	setDur(&s.ProvisionTimeout, 20*time.Minute)
	setDur(&s.ProbeTimeout, 2*time.Minute)
	setDur(&s.SwitchTimeout, 5*time.Minute)
	setDur(&s.HeartbeatTimeout, DefaultHeartbeatTimeout)
	setDur(&s.RetryInitialInterval, time.Second)
	setDur(&s.RetryMaximumInterval, 30*time.Second)
	setDur(&s.CleanupTimeout, time.Hour)
	if f.Lab != nil {
		if f.Lab.DNSPortBase == 0 {
			f.Lab.DNSPortBase = 15300
		}
	}
}

// MaxCleanupTimeout bounds steps.cleanup_timeout. A cleanup that keeps
// failing runs a round every ten minutes, each adding some 11 events to the
// rollout's workflow history (6 more per load balancer switched back, and
// per webhook) and a step and an event to its status: a month of them
// passed Temporal's cap of 51,200 events, which terminates the run, with
// load balancers perhaps on green, green alive and no cleanup-failed
// record. Three days, about 435 rounds, leave room for that beside
// MaxAnalysisRounds with a few load balancers; with more, MaxCleanupEvents
// bounds it lower (LongestCleanupTimeout).
const MaxCleanupTimeout = 72 * time.Hour

// MaxStepTimeout bounds a step's deadline: a step still at work after a
// week is stuck, and a longer one would overflow the deadline the
// cleanup's steps get (three times the step's) for the longest values
// YAML takes.
const MaxStepTimeout = 7 * 24 * time.Hour

// MaxLoadBalancers bounds a fleet's load balancers. A load balancer
// replacement carries the fleet in each step's input, so its history
// grows with their square: at 64, the longest waits the API takes come to
// some 13,300 events (of Temporal's cap of 51,200), 8 MB of inputs (of
// its 50 MB) and a status of 450 KB (its payloads warn at 512 KB); a few
// hundred would pass the 50 MB.
const MaxLoadBalancers = 64

// MaxCleanupPause caps the pause between two rounds of a rollout's
// cleanup, which doubles from steps.retry_maximum_interval.
const MaxCleanupPause = 10 * time.Minute

// MaxCleanupEvents bounds the events the rounds of a cleanup that keeps
// failing may add to a rollout's workflow history: with
// MaxAnalysisRounds' 22,000 and the steps before, some 45,000 of
// Temporal's 51,200.
const MaxCleanupEvents = 20000

// cleanupRoundEvents is about how many events a cleanup round that fails
// adds to a rollout's history: some 11 for its pause and its delete of
// green, and 6 for each load balancer switched back and each webhook told.
func (f *Fleet) cleanupRoundEvents() int {
	return 11 + 6*(len(f.LoadBalancers)+len(f.Notifications.Webhooks))
}

// cleanupRounds is how many rounds a cleanup that keeps failing may run
// within d: one at once, then one after each pause, the pauses doubling
// from steps.retry_maximum_interval (at least 1s) up to MaxCleanupPause.
func (s Steps) cleanupRounds(d time.Duration) int {
	rounds, pause := 1, max(s.RetryMaximumInterval.D(), time.Second)
	for at := pause; at <= d; at += pause {
		rounds++
		pause = min(2*pause, MaxCleanupPause)
	}
	return rounds
}

// LongestCleanupTimeout is the longest steps.cleanup_timeout f may have:
// MaxCleanupTimeout, or less where its load balancers and webhooks make
// each cleanup round cost more than MaxCleanupEvents leaves room for.
func (f *Fleet) LongestCleanupTimeout() time.Duration {
	allowed := MaxCleanupEvents / f.cleanupRoundEvents()
	// The round after the allowed ones comes at the sum of their pauses.
	var at time.Duration
	pause := max(f.Steps.RetryMaximumInterval.D(), time.Second)
	for range allowed {
		at += pause
		pause = min(2*pause, MaxCleanupPause)
	}
	return min(MaxCleanupTimeout, (at - 1).Truncate(time.Minute))
}

// cleanupFits refuses a steps.cleanup_timeout whose rounds, each flipping
// every load balancer back and telling every webhook, would cost the
// rollout's history more than MaxCleanupEvents.
func (f *Fleet) cleanupFits() error {
	d := f.Steps.CleanupTimeout.D()
	rounds := f.Steps.cleanupRounds(d)
	if rounds*f.cleanupRoundEvents() <= MaxCleanupEvents {
		return nil
	}
	return fieldErr("steps.cleanup_timeout", "%s is up to %d cleanup rounds, each some %d events of the rollout's workflow history with %d load balancers to switch back and %d webhook(s) to tell: "+
		"more than the %d a cleanup may add to it beside the bake's, which Temporal caps by terminating the run mid-cleanup; set it to at most %s (after a cleanup-failed, `dnsroll rollout cleanup` undoes what is left)",
		d, rounds, f.cleanupRoundEvents(), len(f.LoadBalancers), len(f.Notifications.Webhooks), MaxCleanupEvents, f.LongestCleanupTimeout())
}

// DefaultHeartbeatTimeout is steps.heartbeat_timeout's default.
const DefaultHeartbeatTimeout = 30 * time.Second

func (s Steps) validate() error {
	if s.MaxAttempts < 0 || s.MaxAttempts > 1000 {
		return fieldErr("steps.max_attempts", "must be between 0 (retry until the step's deadline) and 1000, got %d", s.MaxAttempts)
	}
	for _, d := range []struct {
		field string
		v     Duration
	}{
		{"create_timeout", s.CreateTimeout}, {"provision_timeout", s.ProvisionTimeout}, {"probe_timeout", s.ProbeTimeout},
		{"switch_timeout", s.SwitchTimeout}, {"heartbeat_timeout", s.HeartbeatTimeout},
		{"retry_initial_interval", s.RetryInitialInterval}, {"retry_maximum_interval", s.RetryMaximumInterval},
		{"cleanup_timeout", s.CleanupTimeout},
	} {
		if d.v < 0 {
			return fieldErr("steps."+d.field, "must not be negative, got %s", d.v.D())
		}
	}
	for _, d := range []struct {
		field string
		v     Duration
	}{
		{"create_timeout", s.CreateTimeout}, {"provision_timeout", s.ProvisionTimeout},
		{"probe_timeout", s.ProbeTimeout}, {"switch_timeout", s.SwitchTimeout},
	} {
		if d.v.D() > MaxStepTimeout {
			return fieldErr("steps."+d.field, "must be at most %s, got %s: a step still at work after that is stuck, and is better failed and rolled back", MaxStepTimeout, d.v.D())
		}
	}
	// The worker heartbeats at a fraction of the timeout, over the network:
	// below a second, busy steps would time out while they work.
	if s.HeartbeatTimeout > 0 && s.HeartbeatTimeout < Duration(time.Second) {
		return fieldErr("steps.heartbeat_timeout", "must be at least 1s (leave it out for the default, 30s), got %s", s.HeartbeatTimeout.D())
	}
	// A step on a dead worker is retried elsewhere once heartbeat_timeout
	// passes without a heartbeat; at or past the step's deadline that is
	// never, and a crashed worker fails the rollout instead of resuming it.
	for _, d := range []struct {
		field string
		v     Duration
	}{
		{"create_timeout", s.CreateTimeout}, {"provision_timeout", s.ProvisionTimeout},
		{"probe_timeout", s.ProbeTimeout}, {"switch_timeout", s.SwitchTimeout},
	} {
		if s.HeartbeatTimeout == 0 || s.HeartbeatTimeout < d.v {
			continue
		}
		why := "a step whose worker dies is retried on another after the heartbeat timeout, which must come before the step's deadline"
		// The default heartbeat is not what the operator wrote: the step's
		// timeout is, and is the one to change.
		if s.HeartbeatTimeout.D() == DefaultHeartbeatTimeout {
			return fieldErr("steps."+d.field, "must be longer than steps.heartbeat_timeout (%s), got %s: %s", s.HeartbeatTimeout.D(), d.v.D(), why)
		}
		return fieldErr("steps.heartbeat_timeout", "must be shorter than steps.%s (%s), got %s: %s", d.field, d.v.D(), s.HeartbeatTimeout.D(), why)
	}
	if s.CleanupTimeout.D() > MaxCleanupTimeout {
		return fieldErr("steps.cleanup_timeout", "must be at most %s, got %s: every cleanup round, ten minutes apart once they back off, adds to the rollout's workflow history, "+
			"which Temporal caps by terminating the run mid-cleanup; after a cleanup-failed, `dnsroll rollout cleanup` undoes what is left", MaxCleanupTimeout, s.CleanupTimeout.D())
	}
	if s.RetryMaximumInterval < s.RetryInitialInterval {
		return fieldErr("steps.retry_maximum_interval", "must be at least retry_initial_interval (%s), got %s", s.RetryInitialInterval.D(), s.RetryMaximumInterval.D())
	}
	return nil
}

// maxDuration is the longest time.Duration, some 292 years.
const maxDuration = time.Duration(math.MaxInt64)

// times is n × d for n, d ≥ 0, or maxDuration where that is longer: a
// product past time.Duration's range wraps to a negative one, which
// would pass every "no longer than" check.
func times(n int, d time.Duration) time.Duration {
	if n > 0 && d > maxDuration/time.Duration(n) {
		return maxDuration
	}
	return time.Duration(n) * d
}

// plus is a + b for a, b ≥ 0, or maxDuration where that is longer.
func plus(a, b time.Duration) time.Duration {
	if a > maxDuration-b {
		return maxDuration
	}
	return a + b
}

// durText is d for a message: maxDuration stands for any longer one.
func durText(d time.Duration) string {
	if d == maxDuration {
		return "more than " + time.Duration(maxDuration).Truncate(time.Hour).String()
	}
	return d.String()
}

func setDur(d *Duration, def time.Duration) {
	if *d == 0 {
		*d = Duration(def)
	}
}

// knownDrivers are the load balancer drivers a worker can have.
var knownDrivers = map[string]bool{"nginx": true, "dnsdist": true}

// weighingDrivers are those that can run strategy: canary.
var weighingDrivers = map[string]bool{"dnsdist": true}

// userRE is a Unix user name as useradd takes it.
var userRE = regexp.MustCompile(`^[a-z_][a-z0-9_-]{0,31}$`)

// FleetNamePattern and RevisionPattern are the rules ValidFleetName and
// ValidRevision apply; api/openapi.yaml gives clients the same
// (TestOpenAPIPatternsAreTheConfigRules). FleetNameRule and RevisionRule
// say them in words, for the errors of the fleet file and the API.
const (
	FleetNamePattern = `^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$`
	RevisionPattern  = `^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`
	FleetNameRule    = "1-32 lowercase letters, digits or dashes, starting and ending with a letter or digit"
	RevisionRule     = "1-64 letters, digits, dots, dashes or underscores, starting with a letter or digit"
)

var (
	nameRE     = regexp.MustCompile(FleetNamePattern)
	revisionRE = regexp.MustCompile(RevisionPattern)
)

// hostNameRE is a host name: dot-separated labels of letters, digits
// and inner dashes, as DNS takes them.
var hostNameRE = regexp.MustCompile(`^(?i)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*\.?$`)

// canonicalHost is host as one address is always written: an IP address
// in its shortest form (an IPv4-mapped IPv6 one as IPv4), a host name in
// lower case without the root's final dot. It refuses what is neither, the unspecified addresses
// (0.0.0.0, ::), and multicast and broadcast ones, which no client or SSH
// connection reaches.
func canonicalHost(host string) (string, error) {
	if ip, err := netip.ParseAddr(host); err == nil {
		ip = ip.Unmap()
		if ip.Zone() != "" {
			return "", fmt.Errorf("must be an address without a zone (%%%s): a link-local address reaches only the worker's own link", ip.Zone())
		}
		if ip.IsUnspecified() {
			return "", fmt.Errorf("must be an address clients reach, not %s, which means any", ip)
		}
		if ip.IsMulticast() || ip == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
			return "", fmt.Errorf("must be one machine's address, not %s, a multicast or broadcast address", ip)
		}
		return ip.String(), nil
	}
	// No top-level domain is all digits, so numbers and dots are an IPv4
	// address or a slip (256.1.1.1, 1.2.3), never a name to look up.
	labels := strings.Split(strings.TrimSuffix(host, "."), ".")
	if last := labels[len(labels)-1]; last != "" && strings.Trim(last, "0123456789") == "" {
		return "", fmt.Errorf("%q is no IPv4 address (four numbers from 0 to 255, such as 192.0.2.1), nor a host name, whose last label is never all digits", host)
	}
	// The root's dot is no part of a name's 253 characters (RFC 1035's
	// 255 octets on the wire).
	if n := len(strings.TrimSuffix(host, ".")); n > 253 {
		return "", fmt.Errorf("must be a host name or an IP address: a host name has at most 253 characters, and this one has %d", n)
	}
	if !hostNameRE.MatchString(host) {
		return "", fmt.Errorf("must be a host name or an IP address")
	}
	return strings.ToLower(strings.TrimSuffix(host, ".")), nil
}

// OneHost is canonical host h as the machine it names: localhost is
// 127.0.0.1, as labPortsFree takes it. Fleets checked together
// (preflight) compare hosts by it too.
func OneHost(h string) string {
	if h == "localhost" {
		return "127.0.0.1"
	}
	return h
}

// linodeIDRE is the shape of Linode's region and type IDs (us-east,
// g6-nanode-1); the Plan step asks the API whether they exist.
var linodeIDRE = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)

// imageIDRE is the shape of Linode's image IDs, <owner>/<name>:
// linode/debian12, private/12345; Plan asks the API whether one exists.
var imageIDRE = regexp.MustCompile(`^[a-z0-9-]+/[A-Za-z0-9._-]+$`)

// checkLBName checks a load balancer's name, which is a Linode label too:
// a replacement creates <name>-next and renames it, among the fleet's
// nameservers, whose labels it must not take.
func checkLBName(name string, nameserverLabels map[string]string) error {
	if endsInNext(name) {
		return fmt.Errorf("must not end in %s, in any case: a replacement is created as <name>%s, and Linode's labels are unique whatever their case; give it another name, got %q", dnsroll.NextSuffix, dnsroll.NextSuffix, name)
	}
	if l, ok := nameserverLabels[strings.ToLower(name)]; ok {
		return fmt.Errorf("%q is also a nameserver's label (%q; Linode's labels are unique whatever their case); the fleet's servers need a label each", name, l)
	}
	for _, l := range []string{name, dnsroll.NextLabel(name)} {
		if err := dnsroll.CheckLabel(l); err != nil {
			return fmt.Errorf("%v (Linode's rule, for %q and its replacement %q)", err, name, dnsroll.NextLabel(name))
		}
	}
	return nil
}

// endsInNext reports whether a label ends in -next in any case. Linode
// takes NS1-NEXT for ns1-next, the label ns1's green is created with, so
// such a label would collide with a green server or a replacement.
func endsInNext(label string) bool {
	return strings.HasSuffix(strings.ToLower(label), dnsroll.NextSuffix)
}

// ValidFleetName is the rule for a fleet's name, in one place: the config,
// the worker's fleet loader and the API all check names with it. It is a
// DNS label's shape (1-32 characters of a-z, 0-9 and inner dashes), so a
// name can go into a workflow ID, a tag and a visibility query unquoted.
func ValidFleetName(name string) bool { return nameRE.MatchString(name) }

// FleetNameHint names the fleet that name, which is not a fleet's name,
// most likely means, for a message: the name of a fleet file given for the
// fleet (fleets/lab.yaml is lab), or the name in lower case. It is "" when
// it cannot tell.
func FleetNameHint(name string) string {
	base := filepath.Base(name)
	for _, ext := range []string{".yaml", ".yml"} {
		if n, ok := strings.CutSuffix(base, ext); ok && ValidFleetName(n) {
			return fmt.Sprintf(" (a fleet's name is its file's without %s: %s)", ext, n)
		}
	}
	if l := strings.ToLower(name); l != name && ValidFleetName(l) {
		return " (fleet names are lower case: " + l + ")"
	}
	return ""
}

// ValidRevision is the rule for a revision, shared with the API.
func ValidRevision(rev string) bool { return revisionRE.MatchString(rev) }

// Validate checks every field and names the first bad one.
func (f *Fleet) Validate() error {
	if !nameRE.MatchString(f.Name) {
		return fieldErr("fleet", "must be %s, got %q%s", FleetNameRule, f.Name, FleetNameHint(f.Name))
	}
	if len(f.Nameservers) == 0 {
		return fieldErr("nameservers", "list at least one nameserver")
	}
	// folded holds each label in lower case, for Linode's rule that
	// labels are unique whatever their case.
	labels, folded := map[string]bool{}, map[string]string{}
	for i, ns := range f.Nameservers {
		at := fmt.Sprintf("nameservers[%d]", i)
		if endsInNext(ns.Label) {
			return fieldErr(at+".label", "must not end in %s, in any case: a green server is created as <label>%s, and Linode's labels are unique whatever their case; give it another label, got %q", dnsroll.NextSuffix, dnsroll.NextSuffix, ns.Label)
		}
		// Both labels must be ones Linode takes: green is created as
		// <label>-next and renamed to <label> after blue is gone.
		for _, l := range []string{ns.Label, dnsroll.NextLabel(ns.Label)} {
			if err := dnsroll.CheckLabel(l); err != nil {
				return fieldErr(at+".label", "%v (Linode's rule, for %q and its green %q)", err, ns.Label, dnsroll.NextLabel(ns.Label))
			}
		}
		if ns.FirewallID < 0 {
			return fieldErr(at+".firewall_id", "must be a Cloud Firewall's ID, or 0 for none; got %d", ns.FirewallID)
		}
		if other, dup := folded[strings.ToLower(ns.Label)]; dup {
			if other == ns.Label {
				return fieldErr(at+".label", "%q is listed twice", ns.Label)
			}
			return fieldErr(at+".label", "%q is %q in other case, and Linode's labels are unique in an account whatever their case: give it another label", ns.Label, other)
		}
		labels[ns.Label], folded[strings.ToLower(ns.Label)] = true, ns.Label
		for field, v := range map[string]string{"region": ns.Region, "type": ns.Type, "image": ns.Image} {
			if v == "" {
				return fieldErr(at+"."+field, "is required")
			}
			if field == "image" && !imageIDRE.MatchString(v) {
				return fieldErr(at+".image", "must be a Linode image ID such as linode/debian12 (Linode's) or private/12345 (yours); got %q", v)
			}
			if name, ok := strings.CutPrefix(v, "linode/"); field == "image" && ok && !strings.HasPrefix(name, "debian") && !strings.HasPrefix(name, "ubuntu") {
				return fieldErr(at+".image", "%q is neither Debian nor Ubuntu, and dnsroll's playbooks install BIND, nginx and dnsdist with apt: use linode/debian12, linode/ubuntu24.04 or a private image made from one", v)
			}
			if field != "image" && !linodeIDRE.MatchString(v) {
				return fieldErr(at+"."+field, "must be a Linode %s ID, lowercase letters, digits and dashes such as %s; got %q", field, map[string]string{"region": "us-east", "type": "g6-nanode-1"}[field], v)
			}
		}
	}
	if len(f.LoadBalancers) == 0 {
		return fieldErr("load_balancers", "list at least one load balancer")
	}
	if n := len(f.LoadBalancers); n > MaxLoadBalancers {
		return fieldErr("load_balancers", "lists %d load balancers, more than the %d a fleet may have: every step of a load balancer replacement carries the fleet, and its workflow history, which Temporal caps, "+
			"would outgrow what was checked; split the fleet into fleets of at most %d load balancers, each with the nameservers they front", n, MaxLoadBalancers, MaxLoadBalancers)
	}
	// names holds each load balancer's name in lower case, as folded
	// does the nameservers' labels.
	names := map[string]string{}
	// fronted marks the nameservers some load balancer fronts: one that none
	// does is never reachable, so it is refused below.
	fronted := map[string]bool{}
	// Where each address and SSH host was first seen: two load balancers
	// on one would mean checking one of them twice and switching the wrong
	// machine, while the other keeps pointing at servers about to go.
	addrs, sshHosts := map[string]string{}, map[string]string{}
	// The load balancers' SSH hosts are checked only when Ansible uses
	// SSH, so a misspelt connection is named before them.
	switch f.Ansible.Connection {
	case "ssh", "local":
	default:
		return fieldErr("ansible.connection", "must be ssh or local, got %q", f.Ansible.Connection)
	}
	if h := f.Ansible.HostKeys; h != HostKeysGiven && h != HostKeysFirstUse {
		return fieldErr("ansible.host_keys", "must be %s (give each new server its SSH host key through cloud-init) or %s (trust it on first use), got %q", HostKeysGiven, HostKeysFirstUse, h)
	}
	for i, lb := range f.LoadBalancers {
		at := fmt.Sprintf("load_balancers[%d]", i)
		other, dup := names[strings.ToLower(lb.Name)]
		if lb.Name == "" || dup && other == lb.Name {
			return fieldErr(at+".name", "must be set and unique, got %q", lb.Name)
		}
		if dup {
			return fieldErr(at+".name", "%q is %q in other case, and Linode's labels are unique in an account whatever their case: give it another name", lb.Name, other)
		}
		if err := checkLBName(lb.Name, folded); err != nil {
			return fieldErr(at+".name", "%v", err)
		}
		names[strings.ToLower(lb.Name)] = lb.Name
		host, port, err := net.SplitHostPort(lb.Address)
		if err != nil || host == "" {
			hint := ""
			if ip, err := netip.ParseAddr(lb.Address); err == nil && ip.Is6() {
				hint = fmt.Sprintf(" (an IPv6 address goes in brackets, with the port after them: [%s]:53)", lb.Address)
			} else if _, rest, ok := strings.Cut(lb.Address, "://"); ok {
				hint = fmt.Sprintf(" (without a scheme: write %s)", strings.TrimRight(rest, "/"))
			} else if strings.Count(lb.Address, ":") > 1 && !strings.HasPrefix(lb.Address, "[") {
				hint = " (an IPv6 address goes in brackets, with the port after them: [2001:db8::12]:53)"
			}
			return fieldErr(at+".address", "must be host:port such as 192.0.2.1:53, got %q%s", lb.Address, hint)
		}
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			return fieldErr(at+".address", "port must be a number from 1 to 65535 (53 for DNS), got %q", port)
		}
		host, err = canonicalHost(host)
		if err != nil {
			return fieldErr(at+".address", "%v, in %q", err, lb.Address)
		}
		// One address however it is written: 053 is 53,
		// [::ffff:192.0.2.1] is 192.0.2.1, and localhost is 127.0.0.1.
		key := net.JoinHostPort(OneHost(host), strconv.Itoa(n))
		if other, dup := addrs[key]; dup {
			return fieldErr(at+".address", "%s is also %s's address; every load balancer needs its own", lb.Address, other)
		}
		addrs[key] = lb.Name
		if lb.SSHHost != "" {
			if _, err := canonicalHost(lb.SSHHost); err != nil {
				// The user is not quoted: it may carry a password.
				if _, h, ok := strings.Cut(lb.SSHHost, "@"); ok {
					if _, err := canonicalHost(h); err == nil {
						return fieldErr(at+".ssh_host", "is a host alone, without a user: write %s, and set the user as ansible.loadbalancer_ssh_user", h)
					}
				}
				if strings.HasPrefix(lb.SSHHost, "[") {
					return fieldErr(at+".ssh_host", "is a host alone, IPv6 too, without brackets or a port: write %s, got %q", strings.Trim(lb.SSHHost, "[]"), lb.SSHHost)
				}
				return fieldErr(at+".ssh_host", "%v, without a port (Ansible and the switch reach it on port 22), got %q", err, lb.SSHHost)
			}
		}
		if f.Ansible.Connection != "local" {
			ssh := cmp.Or(lb.SSHHost, host)
			if h, err := canonicalHost(ssh); err == nil {
				ssh = OneHost(h)
			}
			if other, dup := sshHosts[ssh]; dup {
				return fieldErr(at+".ssh_host", "Ansible would reach %s and %s at the same host %s; set ssh_host to this load balancer's own", other, lb.Name, ssh)
			}
			sshHosts[ssh] = lb.Name
		}
		if err := checkFronts(at+".fronts", lb.Fronts, labels, fronted); err != nil {
			return err
		}
		if !knownDrivers[lb.Driver] {
			return fieldErr(at+".driver", "unknown driver %q (known: nginx, dnsdist)", lb.Driver)
		}
		if _, err := netip.ParseAddr(host); err != nil && lb.Driver == "dnsdist" {
			return fieldErr(at+".address", "the dnsdist driver listens on an IP address and resolves no names: write the load balancer's IP address, such as 203.0.113.12:%d, got %q", n, lb.Address)
		}
		if lb.FirewallID < 0 {
			return fieldErr(at+".firewall_id", "must be a Cloud Firewall's ID, or 0 for none; got %d", lb.FirewallID)
		}
		if f.Rollout.Strategy == StrategyCanary && !weighingDrivers[lb.Driver] {
			return fieldErr(at+".driver", "is %s, but rollout.strategy canary needs a driver that weighs backends and counts their answers: use dnsdist, or another strategy", lb.Driver)
		}
	}
	for i, ns := range f.Nameservers {
		if !fronted[ns.Label] {
			return fieldErr(fmt.Sprintf("nameservers[%d].label", i), "%q is behind no load balancer, so no client could reach it: list it in a load balancer's fronts", ns.Label)
		}
	}
	for field, u := range map[string]string{"ssh_user": f.Ansible.SSHUser, "nameserver_ssh_user": f.Ansible.NameserverSSHUser, "loadbalancer_ssh_user": f.Ansible.LoadBalancerSSHUser} {
		if u != "" && !userRE.MatchString(u) {
			return fieldErr("ansible."+field, "%q is not a Unix user name (lowercase letters, digits, _ and -, starting with a letter or _)", u)
		}
	}
	if err := f.newServersAcceptTheUser(); err != nil {
		return err
	}
	if len(f.Zones) == 0 {
		return fieldErr("zones", "list at least one zone")
	}
	zoneNames := map[string]int{}
	for i, z := range f.Zones {
		at := fmt.Sprintf("zones[%d]", i)
		if z.Name == "" {
			return fieldErr(at+".name", "is required")
		}
		if err := asciiName(at+".name", z.Name); err != nil {
			return err
		}
		// miekg/dns takes any bytes in a label; a zone's name has letters,
		// digits, -, _ and, for RFC 2317 delegations, /. No URL, no
		// wildcard: the zone file's records name the zone itself.
		if _, ok := dns.IsDomainName(z.Name); !ok || strings.Trim(z.Name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./") != "" {
			return fieldErr(at+".name", "must be a domain name such as example.com, got %q", z.Name)
		}
		if other, dup := zoneNames[dns.CanonicalName(z.Name)]; dup {
			return fieldErr(at+".name", "%q is zones[%d] again: each zone is listed once", z.Name, other)
		}
		zoneNames[dns.CanonicalName(z.Name)] = i
		if z.File == "" {
			return fieldErr(at+".file", "is required")
		}
		if err := checkZoneFile(z.File); err != nil {
			return fieldErr(at+".file", "%v", err)
		}
	}
	if err := f.Probe.validate(); err != nil {
		return err
	}
	if err := f.Probe.namesInZones(f.Zones); err != nil {
		return err
	}
	if err := f.Rollout.validate(); err != nil {
		return err
	}
	if err := f.analysisRounds(); err != nil {
		return err
	}
	if err := f.lbUpdateBake(); err != nil {
		return err
	}
	if err := f.Notifications.validate(); err != nil {
		return err
	}
	if err := f.Steps.validate(); err != nil {
		return err
	}
	if err := f.cleanupFits(); err != nil {
		return err
	}
	// An analysis passes after consecutive_successes passing rounds,
	// interval apart; a probe step that ends sooner never passes.
	if least := times(f.Probe.ConsecutiveSuccesses-1, f.Probe.Interval.D()); least >= f.Steps.ProbeTimeout.D() && f.Steps.ProbeTimeout > 0 {
		return fieldErr("steps.probe_timeout", "must be longer than the %s an analysis takes at the least (probe.consecutive_successes %d rounds, probe.interval %s apart), got %s",
			durText(least), f.Probe.ConsecutiveSuccesses, f.Probe.Interval.D(), f.Steps.ProbeTimeout.D())
	}
	// A query that goes unanswered takes every attempt's timeout before
	// the round records it: a probe step that ends sooner times out
	// instead of failing the analysis with its reason.
	if perQuery := times(f.Probe.Attempts, f.Probe.Timeout.D()); f.Steps.ProbeTimeout > 0 && perQuery >= f.Steps.ProbeTimeout.D() {
		return fieldErr("probe.timeout", "%s for each of probe.attempts %d is %s for one unanswered query, which must be shorter than steps.probe_timeout (%s): lower timeout or attempts, or raise probe_timeout",
			f.Probe.Timeout.D(), f.Probe.Attempts, durText(perQuery), f.Steps.ProbeTimeout.D())
	}
	// A round after the first (one more after a tolerated error, say)
	// waits interval: one that no probe step outlasts is never run.
	if f.Probe.Rounds > 1 && f.Steps.ProbeTimeout > 0 && f.Probe.Interval.D() >= f.Steps.ProbeTimeout.D() {
		return fieldErr("probe.interval", "must be shorter than steps.probe_timeout (%s), or an analysis's next round (after an error it tolerates, say) comes after its step's deadline; got %s",
			f.Steps.ProbeTimeout.D(), f.Probe.Interval.D())
	}
	if f.Lab != nil && (f.Lab.DNSPortBase < 1024 || f.Lab.DNSPortBase > 64000) {
		return fieldErr("lab.dns_port_base", "must be between 1024 and 64000, got %d", f.Lab.DNSPortBase)
	}
	return f.labPortsFree()
}

// asciiName refuses a domain name written in Unicode: DNS carries the
// ASCII form, so a Unicode one would name nothing in the zone files.
func asciiName(field, name string) error {
	if strings.ContainsFunc(name, func(r rune) bool { return r >= utf8.RuneSelf }) {
		return fieldErr(field, "%q is not in ASCII: write an internationalized name in its ASCII form (punycode), such as xn--bcher-kva.example for bücher.example", name)
	}
	return nil
}

// labPortsFree refuses a lab load balancer on a lab VM's DNS port: both
// would listen on it, and the VM's provisioning would fail at its deadline.
func (f *Fleet) labPortsFree() error {
	if f.Lab == nil {
		return nil
	}
	first, last := f.Lab.LabDNSPort(0), f.Lab.LabDNSPort(999)
	for i, lb := range f.LoadBalancers {
		host, port, err := net.SplitHostPort(lb.Address)
		n, _ := strconv.Atoi(port)
		if err != nil || n < first || n > last {
			continue
		}
		if ip, err := netip.ParseAddr(host); strings.EqualFold(strings.TrimSuffix(host, "."), "localhost") || (err == nil && ip.Unmap() == netip.AddrFrom4([4]byte{127, 0, 0, 1})) {
			return fieldErr(fmt.Sprintf("load_balancers[%d].address", i), "port %d is among the lab VMs' DNS ports, %d-%d on 127.0.0.1 (lab.dns_port_base plus a VM's Linode ID %% 1000), "+
				"where a lab VM's named would need it too: give %s a port outside them, or move lab.dns_port_base", n, first, last, lb.Name)
		}
	}
	return nil
}

var (
	// placeholderRE finds the revision placeholder in any spelling:
	// {revision} is the one, ${revision} or {{revision}} a template's.
	placeholderRE = regexp.MustCompile(`(?i)\$\{?\s*revision\s*\}?|\{+\s*revision\s*\}+`)
	// expandedRE finds what a shell would expand in a path.
	expandedRE = regexp.MustCompile(`^~|\$\{?[A-Za-z_][A-Za-z0-9_]*\}?`)
)

// checkZoneFile refuses a zone file path that means to be expanded: dnsroll
// replaces {revision} and nothing else, so another spelling of it, a ~ or
// an environment variable would stay in the path, which names no file.
func checkZoneFile(file string) error {
	for _, m := range placeholderRE.FindAllString(file, -1) {
		if m != RevisionPlaceholder {
			return fmt.Errorf("%q is not the revision placeholder: write %s, which is replaced by the rollout's revision, in %q", m, RevisionPlaceholder, file)
		}
	}
	if m := expandedRE.FindString(file); m != "" {
		return fmt.Errorf("%q: dnsroll expands no ~ or $VARIABLE in a path, only %s: write the full path, or one relative to the fleet file's directory", file, RevisionPlaceholder)
	}
	return nil
}

// ValidateRevision checks a rollout revision against this fleet.
func (f *Fleet) ValidateRevision(rev string) error {
	if rev == "" {
		if f.NeedsRevision() {
			return fieldErr("revision", "is required: zone files contain %s", RevisionPlaceholder)
		}
		return nil
	}
	if !revisionRE.MatchString(rev) {
		return fieldErr("revision", "must be %s, got %q", RevisionRule, rev)
	}
	return nil
}

// NeedsRevision reports whether zone file paths depend on the revision.
func (f *Fleet) NeedsRevision() bool {
	for _, z := range f.Zones {
		if strings.Contains(z.File, RevisionPlaceholder) {
			return true
		}
	}
	return false
}

// ZoneFile resolves a zone's file for a revision, relative to the config's directory.
func (f *Fleet) ZoneFile(z Zone, revision string) string {
	return f.Path(strings.ReplaceAll(z.File, RevisionPlaceholder, revision))
}

// Path resolves p relative to the config's directory.
func (f *Fleet) Path(p string) string {
	if filepath.IsAbs(p) || f.Dir == "" {
		return p
	}
	return filepath.Join(f.Dir, p)
}

// Tag is the Linode tag that marks instances of this fleet. dnsroll never
// touches an instance without it.
func (f *Fleet) Tag() string { return fleetTagPrefix + f.Name }

const fleetTagPrefix = "dnsroll-fleet-"

// FleetOfTag is the name of the fleet whose Tag is tag, and whether tag
// is a fleet's tag at all: a step given only the tag reads the fleet's
// current config by it.
func FleetOfTag(tag string) (string, bool) {
	name, ok := strings.CutPrefix(tag, fleetTagPrefix)
	return name, ok && ValidFleetName(name)
}

// Nameserver returns the slot with label.
func (f *Fleet) Nameserver(label string) (Nameserver, bool) {
	for _, ns := range f.Nameservers {
		if ns.Label == label {
			return ns, true
		}
	}
	return Nameserver{}, false
}

// LabDNSPort is the loopback port of lab VM id.
func (l *Lab) LabDNSPort(id int) int { return l.DNSPortBase + id%1000 }

// FieldError names the config field that is wrong and how to fix it.
type FieldError struct {
	Field   string
	Message string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Message }

// checkFronts checks one load balancer's fronts (at is the field): at
// least one, each a nameserver's label, none twice. It marks each in
// fronted.
func checkFronts(at string, fronts Labels, labels, fronted map[string]bool) error {
	if len(fronts) == 0 {
		return fieldErr(at, "list the label of at least one nameserver")
	}
	seen := map[string]bool{}
	for j, l := range fronts {
		switch {
		case !labels[l] && strings.Contains(l, ","):
			return fieldErr(fmt.Sprintf("%s[%d]", at, j), "no nameserver %q: several go in a list, as [%s]", l, strings.Join(strings.Fields(strings.ReplaceAll(l, ",", " ")), ", "))
		case !labels[l]:
			return fieldErr(fmt.Sprintf("%s[%d]", at, j), "no nameserver %q: the fleet's are %s", l, strings.Join(slices.Sorted(maps.Keys(labels)), ", "))
		case seen[l]:
			return fieldErr(fmt.Sprintf("%s[%d]", at, j), "%q is listed twice", l)
		}
		seen[l], fronted[l] = true, true
	}
	return nil
}

// Labels are nameserver labels. One may be written as a plain string, as
// configs (`fronts: ns1`) and workflow histories from before a load
// balancer could front several were; one is written back that way, so
// their JSON is unchanged.
type Labels []string

// UnmarshalYAML takes a label or a list of them.
func (l *Labels) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		var one string
		if err := n.Decode(&one); err != nil {
			return err
		}
		*l = Labels{one}
		return nil
	}
	return n.Decode((*[]string)(l))
}

// UnmarshalJSON takes a label or a list of them.
func (l *Labels) UnmarshalJSON(b []byte) error {
	if bytes.HasPrefix(bytes.TrimSpace(b), []byte(`"`)) {
		var one string
		if err := json.Unmarshal(b, &one); err != nil {
			return err
		}
		*l = Labels{one}
		return nil
	}
	return json.Unmarshal(b, (*[]string)(l))
}

// MarshalJSON writes one label as a string and several as a list.
func (l Labels) MarshalJSON() ([]byte, error) {
	if len(l) == 1 {
		return json.Marshal(l[0])
	}
	return json.Marshal([]string(l))
}

// Has reports whether label is one of l.
func (l Labels) Has(label string) bool { return slices.Contains(l, label) }

// String is l for messages: "ns1" or "ns1, ns2".
func (l Labels) String() string { return strings.Join(l, ", ") }

func fieldErr(field, format string, args ...any) error {
	return &FieldError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// The lab directory's layout, in one place: <labDir>/vms/<Linode ID>/ for
// each lab VM and <labDir>/lb/<name>/ for each load balancer. The lab, the
// activities and the load balancer drivers all find their files here.

// LabVMsDir holds a directory per lab VM.
func LabVMsDir(labDir string) string { return filepath.Join(labDir, "vms") }

// LabVMDir is where lab VM id keeps its named config, zones and pid file.
func LabVMDir(labDir string, id int) string {
	return filepath.Join(LabVMsDir(labDir), fmt.Sprint(id))
}

// LabLBsDir holds a directory per lab load balancer.
func LabLBsDir(labDir string) string { return filepath.Join(labDir, "lb") }

// LabLBDir is where lab load balancer name keeps its config and pid file.
func LabLBDir(labDir, name string) string {
	return filepath.Join(LabLBsDir(labDir), name)
}

// Placement is where one fleet's machines run, resolved by the worker
// (PlaceIn) so that activities and load balancer drivers take a target and
// never read Fleet.Lab. A lab fleet's VMs and load balancers each have a
// directory under the lab directory on this machine, and a lab VM answers
// DNS on its own loopback port; a real fleet's machines are VMs that
// answer DNS on port 53 and keep their files in the usual places.
type Placement struct {
	lab    *Lab
	labDir string
}

// Placer resolves a fleet's Placement.
type Placer func(*Fleet) Placement

// PlaceIn is the worker's Placer: lab fleets run in labDir, which may be
// empty only while no lab fleet needs a directory.
func PlaceIn(labDir string) Placer {
	return func(f *Fleet) Placement { return Placement{lab: f.Lab, labDir: labDir} }
}

// Place returns f's placement by p; a nil p places lab fleets in no
// directory, so a lab machine's directory is an error.
func (p Placer) Place(f *Fleet) Placement {
	if p == nil {
		return PlaceIn("")(f)
	}
	return p(f)
}

// InLab reports whether the fleet's machines are lab processes on this
// machine, reached without SSH and kept in LabDir.
func (p Placement) InLab() bool { return p.lab != nil }

// LabDir is the lab directory; empty for real machines.
func (p Placement) LabDir() string { return p.labDir }

// DNSPort is where the server with Linode ID id answers DNS.
func (p Placement) DNSPort(id int) int {
	if p.lab == nil {
		return 53
	}
	return p.lab.LabDNSPort(id)
}

// VMDir is the lab directory of VM id; empty for a real VM.
func (p Placement) VMDir(id int) string {
	if p.lab == nil {
		return ""
	}
	return LabVMDir(p.labDir, id)
}
