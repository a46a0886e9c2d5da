package activities

import (
	"fmt"
	"net"
	"reflect"
	"strconv"
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
	c := newCloudEnv(t)
	c.acts.Bundles = bundle.Store{Dir: t.TempDir()}
	// The live revision: example.com only, planned before any blue.
	live, _ := c.planWith(t, PlanInput{Fleet: "t"})
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
	_, port, _ := net.SplitHostPort(addr)
	p, _ := strconv.Atoi(port)
	c.fleet.Lab = &config.Lab{DNSPortBase: p - blue.Server.ID%1000}

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
// MaxChangeNames, so that a fleet of 100,000 zones keeps a small plan.
func TestChangeNamesAreBounded(t *testing.T) {
	var all []string
	for i := range 100_000 {
		all = append(all, fmt.Sprintf("z%06d.example", i))
	}
	n := names(all)
	if n.Count != 100_000 || len(n.Names) != MaxChangeNames || n.Names[0] != all[0] {
		t.Fatalf("names of 100,000: count %d, %d listed", n.Count, len(n.Names))
	}
	if got, want := n.String(), strings.Join(all[:MaxChangeNames], ", ")+" and 99980 more"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

func show(c *Changes) string {
	if c == nil {
		return "nil"
	}
	return fmt.Sprintf("%+v added %v removed %v ansible %v %v %v", *c, c.ZonesAdded, c.ZonesRemoved, c.AnsibleChanged, c.AnsibleAdded, c.AnsibleRemoved)
}
