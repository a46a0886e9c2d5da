package manual_test

import (
	"context"
	"errors"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dnsroll/dnsroll/lab/delegation"
	"github.com/dnsroll/dnsroll/registrar"
	"github.com/dnsroll/dnsroll/registrar/manual"
)

var (
	old1, old2 = netip.MustParseAddr("127.0.0.31"), netip.MustParseAddr("127.0.0.32")
	new1, new2 = netip.MustParseAddr("127.0.0.41"), netip.MustParseAddr("127.0.0.42")
)

func delegationTo(a, b netip.Addr) []registrar.NameServer {
	return []registrar.NameServer{
		{Name: "ns1.example.com.", Addrs: []netip.Addr{a}},
		{Name: "ns2.example.com.", Addrs: []netip.Addr{b}},
	}
}

// TestManualSetGlueInstructs: the manual registrar changes nothing at
// the parent and tells the operator the domain, each name, and its old
// and new addresses; once the parent has the new glue, it is done.
func TestManualSetGlueInstructs(t *testing.T) {
	l, err := delegation.Start(delegation.Options{Dir: t.TempDir(), Domain: "example.com", NS: delegationTo(old1, old2)})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Stop()
	ctx := context.Background()
	r := &manual.Registrar{Parent: l.ParentServers()}

	cur, err := r.Glue(ctx, "example.com")
	if err != nil || !registrar.Equal(cur, delegationTo(old1, old2)) {
		t.Fatalf("Glue = %v, %v; want the parent's %v", cur, err, delegationTo(old1, old2))
	}

	err = r.SetGlue(ctx, "example.com", delegationTo(new1, new2))
	var act *registrar.ActionRequired
	if !errors.As(err, &act) {
		t.Fatalf("SetGlue = %v, want *registrar.ActionRequired", err)
	}
	text := act.Instructions()
	for _, want := range []string{"example.com.", "ns1.example.com. -> 127.0.0.41 (was 127.0.0.31)", "ns2.example.com. -> 127.0.0.42 (was 127.0.0.32)", "glue-updated"} {
		if !strings.Contains(text, want) {
			t.Errorf("instructions lack %q:\n%s", want, text)
		}
	}
	if act.Domain != "example.com." || !registrar.Equal(act.Old, delegationTo(old1, old2)) || !registrar.Equal(act.New, delegationTo(new1, new2)) {
		t.Errorf("ActionRequired %+v", act)
	}
	if cur, _ := r.Glue(ctx, "example.com"); !registrar.Equal(cur, delegationTo(old1, old2)) {
		t.Fatalf("the manual registrar changed the parent: %v", cur)
	}

	// The operator does it (here: the registry directly).
	if err := l.SetGlue(ctx, "example.com", delegationTo(new1, new2)); err != nil {
		t.Fatal(err)
	}
	if err := r.SetGlue(ctx, "example.com", delegationTo(new1, new2)); err != nil {
		t.Fatalf("SetGlue once the parent has the glue: %v, want nil", err)
	}
}

func TestInstructionsNameAddedAndRemovedServers(t *testing.T) {
	act := &registrar.ActionRequired{
		Domain: "example.com.",
		Old:    []registrar.NameServer{{Name: "ns1.example.com.", Addrs: []netip.Addr{old1}}, {Name: "lb2.example.com.", Addrs: []netip.Addr{old2}}},
		New:    []registrar.NameServer{{Name: "ns1.example.com.", Addrs: []netip.Addr{new1}}, {Name: "lb2-next.example.com.", Addrs: []netip.Addr{new2}}},
	}
	text := act.Instructions()
	for _, want := range []string{"lb2-next.example.com. -> 127.0.0.42 (new name server)", "remove lb2.example.com. (127.0.0.32)"} {
		if !strings.Contains(text, want) {
			t.Errorf("instructions lack %q:\n%s", want, text)
		}
	}
}

// TestManualSetGlueIgnoresSiblingGlue: a parent serves addresses for a
// name server in a sibling domain (ns.other.com. for example.com., from
// other.com.'s glue), which no registrar holds for example.com.: the
// delegation asked for is already there, and the operator is asked for
// nothing.
func TestManualSetGlueIgnoresSiblingGlue(t *testing.T) {
	l, err := delegation.Start(delegation.Options{Dir: t.TempDir(), Domain: "example.com", NS: delegationTo(old1, old2)})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Stop()
	parent, err := delegation.Serve(filepath.Join(t.TempDir(), "sibling"), l.Host(40), "com", `$TTL 10
com. SOA a.registry.com. h.registry.com. 1 60 60 600 5
com. NS a.registry.com.
a.registry.com. A `+l.Host(40).String()+`
example.com. NS ns1.example.com.
example.com. NS ns.other.com.
ns1.example.com. A 127.0.0.31
other.com. NS ns.other.com.
ns.other.com. A 127.0.0.51
`)
	if err != nil {
		t.Fatal(err)
	}
	defer parent.Stop()
	r := &manual.Registrar{Parent: []netip.AddrPort{parent.AddrPort()}}
	ctx := context.Background()
	if cur, err := r.Glue(ctx, "example.com"); err != nil || len(cur) != 2 || cur[0].Name != "ns.other.com." || len(cur[0].Addrs) != 1 {
		t.Fatalf("Glue = %v, %v; want ns.other.com. with its sibling glue, or the test shows nothing", cur, err)
	}
	want := []registrar.NameServer{{Name: "ns1.example.com.", Addrs: []netip.Addr{old1}}, {Name: "ns.other.com."}}
	if err := r.SetGlue(ctx, "example.com", want); err != nil {
		t.Errorf("SetGlue of the delegation the parent serves = %v, want nil", err)
	}
}
