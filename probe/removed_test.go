package probe

import (
	"context"
	"strings"
	"testing"

	"github.com/dnsroll/dnsroll/zone"
)

// On real named: what the live revision holds and the planned one does
// not (a name, a type at a name that stays, a whole zone) is asked
// expecting the planned answers, so a named still serving the live zone
// fails and one serving the planned zone passes; a zone it does not serve
// is refused without AA, which passes.
func TestRemovedOnNamed(t *testing.T) {
	live := exampleApex + "www A 192.0.2.10\nwww TXT \"old\"\nold A 192.0.2.5\n"
	planned := strings.Replace(exampleApex, " 7 ", " 8 ", 1) + "www A 192.0.2.10\n"
	old, err := zone.Parse(strings.NewReader(live), "example.com", "live")
	if err != nil {
		t.Fatal(err)
	}
	z, err := zone.Parse(strings.NewReader(planned), "example.com", "planned")
	if err != nil {
		t.Fatal(err)
	}
	checks := Removed(z, zone.Diff(old, z).Removed, Scope{All: true}, nil)
	if got := len(checks); got != 2 {
		t.Fatalf("%d checks, want old.example.com. A and www.example.com. TXT: %v", got, checks)
	}
	gone := RemovedZone("gone.test", nil)
	p := &Prober{}
	ctx := context.Background()
	stale := startNamed(t, "example.com", live)
	if rep := p.Probe(ctx, stale, []string{"udp"}, checks); rep.Failed != 2 {
		t.Errorf("named serving the live zone: %+v, want both checks failed", rep)
	}
	served := startNamed(t, "example.com", planned)
	if rep := p.Probe(ctx, served, []string{"udp", "tcp"}, append(checks, gone)); !rep.OK {
		t.Errorf("named serving the planned zone: %+v, want it to pass", rep)
	}
	goneText := strings.NewReplacer("example.com.", "gone.test.").Replace(exampleApex)
	if rep := p.Probe(ctx, startNamed(t, "gone.test", goneText), []string{"udp"}, []Check{gone}); rep.Failed != 1 {
		t.Errorf("named still serving the removed zone: %+v, want its SOA check failed", rep)
	}
}

// The fleet's scope applies to removed names as to the others: without
// all_names only probe.names are asked, and probe.types replace the
// removed types; DNSSEC records are not asked.
func TestRemovedFollowsTheScope(t *testing.T) {
	z, err := zone.Parse(strings.NewReader(exampleApex+"www A 192.0.2.10\n"), "example.com", "planned")
	if err != nil {
		t.Fatal(err)
	}
	gone := []zone.RRsetChange{{Name: "old.example.com.", Type: "TXT"}, {Name: "www.example.com.", Type: "TXT"}, {Name: "www.example.com.", Type: "RRSIG"}, {Name: "x.example.com.", Type: "NSEC"}}
	for _, tc := range []struct {
		scope Scope
		want  string
	}{
		{Scope{All: true}, "old.example.com. TXT NXDOMAIN, www.example.com. TXT NOERROR"},
		{Scope{Names: []string{"old"}}, "old.example.com. TXT NXDOMAIN"},
		{Scope{All: true, Types: []string{"A"}}, "old.example.com. A NXDOMAIN, www.example.com. A NOERROR"},
	} {
		var got []string
		for _, c := range Removed(z, gone, tc.scope, nil) {
			got = append(got, c.String()+" "+rcode(c.Want.Rcode))
		}
		if strings.Join(got, ", ") != tc.want {
			t.Errorf("scope %+v: %s, want %s", tc.scope, strings.Join(got, ", "), tc.want)
		}
	}
	have := Checks(z, Scope{All: true, Types: []string{"A"}})
	if got := Removed(z, gone, Scope{All: true, Types: []string{"A"}}, have); len(got) != 1 || got[0].Name != "old.example.com." {
		t.Errorf("beside the zone's own checks: %v, want only old.example.com. asked again", got)
	}
}
