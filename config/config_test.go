package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dnsroll/dnsroll/internal/fleettest"
)

// valid is a config that passes, which the tests below break one field at
// a time.
var valid = fleettest.YAML("prod", "192.0.2.1:53", "192.0.2.2:53")

func TestParseDefaults(t *testing.T) {
	f, err := Parse([]byte(valid))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := f.LoadBalancers[0].Driver, "nginx"; got != want {
		t.Errorf("driver = %q, want %q", got, want)
	}
	if got, want := f.Ansible.Connection, "ssh"; got != want {
		t.Errorf("connection = %q, want %q", got, want)
	}
	if got, want := f.Ansible.HostKeys, HostKeysGiven; got != want {
		t.Errorf("host_keys = %q, want %q", got, want)
	}
	if got, want := strings.Join(f.Probe.Protocols, ","), "udp,tcp"; got != want {
		t.Errorf("protocols = %q, want %q", got, want)
	}
	if f.Steps.MaxAttempts != 0 || f.Steps.RetryMaximumInterval.D().Seconds() != 30 || f.Steps.HeartbeatTimeout.D().Seconds() != 30 {
		t.Errorf("step defaults = %+v", f.Steps)
	}
	if got, want := f.Tag(), "dnsroll-fleet-prod"; got != want {
		t.Errorf("tag = %q, want %q", got, want)
	}
}

// A load balancer's IP address is kept in the one form that compares
// equal to the glue and the checks' addresses however the fleet writes it:
// IPv4-mapped as IPv4, IPv6 in lower case and shortest, the port without
// zeros in front. A host name stays as written.
func TestLoadBalancerAddressesAreCanonical(t *testing.T) {
	for written, want := range map[string]string{
		"[::ffff:192.0.2.2]:53":  "192.0.2.2:53",
		"[2001:DB8:0:0::12]:053": "[2001:db8::12]:53",
		"192.0.2.2:53":           "192.0.2.2:53",
		"LB2.Example.NET:53":     "LB2.Example.NET:53",
	} {
		f, err := Parse([]byte(strings.Replace(valid, `"192.0.2.2:53"`, `"`+written+`"`, 1)))
		if err != nil {
			t.Fatalf("%s: %v", written, err)
		}
		if got := f.LoadBalancers[1].Address; got != want {
			t.Errorf("address %s reads as %s, want %s", written, got, want)
		}
	}
}

// Every invalid config names the field to fix.
func TestInvalidConfigNamesField(t *testing.T) {
	tests := []struct {
		name, from, to, field string
	}{
		{"bad fleet name", "fleet: prod", "fleet: Prod!", "fleet"},
		{"label ending in -next", "label: ns2,", "label: ns2-next,", "nameservers[1].label"},
		{"duplicate label", "label: ns2,", "label: ns1,", "nameservers[1].label"},
		// Linode's label rule, for the label and its green -next form.
		{"label Linode rejects: too short", "label: ns2,", "label: n2,", "nameservers[1].label"},
		{"label Linode rejects: leading digit", "label: ns2,", "label: 2ns,", "nameservers[1].label"},
		{"label whose green is too long", "label: ns2,", "label: " + strings.Repeat("n", 60) + ",", "nameservers[1].label"},
		{"missing region", "region: eu-west, ", "", "nameservers[1].region"},
		{"address without port", `"192.0.2.2:53"`, `"192.0.2.2"`, "load_balancers[1].address"},
		{"port out of range", `"192.0.2.2:53"`, `"192.0.2.2:99999"`, "load_balancers[1].address"},
		{"port one past the last", `"192.0.2.2:53"`, `"192.0.2.2:65536"`, "load_balancers[1].address"},
		{"port not a number", `"192.0.2.2:53"`, `"192.0.2.2:dns"`, "load_balancers[1].address"},
		{"two load balancers on one address", `"192.0.2.2:53"`, `"192.0.2.1:53"`, "load_balancers[1].address"},
		{"a negative load balancer firewall", `"192.0.2.2:53"`, `"192.0.2.2:53", firewall_id: -1`, "load_balancers[1].firewall_id"},
		{"two load balancers reached over one SSH host", `"192.0.2.2:53"`, `"192.0.2.2:53", ssh_host: 192.0.2.1`, "load_balancers[1].ssh_host"},
		// The same address written another way is still the same address.
		{"one address, a port with a leading zero", `"192.0.2.2:53"`, `"192.0.2.1:053"`, "load_balancers[1].address"},
		{"one address, IPv4-mapped IPv6", `"192.0.2.2:53"`, `"[::ffff:192.0.2.1]:53"`, "load_balancers[1].address"},
		{"the unspecified address, where no client reaches", `"192.0.2.2:53"`, `"0.0.0.0:53"`, "load_balancers[1].address"},
		{"the unspecified IPv6 address", `"192.0.2.2:53"`, `"[::]:53"`, "load_balancers[1].address"},
		// A multicast or broadcast address is no machine's: a switch
		// would find no load balancer there, after green exists.
		{"a multicast address", `"192.0.2.2:53"`, `"224.0.0.1:53"`, "load_balancers[1].address"},
		{"the broadcast address", `"192.0.2.2:53"`, `"255.255.255.255:53"`, "load_balancers[1].address"},
		{"a multicast SSH host", `"192.0.2.2:53"`, `"192.0.2.2:53", ssh_host: "ff02::1"`, "load_balancers[1].ssh_host"},
		{"an SSH host with a port", `"192.0.2.2:53"`, `"192.0.2.2:53", ssh_host: "192.0.2.9:2222"`, "load_balancers[1].ssh_host"},
		{"an SSH host that is no host name", `"192.0.2.2:53"`, `"192.0.2.2:53", ssh_host: "bad host;rm"`, "load_balancers[1].ssh_host"},
		{"an address host that is no host name", `"192.0.2.2:53"`, `"bad_host!:53"`, "load_balancers[1].address"},
		{"fronts unknown", "fronts: ns2", "fronts: ns9", "load_balancers[1].fronts[0]"},
		{"fronts unknown in a list", "fronts: ns2", "fronts: [ns2, ns9]", "load_balancers[1].fronts[1]"},
		{"fronts twice in a list", "fronts: ns2", "fronts: [ns2, ns2]", "load_balancers[1].fronts[1]"},
		{"fronts empty", "fronts: ns2", "fronts: []", "load_balancers[1].fronts"},
		{"nameserver behind no load balancer", "fronts: ns2", "fronts: ns1", "nameservers[1].label"},
		{"unknown driver", "fronts: ns1}", "fronts: ns1, driver: haproxy}", "load_balancers[0].driver"},
		{"zone without file", "file: zones/example.com.zone", "file: ''", "zones[0].file"},
		{"bad protocol", "zones:", "probe: {protocols: [quic]}\nzones:", "probe.protocols[0]"},
		{"bad connection", "zones:", "ansible: {connection: winrm}\nzones:", "ansible.connection"},
		{"host keys neither given nor first use", "zones:", "ansible: {host_keys: tofu}\nzones:", "ansible.host_keys"},
		// Checked before the load balancers' SSH hosts, which depend on it.
		{"misspelt local connection, load balancers on one host", "\"192.0.2.2:53\", fronts: ns2}\nzones:",
			"\"192.0.2.1:54\", fronts: ns2}\nansible: {connection: locall}\nzones:", "ansible.connection"},
		{"zone name that is no domain name", "name: example.com,", "name: 'exa mple.com',", "zones[0].name"},
		{"zone listed twice", "file: zones/example.com.zone}", "file: zones/example.com.zone}\n  - {name: Example.COM., file: zones/b.zone}", "zones[1].name"},
		// A load balancer's name is a Linode label too: the replacement
		// creates <name>-next and renames it.
		{"load balancer name Linode rejects", "name: lb2,", "name: 'lb 2',", "load_balancers[1].name"},
		{"load balancer name that is a nameserver's label", "name: lb2,", "name: ns1,", "load_balancers[1].name"},
		{"load balancer name ending in -next", "name: lb2,", "name: lb1-next,", "load_balancers[1].name"},
		{"region with a space", "region: eu-west,", "region: 'eu west',", "nameservers[1].region"},
		// An image ID is <owner>/<name>, as linode/debian12 or private/4242.
		{"image that is no image ID", "image: linode/debian12}\n  - {label: ns2", "image: 'debian 12'}\n  - {label: ns2", "nameservers[0].image"},
		{"image with a trailing space", "image: linode/debian12}\n  - {label: ns2", "image: 'linode/debian12 '}\n  - {label: ns2", "nameservers[0].image"},
		{"type in capitals", "type: g6-nanode-1, image: linode/debian12}\n  - {label: ns2", "type: G6-Nanode-1, image: linode/debian12}\n  - {label: ns2", "nameservers[0].type"},
		{"heartbeat timeout below a second", "zones:", "steps: {heartbeat_timeout: 10ms}\nzones:", "steps.heartbeat_timeout"},
		// Temporal refuses a retry policy whose maximum interval is below
		// its initial one: every step, the cleanup's too, would fail to
		// start.
		{"retry maximum interval below the initial one", "zones:", "steps: {retry_initial_interval: 1m, retry_maximum_interval: 10s}\nzones:", "steps.retry_maximum_interval"},
		{"max_attempts above 1000", "zones:", "steps: {max_attempts: 1001}\nzones:", "steps.max_attempts"},
		// A step on a dead worker is retried elsewhere after the heartbeat
		// timeout; one at or past the step's deadline means never.
		// A heartbeat timeout of the default value is taken as the default,
		// written or not.
		{"a step as long as a heartbeat timeout of the default value", "zones:", "steps: {probe_timeout: 30s, heartbeat_timeout: 30s}\nzones:", "steps.probe_timeout"},
		{"heartbeat timeout as long as a step's", "zones:", "steps: {probe_timeout: 40s, heartbeat_timeout: 40s}\nzones:", "steps.heartbeat_timeout"},
		// An analysis needs consecutive_successes rounds, interval apart, to
		// pass; a probe step shorter than that can never pass.
		{"probe step too short for the rounds it needs", "zones:", "probe: {rounds: 10, consecutive_successes: 5, interval: 30s}\nsteps: {probe_timeout: 2m}\nzones:", "steps.probe_timeout"},
		{"probe interval no probe step outlasts", "zones:", "probe: {interval: 1h}\nsteps: {probe_timeout: 1m}\nzones:", "probe.interval"},
		// The field the operator wrote is the one named, not the default
		// it clashes with.
		{"step shorter than the default heartbeat timeout", "zones:", "steps: {switch_timeout: 20s}\nzones:", "steps.switch_timeout"},
		{"heartbeat timeout longer than a default step's", "zones:", "steps: {heartbeat_timeout: 3m}\nzones:", "steps.heartbeat_timeout"},
		{"probe name that is no domain name", "zones:", "probe: {names: ['www..']}\nzones:", "probe.names[0]"},
		{"probe name with a space", "zones:", "probe: {names: ['www', 'ma il']}\nzones:", "probe.names[1]"},
		// As a zone's name: the query would carry UTF-8 bytes, which no
		// record in a zone file of punycode names matches.
		{"probe name not in ASCII", "zones:", "probe: {names: ['www', 'bücher']}\nzones:", "probe.names[1]"},
		{"webhook URL without scheme", "zones:", "notifications: {webhooks: [{url: hooks.example.net/x}]}\nzones:", "notifications.webhooks[0].url"},
		{"webhook with url and url_env", "zones:", "notifications: {webhooks: [{url: 'https://h.example.net/x', url_env: HOOK}]}\nzones:", "notifications.webhooks[0].url"},
		{"canary on nginx, which cannot weigh backends", "zones:", "rollout: {strategy: canary}\nzones:", "load_balancers[0].driver"},
		// Only a canary reads it: set for another strategy, it would be
		// ignored without a word.
		{"canary drop rate without strategy canary", "zones:", "rollout: {canary: {max_drop_rate_increase: 0.05}}\nzones:", "rollout.canary"},
		// dnsdist listens on an IP address and resolves no names: a host
		// name would pass until the switch, after green exists.
		{"dnsdist at a host name", "\"192.0.2.2:53\", fronts: ns2}", "\"lb2.example.net:53\", fronts: ns2, driver: dnsdist}", "load_balancers[1].address"},
		{"a link-local address with a zone, which no client reaches", `"192.0.2.2:53"`, `"[fe80::1%eth0]:53"`, "load_balancers[1].address"},
		{"an SSH host with a zone", `"192.0.2.2:53"`, `"192.0.2.2:53", ssh_host: "fe80::1%eth0"`, "load_balancers[1].ssh_host"},
		// Linode's labels are unique in an account whatever their case.
		{"labels that differ in case alone", "label: ns2,", "label: NS1,", "nameservers[1].label"},
		{"a load balancer named as a nameserver in other case", "name: lb2,", "name: NS1,", "load_balancers[1].name"},
		// ns1's green is created as ns1-next, which Linode takes for
		// NS1-NEXT; so is lb1's replacement for LB1-Next.
		{"a label that is another's green in other case", "label: ns2,", "label: NS1-NEXT,", "nameservers[1].label"},
		{"load balancer names that differ in case alone", "name: lb2,", "name: LB1,", "load_balancers[1].name"},
		{"a load balancer named as another's replacement in other case", "name: lb2,", "name: LB1-Next,", "load_balancers[1].name"},
		{"a load balancer named as a nameserver's green in other case", "name: lb2,", "name: Ns1-NEXT,", "load_balancers[1].name"},
		// A full probe name outside every zone checks nothing: no zone's
		// checks ask it.
		// Signatures come with the RRsets they sign; asked alone, the
		// probe drops them from the answer and every name would fail.
		{"probe type RRSIG", "zones:", "probe: {types: [A, RRSIG]}\nzones:", "probe.types[1]"},
		{"probe name outside every zone", "zones:", "probe: {names: ['www.example.org.']}\nzones:", "probe.names[0]"},
		// Each analysis round adds to the rollout's history, which
		// Temporal caps: a day's bake every 15s would end it mid-bake.
		{"a bake too long for its interval", "zones:", "rollout: {bake: 24h}\nzones:", "rollout.bake_interval"},
		// A gate no person can answer: every rollout would create green,
		// then abort at it.
		{"a negative approval timeout", "zones:", "rollout: {approval: manual, approval_timeout: -1h}\nzones:", "rollout.approval_timeout"},
		{"an approval timeout of a nanosecond", "zones:", "rollout: {approval: manual, approval_timeout: 1ns}\nzones:", "rollout.approval_timeout"},
		// So does each cleanup round, ten minutes apart once it backs
		// off: a month of them would end the rollout mid-cleanup.
		{"a cleanup too long for the rollout's history", "zones:", "steps: {cleanup_timeout: 720h}\nzones:", "steps.cleanup_timeout"},
		{"one-at-a-time bakes too long for the interval", "zones:", "rollout: {bake: 5h, bake_interval: 10s, strategy: one-at-a-time}\nzones:", "rollout.bake_interval"},
		// A variable's name, not its value: a worker that looked up "$HOOK"
		// would find nothing, and the webhook would never be sent.
		{"webhook url_env that is no variable name", "zones:", "notifications: {webhooks: [{url_env: $HOOK}]}\nzones:", "notifications.webhooks[0].url_env"},
		{"webhook url_env with a space", "zones:", "notifications: {webhooks: [{url_env: 'my hook'}]}\nzones:", "notifications.webhooks[0].url_env"},
		{"webhook secret_env that is no variable name", "zones:", "notifications: {webhooks: [{url: 'https://h.example.net/x', secret_env: 'a=b'}]}\nzones:", "notifications.webhooks[0].secret_env"},
		// Numbers and dots alone are an IPv4 address or nothing: no top
		// level domain is all digits.
		{"an address that is no IPv4 address", `"192.0.2.2:53"`, `"256.1.1.1:53"`, "load_balancers[1].address"},
		{"an address of three numbers", `"192.0.2.2:53"`, `"1.2.3:53"`, "load_balancers[1].address"},
		{"an SSH host that is no IPv4 address", `"192.0.2.2:53"`, `"192.0.2.2:53", ssh_host: 10.0.0.256`, "load_balancers[1].ssh_host"},
		// One query unanswered after every attempt takes timeout × attempts:
		// a probe step that ends sooner times out instead of failing the
		// analysis with its reason.
		{"probe attempts that outlast the probe step", "zones:", "probe: {timeout: 50s, attempts: 3}\nzones:", "probe.timeout"},
		{"probe attempts exactly as long as the probe step", "zones:", "probe: {timeout: 20s, attempts: 3}\nsteps: {probe_timeout: 1m}\nzones:", "probe.timeout"},
		// The lab's nameservers listen on dns_port_base and above, as the
		// worker's user: not on a port only root may bind.
		{"a lab DNS port base below 1024", "zones:", "lab: {dns_port_base: 53}\nzones:", "lab.dns_port_base"},
		{"zone name with a scheme", "name: example.com,", "name: 'http://example.com',", "zones[0].name"},
		{"wildcard zone name", "name: example.com,", "name: '*.example.com',", "zones[0].name"},
		// A value listed twice is a slip: the second adds nothing.
		{"protocol listed twice", "zones:", "probe: {protocols: [udp, udp]}\nzones:", "probe.protocols[1]"},
		{"probe name listed twice", "zones:", "probe: {names: [www, WWW]}\nzones:", "probe.names[1]"},
		{"empty probe names", "zones:", "probe: {names: ['', '']}\nzones:", "probe.names[0]"},
		{"probe type listed twice", "zones:", "probe: {types: [A, a]}\nzones:", "probe.types[1]"},
		{"webhook event listed twice", "zones:", "notifications: {webhooks: [{url: 'https://h.example.net/x', events: [failed, failed]}]}\nzones:", "notifications.webhooks[0].events[1]"},
		// An empty list would silently mean the default list.
		{"no protocols", "zones:", "probe: {protocols: []}\nzones:", "probe.protocols"},
		// An empty list would silently mean every event, not none.
		{"webhook events empty", "zones:", "notifications: {webhooks: [{url: 'https://h.example.net/x', events: []}]}\nzones:", "notifications.webhooks[0].events"},
		{"two webhooks with one name", "zones:", "notifications: {webhooks: [{url: 'https://h.example.net/x'}, {name: webhook-1, url_env: HOOK}]}\nzones:", "notifications.webhooks[1].name"},
		// One receiver listed twice would get each event twice.
		{"two webhooks with one URL", "zones:", "notifications: {webhooks: [{url: 'https://h.example.net/x'}, {url: 'https://H.Example.NET/x', secret_env: HOOK_SECRET}]}\nzones:", "notifications.webhooks[1].url"},
		{"two webhooks with one url_env", "zones:", "notifications: {webhooks: [{url_env: HOOK}, {url: 'https://h.example.net/x'}, {url_env: HOOK, events: [failed]}]}\nzones:", "notifications.webhooks[2].url_env"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(strings.Replace(valid, tt.from, tt.to, 1)))
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("err = %v, want a FieldError", err)
			}
			if fe.Field != tt.field {
				t.Errorf("field = %q (%v), want %q", fe.Field, err, tt.field)
			}
		})
	}
}

// A load balancer may front several nameservers and a nameserver be
// behind several load balancers; one label is still written as a string,
// so the JSON of a fleet from before (in workflow histories) reads the
// same and is written the same.
func TestFrontsAnyTopology(t *testing.T) {
	f, err := Parse([]byte(strings.Replace(valid, "fronts: ns2}", "fronts: [ns2, ns1]}", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if got := f.LoadBalancers[1].Fronts; len(got) != 2 || got[0] != "ns2" || got[1] != "ns1" || got.String() != "ns2, ns1" {
		t.Fatalf("fronts = %q, want [ns2 ns1] in that order", got)
	}
	b, err := json.Marshal(f.LoadBalancers)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"fronts":"ns1"`) || !strings.Contains(string(b), `"fronts":["ns2","ns1"]`) {
		t.Errorf("JSON = %s, want one label as a string and two as a list", b)
	}
	var back []LoadBalancer
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !back[0].Fronts.Has("ns1") || len(back[0].Fronts) != 1 || back[1].Fronts.String() != "ns2, ns1" {
		t.Errorf("round trip: %+v", back)
	}
	var none LoadBalancer
	if err := json.Unmarshal([]byte(`{"fronts":null}`), &none); err != nil || none.Fronts != nil {
		t.Errorf("null fronts = %q, %v; want none", none.Fronts, err)
	}
	if err := json.Unmarshal([]byte(`{"fronts":7}`), &none); err == nil {
		t.Error("a number accepted as fronts")
	}
}

// What operators write that the checks above must not refuse.
func TestValidConfigVariations(t *testing.T) {
	for _, tt := range []struct{ name, from, to string }{
		// A relative name and a full one are different names.
		{"a relative and a full probe name", "zones:", "probe: {names: [example.com, example.com.]}\nzones:"},
		// os.Getenv reads any name; Docker and Kubernetes set these.
		{"a webhook variable with a dot or a dash", "zones:", "notifications: {webhooks: [{url_env: hook.url, secret_env: HOOK-SECRET}]}\nzones:"},
		// One key may sign for several receivers.
		{"two webhooks with one secret_env", "zones:", "notifications: {webhooks: [{url: 'https://h.example.net/x', secret_env: HOOK_SECRET}, {url: 'https://h.example.net/y', secret_env: HOOK_SECRET}]}\nzones:"},
		{"a reverse zone", "name: example.com,", "name: 2.0.192.in-addr.arpa,"},
		{"an RFC 2317 zone", "name: example.com,", "name: 0/25.2.0.192.in-addr.arpa,"},
		{"a punycode zone", "name: example.com,", "name: xn--bcher-kva.example,"},
		{"a private image", "image: linode/debian12}\n  - {label: ns2", "image: private/12345678}\n  - {label: ns2"},
	} {
		if _, err := Parse([]byte(strings.Replace(valid, tt.from, tt.to, 1))); err != nil {
			t.Errorf("%s: %v", tt.name, err)
		}
	}
}

// A webhook's URL or key written where the name of its variable goes is
// refused without being quoted: the error goes to CI logs, the API and
// workflow history.
func TestWebhookSecretInAnEnvFieldIsNotQuoted(t *testing.T) {
	for _, secret := range []string{"https://hooks.example.net/services/T0/B0/s3cr3t", "c2VjcmV0LWtleS1zM2NyM3Q=", "s3cr3t s3cr3t", "3f9a0c1b7d2e4f6a8b9cs3cr3t",
		"whsec_s3cr3tMSBmb2obar9f2a", "ghp_s3cr3t16C7e42F292c6912E7710c8", "xoxb-17653672481-s3cr3t9", "0e4b1c7e-s3cr3t-4f0a-9d2b-7c1e5a3b9f20", "12345678901234567890s3cr3t"} {
		for _, field := range []string{"url_env", "secret_env"} {
			_, err := Parse([]byte(strings.Replace(valid, "zones:", fmt.Sprintf("notifications: {webhooks: [{url_env: HOOK, %s: '%s'}]}\nzones:", field, secret), 1)))
			if field == "url_env" {
				_, err = Parse([]byte(strings.Replace(valid, "zones:", fmt.Sprintf("notifications: {webhooks: [{url_env: '%s'}]}\nzones:", secret), 1)))
			}
			if err == nil || !strings.Contains(err.Error(), "notifications.webhooks[0]."+field) || strings.Contains(err.Error(), "s3cr3t") {
				t.Errorf("%s: %s: %v; want a refusal naming the field, without the value", field, secret, err)
			}
		}
	}
}

// Messages say what to write, quoting what was written.
func TestInvalidConfigSaysTheFix(t *testing.T) {
	for _, tt := range []struct{ from, to, want string }{
		{"zones:", "notifications: {webhooks: [{name: a}]}\nzones:", "notifications.webhooks[0].url: set url (the webhook's URL) or url_env (a variable on the worker that holds it)"},
		{"zones:", "notifications: {webhooks: [{url_env: $HOOK}]}\nzones:", `notifications.webhooks[0].url_env: is not an environment variable's name: write HOOK`},
		{"zones:", "notifications: {webhooks: [{url_env: 'https://hooks.example.net/services/T0/B0/x'}]}\nzones:", "notifications.webhooks[0].url_env: is a URL, not the name of the variable that holds it: set url, or write a name such as DNSROLL_HOOK_URL"},
		{"zones:", "notifications: {webhooks: [{url: 'https://h.example.net/x', secret_env: 3f9a0c1b7d2e4f6a8b9c0d1e2f3a4b5c}]}\nzones:", "notifications.webhooks[0].secret_env: looks like a key, not the name of the variable that holds it: write a name such as DNSROLL_HOOK_SECRET"},
		{"zones:", "notifications: {webhooks: [{url: 'https://h.example.net/x', events: [sent]}]}\nzones:", `unknown event "sent" (known: started, awaiting_approval, `},
		// The first webhook took the name that the second gets by default.
		{"zones:", "notifications: {webhooks: [{name: webhook-2, url: 'https://h.example.net/x'}, {url_env: HOOK}]}\nzones:", "notifications.webhooks[1].name: is webhook-2 (the default name at its place in the list), which notifications.webhooks[0] also has: give one of them another name"},
		{"zones:", "notifications: {webhooks: [{url_env: HOOK}, {url_env: HOOK, secret_env: HOOK_SECRET}]}\nzones:", "notifications.webhooks[1].url_env: is also notifications.webhooks[0]'s, so an event both take would be sent twice: keep one webhook, with the events of both"},
		{"zones:", "rollout: {approval: ''}\nzones:", `rollout.approval: is "", which means the default, auto`},
		{"zones:", "probe: {max_latency: 3s}\nzones:", "probe.max_latency: 3s must be shorter than probe.timeout (2s): a slower answer is no answer"},
		{"zones:", "probe: {max_latency: -1s}\nzones:", "probe.max_latency: must not be negative, got -1s (leave it out for no limit)"},
		{"zones:", "rollout: {approval: each}\nzones:", "rollout.approval: each gates every load balancer of strategy one-at-a-time, and the strategy is all-at-once: set rollout.strategy: one-at-a-time, or approval: manual"},
		{"zones:", "probe: {protocols: []}\nzones:", "probe.protocols: is [], which means the default, [udp, tcp]"},
		{"zones:", "probe: {names: ['', '']}\nzones:", "probe.names[0]: must not be empty"},
		{"zones:", "rollout: {strategy: canary, canary: {steps: []}}\nzones:", "rollout.canary.steps: is [], which means the default steps: leave it out for the default"},
		{"name: example.com,", "name: bücher.example,", `zones[0].name: "bücher.example" is not in ASCII: write an internationalized name in its ASCII form (punycode), such as xn--bcher-kva.example`},
		{"image: linode/debian12}\n  - {label: ns2", "image: debian12}\n  - {label: ns2", `nameservers[0].image: must be a Linode image ID such as linode/debian12 (Linode's) or private/12345 (yours); got "debian12"`},
		// The playbooks install with apt: a Rocky VM would be created,
		// then fail at its provisioning.
		{"image: linode/debian12}\n  - {label: ns2", "image: linode/rocky9}\n  - {label: ns2", `nameservers[0].image: "linode/rocky9" is neither Debian nor Ubuntu, and dnsroll's playbooks install BIND, nginx and dnsdist with apt: use linode/debian12, linode/ubuntu24.04 or a private image made from one`},
		{"zones:", "steps: {switch_timeout: 20s}\nzones:", "steps.switch_timeout: must be longer than steps.heartbeat_timeout (30s), got 20s"},
		{"zones:", "probe: {timeout: 50s, attempts: 3}\nzones:", "probe.timeout: 50s for each of probe.attempts 3 is 2m30s for one unanswered query, which must be shorter than steps.probe_timeout (2m0s)"},
		{`"192.0.2.2:53"`, `"256.1.1.1:53"`, `load_balancers[1].address: "256.1.1.1" is no IPv4 address`},
		// user@host and scheme://host:port are written elsewhere, not here.
		{`"192.0.2.2:53"`, `"192.0.2.2:53", ssh_host: "deploy@192.0.2.2"`, `load_balancers[1].ssh_host: is a host alone, without a user: write 192.0.2.2, and set the user as ansible.loadbalancer_ssh_user`},
		{`"192.0.2.2:53"`, `"dns://192.0.2.2:53"`, `load_balancers[1].address: must be host:port such as 192.0.2.1:53, got "dns://192.0.2.2:53" (without a scheme: write 192.0.2.2:53)`},
		{"label: ns2,", "label: NS1-NEXT,", `nameservers[1].label: must not end in -next, in any case: a green server is created as <label>-next, and Linode's labels are unique whatever their case; give it another label, got "NS1-NEXT"`},
		{"name: lb2,", "name: LB1,", `load_balancers[1].name: "LB1" is "lb1" in other case, and Linode's labels are unique in an account whatever their case: give it another name`},
		{"name: example.com,", "name: '*.example.com',", `zones[0].name: must be a domain name such as example.com, got "*.example.com"`},
	} {
		_, err := Parse([]byte(strings.Replace(valid, tt.from, tt.to, 1)))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s → %s:\n err = %v\nwant %q", tt.from, tt.to, err, tt.want)
		}
	}
}

// A misspelt key is named with its section and the key meant.
func TestUnknownFieldNamesSectionAndNearest(t *testing.T) {
	// A per-rollout setting in the fleet file would hold for every rollout.
	_, err := Parse([]byte(strings.Replace(valid, "zones:", "probe: {allow_serial_decrease: true}\nzones:", 1)))
	if err == nil || !strings.Contains(err.Error(), `probe has no field "allow_serial_decrease"; it is asked for per rollout (dnsroll rollout start --allow-serial-decrease`) {
		t.Errorf("allow_serial_decrease in a fleet file: %v", err)
	}
	_, err = Parse([]byte(strings.Replace(valid, "zones:", "probe: {allow_new_ksk: true}\nzones:", 1)))
	if err == nil || !strings.Contains(err.Error(), `probe has no field "allow_new_ksk"; it is asked for per rollout (dnsroll rollout start --allow-new-ksk`) {
		t.Errorf("allow_new_ksk in a fleet file: %v", err)
	}
	for _, tt := range []struct{ from, to, want string }{
		{"zones:", "zone:", `the fleet has no field "zone"; did you mean zones?`},
		{"label: ns2,", "lable: ns2,", `nameservers has no field "lable"; did you mean label?`},
		{"zones:", "rollout: {aproval: manual}\nzones:", `rollout has no field "aproval"; did you mean approval?`},
		{"zones:", "probe: {coverage: {ful_up_to: 5}}\nzones:", `probe.coverage has no field "ful_up_to"; did you mean full_up_to?`},
		{"zones:", "rollout: {colour: blue}\nzones:", `rollout has no field "colour" (it takes strategy, approval,`},
	} {
		_, err := Parse([]byte(strings.Replace(valid, tt.from, tt.to, 1)))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s → %s: err = %v, want %q", tt.from, tt.to, err, tt.want)
		}
	}
}

// A value of the wrong kind (a word where a number goes, a list where a
// name goes, a duration that does not parse) is named by its field, not
// only its line, and every such value in the file is reported at once.
func TestWrongKindOfValueNamesField(t *testing.T) {
	for _, tt := range []struct{ from, to, want string }{
		{"zones:", "probe: {attempts: three}\nzones:", `probe.attempts (line 9): must be a whole number, got "three"`},
		{"zones:", "probe:\n  timeout: 2 seconds\nzones:", `probe.timeout (line 10): "2 seconds" is not a duration such as 30s or 5m`},
		{"label: ns2,", "label: [ns2],", `nameservers[1].label (line 5): must be a single value, got a list`},
		// The first item of a list begins on the list's line, and so does
		// its first field: the field is named, not the list.
		{"label: ns1,", "label: [ns1],", `nameservers[0].label (line 4): must be a single value, got a list`},
		{"label: ns1,", "label: {name: ns1},", `nameservers[0].label (line 4): must be a single value, got a mapping`},
		// A block mapping begins on its first key's line, where its first
		// value, a mapping too, begins: the list's field is named, not the
		// key written where an item belongs.
		{"  - {label: ns1, region: us-east, type: g6-nanode-1, image: linode/debian12}\n  - {label: ns2,",
			"  ns1: {label: ns1, region: us-east, type: g6-nanode-1, image: linode/debian12}\n  ns2: {label: ns2,", `nameservers (line 4): must be a list, got a mapping`},
		// ...and a mapping inside an item, where the item begins too, is
		// named itself.
		{`  - {name: lb1, address: "192.0.2.1:53", fronts: ns1}`, "  - fronts: {ns1: x}\n    name: lb1\n    address: 192.0.2.1:53", `load_balancers[0].fronts (line 7): must be a list, got a mapping`},
		// ...and so is a list's block mapping inside an item, whose first
		// value is a mapping too.
		{`  - {name: lb1, address: "192.0.2.1:53", fronts: ns1}`, "  - name: lb1\n    address: 192.0.2.1:53\n    fronts:\n      ns1: {x: y}", `load_balancers[0].fronts (line 10): must be a list, got a mapping`},
		// A field of pointer type (*Duration) written so is named too.
		{"zones:", "rollout:\n  bake:\n    a: {b: c}\nzones:", `rollout.bake (line 11): must be a duration such as 30s or 5m, got a mapping`},
		{"zones:", "probe: {names: [[www], mail]}\nzones:", `probe.names[0] (line 9): must be a single value, got a list`},
		{"zones:", "probe: {timeout: [2s]}\nzones:", `probe.timeout (line 9): must be a duration such as 30s or 5m, got a list`},
		{"zones:", "steps: {provision_timeout: 20m, create_timeout: soon}\nzones:", `steps.create_timeout (line 9): "soon" is not a duration`},
		// Go's durations have no days, and no spaces between their parts.
		{"zones:", "rollout: {approval_timeout: 2d}\nzones:", `rollout.approval_timeout (line 9): "2d" is not a duration such as 30s or 5m: the longest unit is h (write 48h for 2d)`},
		{"zones:", "rollout: {approval_timeout: 1w}\nzones:", `rollout.approval_timeout (line 9): "1w" is not a duration such as 30s or 5m: the longest unit is h (write 168h for 1w)`},
		{"zones:", "rollout: {bake: 1h 30m}\nzones:", `rollout.bake (line 9): "1h 30m" is not a duration such as 30s or 5m: write it without spaces, 1h30m`},
		// A duration past Go's longest says so, not that it is no duration.
		{"zones:", "rollout: {bake: 9999999h}\nzones:", `rollout.bake (line 9): "9999999h" is not a duration such as 30s or 5m: it is longer than the longest, 2562047h`},
		{"zones:", "rollout: {bake: -9999999h}\nzones:", `rollout.bake (line 9): "-9999999h" is not a duration such as 30s or 5m: a duration here is never negative`},
		{"zones:", "probe: {expect_changes: maybe}\nzones:", `probe.expect_changes (line 9): must be true or false, got "maybe"`},
		// yaml.v3 cuts a long value to its first 7 characters, which also
		// keeps the rest of a URL (and any password in it) out of the message.
		{"zones:", "notifications:\n  webhooks: https://user:s3cret@hooks.example.com/x\nzones:", `notifications.webhooks (line 10): must be a list, got "https:/..."`},
		// yaml.v3 alone would cut these to 12 and 2: another firewall, one
		// attempt fewer.
		{"image: linode/debian12}", "image: linode/debian12, firewall_id: 12.7}", `nameservers[0].firewall_id (line 4): must be a whole number, got 12.7`},
		{"zones:", "probe: {attempts: 2.9}\nzones:", `probe.attempts (line 9): must be a whole number, got 2.9`},
		// A number out of the field's range says the range.
		{"zones:", "probe:\n  coverage: {seed: -1}\nzones:", `probe.coverage.seed (line 10): must be a whole number from 0 to 4294967295, got "-1"`},
		{"zones:", "probe: {attempts: 99999999999999999999}\nzones:", `probe.attempts (line 9): must be a whole number from -9223372036854775808 to 9223372036854775807`},
		{"zones:", "probe:\n  coverage: {sample: 1e3}\nzones:", `probe.coverage.sample (line 10): must be a whole number, got 1e3`},
	} {
		_, err := Parse([]byte(strings.Replace(valid, tt.from, tt.to, 1)))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s → %s: err = %v, want %q", tt.from, tt.to, err, tt.want)
		}
	}
	for data, want := range map[string]string{
		"":             "the file is empty",
		"---\n":        "the file is empty",
		"# nothing\n":  "the file is empty",
		"- fleet: x\n": `the fleet (line 1): must be a mapping of keys to values, got a list`,
	} {
		if _, err := Parse([]byte(data)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: err = %v, want %q", data, err, want)
		}
	}
	two := strings.Replace(valid, "zones:", "probe: {attempts: three}\nsteps: {create_timeout: soon}\nzones:", 1)
	_, err := Parse([]byte(two))
	if err == nil || !strings.HasPrefix(err.Error(), "2 values to fix:\n  probe.attempts") || !strings.Contains(err.Error(), "\n  steps.create_timeout") {
		t.Errorf("two wrong values: err = %v, want both named, a line each", err)
	}
	// One is the message alone, without yaml.v3's heading.
	_, err = Parse([]byte(strings.Replace(valid, "zones:", "probe: {attempts: three}\nzones:", 1)))
	if err == nil || !strings.HasPrefix(err.Error(), "probe.attempts (line 9): ") {
		t.Errorf("one wrong value: err = %q, want the message alone", err)
	}
}

// A new VM from one of Linode's images has only root, with the worker's
// key: a non-root user for nameservers would find no account on it, and
// every provisioning attempt would fail until the step's deadline. A
// private image may have the user; load balancers are built by hand.
func TestNonRootNameserverUserNeedsAPrivateImage(t *testing.T) {
	for _, tt := range []struct {
		name, ansible, image, want string
	}{
		{"ssh_user on Linode's image", "ansible: {ssh_user: deploy}", "linode/debian12", `ansible.ssh_user: "deploy" logs into new nameservers, but nameservers[0].image linode/debian12 is one of Linode's images`},
		{"nameserver_ssh_user on Linode's image", "ansible: {nameserver_ssh_user: deploy}", "linode/debian12", `ansible.nameserver_ssh_user: "deploy" logs into new nameservers`},
		{"a sudo user for load balancers only", "ansible: {ssh_user: deploy, nameserver_ssh_user: root}", "linode/debian12", ""},
		{"loadbalancer_ssh_user only", "ansible: {loadbalancer_ssh_user: deploy}", "linode/debian12", ""},
		{"ssh_user on a private image", "ansible: {ssh_user: deploy}", "private/4242", ""},
		{"a lab fleet, which logs in as nobody", "ansible: {ssh_user: deploy, connection: local}\nlab: {}", "linode/debian12", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(strings.ReplaceAll(valid, "linode/debian12", tt.image) + tt.ansible + "\n"))
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "nameserver_ssh_user: root")):
				t.Errorf("err = %v, want one containing %q and the fix", err, tt.want)
			}
		})
	}
}

// A bad fleet name is refused with the whole rule, whichever part of it
// the name breaks.
func TestFleetNameErrorStatesTheRule(t *testing.T) {
	for _, name := range []string{"prod-", "-prod", "Prod", strings.Repeat("p", 33)} {
		_, err := Parse([]byte(strings.Replace(valid, "fleet: prod", "fleet: "+name, 1)))
		if err == nil || !strings.Contains(err.Error(), "1-32 lowercase letters, digits or dashes, starting and ending with a letter or digit") {
			t.Errorf("fleet %q: err = %v, want the rule stated", name, err)
		}
	}
}

func TestUnknownFieldAndBadDuration(t *testing.T) {
	if _, err := Parse([]byte(valid + "colour: blue\n")); err == nil || !strings.Contains(err.Error(), "colour") {
		t.Errorf("unknown field: err = %v", err)
	}
	_, err := Parse([]byte(valid + "steps: {create_timeout: soon}\n"))
	if err == nil || !strings.Contains(err.Error(), "soon") {
		t.Errorf("bad duration: err = %v", err)
	}
}

// A YAML syntax error says its likely cause, which the parser's message
// does not name; a mistake in how an address or a list is written says
// how to write it; a 0 that the defaults would replace names the default.
func TestErrorsSayHowToFix(t *testing.T) {
	for _, tt := range []struct{ from, to, want string }{
		{"  - {label: ns1", "\t- {label: ns1", "line 4 is indented with a tab"},
		{"file: zones/example.com.zone}", "file: zones/{revision}/example.com.zone}", "line 10 has {revision} inside { }"},
		{"zones:", "probe:\n  names: [www]\n timeout: 2s\nzones:", "check the indentation"},
		{`"192.0.2.2:53"`, `"2001:db8::12"`, "[2001:db8::12]:53"},
		{`"192.0.2.2:53"`, `"2001:db8::12:53"`, "an IPv6 address goes in brackets"},
		{`"192.0.2.2:53"`, `"192.0.2.2:53", ssh_host: "[2001:db8::2]"`, "write 2001:db8::2"},
		{"fronts: ns2}", `fronts: "ns2, ns1"}`, "as [ns2, ns1]"},
		{"fronts: ns2}", "fronts: ns3}", `no nameserver "ns3": the fleet's are ns1, ns2`},
		// A 0 that the defaults would replace names the default, rather
		// than silently becoming it.
		{"zones:", "probe: {rounds: 0}\nzones:", "probe.rounds: is 0, which means the default, 3"},
		{"zones:", "probe: {attempts: 0}\nzones:", "probe.attempts: is 0, which means the default, 3"},
		{"zones:", "probe: {timeout: 0s}\nzones:", "probe.timeout: is 0s, which means the default, 2s"},
		{"zones:", "rollout: {bake_interval: 0s}\nzones:", "rollout.bake_interval: is 0s, which means the default, 15s"},
		{"zones:", "lb_update: {bake_interval: 0s}\nzones:", "lb_update.bake_interval: is 0s, which means the default, 10s"},
		{"zones:", "steps: {create_timeout: 0s}\nzones:", "steps.create_timeout: is 0s, which means the default, 10m0s"},
	} {
		_, err := Parse([]byte(strings.Replace(valid, tt.from, tt.to, 1)))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: err = %v, want it to say %q", tt.to, err, tt.want)
		}
	}
}

// An unclosed quote reads to the end of the file, where the parser stops
// with "found unexpected end of stream", at the line of the quote's start
// but on the first line at the end of the file instead: the error names
// the line the quote opens on.
func TestUnclosedQuoteNamesItsLine(t *testing.T) {
	first := strings.TrimPrefix(valid, "\n")
	for _, tt := range []struct {
		name, data string
		line       int
	}{
		{"on the first line", strings.Replace(first, "fleet: prod", "fleet: 'prod", 1), 1},
		{"on the first line, without a last newline", strings.TrimSuffix(strings.Replace(first, "fleet: prod", "fleet: 'prod", 1), "\n"), 1},
		{"within the file", strings.Replace(valid, "fleet: prod", "fleet: 'prod", 1), 2},
		{"in a flow mapping", strings.Replace(valid, "file: zones/example.com.zone}", "file: 'zones/example.com.zone}", 1), 10},
		{"on the last line, without a last newline", strings.TrimSuffix(strings.Replace(valid, "file: zones/example.com.zone}", `file: "zones/example.com.zone}`, 1), "\n"), 10},
	} {
		_, err := Parse([]byte(tt.data))
		if want := fmt.Sprintf("the quote opened on line %d is never closed", tt.line); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v, want it to say %q", tt.name, err, want)
		}
	}
	// Other syntax errors are not put down to a quote.
	for _, to := range []string{"fleet: [prod", "fleet: {name: prod", "fleet: prod\n\tx: 1", "fleet: \"it\"s\""} {
		if _, err := Parse([]byte(strings.Replace(valid, "fleet: prod", to, 1))); err == nil || strings.Contains(err.Error(), "quote") {
			t.Errorf("%q: err = %v, want a syntax error that names no quote", to, err)
		}
	}
}

// A second YAML document in a fleet file is refused: it was dropped, and
// with it any setting it held (approval: manual, here).
func TestSecondDocumentRefused(t *testing.T) {
	_, err := Parse([]byte(valid + "---\nrollout: {approval: manual}\n"))
	if err == nil || !strings.Contains(err.Error(), "second YAML document") || !strings.Contains(err.Error(), "line 12") {
		t.Fatalf("err = %v, want the second document refused at its line", err)
	}
	// A trailing "---" or comment alone is no document.
	if _, err := Parse([]byte(valid + "---\n# the end\n")); err != nil {
		t.Errorf("an empty second document: %v", err)
	}
}

// A 0 that means something (no bake, no firewall, no tolerated failures)
// stays; one that the defaults would replace is refused (TestErrorsSayHowToFix).
func TestExplicitZeroThatMeansSomethingStays(t *testing.T) {
	// A section with every line commented out is empty (null): it takes
	// the defaults, as before.
	for _, set := range []string{"rollout: {bake: 0s}", "lb_update: {bake: 0s}", "probe: {failure_limit: 0}", "steps: {max_attempts: 0}", "rollout:\n  # bake: 1h", "steps:"} {
		if _, err := Parse([]byte(valid + set + "\n")); err != nil {
			t.Errorf("%s: %v", set, err)
		}
	}
	if _, err := Parse([]byte(strings.Replace(valid, "image: linode/debian12}", "image: linode/debian12, firewall_id: 0}", 1))); err != nil {
		t.Errorf("firewall_id: 0: %v", err)
	}
}

func TestRevision(t *testing.T) {
	f, err := Parse([]byte(strings.Replace(valid, "file: zones/example.com.zone", `file: "zones/{revision}/example.com.zone"`, 1)))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.ValidateRevision(""); err == nil {
		t.Error("empty revision accepted for a fleet whose zone files need one")
	}
	if err := f.ValidateRevision("../../etc"); err == nil {
		t.Error("path-like revision accepted")
	}
	if err := f.ValidateRevision("v1.2_rc-3"); err != nil {
		t.Error(err)
	}
	f.Dir = "/srv/dnsroll"
	if got, want := f.ZoneFile(f.Zones[0], "B"), "/srv/dnsroll/zones/B/example.com.zone"; got != want {
		t.Errorf("zone file = %q, want %q", got, want)
	}
}

// The shipped example configs stay valid.
func TestShippedConfigsLoad(t *testing.T) {
	for _, path := range []string{"../fleets/lab.yaml", "../fleets/machines.yaml", "../examples/production.yaml"} {
		f, err := Load(path)
		if err != nil {
			t.Errorf("%s: %v", path, err)
			continue
		}
		if _, err := os.Stat(filepath.Dir(f.Path(f.Ansible.NameserverPlaybook))); err != nil {
			t.Errorf("%s: playbook dir: %v", path, err)
		}
	}
}

// A fleet that names no playbooks gets the repository's: fleets live in
// fleets/ beside ansible/, in the repository and in the container image.
func TestDefaultPlaybooksAreBesideTheFleetsDirectory(t *testing.T) {
	for _, path := range []string{"../fleets/lab.yaml", "../examples/production.yaml"} {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var kept []string
		for _, line := range strings.Split(string(data), "\n") {
			if !strings.Contains(line, "_playbook:") {
				kept = append(kept, line)
			}
		}
		f, err := Parse([]byte(strings.Join(kept, "\n")))
		if err != nil {
			t.Fatalf("%s without playbooks: %v", path, err)
		}
		f.Dir, _ = filepath.Abs("../fleets")
		for _, p := range []string{f.Ansible.NameserverPlaybook, f.Ansible.LoadBalancerPlaybook} {
			if _, err := os.Stat(f.Path(p)); err != nil {
				t.Errorf("%s without playbooks: default %q: %v", path, p, err)
			}
		}
	}
}

// The machine lab's fleet is the production example with lab addresses: it
// differs only in its name, its load balancers' addresses, its (revisioned)
// zone files and a short bake, so the machine lab tests what production
// runs.
func TestMachineFleetIsTheProductionExample(t *testing.T) {
	prod, err := Load("../examples/production.yaml")
	if err != nil {
		t.Fatal(err)
	}
	lab, err := Load("../fleets/machines.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if lab.Lab != nil || lab.Ansible.Connection != "ssh" {
		t.Fatalf("fleets/machines.yaml must be a production fleet: lab section %v, connection %q", lab.Lab, lab.Ansible.Connection)
	}
	// Blank out what may differ, then compare the rest.
	for _, f := range []*Fleet{prod, lab} {
		f.Name, f.Dir, f.Zones, f.Rollout = "", "", nil, Rollout{}
		for i := range f.LoadBalancers {
			f.LoadBalancers[i].Address = ""
		}
	}
	a, _ := json.Marshal(prod)
	b, _ := json.Marshal(lab)
	if string(a) != string(b) {
		t.Errorf("fleets/machines.yaml differs from examples/production.yaml beyond addresses, zones and bake:\nproduction: %s\nmachines:   %s", a, b)
	}
}

// A webhook URL may be a secret: a bad one is refused without quoting it.
func TestBadWebhookURLIsNotQuoted(t *testing.T) {
	_, err := Parse([]byte(strings.Replace(valid, "zones:", "notifications: {webhooks: [{url: 'hooks.example.net/T0K3N'}]}\nzones:", 1)))
	if err == nil || strings.Contains(err.Error(), "T0K3N") {
		t.Errorf("err = %v, want one that does not quote the URL", err)
	}
}

// A webhook URL listed twice is refused without quoting it.
func TestDuplicateWebhookURLIsNotQuoted(t *testing.T) {
	_, err := Parse([]byte(strings.Replace(valid, "zones:", "notifications: {webhooks: [{url: 'https://h.example.net/T0K3N'}, {url: 'https://h.example.net/T0K3N'}]}\nzones:", 1)))
	if err == nil || !strings.Contains(err.Error(), "notifications.webhooks[1].url: is also notifications.webhooks[0]'s") || strings.Contains(err.Error(), "T0K3N") {
		t.Errorf("err = %v, want a refusal naming the field, without the URL", err)
	}
}

// A canary's steps are checked before any VM exists, each error naming the
// field to fix.
func TestCanarySteps(t *testing.T) {
	dnsdist := strings.NewReplacer("fronts: ns1}", "fronts: ns1, driver: dnsdist}", "fronts: ns2}", "fronts: ns2, driver: dnsdist}").Replace(valid)
	f, err := Parse([]byte(strings.Replace(dnsdist, "zones:", "rollout: {strategy: canary}\nzones:", 1)))
	if err != nil {
		t.Fatal(err)
	}
	var weights []int
	for _, s := range f.Rollout.Canary.Steps {
		weights = append(weights, s.Weight)
	}
	if len(weights) != 3 || weights[0] != 1 || weights[1] != 10 || weights[2] != 50 || f.Rollout.Canary.MaxDropRateIncrease != 0.01 {
		t.Errorf("default canary = %+v", f.Rollout.Canary)
	}
	for _, tt := range []struct{ rollout, field string }{
		{"{strategy: canary, canary: {steps: [{weight: 10, duration: 1m}, {weight: 5, duration: 1m}]}}", "rollout.canary.steps[1].weight"},
		{"{strategy: canary, canary: {steps: [{weight: 100, duration: 1m}]}}", "rollout.canary.steps[0].weight"},
		{"{strategy: canary, canary: {steps: [{weight: 10}]}}", "rollout.canary.steps[0].duration"},
		{"{strategy: canary, canary: {max_drop_rate_increase: 2}}", "rollout.canary.max_drop_rate_increase"},
		{"{canary: {steps: [{weight: 10, duration: 1m}]}}", "rollout.canary"},
		{"{strategy: blue-green}", "rollout.strategy"},
	} {
		_, err := Parse([]byte(strings.Replace(dnsdist, "zones:", "rollout: "+tt.rollout+"\nzones:", 1)))
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != tt.field {
			t.Errorf("rollout %s: err = %v, want field %s", tt.rollout, err, tt.field)
		}
	}
}

// SSHTarget is one name for a load balancer's SSH host however the fleet
// writes it, so that its pinned host key is found: the drivers and the
// flip channel all reach it there.
func TestSSHTarget(t *testing.T) {
	for _, tc := range []struct {
		lb   LoadBalancer
		want string
	}{
		{LoadBalancer{Address: "203.0.113.12:53"}, "203.0.113.12"},
		{LoadBalancer{Address: "[::ffff:203.0.113.12]:53"}, "203.0.113.12"},
		{LoadBalancer{Address: "[2001:DB8::0012]:53"}, "2001:db8::12"},
		{LoadBalancer{Address: "203.0.113.12:53", SSHHost: "lb1.mgmt.example.net"}, "lb1.mgmt.example.net"},
	} {
		if got := tc.lb.SSHTarget(); got != tc.want {
			t.Errorf("SSHTarget of %+v = %q, want %q", tc.lb, got, tc.want)
		}
	}
}

// lbsYAML is valid with n load balancers, fronting ns1 and ns2 in turn.
func lbsYAML(n int) string {
	lbs := []string{}
	for i := 1; i <= n; i++ {
		lbs = append(lbs, fmt.Sprintf("  - {name: lb%d, address: \"192.0.2.%d:53\", fronts: ns%d}", i, i, 2-i%2))
	}
	before, after, _ := strings.Cut(valid, "load_balancers:\n")
	_, after, _ = strings.Cut(after, "zones:")
	return before + "load_balancers:\n" + strings.Join(lbs, "\n") + "\nzones:" + after
}

// A fleet has at most MaxLoadBalancers load balancers, which its
// workflows' histories are checked at (workflows'
// TestLBReplaceManyLoadBalancersFitTheHistory); one more is refused,
// saying why and what to do.
func TestLoadBalancersAtMost(t *testing.T) {
	with := lbsYAML
	if _, err := Parse([]byte(with(MaxLoadBalancers))); err != nil {
		t.Errorf("%d load balancers: %v", MaxLoadBalancers, err)
	}
	_, err := Parse([]byte(with(MaxLoadBalancers + 1)))
	want := fmt.Sprintf("load_balancers: lists %d load balancers, more than the %d a fleet may have", MaxLoadBalancers+1, MaxLoadBalancers)
	if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "split") {
		t.Errorf("%d load balancers: %v, want an error saying %q and how to split them", MaxLoadBalancers+1, err, want)
	}
}

// Every cleanup round switches each load balancer back and tells each
// webhook, so the longest steps.cleanup_timeout shrinks as they grow: two
// load balancers take MaxCleanupTimeout, twelve and a webhook not, and
// the refusal names the longest they take, which loads.
func TestCleanupTimeoutShrinksWithTheLoadBalancers(t *testing.T) {
	settings := fmt.Sprintf("steps: {cleanup_timeout: %s}\nnotifications: {webhooks: [{url: 'https://h.example.net/x'}]}\nzones:", MaxCleanupTimeout)
	if _, err := Parse([]byte(strings.Replace(lbsYAML(2), "zones:", settings, 1))); err != nil {
		t.Errorf("two load balancers, cleanup_timeout %s: %v", MaxCleanupTimeout, err)
	}
	_, err := Parse([]byte(strings.Replace(lbsYAML(12), "zones:", settings, 1)))
	want := "steps.cleanup_timeout: 72h0m0s is up to 436 cleanup rounds, each some 89 events of the rollout's workflow history with 12 load balancers to switch back and 1 webhook(s) to tell"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("twelve load balancers: %v, want %q", err, want)
	}
	_, longest, _ := strings.Cut(err.Error(), "set it to at most ")
	longest, _, _ = strings.Cut(longest, " ")
	if _, err := Parse([]byte(strings.Replace(lbsYAML(12), "zones:", strings.Replace(settings, MaxCleanupTimeout.String(), longest, 1), 1))); err != nil || longest == "" {
		t.Errorf("the longest the refusal names, %q: %v", longest, err)
	}
}

// LongestCleanupTimeout is what cleanupFits takes and no more: the
// longest fits, a minute longer is refused unless it passes
// MaxCleanupTimeout, which bounds it, whatever the load balancers,
// webhooks and pause between rounds.
func TestLongestCleanupTimeoutIsTheLongestThatFits(t *testing.T) {
	for _, pause := range []time.Duration{0, time.Second, 30 * time.Second, time.Minute, 7 * time.Minute} {
		for lbs := 1; lbs <= MaxLoadBalancers; lbs++ {
			for _, hooks := range []int{0, 1, 3} {
				f := &Fleet{LoadBalancers: make([]LoadBalancer, lbs), Notifications: Notifications{Webhooks: make([]Webhook, hooks)}}
				f.Steps.RetryMaximumInterval = Duration(pause)
				longest := f.LongestCleanupTimeout()
				if longest > MaxCleanupTimeout || longest <= 0 {
					t.Fatalf("%d load balancers, %d webhooks, pause %s: longest %s, want at most %s", lbs, hooks, pause, longest, MaxCleanupTimeout)
				}
				f.Steps.CleanupTimeout = Duration(longest)
				if err := f.cleanupFits(); err != nil {
					t.Fatalf("%d load balancers, %d webhooks, pause %s: the longest, %s, is refused: %v", lbs, hooks, pause, longest, err)
				}
				if longest == MaxCleanupTimeout {
					continue
				}
				f.Steps.CleanupTimeout = Duration(longest + time.Minute)
				if err := f.cleanupFits(); err == nil {
					t.Fatalf("%d load balancers, %d webhooks, pause %s: a minute past the longest, %s, fits", lbs, hooks, pause, longest+time.Minute)
				}
			}
		}
	}
}

// A zone file path is used as written but for {revision}: a placeholder
// in another spelling, a ~ or an environment variable stayed in the path,
// which then named no file, and only a revision's check said so, as a
// missing file at a path the operator had not written.
func TestZoneFilePathsThatAreNotExpanded(t *testing.T) {
	for path, want := range map[string]string{
		"zones/{REVISION}/example.com.zone":   `"{REVISION}" is not the revision placeholder: write {revision}`,
		"zones/${revision}/example.com.zone":  `"${revision}" is not the revision placeholder: write {revision}`,
		"zones/{{revision}}/example.com.zone": `"{{revision}}" is not the revision placeholder: write {revision}`,
		"zones/$revision/example.com.zone":    `"$revision" is not the revision placeholder: write {revision}`,
		"zones/{ revision }/example.com.zone": `"{ revision }" is not the revision placeholder: write {revision}`,
		"~/zones/{revision}/example.com.zone": "dnsroll expands no ~ or $VARIABLE in a path",
		"$ZONES/{revision}/example.com.zone":  "dnsroll expands no ~ or $VARIABLE in a path",
		"${ZONES}/example.com.zone":           "dnsroll expands no ~ or $VARIABLE in a path",
	} {
		_, err := Parse([]byte(strings.Replace(valid, "file: zones/example.com.zone", fmt.Sprintf("file: %q", path), 1)))
		if err == nil || !strings.HasPrefix(err.Error(), "zones[0].file: ") || !strings.Contains(err.Error(), want) {
			t.Errorf("file %s: %v, want zones[0].file: ...%s...", path, err, want)
		}
	}
	for _, path := range []string{"zones/{revision}/example.com.zone", "/srv/zones/revision-{revision}/db.example.com", "zones/revision/example.com.zone"} {
		if _, err := Parse([]byte(strings.Replace(valid, "file: zones/example.com.zone", fmt.Sprintf("file: %q", path), 1))); err != nil {
			t.Errorf("file %s: %v", path, err)
		}
	}
}

// A fleet named in capitals says the name it can have.
func TestFleetNameInCapitals(t *testing.T) {
	_, err := Parse([]byte(strings.Replace(valid, "fleet: prod", "fleet: Prod", 1)))
	if err == nil || !strings.Contains(err.Error(), "fleet: ") || !strings.Contains(err.Error(), "fleet names are lower case: prod") {
		t.Errorf("fleet: Prod: %v, want the name in lower case", err)
	}
}

// A host name with and without the root's final dot is one host, as the
// checks after the switch and Ansible reach it: two load balancers there
// are refused as one fleet's own, not only by the directory-wide check,
// which skips lab fleets and blames "the other fleet".
func TestOneHostNameWithItsFinalDot(t *testing.T) {
	for _, c := range []struct{ name, lb1, lb2, field string }{
		{"address", `"lb.example.net:53"`, `"LB.example.net.:53"`, "load_balancers[1].address: LB.example.net.:53 is also lb1's address"},
		{"ssh host", `"192.0.2.1:53", ssh_host: lb.example.net`, `"192.0.2.2:53", ssh_host: "lb.example.net."`, "load_balancers[1].ssh_host: Ansible would reach lb1 and lb2 at the same host lb.example.net"},
		// localhost is 127.0.0.1, for SSH as for the address.
		{"ssh host localhost", `"127.0.0.1:53"`, `"localhost:54"`, "load_balancers[1].ssh_host: Ansible would reach lb1 and lb2 at the same host 127.0.0.1"},
		{"ssh host localhost.", `"192.0.2.1:53", ssh_host: "LocalHost."`, `"192.0.2.2:53", ssh_host: 127.0.0.1`, "load_balancers[1].ssh_host: Ansible would reach lb1 and lb2 at the same host 127.0.0.1"},
	} {
		yaml := strings.Replace(strings.Replace(valid, `"192.0.2.1:53"`, c.lb1, 1), `"192.0.2.2:53"`, c.lb2, 1)
		_, err := Parse([]byte(yaml))
		if err == nil || !strings.Contains(err.Error(), c.field) {
			t.Errorf("%s: err = %v, want %q", c.name, err, c.field)
		}
	}
}
