package api

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/workflows"
)

// POST /plans is a dry run of POST /rollouts: the same body, checked the
// same way, answered with the plan; it starts no rollout, and may run
// beside one.
func TestPlan(t *testing.T) {
	bearer := "Bearer " + token
	startsNothing := func(t *testing.T, f *fakeBackend, _ *httptest.ResponseRecorder) {
		if len(f.started) != 0 {
			t.Errorf("a plan started a rollout: %+v", f.started)
		}
	}
	runRouterCases(t, []routerCase{
		{name: "plan", method: "POST", path: "/plans", body: `{"fleet":"lab","revision":"B","expect_changes":false}`, auth: bearer, want: 200,
			contains: `"workflow_id": "plan-lab-f1"`,
			// (checked against openapi.yaml, diffs included)
			after: func(t *testing.T, f *fakeBackend, rec *httptest.ResponseRecorder) {
				startsNothing(t, f, rec)
				if want := "http://127.0.0.1:8233/namespaces/default/workflows/plan-lab-f1/r1/history"; !strings.Contains(rec.Body.String(), want) {
					t.Errorf("no Web UI link %s in %s", want, rec.Body)
				}
				if len(f.planned) != 1 || f.planned[0].Revision != "B" || f.planned[0].ExpectChanges == nil || *f.planned[0].ExpectChanges {
					t.Errorf("planned %+v, want revision B with expect_changes false", f.planned)
				}
			}},
		{name: "beside a running rollout", setup: func(f *fakeBackend) { f.add("lab", workflows.PhaseProvisioning) },
			method: "POST", path: "/plans", body: `{"fleet":"lab","revision":"B"}`, auth: bearer, want: 200, contains: `"blue"`},
		{name: "the last revision by default", setup: func(f *fakeBackend) { f.lastRev = "A" },
			method: "POST", path: "/plans", body: `{"fleet":"lab"}`, auth: bearer, want: 200, contains: `"revision": "A"`},
		{name: "refused by Plan", setup: func(f *fakeBackend) {
			f.planErr = dnsroll.Errorf(dnsroll.EINVALID, "zones[0].file: serial 6 is behind blue's 7")
		}, method: "POST", path: "/plans", body: `{"fleet":"lab","revision":"old"}`, auth: bearer, want: 400, contains: "serial 6 is behind blue's 7", after: startsNothing},
		// Temporal too busy to answer is as unreachable: try again.
		{name: "Temporal busy", setup: func(f *fakeBackend) {
			f.planErr = fmt.Errorf("plan: %w", serviceerror.NewResourceExhausted(enumspb.RESOURCE_EXHAUSTED_CAUSE_RPS_LIMIT, "namespace rate limit exceeded"))
		}, method: "POST", path: "/plans", body: `{"fleet":"lab"}`, auth: bearer, want: 503, contains: "the API got no answer from Temporal"},
		{name: "Temporal past its deadline", setup: func(f *fakeBackend) { f.planErr = serviceerror.NewDeadlineExceeded("context deadline exceeded") },
			method: "POST", path: "/plans", body: `{"fleet":"lab"}`, auth: bearer, want: 503, contains: "the API got no answer from Temporal"},
		{name: "bad fleet", method: "POST", path: "/plans", body: `{"fleet":"Lab_1"}`, auth: bearer, want: 400, field: "fleet"},
		{name: "unknown field", method: "POST", path: "/plans", body: `{"fleet":"lab","dry":true}`, auth: bearer, want: 400},
		{name: "no token", method: "POST", path: "/plans", body: `{"fleet":"lab"}`, want: 401},
	})

	// No worker: the plan waits PlanWait, then says so, naming the workflow.
	ts := newTestServer(t, func(c *Config) { c.PlanWait = 50 * time.Millisecond })
	ts.fake.noWorker = true
	rec := ts.do(t, "POST", "/plans", `{"fleet":"lab","revision":"B"}`, bearer)
	if e := errorBody(t, rec); rec.Code != 504 || e.Code != "timeout" || !strings.Contains(e.Message, "no worker of this task queue is running, or its Plan step is still retrying") || !strings.Contains(e.Message, "plan-lab-f1") {
		t.Errorf("no worker: %d %+v, want 504 naming the plan's workflow", rec.Code, e)
	}

	// The SDK's wait for the result ends with its gRPC call's deadline
	// error, or the cancel of its stream, often a moment before ctx says
	// it is done: that is the same timeout, not a Temporal to try again
	// (503) or an internal error (500).
	for _, cut := range []error{serviceerror.NewDeadlineExceeded("context deadline exceeded"),
		serviceerror.NewCanceled("stream terminated by RST_STREAM with error code: CANCEL")} {
		ts := newTestServer(t, func(c *Config) { c.PlanWait = 300 * time.Millisecond })
		ts.fake.planCut = cut
		rec := ts.do(t, "POST", "/plans", `{"fleet":"lab","revision":"B"}`, bearer)
		if e := errorBody(t, rec); rec.Code != 504 || !strings.Contains(e.Message, "plan-lab-f1") {
			t.Errorf("no worker, the wait cut by %T: %d %+v, want 504 naming the plan's workflow", cut, rec.Code, e)
		}
	}
}

// A client that hangs up on a plan (Ctrl-C on `dnsroll rollout plan`) is
// no plan that timed out: a 499 in the log and the metrics, not a 504
// saying that no worker runs, which would send someone to look for one.
func TestPlanWhoseClientWentAwayIsNoTimeout(t *testing.T) {
	ts := newTestServer(t, func(c *Config) { c.PlanWait = time.Minute })
	ts.fake.noWorker = true
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := httptest.NewRequestWithContext(ctx, http.MethodPost, "/plans", strings.NewReader(`{"fleet":"lab","revision":"B"}`))
	r.Header.Set("Authorization", "Bearer "+token)
	rec := httptest.NewRecorder()
	ts.h.ServeHTTP(rec, r)
	if rec.Code != statusClientClosed {
		t.Errorf("status %d %s, want %d", rec.Code, rec.Body, statusClientClosed)
	}
}
