package activities

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/dnsroll/dnsroll/bundle"
	"github.com/dnsroll/dnsroll/config"
	"github.com/dnsroll/dnsroll/internal/dnstest"
	"github.com/dnsroll/dnsroll/internal/testfiles"
)

// Plan says what the revision changes against the live one, the bundle of
// the fleet's last successful rollout: the zones whose serial differs
// from the one blue serves, the zones added or removed and the Ansible
// files changed against the live manifest in this worker's store, and
// nothing else. A worker without that manifest says the files are
// unknown, naming the bundle.
func TestPlanNamesChangesAgainstTheLiveRevision(t *testing.T) {
	// The live revision: example.com only, planned before any blue.
	c, live := planLive(t)
	if live.Changes == nil || live.Changes.Unknown == "" || live.Changes.ZonesChanged.Count != 0 {
		t.Fatalf("the first rollout's changes: %+v, want nothing compared", live.Changes)
	}

	// Blue serves example.com at serial 6, and example.org at 3.
	blue := c.mustEnsure(t, "ns1")
	served := map[string]uint32{"example.com.": 6, "example.org.": 3}
	addr := dnstest.ServeUDP(t, func(req, m *dns.Msg) {
		q := req.Question[0]
		m.Authoritative = true
		m.Answer = append(m.Answer, &dns.SOA{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: 300},
			Ns: "ns1." + q.Name, Mbox: "hostmaster." + q.Name, Serial: served[q.Name], Refresh: 3600, Retry: 600, Expire: 1209600, Minttl: 300})
	})
	// The same fleet as a lab fleet puts blue on this server.
	c.labFleetServedAt(t, blue.Server, addr, "")

	// The next revision: example.com at serial 7, example.org added at
	// the serial blue already has, and the role's tasks edited.
	dir := t.TempDir()
	writeFleetDir(t, dir)
	testfiles.WriteAll(t, dir, map[string]string{
		"zones/example.org.zone":                  strings.ReplaceAll(strings.Replace(dnstest.Zone, " 7 ", " 3 ", 1), "example.com.", "example.org."),
		"ansible/roles/nameserver/tasks/main.yml": "- ansible.builtin.debug: {msg: two}\n",
	})
	c.fleet.Zones = append(c.fleet.Zones, config.Zone{Name: "example.org", File: "zones/example.org.zone"})
	next := c.planIn(t, dir, PlanInput{Fleet: "t", LiveBundle: live.Bundle})
	none := &Names{}
	want := &Changes{
		Live:           live.Bundle,
		ZonesChanged:   Names{Count: 1, Names: []string{"example.com"}},
		ZonesAdded:     &Names{Count: 1, Names: []string{"example.org"}},
		ZonesRemoved:   none,
		AnsibleChanged: &Names{Count: 1, Names: []string{"ansible/roles/nameserver/tasks/main.yml"}},
		AnsibleAdded:   none,
		AnsibleRemoved: none,
	}
	if !reflect.DeepEqual(next.Changes, want) {
		t.Errorf("changes against the live revision:\n got %s\nwant %s", show(next.Changes), show(want))
	}

	other := "sha256:" + strings.Repeat("ab", 32)
	unknown := c.planIn(t, dir, PlanInput{Fleet: "t", LiveBundle: other})
	if got := unknown.Changes; got.Unknown != "unknown: this worker has no manifest of "+bundle.Short(other) ||
		got.ZonesAdded != nil || got.AnsibleChanged != nil || got.ZonesChanged.Count != 1 {
		t.Errorf("without the live manifest: %s; want the zone changed against blue, the rest unknown", show(got))
	}
}

// Each list of changes counts every name and lists the first
// MaxChangeNames: a fleet of 100,000 zones, all of them new against the
// live revision's 100,000 and at another serial than blue's, plans changes
// that take a few KB of history and status.
func TestChangesOfAHugeFleetStaySmall(t *testing.T) {
	const n = 100_000
	store := bundle.Store{Dir: t.TempDir()}
	live := bundle.Manifest{Hash: "sha256:" + strings.Repeat("0b", 32)}
	planned := bundle.Manifest{Hash: "sha256:" + strings.Repeat("0c", 32)}
	blue := map[string]blueSerial{}
	for i := range n {
		was, now := fmt.Sprintf("old%06d.example", i), fmt.Sprintf("z%06d.example", i)
		live.Zones = append(live.Zones, bundle.Zone{Name: was, Path: "/fleet/zones/A/" + was + ".zone", Serial: 1})
		live.Files = append(live.Files, bundle.File{Name: "zones/A/" + was + ".zone", SHA256: "1"})
		planned.Zones = append(planned.Zones, bundle.Zone{Name: now, Path: "/fleet/zones/B/" + now + ".zone", Serial: 2})
		planned.Files = append(planned.Files, bundle.File{Name: "zones/B/" + now + ".zone", SHA256: "2"})
		blue[now] = blueSerial{serial: 1}
	}
	if err := store.Save(live); err != nil {
		t.Fatal(err)
	}
	c := changes(store, live.Hash, "", planned, blue)
	for what, l := range map[string]*Names{"changed": &c.ZonesChanged, "added": c.ZonesAdded, "removed": c.ZonesRemoved} {
		if l.Count != n || len(l.Names) != MaxChangeNames {
			t.Errorf("zones %s: count %d, %d listed; want %d, %d", what, l.Count, len(l.Names), n, MaxChangeNames)
		}
	}
	if c.AnsibleChanged.Count+c.AnsibleAdded.Count+c.AnsibleRemoved.Count != 0 {
		t.Errorf("zone files counted as Ansible files: %s", show(c))
	}
	if got, want := c.ZonesAdded.String(), strings.Join(c.ZonesAdded.Names, ", ")+" and 99980 more"; got != want || c.ZonesAdded.Names[0] != "z000000.example" {
		t.Errorf("added: %q, want %q", got, want)
	}
	b, _ := json.Marshal(c)
	if len(b) > 4<<10 {
		t.Errorf("changes of %d zones take %d bytes of JSON, want at most 4 KB", n, len(b))
	}
	t.Logf("changes of %d zones: %d bytes of JSON", n, len(b))
}

func show(c *Changes) string {
	if c == nil {
		return "nil"
	}
	return fmt.Sprintf("%+v added %v removed %v ansible %v %v %v", *c, c.ZonesAdded, c.ZonesRemoved, c.AnsibleChanged, c.AnsibleAdded, c.AnsibleRemoved)
}

// planLive is a cloud environment with a bundle store, and the plan of
// the test fleet's files there, as the live revision's.
func planLive(t *testing.T) (*cloudEnv, Plan) {
	t.Helper()
	c := newCloudEnv(t)
	c.acts.Bundles = bundle.Store{Dir: t.TempDir()}
	live, _ := c.planWith(t, PlanInput{Fleet: "t"})
	return c, live
}
