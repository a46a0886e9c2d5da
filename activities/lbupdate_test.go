package activities

import (
	"context"
	"strings"
	"testing"

	"go.temporal.io/sdk/testsuite"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/config"
	"github.com/dnsroll/dnsroll/internal/temporaltest"
	"github.com/dnsroll/dnsroll/lb"
)

// pointOnly is a driver that can only point.
type pointOnly struct{}

func (pointOnly) Point(context.Context, *config.Fleet, config.LoadBalancer, []dnsroll.Server) error {
	return nil
}

// fakeUpdater records the updates and undos it is asked for.
type fakeUpdater struct {
	pointOnly
	calls []string
	ids   []string // each call's u.ID
	err   error
}

func (f *fakeUpdater) Update(_ context.Context, _ *config.Fleet, _ config.LoadBalancer, u lb.Update) (string, error) {
	f.calls = append(f.calls, "update "+u.Lua)
	f.ids = append(f.ids, u.ID)
	return "reloaded", f.err
}

func (f *fakeUpdater) Restore(_ context.Context, _ *config.Fleet, _ config.LoadBalancer, u lb.Update) (lb.Restored, error) {
	f.calls = append(f.calls, "restore "+u.Lua)
	f.ids = append(f.ids, u.ID)
	return lb.Restored{Note: "nothing to restore"}, f.err
}

// Update and Restore run the driver's own and note what it did; a driver
// that cannot update in place is an invalid request, not a retry.
func TestInPlaceActivities(t *testing.T) {
	upd := &fakeUpdater{}
	acts := &Activities{Drivers: map[string]LoadBalancer{"dnsdist": upd, "plain": pointOnly{}}}
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(acts)
	in := UpdateLBInput{Fleet: &config.Fleet{Name: "t"}, LB: config.LoadBalancer{Name: "lb1", Driver: "dnsdist"}, Update: lb.Update{Kind: lb.UpdateConsole, Lua: "x()"}}
	for _, tt := range []struct {
		activity any
		note     string
	}{
		{acts.UpdateLoadBalancer, "lb1: reloaded"},
		// The driver's word on what it restored, not a blanket "restored".
		{acts.RestoreLoadBalancer, "lb1: nothing to restore"},
	} {
		v, err := env.ExecuteActivity(tt.activity, in)
		if res := temporaltest.Value[StepResult](t, v, err); res.Note != tt.note {
			t.Errorf("note %q, want %q", res.Note, tt.note)
		}
	}
	// The workflow learns that the restore undid nothing.
	v, err := env.ExecuteActivity(acts.RestoreLoadBalancer, in)
	if res := temporaltest.Value[RestoreResult](t, v, err); !res.NothingRestored {
		t.Errorf("restore result %+v, want nothing restored", res)
	}
	upd.calls, upd.ids = upd.calls[:2], upd.ids[:2]
	if got := strings.Join(upd.calls, ", "); got != "update x(), restore x()" {
		t.Errorf("driver calls: %s", got)
	}
	// The update and its restore carry the same ID, the workflow run's.
	if len(upd.ids) != 2 || upd.ids[0] == "" || upd.ids[0] != upd.ids[1] {
		t.Errorf("update IDs %q: want one, the same for the update and its restore", upd.ids)
	}
	// The run the workflow names, which a reset keeps, comes first.
	upd.ids = nil
	named := in
	named.Run = "lbupdate-t/first-run"
	if _, err := env.ExecuteActivity(acts.RestoreLoadBalancer, named); err != nil || len(upd.ids) != 1 || upd.ids[0] != named.Run {
		t.Errorf("restore of run %s: IDs %q (%v), want the run's", named.Run, upd.ids, err)
	}
	upd.calls = upd.calls[:2]

	upd.err = dnsroll.Errorf(dnsroll.EINVALID, "console refused")
	if _, err := env.ExecuteActivity(acts.RestoreLoadBalancer, in); err == nil || !strings.Contains(err.Error(), "console refused") {
		t.Errorf("a failed restore: %v, want the driver's error", err)
	}
	in.LB.Driver = "plain"
	_, err = env.ExecuteActivity(acts.UpdateLoadBalancer, in)
	if err == nil || !strings.Contains(err.Error(), "cannot update in place") {
		t.Errorf("update with a driver that cannot: %v, want an error saying so", err)
	}
}
