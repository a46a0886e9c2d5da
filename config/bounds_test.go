package config

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// onDnsdist is valid with both load balancers on dnsdist, which strategy
// canary needs.
var onDnsdist = strings.NewReplacer("fronts: ns1}", "fronts: ns1, driver: dnsdist}", "fronts: ns2}", "fronts: ns2, driver: dnsdist}").Replace(valid)

// wantRefused fails unless config is refused with a FieldError naming
// field whose message says fix.
func wantRefused(t *testing.T, config, field, fix string) {
	t.Helper()
	_, err := Parse([]byte(config))
	var fe *FieldError
	switch {
	case !errors.As(err, &fe):
		t.Errorf("err = %v, want a FieldError on %s", err, field)
	case fe.Field != field || !strings.Contains(fe.Message, fix):
		t.Errorf("err = %v, want field %s saying %q", err, field, fix)
	}
}

// Each rule's bound, on the side it refuses: the value just past it is
// refused before any VM exists, naming the field and saying what it takes.
func TestValuesJustPastABoundAreRefused(t *testing.T) {
	for _, tt := range []struct{ name, from, to, field, fix string }{
		{"no nameservers", "nameservers:\n  - {label: ns1, region: us-east, type: g6-nanode-1, image: linode/debian12}\n  - {label: ns2, region: eu-west, type: g6-nanode-1, image: linode/debian12}\n",
			"nameservers: []\n", "nameservers", "list at least one nameserver"},
		{"no zones", "zones:\n  - {name: example.com, file: zones/example.com.zone}\n", "zones: []\n", "zones", "list at least one zone"},
		{"a negative nameserver firewall", "image: linode/debian12}\n  - {label: ns2", "image: linode/debian12, firewall_id: -1}\n  - {label: ns2",
			"nameservers[0].firewall_id", "must be a Cloud Firewall's ID, or 0 for none"},
		{"a region ending in a dash", "region: eu-west,", "region: eu-west-,", "nameservers[1].region", "must be a Linode region ID, lowercase letters, digits and dashes such as us-east"},
		{"port 0", `"192.0.2.2:53"`, `"192.0.2.2:0"`, "load_balancers[1].address", "port must be a number from 1 to 65535"},
		{"a host name of 254 characters", `"192.0.2.2:53"`, `"` + strings.Repeat(strings.Repeat("a", 63)+".", 3) + strings.Repeat("b", 54) + `.example.:53"`,
			"load_balancers[1].address", "a host name has at most 253 characters, and this one has 254"},
		{"a user name in capitals", "zones:", "ansible: {loadbalancer_ssh_user: Deploy}\nzones:", "ansible.loadbalancer_ssh_user", "is not a Unix user name (lowercase letters, digits, _ and -, starting with a letter or _)"},
		{"a user name of 33 characters", "zones:", "ansible: {loadbalancer_ssh_user: " + strings.Repeat("d", 33) + "}\nzones:", "ansible.loadbalancer_ssh_user", "is not a Unix user name"},
		// With one success to pass, the first check lets any interval by.
		{"a probe interval as long as the probe step", "zones:", "probe: {interval: 1m}\nsteps: {probe_timeout: 1m}\nzones:", "probe.interval", "must be shorter than steps.probe_timeout"},
		{"two probe rounds, the second after the probe step", "zones:", "probe: {rounds: 2, consecutive_successes: 1, interval: 1m}\nsteps: {probe_timeout: 1m}\nzones:", "probe.interval", "must be shorter than steps.probe_timeout"},
		{"a lab DNS port base one below 1024", "zones:", "lab: {dns_port_base: 1023}\nzones:", "lab.dns_port_base", "must be between 1024 and 64000"},
		{"a lab DNS port base one past 64000", "zones:", "lab: {dns_port_base: 64001}\nzones:", "lab.dns_port_base", "must be between 1024 and 64000"},
		{"negative max_attempts", "zones:", "steps: {max_attempts: -1}\nzones:", "steps.max_attempts", "must be between 0 (retry until the step's deadline) and 1000"},
		{"a negative retry interval", "zones:", "steps: {retry_initial_interval: -1s}\nzones:", "steps.retry_initial_interval", "must not be negative"},
		{"a cleanup timeout a minute past the most", "zones:", "steps: {cleanup_timeout: 72h1m}\nzones:", "steps.cleanup_timeout", "must be at most 72h0m0s"},
		{"a create timeout a minute past the most", "zones:", "steps: {create_timeout: 168h1m}\nzones:", "steps.create_timeout", "must be at most 168h0m0s"},
		{"a provision timeout a minute past the most", "zones:", "steps: {provision_timeout: 168h1m}\nzones:", "steps.provision_timeout", "must be at most 168h0m0s"},
		{"a probe timeout a minute past the most", "zones:", "steps: {probe_timeout: 168h1m}\nzones:", "steps.probe_timeout", "must be at most 168h0m0s"},
		{"a switch timeout a minute past the most", "zones:", "steps: {switch_timeout: 168h1m}\nzones:", "steps.switch_timeout", "must be at most 168h0m0s"},
		{"an approval timeout a second short of a minute", "zones:", "rollout: {approval: manual, approval_timeout: 59s}\nzones:", "rollout.approval_timeout", "must be at least 1m"},
		{"a negative bake", "zones:", "rollout: {bake: -1s}\nzones:", "rollout.bake", "must not be negative, got -1s (0s for no bake)"},
		{"a bake interval below a second", "zones:", "rollout: {bake_interval: 999ms}\nzones:", "rollout.bake_interval", "must be at least 1s"},
		{"one analysis round past the most", "zones:", "rollout: {bake: 8h20m15s}\nzones:", "rollout.bake_interval", "more than the 2000 a rollout's workflow history holds"},
		{"a negative update bake", "zones:", "lb_update: {bake: -1s}\nzones:", "lb_update.bake", "must not be negative, got -1s (0s for no bake)"},
		{"an update bake interval below a second", "zones:", "lb_update: {bake_interval: 999ms}\nzones:", "lb_update.bake_interval", "must be at least 1s"},
		// The second of the two load balancers does not bake.
		{"one update bake round past the most", "zones:", "lb_update: {bake: 5h33m30s}\nzones:", "lb_update.bake_interval",
			"(bake 5h33m30s for each of 2 load balancers but the last), more than the 2000 an update's workflow history holds: raise bake_interval to at least 11s"},
		{"a webhook URL with credentials", "zones:", "notifications: {webhooks: [{url: 'https://user:pw@h.example.net/x'}]}\nzones:", "notifications.webhooks[0].url", "must not carry credentials; use secret_env"},
		{"a webhook URL without a host", "zones:", "notifications: {webhooks: [{url: 'https:///x'}]}\nzones:", "notifications.webhooks[0].url", "must be an http or https URL"},
		// Go's URL parser takes any digits for a port; the send would then
		// fail at every event, after the rollout started.
		{"a webhook URL port past 65535", "zones:", "notifications: {webhooks: [{url: 'https://h.example.net:65536/x'}]}\nzones:", "notifications.webhooks[0].url", "port must be a number from 1 to 65535"},
		{"a webhook URL port 0", "zones:", "notifications: {webhooks: [{url: 'https://h.example.net:0/x'}]}\nzones:", "notifications.webhooks[0].url", "port must be a number from 1 to 65535"},
		{"a webhook URL with a port and no host", "zones:", "notifications: {webhooks: [{url: 'https://:443/x'}]}\nzones:", "notifications.webhooks[0].url", "must be an http or https URL"},
		// One host however its name is written: Ansible would configure it
		// twice, and the other load balancer would keep its old servers.
		{"two SSH hosts one in other case", "fronts: ns1}\n  - {name: lb2, address: \"192.0.2.2:53\", fronts: ns2}",
			"fronts: ns1, ssh_host: lb.example.net}\n  - {name: lb2, address: \"192.0.2.2:53\", fronts: ns2, ssh_host: LB.Example.NET}", "load_balancers[1].ssh_host", "set ssh_host to this load balancer's own"},
		{"a missing region", "region: eu-west, ", "", "nameservers[1].region", "is required"},
		{"an image owner in capitals", "image: linode/debian12}\n  - {label: ns2", "image: Linode/debian12}\n  - {label: ns2", "nameservers[0].image", "must be a Linode image ID such as linode/debian12"},
		// Its replacement, lb2-next, is a label too, and 65 characters.
		{"a load balancer name whose replacement is too long", "name: lb2,", "name: l" + strings.Repeat("b", 59) + ",", "load_balancers[1].name", "(Linode's rule, for"},
		{"a host name label of 64 characters", `"192.0.2.2:53"`, `"` + strings.Repeat("a", 64) + `.example:53"`, "load_balancers[1].address", "must be a host name or an IP address"},
		{"a variable name with an @", "zones:", "notifications: {webhooks: [{url_env: 'hook@host'}]}\nzones:", "notifications.webhooks[0].url_env", "is not an environment variable's name (it has a character such as $"},
		{"a variable name with a +", "zones:", "notifications: {webhooks: [{url_env: 'HOOK+1'}]}\nzones:", "notifications.webhooks[0].url_env", "is not an environment variable's name (it has a character such as $"},
		{"a variable written as the shell's ${HOOK}", "zones:", "notifications: {webhooks: [{url_env: '${HOOK}'}]}\nzones:", "notifications.webhooks[0].url_env", "is not an environment variable's name: write HOOK"},
		{"a webhook name written empty", "zones:", "notifications: {webhooks: [{name: '', url: 'https://h.example.net/x'}]}\nzones:", "notifications.webhooks[0].name", `is "", which means the default, webhook-1`},
		// Twelve digits alone, or twenty characters mixing digits and
		// lower case, are a key's shape.
		{"twelve digits for a variable name", "zones:", "notifications: {webhooks: [{url_env: '123456789012'}]}\nzones:", "notifications.webhooks[0].url_env", "looks like a key"},
		{"twenty characters of lower case and digits for a variable name", "zones:", "notifications: {webhooks: [{url_env: abcdefghij0123456789}]}\nzones:", "notifications.webhooks[0].url_env", "looks like a key"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if !strings.Contains(valid, tt.from) {
				t.Fatalf("%q is not in the valid config", tt.from)
			}
			wantRefused(t, strings.Replace(valid, tt.from, tt.to, 1), tt.field, tt.fix)
		})
	}
}

// A canary's rules, at their bounds.
func TestCanaryValuesJustPastABoundAreRefused(t *testing.T) {
	for _, tt := range []struct{ name, canary, field, fix string }{
		{"a step without a duration", "{steps: [{weight: 10}]}", "rollout.canary.steps[0].duration", "is required: how long green takes this share before the next step, such as 1m"},
		// Past time.Duration's range: no interval makes that few rounds.
		{"steps longer than dnsroll can count", "{steps: [{weight: 1, duration: 2000000h}, {weight: 2, duration: 2000000h}]}", "rollout.bake", "longer than dnsroll can count: bake for less"},
		{"two steps of one weight", "{steps: [{weight: 10, duration: 1m}, {weight: 10, duration: 1m}]}", "rollout.canary.steps[1].weight", "above the step before (10), got 10"},
		{"a step of weight 0", "{steps: [{weight: 0, duration: 1m}]}", "rollout.canary.steps[0].weight", "must be a percentage from 1 to 99"},
		{"a step shorter than a second", "{steps: [{weight: 10, duration: 999ms}]}", "rollout.canary.steps[0].duration", "must be at least 1s"},
		{"a negative drop rate increase", "{max_drop_rate_increase: -0.01}", "rollout.canary.max_drop_rate_increase", "must be a fraction from 0 to 1"},
		{"a drop rate increase of 1", "{max_drop_rate_increase: 1}", "rollout.canary.max_drop_rate_increase", "must be a fraction from 0 to 1"},
		// NaN compares false both ways: green's drops would never exceed
		// it, and no canary step would fail.
		{"a drop rate increase that is no number", "{max_drop_rate_increase: .nan}", "rollout.canary.max_drop_rate_increase", "must be a fraction from 0 to 1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			wantRefused(t, strings.Replace(onDnsdist, "zones:", "rollout: {strategy: canary, canary: "+tt.canary+"}\nzones:", 1), tt.field, tt.fix)
		})
	}
	// approval: each gates the load balancers of one-at-a-time, one by one.
	wantRefused(t, strings.Replace(onDnsdist, "zones:", "rollout: {strategy: canary, approval: each}\nzones:", 1),
		"rollout.approval", "set rollout.strategy: one-at-a-time, or approval: manual")
}

// Each rule's bound, on the side it takes.
func TestValuesAtABoundAreAccepted(t *testing.T) {
	for _, tt := range []struct{ name, from, to string }{
		{"an http webhook URL", "zones:", "notifications: {webhooks: [{url: 'http://hooks.example.net/x'}]}\nzones:"},
		{"a webhook URL on port 65535", "zones:", "notifications: {webhooks: [{url: 'https://hooks.example.net:65535/x'}]}\nzones:"},
		{"a webhook URL at an IPv6 address and port", "zones:", "notifications: {webhooks: [{url: 'https://[2001:db8::1]:8443/x'}]}\nzones:"},
		// One round has no next: its interval is no matter.
		{"a single probe round with an interval as long as the step", "zones:", "probe: {rounds: 1, interval: 1m}\nsteps: {probe_timeout: 1m}\nzones:"},
		{"Linode's Ubuntu image", "image: linode/debian12}\n  - {label: ns2", "image: linode/ubuntu24.04}\n  - {label: ns2"},
		{"port 65535", `"192.0.2.2:53"`, `"192.0.2.2:65535"`},
		{"a host name of 253 characters", `"192.0.2.2:53"`, `"` + strings.Repeat(strings.Repeat("a", 63)+".", 3) + strings.Repeat("b", 53) + `.example:53"`},
		// The root's dot is no part of the 253 (RFC 1035's 255 octets on the wire).
		{"a host name of 253 characters and the root's dot", `"192.0.2.2:53"`, `"` + strings.Repeat(strings.Repeat("a", 63)+".", 3) + strings.Repeat("b", 53) + `.example.:53"`},
		{"a user name of 32 characters", "zones:", "ansible: {loadbalancer_ssh_user: _" + strings.Repeat("d", 30) + "-}\nzones:"},
		{"a lab DNS port base of 1024", "zones:", "lab: {dns_port_base: 1024}\nzones:"},
		{"a lab DNS port base of 64000", "zones:", "lab: {dns_port_base: 64000}\nzones:"},
		{"max_attempts 1000", "zones:", "steps: {max_attempts: 1000}\nzones:"},
		{"a heartbeat timeout of 1s", "zones:", "steps: {heartbeat_timeout: 1s}\nzones:"},
		{"retry intervals that are equal", "zones:", "steps: {retry_initial_interval: 10s, retry_maximum_interval: 10s}\nzones:"},
		{"the longest cleanup timeout", "zones:", "steps: {cleanup_timeout: 72h}\nzones:"},
		{"the longest step timeouts", "zones:", "steps: {create_timeout: 168h, provision_timeout: 168h, probe_timeout: 168h, switch_timeout: 168h}\nzones:"},
		{"an approval timeout of a minute", "zones:", "rollout: {approval: manual, approval_timeout: 1m}\nzones:"},
		{"a bake interval of 1s", "zones:", "rollout: {bake_interval: 1s}\nzones:"},
		{"exactly the most analysis rounds", "zones:", "rollout: {bake: 8h20m}\nzones:"},
		{"exactly the most update bake rounds", "zones:", "lb_update: {bake: 5h33m20s}\nzones:"},
		{"an update bake interval of 1s", "zones:", "lb_update: {bake_interval: 1s}\nzones:"},
		// One load balancer, the last, does not bake: no rounds to count.
		{"any update bake with one load balancer", "fronts: ns1}\n  - {name: lb2, address: \"192.0.2.2:53\", fronts: ns2}\nzones:",
			"fronts: [ns1, ns2]}\nlb_update: {bake: 1000h, bake_interval: 1s}\nzones:"},
		{"nineteen characters of lower case and digits for a variable name", "zones:", "notifications: {webhooks: [{url_env: abcdefghi0123456789}]}\nzones:"},
		{"eleven digits for a variable name", "zones:", "notifications: {webhooks: [{url_env: '12345678901'}]}\nzones:"},
	} {
		if !strings.Contains(valid, tt.from) {
			t.Fatalf("%s: %q is not in the valid config", tt.name, tt.from)
		}
		if _, err := Parse([]byte(strings.Replace(valid, tt.from, tt.to, 1))); err != nil {
			t.Errorf("%s: %v", tt.name, err)
		}
	}
	for _, canary := range []string{"{steps: [{weight: 1, duration: 1s}, {weight: 99, duration: 1s}]}", "{max_drop_rate_increase: 0.99}"} {
		if _, err := Parse([]byte(strings.Replace(onDnsdist, "zones:", "rollout: {strategy: canary, canary: "+canary+"}\nzones:", 1))); err != nil {
			t.Errorf("canary %s: %v", canary, err)
		}
	}
}

// The defaults docs/configuration.md gives, which a fleet that leaves the
// fields out runs with.
func TestDocumentedDefaults(t *testing.T) {
	f, err := Parse([]byte(valid))
	if err != nil {
		t.Fatal(err)
	}
	r, s := f.Rollout, f.Steps
	for _, d := range []struct {
		field     string
		got, want any
	}{
		{"rollout.strategy", r.Strategy, StrategyAllAtOnce},
		{"rollout.approval", r.Approval, ApprovalAuto},
		{"rollout.approval_timeout", r.ApprovalTimeout.D(), 24 * time.Hour},
		{"rollout.bake", r.BakeDuration(), 5 * time.Minute},
		{"rollout.bake_interval", r.BakeInterval.D(), 15 * time.Second},
		{"lb_update.bake", f.LBUpdate.BakeDuration(), time.Minute},
		{"lb_update.bake_interval", f.LBUpdate.BakeInterval.D(), 10 * time.Second},
		{"steps.create_timeout", s.CreateTimeout.D(), 10 * time.Minute},
		{"steps.provision_timeout", s.ProvisionTimeout.D(), 20 * time.Minute},
		{"steps.probe_timeout", s.ProbeTimeout.D(), 2 * time.Minute},
		{"steps.switch_timeout", s.SwitchTimeout.D(), 5 * time.Minute},
		{"steps.retry_initial_interval", s.RetryInitialInterval.D(), time.Second},
		{"steps.cleanup_timeout", s.CleanupTimeout.D(), time.Hour},
		{"ansible.ssh_user", f.Ansible.SSHUser, "root"},
		{"ansible.nameserver_playbook", f.Ansible.NameserverPlaybook, "../ansible/nameserver.yml"},
		{"ansible.loadbalancer_playbook", f.Ansible.LoadBalancerPlaybook, "../ansible/loadbalancer.yml"},
	} {
		if d.got != d.want {
			t.Errorf("%s = %v, want %v", d.field, d.got, d.want)
		}
	}
	lab, err := Parse([]byte(valid + "lab: {}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := lab.Lab.DNSPortBase, 15300; got != want {
		t.Errorf("lab.dns_port_base = %d, want %d", got, want)
	}
}

// A revision starts with a letter or digit: ".." would name the zone
// files' parent directory.
func TestRevisionStartingWithADotIsRefused(t *testing.T) {
	f, err := Parse([]byte(strings.Replace(valid, "file: zones/example.com.zone", `file: "zones/{revision}/example.com.zone"`, 1)))
	if err != nil {
		t.Fatal(err)
	}
	for _, rev := range []string{"..", ".hidden", strings.Repeat("r", 65)} {
		var fe *FieldError
		if err := f.ValidateRevision(rev); !errors.As(err, &fe) || fe.Field != "revision" || !strings.Contains(fe.Message, RevisionRule) {
			t.Errorf("revision %q: err = %v, want the revision refused with the rule, %q", rev, err, RevisionRule)
		}
	}
	if err := f.ValidateRevision(strings.Repeat("r", 64)); err != nil {
		t.Errorf("a revision of 64 characters: %v", err)
	}
}

// A load balancer replacement is made from a nameserver's image: a
// non-root load balancer user on one of Linode's images is refused, naming
// the field that set the user and the fix.
func TestNonRootLoadBalancerUserNeedsAPrivateImage(t *testing.T) {
	for _, tt := range []struct{ ansible, image, field string }{
		{"ansible: {loadbalancer_ssh_user: deploy}", "linode/debian12", "ansible.loadbalancer_ssh_user"},
		{"ansible: {ssh_user: deploy, nameserver_ssh_user: root}", "linode/debian12", "ansible.ssh_user"},
		{"ansible: {loadbalancer_ssh_user: deploy}", "private/4242", ""},
		{"ansible: {ssh_user: deploy, loadbalancer_ssh_user: root}", "private/4242", ""},
	} {
		f, err := Parse([]byte(strings.ReplaceAll(valid, "linode/debian12", tt.image) + tt.ansible + "\n"))
		if err != nil {
			t.Fatalf("%s: %v", tt.ansible, err)
		}
		err = f.NewServerUser(0, true)
		var fe *FieldError
		switch {
		case tt.field == "" && err != nil:
			t.Errorf("%s on %s: refused: %v", tt.ansible, tt.image, err)
		case tt.field != "" && (!errors.As(err, &fe) || fe.Field != tt.field ||
			!strings.Contains(fe.Message, `"deploy" logs into new load balancers`) || !strings.Contains(fe.Message, "set loadbalancer_ssh_user: root")):
			t.Errorf("%s on %s: err = %v, want %s refused, with the fix", tt.ansible, tt.image, err, tt.field)
		}
	}
}

// A bake too long for its interval is refused with the shortest interval
// that takes it, which then loads.
func TestBakeIntervalTheRefusalNamesLoads(t *testing.T) {
	for _, bake := range []string{"24h", "8h20m15s", "100h"} {
		_, err := Parse([]byte(strings.Replace(valid, "zones:", "rollout: {bake: "+bake+"}\nzones:", 1)))
		_, least, ok := strings.Cut(fmt.Sprint(err), "raise bake_interval to at least ")
		least, _, _ = strings.Cut(least, ",")
		if !ok {
			t.Fatalf("bake %s: err = %v, want the interval to raise it to", bake, err)
		}
		if _, err := Parse([]byte(strings.Replace(valid, "zones:", "rollout: {bake: "+bake+", bake_interval: "+least+"}\nzones:", 1))); err != nil {
			t.Errorf("bake %s at the interval its refusal named, %s: %v", bake, least, err)
		}
	}
}

// A wrong value is matched to its field by how yaml.v3 shows it: a
// value of its own ending in "..." is not one cut short, so a field on its
// line that begins alike is not taken for it.
func TestWrongValueEndingInDotsNamesItsField(t *testing.T) {
	_, err := Parse([]byte(strings.Replace(valid, "zones:", "probe: {names: [ab], attempts: ab...}\nzones:", 1)))
	if want := `probe.attempts (line 9): must be a whole number, got "ab..."`; err == nil || err.Error() != want {
		t.Errorf("err = %v, want %q", err, want)
	}
}

// A misspelt key's message is as explainUnknown wrote it: the section is
// named once, not again in front as if it were a value.
func TestUnknownFieldIsNotNamedTwice(t *testing.T) {
	_, err := Parse([]byte(strings.Replace(valid, "zones:", "rollout: {aproval: manual}\nzones:", 1)))
	if want := `line 9: rollout has no field "aproval"; did you mean approval?`; err == nil || err.Error() != want {
		t.Errorf("err = %v, want %q", err, want)
	}
}

// A lab VM's named listens on 127.0.0.1 at lab.dns_port_base plus its
// Linode ID % 1000: a load balancer there would take a VM's port (the
// simulator's first VM gets the base + 1), and that VM's provisioning
// would fail at its deadline.
func TestLabLoadBalancerOnALabVMsPortIsRefused(t *testing.T) {
	lab := func(address string) string {
		return strings.Replace(valid, `"192.0.2.2:53"`, `"`+address+`"`, 1) + "lab: {dns_port_base: 5300}\n"
	}
	for _, address := range []string{"127.0.0.1:5301", "127.0.0.1:5300", "127.0.0.1:6299", "localhost:5301", "LocalHost.:5301", "[::ffff:127.0.0.1]:5301"} {
		wantRefused(t, lab(address), "load_balancers[1].address", "is among the lab VMs' DNS ports, 5300-6299 on 127.0.0.1")
		wantRefused(t, lab(address), "load_balancers[1].address", "give lb2 a port outside them, or move lab.dns_port_base")
	}
	for _, address := range []string{"127.0.0.1:5299", "127.0.0.1:6300", "127.0.0.2:5301"} {
		if _, err := Parse([]byte(lab(address))); err != nil {
			t.Errorf("%s, beside the lab VMs' ports: %v", address, err)
		}
	}
}

// In the lab, localhost is 127.0.0.1, as labPortsFree takes it: a second
// load balancer at localhost:P beside one at 127.0.0.1:P would fail to
// bind at its switch, after green exists.
func TestLabLoadBalancersAtLocalhostAndItsAddressAreOne(t *testing.T) {
	for _, pair := range [][2]string{{"127.0.0.1:5301", "localhost:5301"}, {"localhost:5301", "LocalHost.:5301"}, {"[::ffff:127.0.0.1]:5301", "localhost:5301"}} {
		yaml := strings.Replace(strings.Replace(valid, `"192.0.2.1:53"`, `"`+pair[0]+`"`, 1), `"192.0.2.2:53"`, `"`+pair[1]+`"`, 1) + "ansible: {connection: local}\nlab: {}\n"
		wantRefused(t, yaml, "load_balancers[1].address", "is also lb1's address")
	}
}
