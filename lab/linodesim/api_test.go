package linodesim_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/linode/linodego"

	"github.com/dnsroll/dnsroll/lab/linodesim"
)

func TestFilter(t *testing.T) {
	e := newEnv(t, linodesim.Options{})
	e.create(t, "ns1", "fleet-a")                                            // 1001
	e.create(t, "ns2", "fleet-b")                                            // 1002
	e.create(t, "ns3", "fleet-a", "fleet-b")                                 // 1003
	if _, err := e.lc.CreateInstance(ctx(t), linodego.InstanceCreateOptions{ // 1004
		Label: "other", Region: "eu-west", Type: "g6-nanode-1",
	}); err != nil {
		t.Fatal(err)
	}
	eq := func(field string, v any) *linodego.Filter {
		f := &linodego.Filter{}
		f.AddField(linodego.Eq, field, v)
		return f
	}
	and := linodego.And("", "", &linodego.Comp{Column: "tags", Operator: linodego.Eq, Value: "fleet-b"},
		&linodego.Comp{Column: "label", Operator: linodego.Neq, Value: "ns2"})
	or := linodego.Or("", "", &linodego.Comp{Column: "label", Operator: linodego.Eq, Value: "ns1"},
		&linodego.Comp{Column: "region", Operator: linodego.Eq, Value: "eu-west"})
	desc := &linodego.Filter{OrderBy: "label", Order: linodego.Descending}
	desc.AddField(linodego.Contains, "label", "NS")
	cases := []struct {
		name string
		f    *linodego.Filter
		want []int
	}{
		{"label", eq("label", "ns2"), []int{1002}},
		{"tag", eq("tags", "fleet-a"), []int{1001, 1003}},
		{"region", eq("region", "eu-west"), []int{1004}},
		{"id", eq("id", 1003), []int{1003}},
		{"and", and, []int{1003}},
		{"or", or, []int{1001, 1004}},
		{"contains, ordered", desc, []int{1003, 1002, 1001}},
		{"no match", eq("tags", "nope"), nil},
	}
	for _, tc := range cases {
		b, _ := tc.f.MarshalJSON()
		got, err := e.lc.ListInstances(ctx(t), &linodego.ListOptions{Filter: string(b)})
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		var ids []int
		for _, in := range got {
			ids = append(ids, in.ID)
		}
		if !slices.Equal(ids, tc.want) {
			t.Errorf("%s (%s): got %v, want %v", tc.name, b, ids, tc.want)
		}
	}
	for _, bad := range []string{`{"ipv4":"1.2.3.4"}`, `{not json`, `{"label":{"+regex":"x"}}`, `{"+or":"x"}`} {
		r := e.do(t, "GET", "/v4/linode/instances", "", "X-Filter", bad)
		if _, field := r.reason(t); r.status != 400 || field != "X-Filter" {
			t.Errorf("X-Filter %s: %d %s", bad, r.status, r.body)
		}
	}
}

func TestCreateValidation(t *testing.T) {
	e := newEnv(t, linodesim.Options{Images: []string{"private/77"}, Firewalls: []int{4242},
		CreateLimit: -1}) // more creates (refused ones count) than Linode allows in 15 s
	e.create(t, "ns1")
	c := ctx(t)
	base := linodego.InstanceCreateOptions{Region: "us-east", Type: "g6-nanode-1", Image: "linode/debian12", RootPass: "Root-Pass-123"}
	with := func(f func(o *linodego.InstanceCreateOptions)) linodego.InstanceCreateOptions {
		o := base
		f(&o)
		return o
	}
	cases := []struct {
		name, field, reason string
		opts                linodego.InstanceCreateOptions
	}{
		{"duplicate label", "label", "Label must be unique among your linodes", with(func(o *linodego.InstanceCreateOptions) { o.Label = "ns1" })},
		{"duplicate label in other case", "label", "Label must be unique among your linodes", with(func(o *linodego.InstanceCreateOptions) { o.Label = "NS1" })},
		{"image without root_pass", "root_pass", "root_pass is required when deploying from an image", with(func(o *linodego.InstanceCreateOptions) { o.Label = "ns2"; o.RootPass = "" })},
		{"no region", "region", "", with(func(o *linodego.InstanceCreateOptions) { o.Label = "ns2"; o.Region = "" })},
		{"no type", "type", "", with(func(o *linodego.InstanceCreateOptions) { o.Label = "ns2"; o.Type = "" })},
		{"short tag", "tags", "", with(func(o *linodego.InstanceCreateOptions) { o.Label = "ns2"; o.Tags = []string{"x"} })},
		{"a region Linode lacks", "region", "", with(func(o *linodego.InstanceCreateOptions) { o.Label = "ns2"; o.Region = "mars-1" })},
		{"a plan Linode lacks", "type", "", with(func(o *linodego.InstanceCreateOptions) { o.Label = "ns2"; o.Type = "g6-huge-99" })},
		{"an image without its vendor", "image", "", with(func(o *linodego.InstanceCreateOptions) { o.Label = "ns2"; o.Image = "debian12" })},
		{"another account's private image", "image", "", with(func(o *linodego.InstanceCreateOptions) { o.Label = "ns2"; o.Image = "private/78" })},
		{"a firewall the account lacks", "firewall_id", "", with(func(o *linodego.InstanceCreateOptions) { o.Label = "ns2"; o.FirewallID = 77 })},
	}
	bad := []string{"ab", "-abc", "abc-", "a--b", "a..b", "a__b", "a b c", "ns1/x", "é-ab", strings.Repeat("a", 65)}
	for _, l := range bad {
		cases = append(cases, struct {
			name, field, reason string
			opts                linodego.InstanceCreateOptions
		}{"label " + l, "label", "", with(func(o *linodego.InstanceCreateOptions) { o.Label = l })})
	}
	for _, tc := range cases {
		_, err := e.lc.CreateInstance(c, tc.opts)
		if apiStatus(err) != 400 || !strings.Contains(err.Error(), "["+tc.field+"] "+tc.reason) {
			t.Errorf("%s: got %v, want 400 on field %s", tc.name, err, tc.field)
		}
	}
	if _, err := e.lc.CreateInstance(c, with(func(o *linodego.InstanceCreateOptions) {
		o.Label, o.Region, o.Type, o.Image, o.FirewallID = "private-fw", "de-fra-2", "g6-dedicated-2", "private/77", 4242
	})); err != nil {
		t.Errorf("a private image behind the account's firewall: %v", err)
	}
	for _, l := range []string{"ns2", "ns1-next", "a.b_c-d", strings.Repeat("a", 64), "A1b"} {
		if _, err := e.lc.CreateInstance(c, with(func(o *linodego.InstanceCreateOptions) { o.Label = l })); err != nil {
			t.Errorf("valid label %q rejected: %v", l, err)
		}
	}
	// Linode's reason word for word, "linodes" in lower case: clients
	// match it whole.
	if _, err := e.lc.RenameInstance(c, 1001, "ns2"); apiStatus(err) != 400 || !strings.HasSuffix(err.Error(), "[label] Label must be unique among your linodes") {
		t.Errorf("rename to a taken label: %v", err)
	}
	if _, err := e.lc.RenameInstance(c, 1001, "a--b"); apiStatus(err) != 400 {
		t.Errorf("rename to an invalid label: %v", err)
	}
	if _, err := e.lc.RenameInstance(c, 1001, "ns1"); err != nil {
		t.Errorf("renaming to its own label is fine: %v", err)
	}
	if r := e.do(t, "POST", "/v4/linode/instances", "{nope"); r.status != 400 {
		t.Errorf("invalid JSON: %d", r.status)
	}
}

// A key of a type Linode does not install fails the create, naming the
// key, as Linode does; a security key of the one type it takes does not.
func TestAuthorizedKeyTypes(t *testing.T) {
	e := newEnv(t, linodesim.Options{})
	create := func(label, key string) reply {
		return e.do(t, "POST", "/v4/linode/instances", fmt.Sprintf(`{"label":%q,"region":"us-east","type":"g6-nanode-1","image":"linode/debian12","root_pass":"Hunter2-Secret-Pass","authorized_keys":["ssh-ed25519 AAAA a",%q]}`, label, key))
	}
	if r := create("ns1", "sk-ssh-ed25519@openssh.com AAAA yubikey"); r.status != 400 || !strings.Contains(r.body, "SSH Key 2 key-type must be") || !strings.Contains(r.body, "authorized_keys") {
		t.Errorf("an sk-ssh-ed25519 key: %d %s; want a 400 naming key 2", r.status, r.body)
	}
	if r := create("ns2", "sk-ecdsa-sha2-nistp256@openssh.com AAAA yubikey"); r.status != 200 {
		t.Errorf("an sk-ecdsa-sha2-nistp256 key: %d %s; want it installed", r.status, r.body)
	}
}

// Linode scores a root password's strength and refuses a weak one, of
// whatever length, without echoing it; a long random one passes.
func TestRootPassStrength(t *testing.T) {
	e := newEnv(t, linodesim.Options{CreateLimit: -1})
	for i, tc := range []struct {
		pass string
		weak bool
	}{
		{"password", true}, {"12345678", true}, {"aaaaaaaaaaaaaaaa", true}, {"abcabcabcabcabc", true}, {"Abc-123", true},
		{"Root-Pass-123", false}, {"plum-orbit-kettle-Sway9", false}, {"q7T!x9#Lm2@Vr8", false},
	} {
		_, err := e.lc.CreateInstance(ctx(t), linodego.InstanceCreateOptions{
			Label: fmt.Sprintf("ns%d", i+1), Region: "us-east", Type: "g6-nanode-1", Image: "linode/debian12", RootPass: tc.pass,
		})
		switch {
		case !tc.weak && err != nil:
			t.Errorf("%q refused: %v", tc.pass, err)
		case tc.weak && (apiStatus(err) != 400 || !strings.HasSuffix(err.Error(), "[root_pass] Password does not meet strength requirement")):
			t.Errorf("%q: got %v, want Linode's 400 on root_pass", tc.pass, err)
		case tc.weak && strings.Contains(err.Error(), tc.pass):
			t.Errorf("the refusal echoes the password: %v", err)
		}
	}
}

func TestRootPassNeverEchoed(t *testing.T) {
	e := newEnv(t, linodesim.Options{})
	r := e.do(t, "POST", "/v4/linode/instances",
		`{"label":"ns1","region":"us-east","type":"g6-nanode-1","image":"linode/debian12","root_pass":"Hunter2-Secret-Pass","authorized_keys":["ssh-ed25519 AAAA test"]}`)
	if r.status != 200 || strings.Contains(r.body, "Hunter2") || strings.Contains(r.body, "root_pass") {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	m := r.json(t)
	for _, k := range []string{"id", "label", "status", "region", "type", "image", "ipv4", "ipv6", "tags", "created", "updated",
		"specs", "alerts", "backups", "hypervisor", "group", "watchdog_enabled"} {
		if _, ok := m[k]; !ok {
			t.Errorf("instance JSON lacks %q", k)
		}
	}
	if created, _ := m["created"].(string); len(created) != len("2006-01-02T15:04:05") {
		t.Errorf("created %q is not formatted like Linode's", created)
	}
	for _, path := range []string{"/v4/linode/instances", "/v4/linode/instances/1001", "/_sim/instances"} {
		if body := e.do(t, "GET", path, "").body; strings.Contains(body, "Hunter2") {
			t.Errorf("%s echoes root_pass", path)
		}
	}
}

func TestAuthAndNotFound(t *testing.T) {
	e := newEnv(t, linodesim.Options{})
	for _, path := range []string{"/v4/linode/instances", "/_sim/faults", "/v4/nope"} {
		req, _ := http.NewRequest("GET", e.srv.URL+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body struct{ Errors []struct{ Reason string } }
		err = json.NewDecoder(resp.Body).Decode(&body)
		_ = resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 401 || resp.Header.Get("Content-Type") != "application/json" ||
			len(body.Errors) != 1 || body.Errors[0].Reason != "Invalid Token" {
			t.Errorf("%s without token: %d %+v", path, resp.StatusCode, body)
		}
	}
	wrong := newClient(t, e.srv.URL, "not-the-token")
	if _, err := wrong.ListInstances(ctx(t), nil); apiStatus(err) != 401 || !strings.Contains(err.Error(), "Invalid Token") {
		t.Errorf("wrong token: %v", err)
	}
	if _, err := e.lc.GetInstance(ctx(t), 9999); !linodego.IsNotFound(err) {
		t.Errorf("unknown id: %v", err)
	}
	for _, path := range []string{"/v4/linode/instances/abc", "/v4/linode/instances/9999/ips", "/v4/nope"} {
		r := e.do(t, "GET", path, "")
		if reason, _ := r.reason(t); r.status != 404 || reason != "Not found" {
			t.Errorf("%s: %d %s", path, r.status, r.body)
		}
	}
	if r := e.do(t, "DELETE", "/v4/linode/instances/9999", ""); r.status != 404 {
		t.Errorf("delete unknown: %d", r.status)
	}
	if _, err := linodesim.New(linodesim.Options{}); err == nil {
		t.Error("New without a token must fail")
	}
}

// Regions, plans, images and firewalls are looked up by ID as on Linode:
// what the account can use is found, anything else is a 404. linodego
// sends an image ID's slash escaped (linode%2Fdebian12); a client that
// does not is answered the same.
func TestCatalogLookups(t *testing.T) {
	e := newEnv(t, linodesim.Options{Images: []string{"private/77"}, Firewalls: []int{4242}})
	c := ctx(t)
	get := map[string]func(id string) error{
		"region": func(id string) error { _, err := e.lc.GetRegion(c, id); return err },
		"type":   func(id string) error { _, err := e.lc.GetType(c, id); return err },
		"image":  func(id string) error { _, err := e.lc.GetImage(c, id); return err },
		"firewall": func(id string) error {
			n, _ := strconv.Atoi(id)
			_, err := e.lc.GetFirewall(c, n)
			return err
		},
	}
	for _, tc := range []struct{ kind, id string }{
		{"region", "us-east"}, {"region", "jp-tyo-3"}, {"type", "g6-nanode-1"}, {"type", "g6-dedicated-8"},
		{"image", "linode/debian12"}, {"image", "private/77"}, {"firewall", "4242"},
	} {
		if err := get[tc.kind](tc.id); err != nil {
			t.Errorf("%s %s: %v, want found", tc.kind, tc.id, err)
		}
	}
	for _, tc := range []struct{ kind, id string }{
		{"region", "mars-1"}, {"region", "US-EAST"}, {"type", "g6-huge-99"}, {"image", "debian12"},
		{"image", "linode/windows"}, {"image", "private/78"}, {"firewall", "77"},
	} {
		if err := get[tc.kind](tc.id); apiStatus(err) != 404 {
			t.Errorf("%s %s: %v, want a 404", tc.kind, tc.id, err)
		}
	}
	if r := e.do(t, "GET", "/v4/images/linode/debian12", ""); r.status != 200 || r.json(t)["id"] != "linode/debian12" {
		t.Errorf("GET /v4/images/linode/debian12 unescaped: %d %s", r.status, r.body)
	}
}

// A plan may be sold out in one region and a region closed to an account:
// Linode says so in the region's plan availability and the account's
// availability, and refuses a create there. Elsewhere both are open.
func TestSoldOutPlansAndClosedRegions(t *testing.T) {
	e := newEnv(t, linodesim.Options{SoldOut: map[string][]string{"us-east": {"g6-dedicated-2"}}, ClosedRegions: []string{"br-gru"}})
	c := ctx(t)
	avail, err := e.lc.GetRegionAvailability(c, "us-east")
	if err != nil || len(avail) != 1 || avail[0] != (linodego.RegionAvailability{Region: "us-east", Plan: "g6-dedicated-2", Available: false}) {
		t.Errorf("us-east's plan availability: %+v, %v; want g6-dedicated-2 unavailable", avail, err)
	}
	if avail, err := e.lc.GetRegionAvailability(c, "eu-west"); err != nil || len(avail) != 0 {
		t.Errorf("eu-west's plan availability: %+v, %v; want none listed", avail, err)
	}
	if _, err := e.lc.GetRegionAvailability(c, "mars-1"); apiStatus(err) != 404 {
		t.Errorf("an unknown region's plan availability: %v, want a 404", err)
	}
	closed, err := e.lc.GetAccountAvailability(c, "br-gru")
	if err != nil || !slices.Contains(closed.Unavailable, "Linodes") || slices.Contains(closed.Available, "Linodes") {
		t.Errorf("br-gru's account availability: %+v, %v; want Linodes unavailable", closed, err)
	}
	open, err := e.lc.GetAccountAvailability(c, "us-east")
	if err != nil || !slices.Contains(open.Available, "Linodes") || len(open.Unavailable) != 0 {
		t.Errorf("us-east's account availability: %+v, %v; want Linodes available", open, err)
	}
	create := func(label, region, plan string) error {
		_, err := e.lc.CreateInstance(c, linodego.InstanceCreateOptions{Label: label, Region: region, Type: plan, Image: "linode/debian12", RootPass: "Very-Secret-Root-Pass-1"})
		return err
	}
	if err := create("sold", "us-east", "g6-dedicated-2"); apiStatus(err) != 400 || !strings.Contains(err.Error(), "[type]") {
		t.Errorf("a sold-out plan: %v, want a 400 on type", err)
	}
	if err := create("closed", "br-gru", "g6-nanode-1"); apiStatus(err) != 400 || !strings.Contains(err.Error(), "[region]") {
		t.Errorf("a closed region: %v, want a 400 on region", err)
	}
	if err := create("elsewhere", "eu-west", "g6-dedicated-2"); err != nil {
		t.Errorf("the plan in another region: %v", err)
	}
	if n := len(e.sim.Instances()); n != 1 {
		t.Errorf("%d instances, want the one created elsewhere", n)
	}
}

// A restricted user without read_write account access may not add tags
// to a Linode, later any more than at its create; it may still rename one.
func TestRestrictedUserAddsNoTags(t *testing.T) {
	e := newEnv(t, linodesim.Options{})
	inst := e.create(t, "ns1", "fleet-a")
	e.sim.Restrict(linodesim.Grants{AddLinodes: true, AccountAccess: "read_only"})
	c := ctx(t)
	tags := []string{"fleet-a", "fleet-b"}
	if _, err := e.lc.UpdateInstance(c, inst.ID, linodego.InstanceUpdateOptions{Tags: &tags}); apiStatus(err) != 403 || !strings.Contains(err.Error(), "[tags]") {
		t.Errorf("adding a tag: %v; want 403 on tags", err)
	}
	if got, _ := e.lc.GetInstance(c, inst.ID); got == nil || !slices.Equal(got.Tags, []string{"fleet-a"}) {
		t.Errorf("tags after the refusal: %+v", got)
	}
	if _, err := e.lc.RenameInstance(c, inst.ID, "ns1-next"); err != nil {
		t.Errorf("rename: %v", err)
	}
	e.sim.Restrict(linodesim.Grants{AddLinodes: true, AccountAccess: "read_write"})
	if _, err := e.lc.UpdateInstance(c, inst.ID, linodego.InstanceUpdateOptions{Tags: &tags}); err != nil {
		t.Errorf("adding a tag with read_write account access: %v", err)
	}
}

// A PUT Linode refuses changes nothing, as on Linode: a new label sent
// with a tag it refuses (too short, or one a restricted user may not
// add) is not taken either, and stays free for another instance.
func TestRefusedUpdateChangesNothing(t *testing.T) {
	e := newEnv(t, linodesim.Options{})
	inst := e.create(t, "ns1", "fleet-a")
	c := ctx(t)
	check := func(when string) {
		t.Helper()
		if got, err := e.lc.GetInstance(c, inst.ID); err != nil || got.Label != "ns1" || !slices.Equal(got.Tags, []string{"fleet-a"}) {
			t.Errorf("%s: %+v, %v; want ns1 tagged fleet-a", when, got, err)
		}
	}
	short := []string{"x"}
	if _, err := e.lc.UpdateInstance(c, inst.ID, linodego.InstanceUpdateOptions{Label: "ns9", Tags: &short}); apiStatus(err) != 400 {
		t.Fatalf("rename with a short tag: %v; want 400", err)
	}
	check("after a 400")
	e.sim.Restrict(linodesim.Grants{AddLinodes: true, AccountAccess: "read_only"})
	more := []string{"fleet-a", "fleet-b"}
	if _, err := e.lc.UpdateInstance(c, inst.ID, linodego.InstanceUpdateOptions{Label: "ns9", Tags: &more}); apiStatus(err) != 403 {
		t.Fatalf("rename adding a tag a restricted user may not add: %v; want 403", err)
	}
	check("after a 403")
	e.sim.Unrestrict()
	e.create(t, "ns9")
}
