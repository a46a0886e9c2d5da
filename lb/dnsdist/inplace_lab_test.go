package dnsdist

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/activities"
	"github.com/dnsroll/dnsroll/lb"
	"github.com/dnsroll/dnsroll/lb/lbtest"
)

var _ activities.InPlaceUpdater = (*Driver)(nil)

// TestInPlaceDnsdistConfig changes a lab dnsdist's ACL and server policy
// through its console under UDP and TCP load, then undoes it: no query may
// be lost.
func TestInPlaceDnsdistConfig(t *testing.T) {
	l := newStageLab(t)
	ctx := context.Background()
	blue := lbtest.StartTXT(t, "blue")
	l.stage(t, []dnsroll.Server{blue}, nil)
	lbtest.WantTXT(t, l.LB.Address, "blue")
	acl := func() string {
		out, err := l.d.exec(ctx, l.Fleet, l.LB, "showACL()")
		if err != nil {
			t.Fatal(err)
		}
		return out[0]
	}
	before := acl()
	var keep []string
	for _, n := range strings.Fields(before) {
		keep = append(keep, "'"+n+"'")
	}
	u := lb.Update{
		Kind:    lb.UpdateConsole,
		Lua:     "addACL('198.51.100.0/24')\nsetServerPolicy(leastOutstanding)",
		UndoLua: "setACL({" + strings.Join(keep, ",") + "})\nsetServerPolicy(leastOutstanding)",
	}

	load := lbtest.StartInPlaceLoad(t, l.LB.Address)
	const updates = 20
	for i := range updates {
		if _, err := l.d.Update(ctx, l.Fleet, l.LB, u); err != nil {
			t.Fatalf("update %d: %v", i, err)
		}
		if got := acl(); !strings.Contains(got, "198.51.100.0/24") {
			t.Fatalf("after update %d the ACL is %q; want 198.51.100.0/24 in it", i, got)
		}
		if did, err := l.d.Restore(ctx, l.Fleet, l.LB, u); err != nil || !did.Undone {
			t.Fatalf("restore %d: %+v, %v; want undone", i, did, err)
		}
		if got := acl(); got != before {
			t.Fatalf("after restore %d the ACL is %q; want %q", i, got, before)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, lost := load.Report(t, fmt.Sprintf("BENCH in-place dnsdist console change: %d changes and undos", updates)); lost != 0 {
		t.Errorf("%d queries lost in %d console changes; want 0", lost, updates)
	}

	// A chunk that fails is refused as invalid, naming the console.
	_, err := l.d.Update(ctx, l.Fleet, l.LB, lb.Update{Kind: lb.UpdateConsole, Lua: "noSuchFunction()"})
	if dnsroll.ErrorCode(err) != dnsroll.EINVALID || !strings.Contains(err.Error(), "console refused") {
		t.Errorf("a failing chunk: error %v (code %q), want EINVALID saying the console refused it", err, dnsroll.ErrorCode(err))
	}
	// A setting dnsdist takes only from its config file is refused at
	// runtime in plain words, not as an error: still a refusal. Before,
	// the update succeeded and changed nothing.
	_, err = l.d.Update(ctx, l.Fleet, l.LB, lb.Update{Kind: lb.UpdateConsole, Lua: "setMaxUDPOutstanding(65535)"})
	if dnsroll.ErrorCode(err) != dnsroll.EINVALID || !strings.Contains(err.Error(), "at runtime") {
		t.Errorf("a setting dnsdist takes only at startup: error %v (code %q), want EINVALID quoting dnsdist", err, dnsroll.ErrorCode(err))
	}
	lbtest.WantTXT(t, l.LB.Address, "blue")
}
