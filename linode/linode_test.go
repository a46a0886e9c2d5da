package linode_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/linode/linodego"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/activities"
	"github.com/dnsroll/dnsroll/lab/linodesim"
	"github.com/dnsroll/dnsroll/linode"
)

const token = "adapter-secret-token-5b2d"

var _ activities.Cloud = (*linode.Cloud)(nil)

type env struct {
	sim   *linodesim.Sim
	srv   *httptest.Server
	cloud *linode.Cloud

	mu      sync.Mutex
	creates []map[string]any // POST bodies the simulator received
	// unfilteredMisses plays a list of the whole account that misses
	// every instance, as paging by offset can miss one that moved.
	unfilteredMisses bool
	// looseTagFilter plays a filter on tags that matches a tag holding
	// the one asked for, as a substring match would.
	looseTagFilter bool
}

func newEnv(t *testing.T) *env {
	t.Helper()
	return newEnvWith(t, linodesim.Options{Firewalls: []int{4242},
		SoldOut: map[string][]string{"us-east": {"g6-dedicated-2"}}, ClosedRegions: []string{"br-gru"}})
}

// newEnvWith is newEnv with the simulator's account as opts say.
func newEnvWith(t *testing.T, opts linodesim.Options) *env {
	t.Helper()
	opts.Token, opts.BootDelay = token, 5*time.Millisecond
	sim, err := linodesim.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{sim: sim}
	e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == "POST" && r.URL.Path == "/v4/linode/instances" {
			body, _ := io.ReadAll(r.Body)
			var m map[string]any
			_ = json.Unmarshal(body, &m)
			e.mu.Lock()
			e.creates = append(e.creates, m)
			e.mu.Unlock()
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		e.mu.Lock()
		miss := e.unfilteredMisses && r.Method == "GET" && r.URL.Path == "/v4/linode/instances" && r.Header.Get("X-Filter") == ""
		loose := e.looseTagFilter
		e.mu.Unlock()
		var f struct{ Tags string }
		if loose && json.Unmarshal([]byte(r.Header.Get("X-Filter")), &f) == nil && f.Tags != "" {
			b, _ := json.Marshal(map[string]any{"tags": map[string]string{"+contains": f.Tags}})
			r.Header.Set("X-Filter", string(b))
		}
		if miss {
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"data": [], "page": 1, "pages": 1, "results": 0}`)
			return
		}
		sim.ServeHTTP(w, r)
	}))
	t.Cleanup(e.srv.Close)
	e.cloud = newCloud(t, e.srv.URL+"/v4", token)
	return e
}

func newCloud(t *testing.T, base, tok string) *linode.Cloud {
	t.Helper()
	c, err := linode.New(linode.Options{
		Token: tok, BaseURL: base, RetryWait: 5 * time.Millisecond,
		AuthorizedKeys: []string{"ssh-ed25519 AAAAC3Nza test@dnsroll"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

// createAll creates a server of this fleet (tag) for each label.
func (e *env) createAll(t *testing.T, labels ...string) []dnsroll.Server {
	t.Helper()
	var servers []dnsroll.Server
	for _, label := range labels {
		servers = append(servers, e.create(t, label))
	}
	return servers
}

// create creates a server of this fleet (tag) labelled label.
func (e *env) create(t *testing.T, label string) dnsroll.Server {
	t.Helper()
	s, err := e.cloud.Create(ctx(t), spec(label, tag), nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func spec(label string, tags ...string) dnsroll.ServerSpec {
	return dnsroll.ServerSpec{Label: label, Region: "us-east", Type: "g6-nanode-1", Image: "linode/debian12", Tags: tags}
}

const tag = "dnsroll-fleet-demo"

func TestLifecycle(t *testing.T) {
	e := newEnv(t)
	c := ctx(t)
	s := e.create(t, "ns1-next")
	want := dnsroll.Server{ID: 1001, Label: "ns1-next", Status: "provisioning", IPv4: "127.0.0.1",
		Region: "us-east", Tags: []string{tag}, DNSPort: 53}
	if s.ID != want.ID || s.Label != want.Label || s.Status != want.Status || s.IPv4 != want.IPv4 ||
		s.Region != want.Region || !slices.Equal(s.Tags, want.Tags) || s.DNSPort != 53 {
		t.Fatalf("created %+v, want %+v", s, want)
	}
	if _, err := e.cloud.Create(c, spec("stray", "someone-else"), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := e.cloud.Create(c, spec("ns2", tag, "extra"), nil); err != nil {
		t.Fatal(err)
	}
	list, err := e.cloud.List(c, tag)
	if err != nil {
		t.Fatal(err)
	}
	var labels []string
	for _, s := range list {
		labels = append(labels, s.Label)
	}
	if !slices.Equal(labels, []string{"ns1-next", "ns2"}) {
		t.Fatalf("List(%s) = %v: an untagged instance must not be returned", tag, labels)
	}
	// Linode's filters on list fields such as tags have answered nothing,
	// or everything: a filter that matched nothing would hide green from
	// its deletion. List must not depend on one.
	e.sim.InjectFault(linodesim.Fault{Method: "GET", PathPrefix: "/v4/linode/instances", FilterMatchesNothing: true, Count: -1})
	if again, err := e.cloud.List(c, tag); err != nil || len(again) != 2 {
		t.Fatalf("List when Linode's filter matches nothing: %v, %v; want ns1-next and ns2", again, err)
	}
	e.sim.ClearFaults()
	// Nor on the filter being accepted at all: a 400 for it is no reason
	// to stop, since the account's list follows.
	e.sim.InjectFault(linodesim.Fault{Method: "GET", PathPrefix: "/v4/linode/instances", FilterRefused: true, Count: -1})
	if again, err := e.cloud.List(c, tag); err != nil || len(again) != 2 {
		t.Fatalf("List when Linode refuses the filter: %v, %v; want ns1-next and ns2", again, err)
	}
	e.sim.ClearFaults()
	// Nor on the list of the whole account, which pages by offset.
	e.mu.Lock()
	e.unfilteredMisses = true
	e.mu.Unlock()
	if again, err := e.cloud.List(c, tag); err != nil || len(again) != 2 {
		t.Fatalf("List when the account's list misses them: %v, %v; want ns1-next and ns2", again, err)
	}
	e.mu.Lock()
	e.unfilteredMisses = false
	e.mu.Unlock()
	if none, err := e.cloud.List(c, "no-such-tag"); err != nil || len(none) != 0 || none == nil {
		t.Fatalf("List of an unused tag: %#v, %v", none, err)
	}

	if err := e.cloud.Rename(c, s.ID, "ns1"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(15 * time.Millisecond)
	got, err := e.cloud.Get(c, s.ID)
	if err != nil || got.Label != "ns1" || got.Status != "running" {
		t.Fatalf("get after rename and boot: %+v, %v", got, err)
	}

	for range 2 {
		if err := e.cloud.Delete(c, s.ID); err != nil {
			t.Fatalf("delete must be idempotent: %v", err)
		}
	}
	_, err = e.cloud.Get(c, s.ID)
	if !errors.Is(err, dnsroll.ErrNotFound) || dnsroll.ErrorCode(err) != dnsroll.ENOTFOUND {
		t.Fatalf("get deleted: %v (code %s)", err, dnsroll.ErrorCode(err))
	}
	if !strings.HasPrefix(err.Error(), "linode: get 1001: ") || strings.Count(err.Error(), "linode:") != 1 {
		t.Errorf("error should be prefixed once: %q", err)
	}
	if !linodego.IsNotFound(err) {
		t.Error("the linodego error should stay in the chain")
	}
	if err := e.cloud.Rename(c, s.ID, "x-1"); !errors.Is(err, dnsroll.ErrNotFound) {
		t.Errorf("rename deleted: %v", err)
	}
}

// A server carries its public IPv6 address as Linode gives it, the SLAAC
// address (ipv6, "2600:3c00::f03c:91ff:fe24:3a2f/128" on the real API)
// without its prefix length: a load balancer that replaces one at an IPv6
// address listens there.
func TestServersKnowTheirIPv6(t *testing.T) {
	e := newEnv(t)
	c := ctx(t)
	created := e.create(t, "lb1-next")
	want := fmt.Sprintf("2001:db8::%x", created.ID) // the simulator's SLAAC address
	got, err := e.cloud.Get(c, created.ID)
	if err != nil {
		t.Fatal(err)
	}
	list, err := e.cloud.List(c, tag)
	if err != nil || len(list) != 1 {
		t.Fatalf("List = %v, %v", list, err)
	}
	for how, s := range map[string]dnsroll.Server{"Create": created, "Get": got, "List": list[0]} {
		if s.IPv6 != want || s.IPv4 != "127.0.0.1" {
			t.Errorf("%s: IPv6 %q, IPv4 %q; want %q and 127.0.0.1", how, s.IPv6, s.IPv4, want)
		}
	}
}

func TestCreateErrors(t *testing.T) {
	e := newEnv(t)
	c := ctx(t)
	e.create(t, "ns1")
	_, err := e.cloud.Create(c, spec("ns1", tag), nil)
	if dnsroll.ErrorCode(err) != dnsroll.ECONFLICT || !strings.HasPrefix(err.Error(), "linode: create ns1: ") {
		t.Fatalf("duplicate label: %v (code %s)", err, dnsroll.ErrorCode(err))
	}
	_, err = e.cloud.Create(c, spec("-bad-", tag), nil)
	if dnsroll.ErrorCode(err) != dnsroll.EINVALID || errors.Is(err, dnsroll.ErrNotFound) {
		t.Fatalf("invalid label: %v (code %s)", err, dnsroll.ErrorCode(err))
	}
	if err := e.cloud.Rename(c, 1001, "a--b"); dnsroll.ErrorCode(err) != dnsroll.EINVALID {
		t.Fatalf("invalid rename: %v", err)
	}
	if _, err := e.cloud.List(c, ""); dnsroll.ErrorCode(err) != dnsroll.EINVALID {
		t.Fatalf("List without a tag must refuse, not list everything: %v", err)
	}
}

func TestCreateSendsRandomRootPassAndKeys(t *testing.T) {
	e := newEnv(t)
	for _, l := range []string{"ns1", "ns2"} {
		if _, err := e.cloud.Create(ctx(t), spec(l, tag), nil); err != nil {
			t.Fatal(err)
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	p1, _ := e.creates[0]["root_pass"].(string)
	p2, _ := e.creates[1]["root_pass"].(string)
	if len(p1) < 32 || p1 == p2 || !strings.ContainsAny(p1, "0123456789") || strings.ToLower(p1) == p1 {
		t.Fatalf("root passwords %q, %q are not random and strong", p1, p2)
	}
	keys, _ := e.creates[0]["authorized_keys"].([]any)
	if len(keys) != 1 || keys[0] != "ssh-ed25519 AAAAC3Nza test@dnsroll" {
		t.Fatalf("authorized_keys %v", e.creates[0]["authorized_keys"])
	}
}

func TestListAcrossPages(t *testing.T) {
	e := newEnvWith(t, linodesim.Options{CreateLimit: -1}) // 520 creates at once
	for i := range 520 {
		tags := []string{tag}
		if i%2 == 1 {
			tags = []string{"other-fleet"}
		}
		if _, err := e.cloud.Create(ctx(t), spec(fmt.Sprintf("vm%03d", i), tags...), nil); err != nil {
			t.Fatal(err)
		}
	}
	e.sim.InjectFault(linodesim.Fault{Method: "GET", Status: 429, RetryAfter: 30, Count: 3})
	list, err := e.cloud.List(ctx(t), tag)
	if err != nil || len(list) != 260 {
		t.Fatalf("List: %d, %v", len(list), err)
	}
	if len(e.sim.Faults()) != 0 {
		t.Error("the 429s should have been retried")
	}
}

// Linode's tags ignore letter case: a tag the account already has keeps
// its spelling, whatever spelling a create asks for. The fleet's servers
// are still its own, to list, delete and rename.
func TestTagsIgnoreLetterCase(t *testing.T) {
	e := newEnv(t)
	if _, err := e.cloud.Create(ctx(t), spec("web1", strings.ToUpper(tag)), nil); err != nil {
		t.Fatal(err)
	}
	s, err := e.cloud.Create(ctx(t), spec("ns1-next", tag), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(s.Tags, []string{strings.ToUpper(tag)}) {
		t.Fatalf("created with tags %v: the simulator should answer the account's spelling, %s", s.Tags, strings.ToUpper(tag))
	}
	if !s.HasTag(tag) {
		t.Errorf("a server tagged %v is not taken for one tagged %s", s.Tags, tag)
	}
	list, err := e.cloud.List(ctx(t), tag)
	if err != nil || len(list) != 2 {
		t.Errorf("List(%s) = %v, %v; want web1 and ns1-next", tag, list, err)
	}
}

// A nameserver's firewall_id reaches the create request, so the new VM is
// behind its Cloud Firewall from the start.
func TestCreateBehindFirewall(t *testing.T) {
	e := newEnv(t)
	s := spec("ns1-next", tag)
	s.FirewallID = 4242
	if _, err := e.cloud.Create(ctx(t), s, nil); err != nil {
		t.Fatal(err)
	}
	if got := e.sim.Instances()[0].FirewallID; got != 4242 {
		t.Errorf("instance created behind firewall %d, want 4242", got)
	}
}

// Missing names each field of a spec that the account cannot create a
// Linode with, as Linode's lookups answer: a thing it lacks, a region
// closed to the account, a plan sold out in the region. A lookup the token
// may not make proves nothing, and a 500 is an error to retry, not a
// verdict.
func TestMissing(t *testing.T) {
	e := newEnv(t)
	c := ctx(t)
	for _, tc := range []struct {
		name string
		edit func(*dnsroll.ServerSpec)
		want []dnsroll.Unoffered
	}{
		{"all offered", func(*dnsroll.ServerSpec) {}, nil},
		{"behind the account's firewall", func(s *dnsroll.ServerSpec) { s.FirewallID = 4242 }, nil},
		{"no image to check", func(s *dnsroll.ServerSpec) { s.Image = "" }, nil},
		{"region", func(s *dnsroll.ServerSpec) { s.Region = "mars-1" }, []dnsroll.Unoffered{{Field: "region"}}},
		{"plan and image", func(s *dnsroll.ServerSpec) { s.Type, s.Image = "g6-huge-99", "debian12" }, []dnsroll.Unoffered{{Field: "type"}, {Field: "image"}}},
		{"firewall", func(s *dnsroll.ServerSpec) { s.FirewallID = 77 }, []dnsroll.Unoffered{{Field: "firewall_id"}}},
		{"a region closed to the account", func(s *dnsroll.ServerSpec) { s.Region = "br-gru" }, []dnsroll.Unoffered{{Field: "region",
			Why: "this account may not create Linodes in region br-gru (`linode-cli account get-availability br-gru` lists them unavailable there): pick another region, or ask Linode's support to open it"}}},
		{"a plan sold out in the region", func(s *dnsroll.ServerSpec) { s.Type = "g6-dedicated-2" }, []dnsroll.Unoffered{{Field: "type",
			Why: "Linode has no g6-dedicated-2 left in region us-east for now (`linode-cli regions view-avail us-east` lists the plans it lacks there): pick another plan or region, or try again later"}}},
		{"the plan in another region", func(s *dnsroll.ServerSpec) { s.Type, s.Region = "g6-dedicated-2", "eu-west" }, nil},
	} {
		s := spec("ns1-next", tag)
		tc.edit(&s)
		got, err := e.cloud.Missing(c, s)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("%s: Missing = %v, %v; want %v", tc.name, got, err, tc.want)
		}
	}
	// The availability lookups are a restricted token's to refuse, too.
	closed := spec("ns1-next", tag)
	closed.Region = "br-gru"
	e.sim.InjectFault(linodesim.Fault{PathPrefix: "/v4/account/availability", Status: 403})
	if got, err := e.cloud.Missing(c, closed); err != nil || len(got) != 0 {
		t.Errorf("a token that may not read the account's availability: Missing = %v, %v; want nothing proven", got, err)
	}

	bad := spec("ns1-next", tag)
	bad.FirewallID = 77
	e.sim.InjectFault(linodesim.Fault{PathPrefix: "/v4/networking/firewalls", Status: 403})
	if got, err := e.cloud.Missing(c, bad); err != nil || len(got) != 0 {
		t.Errorf("a token that may not read firewalls: Missing = %v, %v; want nothing proven", got, err)
	}
	e.sim.InjectFault(linodesim.Fault{PathPrefix: "/v4/networking/firewalls", Status: 500, Count: -1})
	defer e.sim.ClearFaults()
	if got, err := e.cloud.Missing(c, bad); err == nil || dnsroll.ErrorCode(err) == dnsroll.EINVALID {
		t.Errorf("with the API failing: Missing = %v, %v; want a retryable error", got, err)
	}
	if len(e.sim.Instances()) != 0 {
		t.Error("Missing created an instance")
	}
}

// A worker pointed at Linode's own API by URL is on the real Linode, and
// refuses lab fleets and short timeouts as it does by default.
func TestIsReal(t *testing.T) {
	for url, want := range map[string]bool{
		"": true, linode.DefaultBaseURL: true, "https://API.linode.com/v4beta": true, "https://api.linode.com./v4": true, "https://api.linode.com.:443/v4": true,
		"http://127.0.0.1:8080/v4": false, "https://api.linode.com.example.net/v4": false, "http://[::1": false,
	} {
		if got := linode.IsReal(url); got != want {
			t.Errorf("IsReal(%q) = %v, want %v", url, got, want)
		}
	}
}

// Creates past Linode's own limit on them (20 per 15 s; 20 per 2 s here)
// are answered 429 with Retry-After, and go through once they have waited:
// each server is created once, none lost or made twice.
func TestCreatesPastTheRateLimitWaitTheirTurn(t *testing.T) {
	e := newEnvWith(t, linodesim.Options{CreateWindow: 2 * time.Second})
	c, err := linode.New(linode.Options{Token: token, BaseURL: e.srv.URL + "/v4", RetryWait: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 24 {
		if _, err := c.Create(ctx(t), spec(fmt.Sprintf("ns%02d", i), tag), nil); err != nil {
			t.Fatalf("create %d: %v", i+1, err)
		}
	}
	labels := map[string]int{}
	for _, in := range e.sim.Instances() {
		labels[in.Label]++
	}
	e.mu.Lock()
	requests := len(e.creates)
	e.mu.Unlock()
	if len(labels) != 24 || requests <= 24 {
		t.Fatalf("%d servers from %d create requests; want 24, each once, some of the requests refused by the limit", len(labels), requests)
	}
	for l, n := range labels {
		if n != 1 {
			t.Errorf("%s created %d times", l, n)
		}
	}
}

// Several fleets share one account, and a fleet's tag may begin with
// another's: dnsroll-fleet-ns and dnsroll-fleet-ns-a, dnsroll-fleet-dns
// and dnsroll-fleet-dns2. A fleet lists its own servers and none of the
// others', whether Linode's filter on tags matches exactly, matches any
// tag that holds the one asked for, or is refused.
func TestListTakesNoFleetWhoseTagExtendsAnother(t *testing.T) {
	fleets := []string{"ns", "ns-a", "n", "dns", "dns2", "dns-2"}
	for _, api := range []struct {
		name  string
		setup func(e *env)
	}{
		{"an exact filter", func(*env) {}},
		{"a filter on substrings", func(e *env) { e.looseTagFilter = true }},
		{"a filter refused", func(e *env) {
			e.sim.InjectFault(linodesim.Fault{Method: "GET", PathPrefix: "/v4/linode/instances", FilterRefused: true, Count: -1})
		}},
	} {
		t.Run(api.name, func(t *testing.T) {
			e := newEnv(t)
			api.setup(e)
			for i, f := range fleets {
				for _, label := range []string{fmt.Sprintf("f%d-ns1", i), fmt.Sprintf("f%d-ns1-next", i)} {
					if _, err := e.cloud.Create(ctx(t), spec(label, "dnsroll-fleet-"+f), nil); err != nil {
						t.Fatal(err)
					}
				}
			}
			// Made by hand, with a tag that only begins like a fleet's.
			if _, err := e.cloud.Create(ctx(t), spec("f0-ns2-next", "dnsroll-fleet-ns-old"), nil); err != nil {
				t.Fatal(err)
			}
			for i, f := range fleets {
				list, err := e.cloud.List(ctx(t), "dnsroll-fleet-"+f)
				var labels []string
				for _, s := range list {
					labels = append(labels, s.Label)
				}
				if want := []string{fmt.Sprintf("f%d-ns1", i), fmt.Sprintf("f%d-ns1-next", i)}; err != nil || !slices.Equal(labels, want) {
					t.Errorf("List(dnsroll-fleet-%s) = %v, %v; want only its own %v", f, labels, err, want)
				}
			}
		})
	}
}

// Only the filtered list's 400 is passed over: one for the account's own
// list, which carries no filter, is an error. Taken for an empty list, it
// would report a fleet's green gone and its deletion done, and leave it
// running.
func TestListFailsWhenTheAccountsListIsRefused(t *testing.T) {
	e := newEnv(t)
	e.create(t, "ns1-next")
	e.sim.InjectFault(linodesim.Fault{Method: "GET", PathPrefix: "/v4/linode/instances", Status: http.StatusBadRequest, Count: -1})
	list, err := e.cloud.List(ctx(t), tag)
	if err == nil || !strings.HasPrefix(err.Error(), "linode: list "+tag+": ") {
		t.Errorf("List with every list refused: %v, %v; want an error", list, err)
	}
}

// A server's IPv4 is its first public address, whatever order Linode
// lists its addresses in: a private (192.168.128.0/17) or VPC NAT
// (100.64.0.0/10) address listed first is not where its DNS answers, nor
// where Ansible reaches it.
func TestServersTakeTheirPublicIPv4(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"id": 7, "label": "ns1", "status": "running", "region": "us-east", "type": "g6-nanode-1",
			"ipv4": ["192.168.133.7", "100.64.1.2", "203.0.113.9", "198.51.100.4"], "ipv6": "2600:3c00::f03c:91ff:fe24:3a2f/128", "tags": ["`+tag+`"]}`)
	}))
	t.Cleanup(srv.Close)
	s, err := newCloud(t, srv.URL+"/v4", token).Get(ctx(t), 7)
	if err != nil || s.IPv4 != "203.0.113.9" {
		t.Errorf("Get = %+v, %v; want IPv4 203.0.113.9, the first public address", s, err)
	}
}
