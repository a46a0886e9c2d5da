package progress

import (
	"strings"
	"testing"
	"time"

	"github.com/dnsroll/dnsroll/activities"
	"github.com/dnsroll/dnsroll/probe"
	"github.com/dnsroll/dnsroll/workflows"
)

// The printer prints each status it is given as it changes: only what is
// new, under the phase it belongs to, with times when it has a clock.
func TestPrinterPrints(t *testing.T) {
	at := time.Date(2026, 12, 1, 15, 4, 5, 0, time.UTC)
	for _, tt := range []struct {
		name  string
		clock bool
		// update gives p the statuses, in turn.
		update func(p *Printer)
		want   string
	}{
		// A step's retries are printed with their last error.
		{"retries", true, func(p *Printer) {
			st := workflows.Status{Run: workflows.Run{Phase: workflows.PhaseDeletingBlue, Steps: []*workflows.Step{{Name: "DeleteServer", Target: "ns1", State: workflows.StepRunning}}}}
			p.Update(st)
			st.Retrying = []workflows.Retry{{Activity: "DeleteServer", Attempt: 3, LastError: "[500] Internal Server Error", Progress: "deleting ns1"}}
			p.Update(st)
			p.Update(st)
		}, "15:04:05 ==> deleting-blue\n" +
			"15:04:05     DeleteServer ns1         running\n" +
			"15:04:05     ~ DeleteServer (deleting ns1): attempt 3 after: [500] Internal Server Error\n"},
		// A retry that waits says when its next attempt starts: backoff
		// grows to minutes, and a line that says only "attempt 4" reads
		// as one running.
		{"when the next attempt starts", true, func(p *Printer) {
			st := workflows.Status{Run: workflows.Run{Phase: workflows.PhaseDeletingBlue}}
			st.Retrying = []workflows.Retry{{Activity: "DeleteServer", Attempt: 4, LastError: "[500] Internal Server Error", NextAttemptAt: at.Add(80 * time.Second)}}
			p.Update(st)
		}, "15:04:05 ==> deleting-blue\n15:04:05     ~ DeleteServer: attempt 4 at 15:05:25 after: [500] Internal Server Error\n"},
		// A long step is not silent: each progress it reports is printed
		// once, as it comes.
		{"a long step's progress", false, func(p *Printer) {
			st := workflows.Status{Run: workflows.Run{Phase: workflows.PhaseProvisioning, Steps: []*workflows.Step{{Name: "ProvisionNameservers", Target: "green", State: workflows.StepRunning}}}}
			p.Update(st)
			for _, task := range []string{"waiting for SSH on ns1-next (192.0.2.10)", "ansible-playbook nameserver.yml: nameserver : Install BIND packages", "ansible-playbook nameserver.yml: nameserver : Install BIND packages", "ansible-playbook nameserver.yml: nameserver : Write named.conf"} {
				st.Working = []workflows.Working{{Activity: "ProvisionNameservers", Progress: task}}
				p.Update(st)
			}
			st.Working = nil
			st.Steps[0].State = workflows.StepSucceeded
			p.Update(st)
		}, "==> provisioning\n" +
			"    ProvisionNameservers green running\n" +
			"    … ProvisionNameservers: waiting for SSH on ns1-next (192.0.2.10)\n" +
			"    … ProvisionNameservers: ansible-playbook nameserver.yml: nameserver : Install BIND packages\n" +
			"    … ProvisionNameservers: ansible-playbook nameserver.yml: nameserver : Write named.conf\n" +
			"    ProvisionNameservers green succeeded\n"},
		// A wait the workflow runs itself (a bake, a canary step) is one
		// running step for its whole duration: each note it records
		// meanwhile (the rounds passed, the deadline) is printed as it
		// comes, so that an hour's bake is not silent.
		{"a waiting step's notes", false, func(p *Printer) {
			bake := &workflows.Step{Name: "Bake", Target: "lb1,lb2", Phase: workflows.PhaseBaking, State: workflows.StepRunning}
			st := workflows.Status{Run: workflows.Run{Phase: workflows.PhaseBaking, Steps: []*workflows.Step{bake}}}
			for _, note := range []string{"", "1 round(s) passed", "1 round(s) passed", "2 round(s) passed"} {
				bake.Note = note
				p.Update(st)
			}
			bake.State = workflows.StepSucceeded
			p.Update(st)
		}, "==> baking\n" +
			"    Bake lb1,lb2             running\n" +
			"    Bake lb1,lb2             running    1 round(s) passed\n" +
			"    Bake lb1,lb2             running    2 round(s) passed\n" +
			"    Bake lb1,lb2             succeeded  2 round(s) passed\n"},
		// The status's warnings ask the operator to act (a replacement's
		// "update the fleet config", the plan's): each is printed once,
		// as it comes, unless an event of the same words already said it.
		{"warnings", false, func(p *Printer) {
			st := workflows.Status{Run: workflows.Run{Phase: workflows.PhaseSucceeded}, Warnings: []string{"zone example.org: serial unchanged"}}
			p.Update(st)
			st.Warnings = append(st.Warnings, "the new glue leaves out 2001:db8::1", "update the fleet config: load_balancers lb1 address is now 192.0.2.20 (was 192.0.2.10)")
			st.Events = []workflows.Event{{Message: "the new glue leaves out 2001:db8::1"}}
			p.Update(st)
			p.Update(st)
		}, "==> succeeded\n" +
			"    warning: zone example.org: serial unchanged\n" +
			"    ! the new glue leaves out 2001:db8::1\n" +
			"    warning: update the fleet config: load_balancers lb1 address is now 192.0.2.20 (was 192.0.2.10)\n"},
		// A canary's share of queries on green is printed each time it
		// changes.
		{"green's share", false, func(p *Printer) {
			for _, share := range []int{0, 10, 10, 50, 0} {
				p.Update(workflows.Status{Run: workflows.Run{Phase: workflows.PhaseCanary}, GreenShare: share})
			}
		}, "==> canary\n" +
			"    = green gets 10% of the queries\n" +
			"    = green gets 50% of the queries\n" +
			"    = green gets 0% of the queries\n"},
		// A poll can miss whole phases. Each step is printed under the
		// phase it began in, so a step that began and ended between two
		// polls does not appear under the phase before it, and a step of
		// an earlier phase that ends late gets no second header for that
		// phase.
		{"steps under their phase", false, func(p *Printer) {
			create := &workflows.Step{Name: "CreateServers", Phase: workflows.PhaseCreating, State: workflows.StepRunning}
			st := workflows.Status{Run: workflows.Run{Phase: workflows.PhaseCreating, Steps: []*workflows.Step{create}}}
			p.Update(st)
			// Next poll: creating ended, provisioning came and went,
			// verifying runs.
			create.State = workflows.StepSucceeded
			provision := &workflows.Step{Name: "ProvisionNameservers", Phase: workflows.PhaseProvisioning, State: workflows.StepSucceeded}
			verify := &workflows.Step{Name: "VerifyGreen", Phase: workflows.PhaseVerifyGreen, State: workflows.StepRunning}
			st.Phase, st.Steps = workflows.PhaseVerifyGreen, append(st.Steps, provision, verify)
			p.Update(st)
			// A background step of the staging phase ends after the
			// switch began.
			stage := &workflows.Step{Name: "StageGreen", Phase: workflows.PhaseStaging, State: workflows.StepRunning}
			verify.State = workflows.StepSucceeded
			st.Phase, st.Steps = workflows.PhaseStaging, append(st.Steps, stage)
			p.Update(st)
			switchLB := &workflows.Step{Name: "SwitchLoadBalancers", Phase: workflows.PhaseSwitching, State: workflows.StepRunning}
			st.Phase, st.Steps = workflows.PhaseSwitching, append(st.Steps, switchLB)
			p.Update(st)
			stage.State = workflows.StepSucceeded
			p.Update(st)
		}, "==> creating\n" +
			"    CreateServers            running\n" +
			"    CreateServers            succeeded\n" +
			"==> provisioning\n" +
			"    ProvisionNameservers     succeeded\n" +
			"==> verifying-green\n" +
			"    VerifyGreen              running\n" +
			"    VerifyGreen              succeeded\n" +
			"==> staging\n" +
			"    StageGreen               running\n" +
			"==> switching\n" +
			"    SwitchLoadBalancers      running\n" +
			"    StageGreen               succeeded\n"},
		// `dnsroll rollout status` prints a whole run at once: its steps
		// grouped under their phases, in order, and the outcome last.
		{"a whole run at once", false, func(p *Printer) {
			step := func(name string, phase workflows.Phase) *workflows.Step {
				return &workflows.Step{Name: name, Phase: phase, State: workflows.StepSucceeded}
			}
			p.Update(workflows.Status{Run: workflows.Run{Phase: workflows.PhaseSucceeded, Steps: []*workflows.Step{
				step("Plan", workflows.PhasePlanning), step("EnsureServer", workflows.PhaseCreating), step("EnsureServer", workflows.PhaseCreating),
				step("ProvisionNameservers", workflows.PhaseProvisioning),
			}}})
		}, "==> planning\n    Plan                     succeeded\n" +
			"==> creating\n    EnsureServer             succeeded\n    EnsureServer             succeeded\n" +
			"==> provisioning\n    ProvisionNameservers     succeeded\n" +
			"==> succeeded\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var b strings.Builder
			p := &Printer{W: &b}
			if tt.clock {
				p.Clock = func() time.Time { return at }
			}
			tt.update(p)
			wantPrinted(t, b.String(), tt.want)
		})
	}
}

// A step with nothing to say after its state (running, or ended at once
// with no note) ends its line at the state: lines read in CI logs and
// diffs do not end in spaces.
func TestPrinterLinesEndInNoSpace(t *testing.T) {
	var b strings.Builder
	p := &Printer{W: &b}
	step := &workflows.Step{Name: "EnsureServer", Target: "ns1-next", Phase: workflows.PhaseCreating, State: workflows.StepRunning}
	st := workflows.Status{Run: workflows.Run{Phase: workflows.PhaseCreating, Steps: []*workflows.Step{step}}}
	p.Update(st)
	step.State = workflows.StepSucceeded
	p.Update(st)
	wantPrinted(t, b.String(), "==> creating\n"+
		"    EnsureServer ns1-next    running\n"+
		"    EnsureServer ns1-next    succeeded\n")
}

// At the approval gate the printer puts the decision in front of the
// operator: the revision's changes against the live one, green's changes against blue, the deadline, and the commands
// that approve or abort this very rollout.
func TestPrinterApprovalGate(t *testing.T) {
	var b strings.Builder
	p := &Printer{W: &b, ID: "rollout-lab:0f1e"}
	verify := activities.VerifyResult{Reports: []probe.Report{{Name: "ns1-next", Diffs: []probe.Comparison{{
		Zone: "example.com.", Against: "ns1", Summary: "1 added, 0 removed, 1 changed: api.example.com. A, www.example.com. A",
	}}}}}
	p.Update(workflows.Status{
		Run:          workflows.Run{Phase: workflows.PhaseAwaitingApproval},
		ApproveBy:    time.Date(2026, 12, 1, 16, 0, 0, 0, time.UTC),
		ApprovalGate: 2,
		Analysis:     []workflows.Analysis{{Step: "VerifyGreen", Result: verify}},
		Changes: &activities.Changes{Live: "sha256:" + strings.Repeat("12", 32), ZonesChanged: activities.Names{Count: 1, Names: []string{"example.com"}},
			ZonesAdded: &activities.Names{Count: 2, Names: []string{"a.example", "b.example"}}, ZonesRemoved: &activities.Names{},
			AnsibleChanged: &activities.Names{Count: 1, Names: []string{"ansible/roles/nameserver/tasks/main.yml"}}, AnsibleAdded: &activities.Names{}, AnsibleRemoved: &activities.Names{}},
	})
	got := b.String()
	for _, want := range []string{
		"    changes against the live revision sha256:121212121212…:\n" +
			"    zones whose serial differs from blue's: 1 (example.com)\n" +
			"    zones added: 2 (a.example, b.example); removed: none\n" +
			"    Ansible files changed: 1 (ansible/roles/nameserver/tasks/main.yml); added: none; removed: none\n",
		"zone example.com. on ns1-next against ns1: 1 added, 0 removed, 1 changed: api.example.com. A, www.example.com. A\n",
		"those only blue has are not seen here",
		"approve by 2026-12-01 16:00:00 UTC, or it is aborted\n",
		"approve: dnsroll rollout approve --id rollout-lab:0f1e --gate 2 --reason '...'\n",
		"abort:   dnsroll rollout abort --id rollout-lab:0f1e --reason '...'\n",
		`temporal workflow signal --workflow-id rollout-lab --run-id 0f1e --name approve --input '{"by":"you","gate":2}'`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("printed:\n%s\nlacks %q", got, want)
		}
	}
}

// The gate shows a few zones of each green server (the samples setting),
// those that differ first; it says how many more there are, so that 5
// zones shown of 100 that changed do not read as all of them.
func TestPrinterApprovalGateCountsZonesNotShown(t *testing.T) {
	var b strings.Builder
	p := &Printer{W: &b, ID: "rollout-lab:0f1e"}
	verify := activities.VerifyResult{Reports: []probe.Report{{Name: "ns1-next", DiffsOmitted: 95, Diffs: []probe.Comparison{{
		Zone: "a.example.", Against: "ns1", Summary: "0 added, 0 removed, 1 changed: www.a.example. A",
	}}}}}
	p.Update(workflows.Status{
		Run:       workflows.Run{Phase: workflows.PhaseAwaitingApproval},
		ApproveBy: time.Date(2026, 12, 1, 16, 0, 0, 0, time.UTC),
		Analysis:  []workflows.Analysis{{Step: "VerifyGreen", Result: verify}},
	})
	if want := "    zone a.example. on ns1-next against ns1: 0 added, 0 removed, 1 changed: www.a.example. A\n" +
		"    and 95 more zones on ns1-next, not shown (those that differ come first)\n"; !strings.Contains(b.String(), want) {
		t.Errorf("printed:\n%s\nlacks %q", b.String(), want)
	}
}

// At a later gate of approval: each, some load balancers are on green: no
// approval puts them back on blue, and the printer says so.
func TestPrinterLaterApprovalGate(t *testing.T) {
	var b strings.Builder
	p := &Printer{W: &b, ID: "rollout-lab:0f1e"}
	p.Update(workflows.Status{
		Run:       workflows.Run{Phase: workflows.PhaseAwaitingApproval},
		ApproveBy: time.Date(2026, 12, 1, 16, 0, 0, 0, time.UTC),
		OnGreen:   []string{"lb1"},
	})
	if want := "approve by 2026-12-01 16:00:00 UTC, or it is rolled back: lb1 go back to blue\n"; !strings.Contains(b.String(), want) {
		t.Errorf("printed:\n%s\nlacks %q", b.String(), want)
	}
}

// wantPrinted fails t unless the printer printed want, quoting both.
func wantPrinted(t *testing.T, got, want string) {
	t.Helper()
	if got != want {
		t.Errorf("printed:\n%q\nwant:\n%q", got, want)
	}
}

// A gate already passed, printed later (rollout status, or --follow after
// a poll missed it), is only a phase with its step: no deadline and no
// commands, which would tell the operator to act on a run that went on.
// Only the gate the run waits at now shows them.
func TestPrinterPastGatesAskNothing(t *testing.T) {
	step := func(name string, phase workflows.Phase, state string) *workflows.Step {
		return &workflows.Step{Name: name, Phase: phase, State: state}
	}
	steps := []*workflows.Step{
		step("StageGreen", workflows.PhaseStaging, workflows.StepSucceeded),
		step("AwaitApproval", workflows.PhaseAwaitingApproval, workflows.StepSucceeded),
		step("FlipLoadBalancer", workflows.PhaseSwitching, workflows.StepSucceeded),
		step("AwaitApproval", workflows.PhaseAwaitingApproval, workflows.StepSucceeded),
		step("FlipLoadBalancer", workflows.PhaseSwitching, workflows.StepSucceeded),
	}
	var b strings.Builder
	(&Printer{W: &b, ID: "rollout-lab:0f1e"}).Update(workflows.Status{
		Run:       workflows.Run{Phase: workflows.PhaseSucceeded, Steps: steps},
		ApproveBy: time.Date(2026, 12, 1, 16, 0, 0, 0, time.UTC),
		OnGreen:   []string{"lb1", "lb2"},
	})
	if got := b.String(); strings.Contains(got, "approve by") || strings.Contains(got, "approve:") {
		t.Errorf("a finished run's past gates ask for approval:\n%s", got)
	}
	// At the second gate now: it alone asks.
	steps[3].State = workflows.StepRunning
	b.Reset()
	(&Printer{W: &b, ID: "rollout-lab:0f1e"}).Update(workflows.Status{
		Run:       workflows.Run{Phase: workflows.PhaseAwaitingApproval, Steps: steps[:4]},
		ApproveBy: time.Date(2026, 12, 1, 16, 0, 0, 0, time.UTC),
		OnGreen:   []string{"lb1"},
	})
	if got := b.String(); strings.Count(got, "approve by") != 1 || strings.Count(got, "approve:") != 1 {
		t.Errorf("at the second gate, want one prompt:\n%s", got)
	}
}

// At a canary step's hold the gate shows what the person is asked to
// judge: green's share now and what the step measured. Only there: a gate
// once green has all of the queries, or none, is not deciding on the
// canary's last step, and saying it is would put an old measurement in
// front of the decision.
func TestPrinterCanaryHold(t *testing.T) {
	const measured = "    green has 10% of the queries; the canary step at 10% measured: green 10.1% of 12,000 queries, 0.00% unanswered; blue 0.00%\n"
	for _, share := range []int{10, 0, 100} {
		var b strings.Builder
		p := &Printer{W: &b, ID: "rollout-lab:0f1e"}
		p.Update(workflows.Status{
			Run:        workflows.Run{Phase: workflows.PhaseAwaitingApproval},
			ApproveBy:  time.Date(2026, 12, 1, 16, 0, 0, 0, time.UTC),
			OnGreen:    []string{"lb1", "lb2"},
			GreenShare: share,
			Canary:     []workflows.CanaryResult{{Weight: 10, Summary: "green 10.1% of 12,000 queries, 0.00% unanswered; blue 0.00%"}},
		})
		got := b.String()
		if want := "approve by 2026-12-01 16:00:00 UTC, or it is rolled back: lb1, lb2 go back to blue\n"; !strings.Contains(got, want) {
			t.Errorf("green share %d%%: printed:\n%s\nlacks %q", share, got, want)
		}
		if hold := share == 10; strings.Contains(got, "the canary step at") != hold || hold && !strings.Contains(got, measured) {
			t.Errorf("green share %d%%: printed:\n%s\nwant the step's measurement %q: %t", share, got, measured, hold)
		}
	}
}
