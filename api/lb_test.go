package api

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dnsroll/dnsroll/config"
	"github.com/dnsroll/dnsroll/lb"
	"github.com/dnsroll/dnsroll/registrar"
	"github.com/dnsroll/dnsroll/workflows"
)

// An update's status, as its workflow's query answers it.
func updating(phase workflows.Phase) workflows.Status {
	return workflows.Status{Fleet: "lab", Run: workflows.Run{Phase: phase, StartedAt: t0, Steps: []*workflows.Step{
		{Name: "CheckBefore", Target: "lb1", State: workflows.StepSucceeded, StartedAt: t0, EndedAt: t0.Add(time.Second), Attempts: 1},
	}}}
}

// A replacement's status, draining unless phase says otherwise.
func replacing(phase workflows.Phase) workflows.LBReplaceStatus {
	old := []registrar.NameServer{{Name: "lb1.example.com"}}
	return workflows.LBReplaceStatus{Fleet: "lab", Domain: "example.com", Run: workflows.Run{Phase: phase, StartedAt: t0, Steps: []*workflows.Step{}},
		Old:   []config.LoadBalancer{{Name: "lb1", Address: "127.0.0.1:5301", Fronts: config.Labels{"ns1"}, Driver: "dnsdist"}},
		Glue:  workflows.GlueStatus{Old: old, New: old, ServedSince: t0},
		Drain: &workflows.DrainStatus{TTL: config.Duration(time.Minute), Until: t0.Add(time.Minute), QPS: map[string]float64{"lb1": 12.5}, GiveUpAt: t0.Add(time.Hour)},
	}
}

func TestLoadBalancerRoutes(t *testing.T) {
	bearer := "Bearer " + token
	const update = `{"fleet":"lab","load_balancers":["lb1"],"update":{"kind":"config","config":"events {} # secret-in-config"},"reason":"tune"}`
	const replace = `{"fleet":"lab","domain":"example.com","parent":["127.0.0.1:5399"],"drain":{"quiet":"30s"}}`
	runRouterCases(t, []routerCase{
		{name: "start update", method: "POST", path: "/load-balancer-updates", body: update, auth: bearer, want: 201,
			contains: `"id": "lbupdate-lab:run-1"`,
			after: func(t *testing.T, f *fakeBackend, rec *httptest.ResponseRecorder) {
				if got, want := rec.Header().Get("Location"), "/load-balancer-updates/lbupdate-lab:run-1"; got != want {
					t.Errorf("Location = %q, want %q", got, want)
				}
				in, ok := f.lbStarted[0].(workflows.LBUpdateInput)
				if !ok || in.FleetName != "lab" || in.Fleet != nil || in.Update.Kind != lb.UpdateConfig || in.LoadBalancers[0] != "lb1" || in.RequestedBy != "api" || in.Reason != "tune" {
					t.Errorf("started %#v", f.lbStarted[0])
				}
				if strings.Contains(rec.Body.String(), "secret-in-config") {
					t.Errorf("the response echoes the config: %s", rec.Body)
				}
				if want := `"abort": "/load-balancer-updates/lbupdate-lab:run-1/abort"`; !strings.Contains(rec.Body.String(), want) || strings.Contains(rec.Body.String(), "rollback") {
					t.Errorf("links: want only %s: %s", want, rec.Body)
				}
			}},
		{name: "start update without token", method: "POST", path: "/load-balancer-updates", body: update, want: 401},
		{name: "start update of an unknown kind", method: "POST", path: "/load-balancer-updates", body: `{"fleet":"lab","update":{"kind":"reboot"}}`, auth: bearer, want: 400, field: "update.kind"},
		{name: "start console update without Lua", method: "POST", path: "/load-balancer-updates", body: `{"fleet":"lab","update":{"kind":"console","lua":"  "}}`, auth: bearer, want: 400, field: "update.lua"},
		{name: "start binary update with undo Lua", method: "POST", path: "/load-balancer-updates", body: `{"fleet":"lab","update":{"kind":"binary","undo_lua":"x"}}`, auth: bearer, want: 400, field: "update.undo_lua"},
		{name: "start replacement with a negative glue wait", method: "POST", path: "/load-balancer-replacements", body: `{"fleet":"lab","domain":"example.com","parent":["127.0.0.1:53"],"glue_wait":"-5s"}`, auth: bearer, want: 400, field: "glue_wait"},
		{name: "start update without fleet", method: "POST", path: "/load-balancer-updates", body: `{"update":{"kind":"binary"}}`, auth: bearer, want: 400, field: "fleet"},
		{name: "start update with a whole fleet config", method: "POST", path: "/load-balancer-updates", body: `{"fleet":"lab","fleet_name":"x","update":{"kind":"binary"}}`, auth: bearer, want: 400, field: "fleet_name"},
		{name: "start update while one runs", setup: func(f *fakeBackend) { f.addRun(LBUpdates, "lab", "running", updating(workflows.PhaseUpdatingLBs)) },
			method: "POST", path: "/load-balancer-updates", body: update, auth: bearer, want: 409, contains: `"rollout_id": "lbupdate-lab:run-1"`},
		{name: "start update while a rollout runs", setup: func(f *fakeBackend) { f.add("lab", workflows.PhaseBaking) },
			method: "POST", path: "/load-balancer-updates", body: update, auth: bearer, want: 409, contains: `"rollout_id": "rollout-lab:run-1"`},
		{name: "start update after an ended one", setup: func(f *fakeBackend) { f.addRun(LBUpdates, "lab", "completed", updating(workflows.PhaseSucceeded)) },
			method: "POST", path: "/load-balancer-updates", body: update, auth: bearer, want: 201, contains: `"id": "lbupdate-lab:run-2"`},
		// The 409 says that nothing waits: the start is to be sent again.
		{name: "start rollout while an update runs", setup: func(f *fakeBackend) { f.addRun(LBUpdates, "lab", "running", updating(workflows.PhaseUpdatingLBs)) },
			method: "POST", path: "/rollouts", body: `{"fleet":"lab","revision":"B"}`, auth: bearer, want: 409,
			contains: "fleet lab has a running load balancer update, lbupdate-lab:run-1: no rollout was started; start one once that load balancer update has ended"},
		{name: "start rollout while a replacement runs", setup: func(f *fakeBackend) { f.addRun(LBReplacements, "lab", "running", replacing(workflows.PhaseDraining)) },
			method: "POST", path: "/rollouts", body: `{"fleet":"lab","revision":"B"}`, auth: bearer, want: 409, contains: "fleet lab has a running load balancer replacement, lbreplace-lab:run-1"},

		{name: "start replacement", method: "POST", path: "/load-balancer-replacements", body: replace, auth: bearer, want: 201,
			contains: `"force-drain": "/load-balancer-replacements/lbreplace-lab:run-1/force-drain"`,
			after: func(t *testing.T, f *fakeBackend, _ *httptest.ResponseRecorder) {
				in, ok := f.lbStarted[0].(workflows.LBReplaceInput)
				if !ok || in.Domain != "example.com" || in.Parent[0] != "127.0.0.1:5399" || in.Drain.Quiet != config.Duration(30*time.Second) || in.RequestedBy != "api" {
					t.Errorf("started %#v", f.lbStarted[0])
				}
			}},
		{name: "start replacement without parent", method: "POST", path: "/load-balancer-replacements", body: `{"fleet":"lab","domain":"example.com"}`, auth: bearer, want: 400, field: "parent"},
		{name: "start replacement with a parent without port", method: "POST", path: "/load-balancer-replacements", body: `{"fleet":"lab","domain":"example.com","parent":["127.0.0.1"]}`, auth: bearer, want: 400, field: "parent[0]"},
		{name: "start replacement with a bad domain", method: "POST", path: "/load-balancer-replacements", body: `{"fleet":"lab","domain":"exa mple","parent":["127.0.0.1:53"]}`, auth: bearer, want: 400, field: "domain"},
		{name: "start replacement with a parent without its address", method: "POST", path: "/load-balancer-replacements", body: `{"fleet":"lab","domain":"example.com","parent":[":53"]}`, auth: bearer, want: 400, field: "parent[0]"},
		{name: "start replacement with a parent by name", method: "POST", path: "/load-balancer-replacements", body: `{"fleet":"lab","domain":"example.com","parent":["127.0.0.1:53","a.gtld-servers.net:53"]}`, auth: bearer, want: 400, field: "parent[1]",
			contains: "address:port"},
		{name: "start replacement with a parent's port out of range", method: "POST", path: "/load-balancer-replacements", body: `{"fleet":"lab","domain":"example.com","parent":["127.0.0.1:99999"]}`, auth: bearer, want: 400, field: "parent[0]"},
		{name: "start replacement with a parent on port 0", method: "POST", path: "/load-balancer-replacements", body: `{"fleet":"lab","domain":"example.com","parent":["127.0.0.1:0"]}`, auth: bearer, want: 400, field: "parent[0]"},
		{name: "start replacement with a domain of 254 octets", method: "POST", path: "/load-balancer-replacements", body: `{"fleet":"lab","domain":"` + strings.Repeat("a.", 125) + `comm","parent":["127.0.0.1:53"]}`, auth: bearer, want: 400, field: "domain"},
		{name: "start replacement with a domain past 253 octets", method: "POST", path: "/load-balancer-replacements", body: `{"fleet":"lab","domain":"` + strings.Repeat("a.", 127) + `com","parent":["127.0.0.1:53"]}`, auth: bearer, want: 400, field: "domain"},
		// A replacement's waits are bounded, so that it fits in its
		// workflow history, which Temporal caps.
		{name: "start replacement at the bounds of its waits", method: "POST", path: "/load-balancer-replacements", body: `{"fleet":"lab","domain":"example.com","parent":["127.0.0.1:53"],"glue_wait":"336h","drain":{"poll":"1s","max_wait":"336h"}}`, auth: bearer, want: 201},
		{name: "start replacement with a glue wait past 14 days", method: "POST", path: "/load-balancer-replacements", body: `{"fleet":"lab","domain":"example.com","parent":["127.0.0.1:53"],"glue_wait":"337h"}`, auth: bearer, want: 400, field: "glue_wait"},
		{name: "start replacement polling more than once a second", method: "POST", path: "/load-balancer-replacements", body: `{"fleet":"lab","domain":"example.com","parent":["127.0.0.1:53"],"drain":{"poll":"100ms"}}`, auth: bearer, want: 400, field: "drain.poll"},
		// The workflow reads a quiet_qps of 0 or less as its default: a
		// negative one would be taken as 1 without a word.
		{name: "start replacement with a negative quiet_qps", method: "POST", path: "/load-balancer-replacements", body: `{"fleet":"lab","domain":"example.com","parent":["127.0.0.1:53"],"drain":{"quiet_qps":-1}}`, auth: bearer, want: 400, field: "drain.quiet_qps"},
		{name: "start replacement with a negative drain", method: "POST", path: "/load-balancer-replacements", body: `{"fleet":"lab","domain":"example.com","parent":["127.0.0.1:53"],"drain":{"quiet":"-30s"}}`, auth: bearer, want: 400, field: "drain.quiet"},
		{name: "start replacement with a negative max wait", method: "POST", path: "/load-balancer-replacements", body: `{"fleet":"lab","domain":"example.com","parent":["127.0.0.1:53"],"drain":{"max_wait":"-1h"}}`, auth: bearer, want: 400, field: "drain.max_wait"},
		{name: "start replacement with a max wait past 14 days", method: "POST", path: "/load-balancer-replacements", body: `{"fleet":"lab","domain":"example.com","parent":["127.0.0.1:53"],"drain":{"max_wait":"337h"}}`, auth: bearer, want: 400, field: "drain.max_wait"},
		{name: "start replacement with a number for a duration", method: "POST", path: "/load-balancer-replacements", body: `{"fleet":"lab","domain":"example.com","parent":["127.0.0.1:53"],"glue_wait":5}`, auth: bearer, want: 400, field: "glue_wait",
			contains: `must be a duration such as \"30s\" or \"72h\", got a JSON number`},
		{name: "start update with a list for a string", method: "POST", path: "/load-balancer-updates", body: `{"fleet":"lab","update":{"kind":["config"]}}`, auth: bearer, want: 400, field: "update.kind",
			contains: "must be a string, got a JSON array"},
		{name: "start replacement with a bad duration", method: "POST", path: "/load-balancer-replacements", body: `{"fleet":"lab","domain":"example.com","parent":["127.0.0.1:53"],"glue_wait":"soon"}`, auth: bearer, want: 400, field: "glue_wait", contains: `\"soon\" is not a duration such as \"30s\" or \"72h\"`},
		{name: "start replacement with a wait in days", method: "POST", path: "/load-balancer-replacements", body: `{"fleet":"lab","domain":"example.com","parent":["127.0.0.1:53"],"glue_wait":"3d"}`, auth: bearer, want: 400, field: "glue_wait", contains: `the longest unit is h (write 72h for 3d)`},
		{name: "start replacement with a bad nested duration", method: "POST", path: "/load-balancer-replacements", body: `{"fleet":"lab","domain":"example.com","parent":["127.0.0.1:53"],"drain":{"quiet":"5 minutes"}}`, auth: bearer, want: 400, field: "drain.quiet", contains: `\"5 minutes\" is not a duration`},
		{name: "start update with a nested unknown field", method: "POST", path: "/load-balancer-updates", body: `{"fleet":"lab","update":{"kind":"config","confg":"x"}}`, auth: bearer, want: 400, field: "update.confg", contains: "unknown field"},
		{name: "start replacement with a nested unknown field in any case", method: "POST", path: "/load-balancer-replacements", body: `{"fleet":"lab","domain":"example.com","parent":["127.0.0.1:53"],"Drain":{"Quiet":"1m","Quiet_QPS":1,"max":"1m"}}`, auth: bearer, want: 400, field: "Drain.max", contains: "unknown field"},
		{name: "start replacement while an update runs", setup: func(f *fakeBackend) { f.addRun(LBUpdates, "lab", "running", updating(workflows.PhaseUpdatingLBs)) },
			method: "POST", path: "/load-balancer-replacements", body: replace, auth: bearer, want: 409, contains: `"rollout_id": "lbupdate-lab:run-1"`},

		{name: "list updates of a fleet", setup: func(f *fakeBackend) {
			f.add("lab", workflows.PhaseSucceeded)
			f.addRun(LBUpdates, "lab", "completed", updating(workflows.PhaseSucceeded))
			f.addRun(LBReplacements, "lab", "completed", replacing(workflows.PhaseSucceeded))
			f.addRun(LBUpdates, "edge", "running", updating(workflows.PhaseUpdatingLBs))
			f.addRun(LBUpdates, "lab", "running", updating(workflows.PhaseUpdatingLBs))
		},
			method: "GET", path: "/load-balancer-updates?fleet=lab", auth: bearer, want: 200,
			after: func(t *testing.T, _ *fakeBackend, rec *httptest.ResponseRecorder) {
				var page RunPage
				if err := json.Unmarshal(rec.Body.Bytes(), &page); err != nil {
					t.Fatal(err)
				}
				var got []string
				for _, r := range page.Runs {
					got = append(got, r.ID+" "+r.Fleet+" "+r.State+" "+r.Links.Signals["abort"])
				}
				want := []string{
					"lbupdate-lab:run-5 lab running /load-balancer-updates/lbupdate-lab:run-5/abort",
					"lbupdate-lab:run-2 lab completed /load-balancer-updates/lbupdate-lab:run-2/abort",
				}
				if !slices.Equal(got, want) || page.NextPageToken != "" {
					t.Errorf("listed %q (next %q), want %q", got, page.NextPageToken, want)
				}
			}},
		{name: "list running replacements", setup: func(f *fakeBackend) {
			f.addRun(LBReplacements, "lab", "completed", replacing(workflows.PhaseSucceeded))
			f.addRun(LBReplacements, "lab", "running", replacing(workflows.PhaseDraining))
		},
			method: "GET", path: "/load-balancer-replacements?status=running", auth: bearer, want: 200,
			after: func(t *testing.T, _ *fakeBackend, rec *httptest.ResponseRecorder) {
				var page RunPage
				if err := json.Unmarshal(rec.Body.Bytes(), &page); err != nil || len(page.Runs) != 1 || page.Runs[0].ID != "lbreplace-lab:run-2" || page.Runs[0].Links.Signals["force-drain"] == "" {
					t.Errorf("listed %s, want the running replacement with its force-drain link", rec.Body)
				}
			}},
		{name: "list no updates", method: "GET", path: "/load-balancer-updates", auth: bearer, want: 200, contains: `"runs": []`},
		{name: "list updates by phase", method: "GET", path: "/load-balancer-updates?phase=draining", auth: bearer, want: 400, field: "phase", contains: "rollouts only"},
		{name: "list updates of a bad fleet", method: "GET", path: "/load-balancer-updates?fleet=lab-", auth: bearer, want: 400, field: "fleet"},
		{name: "list updates without token", method: "GET", path: "/load-balancer-updates", want: 401},
		{name: "get update", setup: func(f *fakeBackend) { f.addRun(LBUpdates, "lab", "running", updating(workflows.PhaseUpdatingLBs)) },
			method: "GET", path: "/load-balancer-updates/lbupdate-lab", auth: bearer, want: 200, contains: `"phase": "updating-load-balancers"`},
		{name: "get update with an escaped colon", setup: func(f *fakeBackend) { f.addRun(LBUpdates, "lab", "running", updating(workflows.PhaseUpdatingLBs)) },
			method: "GET", path: "/load-balancer-updates/lbupdate-lab%3Arun-1", auth: bearer, want: 200, contains: `"id": "lbupdate-lab:run-1"`},
		{name: "get update without token", method: "GET", path: "/load-balancer-updates/lbupdate-lab", want: 401},
		{name: "get unknown update", method: "GET", path: "/load-balancer-updates/lbupdate-lab:run-9", auth: bearer, want: 404},
		{name: "get a rollout as an update", setup: func(f *fakeBackend) { f.add("lab", workflows.PhaseBaking) },
			method: "GET", path: "/load-balancer-updates/rollout-lab:run-1", auth: bearer, want: 404, contains: "its IDs look like lbupdate-"},
		{name: "get replacement draining", setup: func(f *fakeBackend) { f.addRun(LBReplacements, "lab", "running", replacing(workflows.PhaseDraining)) },
			method: "GET", path: "/load-balancer-replacements/lbreplace-lab:run-1", auth: bearer, want: 200, contains: `"lb1": 12.5`},

		{name: "abort update", setup: func(f *fakeBackend) { f.addRun(LBUpdates, "lab", "running", updating(workflows.PhaseUpdatingLBs)) },
			method: "POST", path: "/load-balancer-updates/lbupdate-lab/abort", body: `{"reason":"wrong config","by":"alice"}`, auth: bearer, want: 202,
			after: wantSignals("abort lbupdate-lab:run-1 wrong config alice")},
		{name: "abort replacement with an escaped colon", setup: func(f *fakeBackend) { f.addRun(LBReplacements, "lab", "running", replacing(workflows.PhaseDraining)) },
			method: "POST", path: "/load-balancer-replacements/lbreplace-lab%3Arun-1/abort", auth: bearer, want: 202,
			after: wantSignals("abort lbreplace-lab:run-1  api")},
		{name: "abort update with no worker running", setup: func(f *fakeBackend) {
			f.addRun(LBUpdates, "lab", "running", updating(workflows.PhaseUpdatingLBs))
			f.noWorker = true
		},
			method: "POST", path: "/load-balancer-updates/lbupdate-lab/abort", body: `{"reason":"workers down","by":"alice"}`, auth: bearer, want: 202,
			contains: "no worker", after: wantSignals("abort lbupdate-lab:run-1 workers down alice")},
		// No worker says which phase it is in: the signal is sent, with a
		// warning, and the workflow decides when a worker takes it.
		{name: "approve replacement with no worker running", setup: func(f *fakeBackend) {
			f.addRun(LBReplacements, "lab", "running", replacing(workflows.PhaseAwaitingApproval))
			f.noWorker = true
		},
			method: "POST", path: "/load-balancer-replacements/lbreplace-lab/approve", auth: bearer, want: 202,
			contains: "approves whichever approval gate is open", after: wantSignals("approve lbreplace-lab:run-1  api")},
		{name: "approve replacement's gate with no worker running", setup: func(f *fakeBackend) {
			f.addRun(LBReplacements, "lab", "running", replacing(workflows.PhaseAwaitingApproval))
			f.noWorker = true
		},
			method: "POST", path: "/load-balancer-replacements/lbreplace-lab:run-1/approve", body: `{"gate":1}`, auth: bearer, want: 202,
			contains: "takes this approve only if approval gate 1 is open", after: wantSignals("approve lbreplace-lab:run-1  api gate 1")},
		{name: "get replacement with no worker running", setup: func(f *fakeBackend) {
			f.addRun(LBReplacements, "lab", "running", replacing(workflows.PhaseDraining))
			f.noWorker = true
		},
			method: "GET", path: "/load-balancer-replacements/lbreplace-lab", auth: bearer, want: 503, contains: "is a worker running"},
		{name: "abort update while restoring", setup: func(f *fakeBackend) { f.addRun(LBUpdates, "lab", "running", updating(workflows.PhaseRestoringLB)) },
			method: "POST", path: "/load-balancer-updates/lbupdate-lab/abort", auth: bearer, want: 409, contains: "already stopping", after: wantSignals()},
		{name: "abort ended update", setup: func(f *fakeBackend) { f.addRun(LBUpdates, "lab", "failed", updating(workflows.PhaseRolledBack)) },
			method: "POST", path: "/load-balancer-updates/lbupdate-lab/abort", auth: bearer, want: 409, contains: "it has ended (rolled-back)", after: wantSignals()},
		{name: "force-drain", setup: func(f *fakeBackend) { f.addRun(LBReplacements, "lab", "running", replacing(workflows.PhaseDraining)) },
			method: "POST", path: "/load-balancer-replacements/lbreplace-lab/force-drain", body: `{"reason":"resolvers checked"}`, auth: bearer, want: 202, contains: `"signal": "force-drain"`,
			after: wantSignals("force-drain lbreplace-lab:run-1 resolvers checked api")},
		{name: "force-drain without reason", setup: func(f *fakeBackend) { f.addRun(LBReplacements, "lab", "running", replacing(workflows.PhaseDraining)) },
			method: "POST", path: "/load-balancer-replacements/lbreplace-lab/force-drain", auth: bearer, want: 400, field: "reason", after: wantSignals()},
		{name: "force-drain with a blank reason", setup: func(f *fakeBackend) { f.addRun(LBReplacements, "lab", "running", replacing(workflows.PhaseDraining)) },
			method: "POST", path: "/load-balancer-replacements/lbreplace-lab/force-drain", body: `{"reason":"  "}`, auth: bearer, want: 400, field: "reason", after: wantSignals()},
		{name: "force-drain before the drain", setup: func(f *fakeBackend) {
			f.addRun(LBReplacements, "lab", "running", replacing(workflows.PhaseAwaitingGlue))
		},
			method: "POST", path: "/load-balancer-replacements/lbreplace-lab/force-drain", body: `{"reason":"x"}`, auth: bearer, want: 409, contains: "awaiting-glue, not draining", after: wantSignals()},
		{name: "glue-updated", setup: func(f *fakeBackend) {
			f.addRun(LBReplacements, "lab", "running", replacing(workflows.PhaseAwaitingGlue))
		},
			method: "POST", path: "/load-balancer-replacements/lbreplace-lab:run-1/glue-updated", auth: bearer, want: 202,
			after: wantSignals("glue-updated lbreplace-lab:run-1  api")},
		{name: "approve replacement at its gate", setup: func(f *fakeBackend) {
			f.addRun(LBReplacements, "lab", "running", replacing(workflows.PhaseAwaitingApproval))
		},
			method: "POST", path: "/load-balancer-replacements/lbreplace-lab/approve", body: `{"by":"alice"}`, auth: bearer, want: 202,
			after: wantSignals("approve lbreplace-lab:run-1  alice")},
		{name: "approve replacement not at its gate", setup: func(f *fakeBackend) {
			f.addRun(LBReplacements, "lab", "running", replacing(workflows.PhaseVerifyNewLBs))
		},
			method: "POST", path: "/load-balancer-replacements/lbreplace-lab/approve", auth: bearer, want: 409, contains: "not awaiting approval", after: wantSignals()},
		{name: "approve replacement for another gate", setup: func(f *fakeBackend) {
			st := replacing(workflows.PhaseAwaitingApproval)
			st.ApprovalGate = 1
			f.addRun(LBReplacements, "lab", "running", st)
		},
			method: "POST", path: "/load-balancer-replacements/lbreplace-lab:run-1/approve", body: `{"gate":2}`, auth: bearer, want: 409, contains: "approval gate 2 is not open: gate 1 is", after: wantSignals()},
		{name: "approve replacement's gate, numbered by no worker", setup: func(f *fakeBackend) {
			f.addRun(LBReplacements, "lab", "running", replacing(workflows.PhaseAwaitingApproval))
		},
			method: "POST", path: "/load-balancer-replacements/lbreplace-lab:run-1/approve", body: `{"gate":1}`, auth: bearer, want: 409, contains: "approve without gate", after: wantSignals()},
		{name: "approve replacement's gate", setup: func(f *fakeBackend) {
			st := replacing(workflows.PhaseAwaitingApproval)
			st.ApprovalGate = 1
			f.addRun(LBReplacements, "lab", "running", st)
		},
			method: "POST", path: "/load-balancer-replacements/lbreplace-lab:run-1/approve", body: `{"gate":1,"by":"alice"}`, auth: bearer, want: 202, after: wantSignals("approve lbreplace-lab:run-1  alice gate 1")},
		// Every replacement's gate is 1: a gate read from an earlier
		// replacement of the fleet must not approve a later one.
		{name: "approve replacement's gate without its run", setup: func(f *fakeBackend) {
			st := replacing(workflows.PhaseAwaitingApproval)
			st.ApprovalGate = 1
			f.addRun(LBReplacements, "lab", "running", st)
		},
			method: "POST", path: "/load-balancer-replacements/lbreplace-lab/approve", body: `{"gate":1}`, auth: bearer, want: 400, field: "gate", contains: "name the run too, lbreplace-lab:", after: wantSignals()},
		{name: "rollback replacement", setup: func(f *fakeBackend) {
			f.addRun(LBReplacements, "lab", "running", replacing(workflows.PhaseVerifyNewLBs))
		},
			method: "POST", path: "/load-balancer-replacements/lbreplace-lab/rollback", auth: bearer, want: 202, after: wantSignals("rollback lbreplace-lab:run-1  api")},
		{name: "abort replacement deleting the old", setup: func(f *fakeBackend) {
			f.addRun(LBReplacements, "lab", "running", replacing(workflows.PhaseDeletingOldLBs))
		},
			method: "POST", path: "/load-balancer-replacements/lbreplace-lab/abort", auth: bearer, want: 409, contains: "nothing to go back to", after: wantSignals()},
		// Terminated mid-way, its phase is no end: its state says it ended.
		{name: "abort an update that was terminated", setup: func(f *fakeBackend) {
			f.addRun(LBUpdates, "lab", "terminated", updating(workflows.PhaseUpdatingLBs))
		},
			method: "POST", path: "/load-balancer-updates/lbupdate-lab/abort", auth: bearer, want: 409, contains: "the load balancer update is terminated", after: wantSignals()},
		{name: "signal unknown replacement", method: "POST", path: "/load-balancer-replacements/lbreplace-lab/abort", auth: bearer, want: 404},
		{name: "zone-revision", setup: func(f *fakeBackend) {
			f.addRun(LBReplacements, "lab", "running", replacing(workflows.PhaseAwaitingZoneRevision))
		},
			method: "POST", path: "/load-balancer-replacements/lbreplace-lab/zone-revision", body: `{"revision":"r2","by":"ana"}`, auth: bearer, want: 202,
			after: wantSignals("zone-revision lbreplace-lab:run-1  ana revision r2")},
		{name: "zone-revision not awaited", setup: func(f *fakeBackend) {
			f.addRun(LBReplacements, "lab", "running", replacing(workflows.PhaseAwaitingGlue))
		},
			method: "POST", path: "/load-balancer-replacements/lbreplace-lab/zone-revision", body: `{"revision":"r2"}`, auth: bearer, want: 409,
			contains: "awaiting-glue, not awaiting a zone revision", after: wantSignals()},
		{name: "zone-revision with a bad revision", setup: func(f *fakeBackend) {
			f.addRun(LBReplacements, "lab", "running", replacing(workflows.PhaseAwaitingZoneRevision))
		},
			method: "POST", path: "/load-balancer-replacements/lbreplace-lab/zone-revision", body: `{"revision":"-r2"}`, auth: bearer, want: 400, field: "revision", after: wantSignals()},
		{name: "a revision with abort", setup: func(f *fakeBackend) {
			f.addRun(LBReplacements, "lab", "running", replacing(workflows.PhaseAwaitingZoneRevision))
		},
			method: "POST", path: "/load-balancer-replacements/lbreplace-lab/abort", body: `{"revision":"r2"}`, auth: bearer, want: 400, field: "revision",
			contains: "is only for zone-revision", after: wantSignals()},
	})
}

// wantSignals checks the signals the backend was sent.
func wantSignals(want ...string) func(*testing.T, *fakeBackend, *httptest.ResponseRecorder) {
	return func(t *testing.T, f *fakeBackend, _ *httptest.ResponseRecorder) {
		t.Helper()
		if strings.Join(f.signals, "\n") != strings.Join(want, "\n") {
			t.Errorf("signals sent %q, want %q", f.signals, want)
		}
	}
}

// With fleet configs, a replacement of load balancers that glue cannot
// tell apart (two on 127.0.0.1) is a 400 naming the field, before a run
// starts.
func TestLoadBalancerReplacementChecksGlueAddresses(t *testing.T) {
	lab := &config.Fleet{Name: "lab", LoadBalancers: []config.LoadBalancer{
		{Name: "lb1", Address: "127.0.0.1:5301", Fronts: config.Labels{"ns1"}},
		{Name: "lb2", Address: "127.0.0.1:5302", Fronts: config.Labels{"ns2"}},
	}}
	ts := newTestServer(t, func(c *Config) { c.Fleets = func(string) (*config.Fleet, error) { return lab, nil } })
	rec := ts.do(t, "POST", "/load-balancer-replacements", `{"fleet":"lab","domain":"example.com","parent":["192.0.2.53:53"]}`, "Bearer "+token)
	if e := errorBody(t, rec); rec.Code != 400 || e.Field != "load_balancers[1].address" || !strings.Contains(e.Message, "an address of its own") {
		t.Errorf("→ %d %+v, want 400 about load_balancers[1].address", rec.Code, e)
	}
	if len(ts.fake.lbStarted) != 0 {
		t.Errorf("started %v", ts.fake.lbStarted)
	}
}

// With fleet configs, a zone-revision names a revision whose zone files
// the fleet has, as a rollout's start must: its rollout would fail at its
// plan otherwise, after the replacement waited for it.
func TestZoneRevisionChecksTheRevision(t *testing.T) {
	ts := newTestServer(t, func(c *Config) { c.Fleets = labFleets(t) })
	ts.fake.addRun(LBReplacements, "lab", "running", replacing(workflows.PhaseAwaitingZoneRevision))
	for body, want := range map[string]string{`{"revision":"r9"}`: "zones/r9/example.com.zone", `{}`: "revision"} {
		rec := ts.do(t, "POST", "/load-balancer-replacements/lbreplace-lab/zone-revision", body, "Bearer "+token)
		if e := errorBody(t, rec); rec.Code != 400 || e.Field != "revision" || !strings.Contains(e.Message, want) {
			t.Errorf("%s → %d %+v, want 400 about revision saying %q", body, rec.Code, e, want)
		}
	}
	if len(ts.fake.signals) != 0 {
		t.Errorf("signals sent %q", ts.fake.signals)
	}
}

// With fleet configs, an update names load balancers the fleet has.
func TestLoadBalancerUpdateChecksFleet(t *testing.T) {
	ts := newTestServer(t, func(c *Config) { c.Fleets = labFleets(t) })
	rec := ts.do(t, "POST", "/load-balancer-updates", `{"fleet":"lab","load_balancers":["lb9"],"update":{"kind":"binary"}}`, "Bearer "+token)
	if e := errorBody(t, rec); rec.Code != 400 || e.Field != "load_balancers" || !strings.Contains(e.Message, `no load balancer "lb9"`) {
		t.Errorf("→ %d %+v, want 400 about load_balancers", rec.Code, e)
	}
	// The workflow's own refusals, before a run starts.
	for body, field := range map[string]string{
		`{"fleet":"lab","load_balancers":["lb1","lb1"],"update":{"kind":"binary"}}`:                         "load_balancers",
		`{"fleet":"lab","load_balancers":["lb1"],"update":{"kind":"console","lua":"x()","undo_lua":"y()"}}`: "update.kind",
	} {
		rec = ts.do(t, "POST", "/load-balancer-updates", body, "Bearer "+token)
		if e := errorBody(t, rec); rec.Code != 400 || e.Field != field {
			t.Errorf("%s → %d %+v, want 400 about %s", body, rec.Code, e, field)
		}
	}
	rec = ts.do(t, "POST", "/load-balancer-updates", `{"fleet":"nope","update":{"kind":"binary"}}`, "Bearer "+token)
	if e := errorBody(t, rec); rec.Code != 400 || e.Field != "fleet" {
		t.Errorf("unknown fleet → %d %+v, want 400 about fleet", rec.Code, e)
	}
	if len(ts.fake.lbStarted) != 0 {
		t.Errorf("started %v", ts.fake.lbStarted)
	}
}

// What a run shows at the approval gate (its deadline, approve_by) and a
// load balancer that fronts several nameservers (fronts as a list) are in
// the spec, which ts.do checks every answer against: a client generated
// from it would otherwise refuse the answer the operator needs to act on.
func TestSpecCoversTheApprovalGateAndListsOfFronts(t *testing.T) {
	ts := newTestServer(t, nil)
	bearer := "Bearer " + token
	id := ts.fake.add("lab", workflows.PhaseAwaitingApproval)
	ts.fake.runs[id].ApproveBy = t0.Add(time.Hour)
	if rec := ts.do(t, "GET", "/rollouts/"+id, "", bearer); rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"approve_by"`) {
		t.Errorf("a rollout at the gate: %d %s", rec.Code, rec.Body)
	}
	st := replacing(workflows.PhaseAwaitingApproval)
	st.ApproveBy = t0.Add(time.Hour)
	st.Old[0].Fronts = config.Labels{"ns1", "ns2"}
	run := ts.fake.addRun(LBReplacements, "lab", "running", st)
	rec := ts.do(t, "GET", "/load-balancer-replacements/"+RolloutID(run), "", bearer)
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"approve_by"`) || !strings.Contains(rec.Body.String(), `"ns2"`) {
		t.Errorf("a replacement at the gate: %d %s", rec.Code, rec.Body)
	}
	// A cleanup reads a body, so it may answer 413.
	ts.fake.add("lab2", workflows.PhaseCleanupFailed)
	big := `{"reason":"` + strings.Repeat("x", 70<<10) + `"}`
	if rec := ts.do(t, "POST", "/rollouts/rollout-lab2/cleanup", big, bearer); rec.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("a cleanup with a 70 KiB body: %d, want 413", rec.Code)
	}
}

// A zone-revision carries the fleet's live revision, looked up as a
// rollout's start looks it up: the replacement's rollout of the zone
// compares with it at its plan and approval gate. A lookup that cannot
// tell says why; a body that names the live revision itself is refused.
func TestZoneRevisionCarriesTheLiveRevision(t *testing.T) {
	const path = "/load-balancer-replacements/lbreplace-lab/zone-revision"
	for _, c := range []struct {
		name, live, liveWhy string
		want                []string // what the signal's JSON holds
	}{
		{"looked up", "sha256:5be0", "", []string{`"live_bundle":"sha256:5be0"`}},
		{"lookup failed", "", "visibility: unavailable", []string{`"live_unknown":"visibility: unavailable"`}},
		{"none succeeded", "", "", []string{`"live_unknown":"no successful rollout of fleet lab is listed`}},
	} {
		t.Run(c.name, func(t *testing.T) {
			ts := newTestServer(t, nil)
			ts.fake.live, ts.fake.liveWhy = c.live, c.liveWhy
			ts.fake.addRun(LBReplacements, "lab", "running", replacing(workflows.PhaseAwaitingZoneRevision))
			if rec := ts.do(t, "POST", path, `{"revision":"r2"}`, "Bearer "+token); rec.Code != 202 {
				t.Fatalf("→ %d %s, want 202", rec.Code, rec.Body)
			}
			if len(ts.fake.sent) != 1 || !slices.Equal(ts.fake.looked, []string{"lab"}) {
				t.Fatalf("sent %+v, looked up %q; want one signal, the live revision of lab looked up", ts.fake.sent, ts.fake.looked)
			}
			got, _ := json.Marshal(ts.fake.sent[0])
			for _, w := range c.want {
				if !strings.Contains(string(got), w) {
					t.Errorf("signal %s; want %s", got, w)
				}
			}
		})
	}
	// The API sets them; a request may not, to any signal.
	ts := newTestServer(t, nil)
	ts.fake.addRun(LBReplacements, "lab", "running", replacing(workflows.PhaseAwaitingZoneRevision))
	for _, c := range []struct{ path, body, field string }{
		{path, `{"revision":"r2","live_bundle":"sha256:00"}`, "live_bundle"},
		{path, `{"revision":"r2","live_unknown":"x"}`, "live_unknown"},
		{"/load-balancer-replacements/lbreplace-lab/abort", `{"live_bundle":"sha256:00"}`, "live_bundle"},
	} {
		rec := ts.do(t, "POST", c.path, c.body, "Bearer "+token)
		if e := errorBody(t, rec); rec.Code != 400 || e.Field != c.field || !strings.Contains(e.Message, "looks up the fleet's live revision") {
			t.Errorf("%s %s → %d %+v, want 400 about %s saying the API looks it up", c.path, c.body, rec.Code, e, c.field)
		}
	}
	if len(ts.fake.sent) != 0 || len(ts.fake.looked) != 0 {
		t.Errorf("sent %+v, looked up %q; want nothing", ts.fake.sent, ts.fake.looked)
	}
}

// Only a zone-revision that is sent carries the live revision: another
// signal to a replacement (an abort) carries none, which its workflow
// would refuse as fields it does not take, and a zone-revision refused
// for the replacement's phase looks nothing up.
func TestOnlyASentZoneRevisionLooksUpTheLiveRevision(t *testing.T) {
	ts := newTestServer(t, nil)
	ts.fake.live = "sha256:5be0"
	ts.fake.addRun(LBReplacements, "lab", "running", replacing(workflows.PhaseAwaitingZoneRevision))
	if rec := ts.do(t, "POST", "/load-balancer-replacements/lbreplace-lab/abort", `{"reason":"wrong zone"}`, "Bearer "+token); rec.Code != 202 {
		t.Fatalf("abort → %d %s, want 202", rec.Code, rec.Body)
	}
	if len(ts.fake.sent) != 1 || ts.fake.sent[0].LiveBundle != "" || ts.fake.sent[0].LiveUnknown != "" || len(ts.fake.looked) != 0 {
		t.Fatalf("sent %+v, looked up %q; want the abort sent without a live revision, none looked up", ts.fake.sent, ts.fake.looked)
	}
	ts = newTestServer(t, nil)
	ts.fake.addRun(LBReplacements, "lab", "running", replacing(workflows.PhaseDraining))
	if rec := ts.do(t, "POST", "/load-balancer-replacements/lbreplace-lab/zone-revision", `{"revision":"r2"}`, "Bearer "+token); rec.Code != 409 {
		t.Fatalf("zone-revision while draining → %d %s, want 409", rec.Code, rec.Body)
	}
	if len(ts.fake.sent) != 0 || len(ts.fake.looked) != 0 {
		t.Errorf("sent %+v, looked up %q; want nothing", ts.fake.sent, ts.fake.looked)
	}
}
