package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.temporal.io/api/serviceerror"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/config"
	"github.com/dnsroll/dnsroll/workflows"
)

const token = "s3cret-token"

// testServer is the whole router over a fake backend, with its log.
type testServer struct {
	fake *fakeBackend
	h    http.Handler
	log  *bytes.Buffer
}

func newTestServer(tb testing.TB, edit func(*Config)) *testServer {
	tb.Helper()
	ts := &testServer{fake: newFake(), log: &bytes.Buffer{}}
	cfg := Config{Backend: ts.fake, Token: token, Logger: slog.New(slog.NewJSONHandler(ts.log, nil)), WebUIURL: "http://127.0.0.1:8233"}
	if edit != nil {
		edit(&cfg)
	}
	ts.h = New(cfg).Handler()
	return ts
}

// do sends a request through the router and checks the response against
// openapi.yaml. auth is the Authorization header ("" for none).
func (ts *testServer) do(tb testing.TB, method, path, body, auth string) *httptest.ResponseRecorder {
	tb.Helper()
	var r *http.Request
	if body == "" {
		r = httptest.NewRequest(method, path, nil)
	} else {
		r = httptest.NewRequest(method, path, strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
	}
	if auth != "" {
		r.Header.Set("Authorization", auth)
	}
	return ts.send(tb, r)
}

// send serves r, checking the answer against openapi.yaml.
func (ts *testServer) send(tb testing.TB, r *http.Request) *httptest.ResponseRecorder {
	tb.Helper()
	rec := httptest.NewRecorder()
	ts.h.ServeHTTP(rec, r)
	if rec.Code != http.StatusMethodNotAllowed && r.URL.Path != "/nope" {
		checkSpec(tb, r, rec)
	}
	if rec.Header().Get(RequestIDHeader) == "" {
		tb.Errorf("%s %s: no %s header", r.Method, r.URL.Path, RequestIDHeader)
	}
	return rec
}

func errorBody(tb testing.TB, rec *httptest.ResponseRecorder) ErrorBody {
	tb.Helper()
	var e ErrorBody
	if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil {
		tb.Fatalf("error body %q: %v", rec.Body, err)
	}
	return e
}

func TestRouter(t *testing.T) {
	bearer := "Bearer " + token
	big := `{"fleet":"lab","reason":"` + strings.Repeat("x", 70<<10) + `"}`
	tests := []routerCase{
		{name: "start", method: "POST", path: "/rollouts", body: `{"fleet":"lab","revision":"B","reason":"ci"}`, auth: bearer, want: 201,
			contains: `"id": "rollout-lab:run-1"`,
			after: func(t *testing.T, f *fakeBackend, rec *httptest.ResponseRecorder) {
				if got, want := rec.Header().Get("Location"), "/rollouts/rollout-lab:run-1"; got != want {
					t.Errorf("Location = %q, want %q", got, want)
				}
				if got := f.started[0]; got.Revision != "B" || got.Reason != "ci" || got.RequestedBy != "api" {
					t.Errorf("started %+v", got)
				}
			}},
		{name: "start an infrastructure-only change", method: "POST", path: "/rollouts", body: `{"fleet":"lab","revision":"B","expect_changes":false}`, auth: bearer, want: 201,
			after: func(t *testing.T, f *fakeBackend, _ *httptest.ResponseRecorder) {
				if ec := f.started[0].ExpectChanges; ec == nil || *ec {
					t.Errorf("expect_changes = %v, want false passed to the workflow", ec)
				}
			}},
		{name: "start expect_changes not a bool", method: "POST", path: "/rollouts", body: `{"fleet":"lab","expect_changes":"no"}`, auth: bearer, want: 400, field: "expect_changes"},
		{name: "start with two spaces after Bearer", method: "POST", path: "/rollouts", body: `{"fleet":"lab","revision":"B"}`, auth: "Bearer  " + token, want: 201},
		{name: "start lowercase bearer", method: "POST", path: "/rollouts", body: `{"fleet":"lab","revision":"B"}`, auth: "bearer " + token, want: 201},
		{name: "start repeats the last revision", setup: func(f *fakeBackend) { f.lastRev = "C" },
			method: "POST", path: "/rollouts", body: `{"fleet":"lab"}`, auth: bearer, want: 201, contains: `"revision": "C"`},
		{name: "start falls back to the default revision", method: "POST", path: "/rollouts", body: `{"fleet":"lab"}`, auth: bearer, want: 201, contains: `"revision": "A"`},
		{name: "start while running", setup: func(f *fakeBackend) { f.add("lab", workflows.PhaseProvisioning) },
			method: "POST", path: "/rollouts", body: `{"fleet":"lab","revision":"B"}`, auth: bearer, want: 409, contains: `"rollout_id": "rollout-lab:run-1"`},
		{name: "start other fleet while one runs", setup: func(f *fakeBackend) { f.add("lab", workflows.PhaseProvisioning) },
			method: "POST", path: "/rollouts", body: `{"fleet":"prod","revision":"B"}`, auth: bearer, want: 201},
		{name: "start without token", method: "POST", path: "/rollouts", body: `{"fleet":"lab"}`, want: 401},
		{name: "start with wrong token", method: "POST", path: "/rollouts", body: `{"fleet":"lab"}`, auth: "Bearer nope", want: 401},
		{name: "start with basic auth", method: "POST", path: "/rollouts", body: `{"fleet":"lab"}`, auth: "Basic " + token, want: 401},
		{name: "start invalid JSON", method: "POST", path: "/rollouts", body: `{"fleet":`, auth: bearer, want: 400, field: "body"},
		{name: "start not an object", method: "POST", path: "/rollouts", body: `["lab"]`, auth: bearer, want: 400, field: "body"},
		{name: "start empty body", method: "POST", path: "/rollouts", auth: bearer, want: 400, field: "body"},
		{name: "start trailing data", method: "POST", path: "/rollouts", body: `{"fleet":"lab"} {}`, auth: bearer, want: 400, field: "body"},
		// A field in the query would be dropped: the revision of the last
		// rollout, not B, would go out, and a dry_run=true would start one.
		{name: "start with a body field in the query", method: "POST", path: "/rollouts?revision=B", body: `{"fleet":"lab"}`, auth: bearer, want: 400, field: "revision",
			contains: "goes in the JSON body", after: startedNothing},
		{name: "start with a query parameter", method: "POST", path: "/rollouts?dry_run=true", body: `{"fleet":"lab","revision":"B"}`, auth: bearer, want: 400, field: "dry_run",
			contains: "POST /plans", after: startedNothing},
		{name: "update with a query parameter", method: "POST", path: "/load-balancer-updates?lb=lb1", body: `{"fleet":"lab","update":{"kind":"config"}}`, auth: bearer, want: 400, field: "lb",
			contains: "takes no query parameters"},
		{name: "abort with its reason in the query", setup: func(f *fakeBackend) { f.add("lab", workflows.PhaseProvisioning) },
			method: "POST", path: "/rollouts/rollout-lab:run-1/abort?reason=bad", auth: bearer, want: 400, field: "reason", contains: "goes in the JSON body"},
		// The name, not the file that fleet validate takes.
		{name: "start with the fleet's file", method: "POST", path: "/rollouts", body: `{"fleet":"fleets/lab.yaml"}`, auth: bearer, want: 400, field: "fleet",
			contains: `a fleet's name is its file's without .yaml: lab`, after: startedNothing},
		{name: "update with the fleet's name in capitals", method: "POST", path: "/load-balancer-updates", body: `{"fleet":"Lab","update":{"kind":"config"}}`, auth: bearer, want: 400, field: "fleet",
			contains: `fleet names are lower case: lab`, after: startedNothing},
		// curl -d fleet=lab sends a form, which encoding/json reads as a
		// misspelt false.
		{name: "start with a form", method: "POST", path: "/rollouts", body: `fleet=lab&revision=B`, auth: bearer, want: 400, field: "body",
			contains: `is form data (fleet=..., revision=...), but requests are JSON: {\"fleet\": ..., \"revision\": ...}`, after: startedNothing},
		{name: "start with a byte order mark", method: "POST", path: "/rollouts", body: "\ufeff" + `{"fleet":"lab","revision":"B"}`, auth: bearer, want: 400, field: "body",
			contains: "byte order mark", after: startedNothing},
		{name: "start unknown field", method: "POST", path: "/rollouts", body: `{"flet":"lab"}`, auth: bearer, want: 400, field: "flet"},
		// A start says who in requested_by, a signal in by: the refusal
		// lists the fields there are.
		{name: "start with a signal's by", method: "POST", path: "/rollouts", body: `{"fleet":"lab","by":"ci"}`, auth: bearer, want: 400, field: "by", contains: "unknown field; the fields are fleet, revision, reason, requested_by, expect_changes, allow_serial_decrease, allow_new_ksk\""},
		// encoding/json keeps the last of two keys: a reviewer reading the
		// first would see another fleet than the one started.
		{name: "start fleet given twice", method: "POST", path: "/rollouts", body: `{"fleet":"lab","revision":"B","fleet":"prod"}`, auth: bearer, want: 400, field: "fleet",
			contains: "given twice", after: startedNothing},
		{name: "start fleet given twice in two cases", method: "POST", path: "/rollouts", body: `{"fleet":"lab","FLEET":"prod"}`, auth: bearer, want: 400, field: "FLEET",
			contains: "given twice", after: startedNothing},
		{name: "nested field given twice", method: "POST", path: "/load-balancer-updates", body: `{"fleet":"lab","update":{"kind":"config","kind":"binary"}}`, auth: bearer, want: 400, field: "update.kind",
			contains: "given twice"},
		{name: "start wrong type", method: "POST", path: "/rollouts", body: `{"fleet":7}`, auth: bearer, want: 400, field: "fleet"},
		{name: "start no fleet", method: "POST", path: "/rollouts", body: `{"revision":"B"}`, auth: bearer, want: 400, field: "fleet"},
		{name: "start bad fleet", method: "POST", path: "/rollouts", body: `{"fleet":"Lab'"}`, auth: bearer, want: 400, field: "fleet"},
		// The config's rule (config.ValidFleetName): no fleet file can be named so.
		{name: "start fleet name ending in a dash", method: "POST", path: "/rollouts", body: `{"fleet":"lab-"}`, auth: bearer, want: 400, field: "fleet",
			contains: "ending with a letter or digit"},
		{name: "start bad revision", method: "POST", path: "/rollouts", body: `{"fleet":"lab","revision":"../etc"}`, auth: bearer, want: 400, field: "revision"},
		{name: "start long reason", method: "POST", path: "/rollouts", body: `{"fleet":"lab","reason":"` + strings.Repeat("x", 501) + `"}`, auth: bearer, want: 400, field: "reason"},
		// maxLength in openapi.yaml counts characters, as JSON Schema does:
		// 500 of two bytes each are a reason the spec allows.
		{name: "start reason of 500 characters", method: "POST", path: "/rollouts", body: `{"fleet":"lab","reason":"` + strings.Repeat("é", 500) + `"}`, auth: bearer, want: 201},
		{name: "start reason of 501 characters", method: "POST", path: "/rollouts", body: `{"fleet":"lab","reason":"` + strings.Repeat("é", 501) + `"}`, auth: bearer, want: 400, field: "reason", contains: "500 characters"},
		// Reasons and names are printed on operators' terminals and in the
		// Web UI: no control characters, which could drive a terminal.
		{name: "start reason with an escape", method: "POST", path: "/rollouts", body: `{"fleet":"lab","reason":"fix\u001b[2J"}`, auth: bearer, want: 400, field: "reason",
			contains: "must be one line of text, without control characters"},
		{name: "start reason with a right-to-left override", method: "POST", path: "/rollouts", body: `{"fleet":"lab","reason":"safe \u202etxt.exe"}`, auth: bearer, want: 400, field: "reason"},
		{name: "start requested_by with a newline", method: "POST", path: "/rollouts", body: `{"fleet":"lab","requested_by":"ci\nfake line"}`, auth: bearer, want: 400, field: "requested_by"},
		// A terminal and the Web UI break the line at U+2028 as at a newline.
		{name: "start reason with a line separator", method: "POST", path: "/rollouts", body: `{"fleet":"lab","reason":"ci\u2028approved by alice"}`, auth: bearer, want: 400, field: "reason", contains: "one line"},
		{name: "abort by with a bell", setup: func(f *fakeBackend) { f.add("lab", workflows.PhaseProvisioning) },
			method: "POST", path: "/rollouts/rollout-lab:run-1/abort", body: `{"reason":"bad zone","by":"ci\u0007"}`, auth: bearer, want: 400, field: "by"},
		{name: "start oversized", method: "POST", path: "/rollouts", body: big, auth: bearer, want: 413},

		{name: "list", setup: func(f *fakeBackend) { f.add("lab", workflows.PhaseSucceeded); f.add("prod", workflows.PhaseBaking) },
			method: "GET", path: "/rollouts", auth: bearer, want: 200,
			after: func(t *testing.T, _ *fakeBackend, rec *httptest.ResponseRecorder) {
				var p Page
				_ = json.Unmarshal(rec.Body.Bytes(), &p)
				if len(p.Rollouts) != 2 || p.Rollouts[0].ID != "rollout-prod:run-2" || p.NextPageToken != "" {
					t.Errorf("page = %+v, want prod then lab, no next page", p)
				}
			}},
		{name: "list filtered", setup: func(f *fakeBackend) { f.add("lab", workflows.PhaseSucceeded); f.add("prod", workflows.PhaseBaking) },
			method: "GET", path: "/rollouts?fleet=lab&status=completed&phase=succeeded", auth: bearer, want: 200, contains: "rollout-lab:run-1"},
		{name: "list a forged page token", setup: func(f *fakeBackend) { f.add("lab", workflows.PhaseSucceeded); f.add("lab", workflows.PhaseFailed) },
			method: "GET", path: "/rollouts?limit=1&page_token=cG9zOjE", auth: bearer, want: 400, field: "page_token"},
		{name: "list empty", method: "GET", path: "/rollouts", auth: bearer, want: 200, contains: `"rollouts": []`},
		{name: "list bad status", method: "GET", path: "/rollouts?status=done", auth: bearer, want: 400, field: "status"},
		{name: "list bad phase", method: "GET", path: "/rollouts?phase=x", auth: bearer, want: 400, field: "phase"},
		{name: "list bad fleet", method: "GET", path: "/rollouts?fleet=a'b", auth: bearer, want: 400, field: "fleet"},
		{name: "get with a bad run id", method: "GET", path: "/rollouts/rollout-lab:bad_id", auth: bearer, want: 404, contains: "its IDs look like rollout-"},
		{name: "list bad limit", method: "GET", path: "/rollouts?limit=0", auth: bearer, want: 400, field: "limit"},
		{name: "list limit over 100", method: "GET", path: "/rollouts?limit=101", auth: bearer, want: 400, field: "limit"},
		// state is the answer's field; the filter is status. Taken
		// silently, it listed every run as if filtered.
		{name: "list by a misspelt filter", method: "GET", path: "/rollouts?state=running", auth: bearer, want: 400, field: "state", contains: "fleet, status, phase, limit, page_token"},
		{name: "list by a filter given twice", method: "GET", path: "/rollouts?status=running&status=failed", auth: bearer, want: 400, field: "status", contains: "given 2 times"},
		{name: "list bad page token", method: "GET", path: "/rollouts?page_token=!!!", auth: bearer, want: 400, field: "page_token"},
		// Go's URL.Query drops a parameter it cannot decode: a client with
		// a broken token would get the first page again, and loop on it.
		{name: "list undecodable page token", method: "GET", path: "/rollouts?page_token=%%%", auth: bearer, want: 400, contains: "query"},
		{name: "retry undecodable force", setup: func(f *fakeBackend) { f.add("lab", workflows.PhaseFailed) },
			method: "POST", path: "/rollouts/rollout-lab:run-1/retry?force=%zz", auth: bearer, want: 400, contains: "query"},
		{name: "list without token", method: "GET", path: "/rollouts", want: 401},
		// Temporal unreachable is no bug of the API: a 503 to try again,
		// which says that it is the API that got no answer from Temporal
		// and what to check, since the client does not talk to Temporal.
		{name: "list Temporal unreachable", setup: func(f *fakeBackend) {
			f.listErr = fmt.Errorf("list: %w", serviceerror.NewUnavailable("connection error: dial tcp 10.0.0.5:7233: connect: connection refused"))
		},
			method: "GET", path: "/rollouts", auth: bearer, want: 503, contains: "the API got no answer from Temporal",
			after: func(t *testing.T, _ *fakeBackend, rec *httptest.ResponseRecorder) {
				if rec.Header().Get("Retry-After") == "" || strings.Contains(rec.Body.String(), "10.0.0.5") {
					t.Errorf("503 without Retry-After, or showing the internal error: %v %s", rec.Header(), rec.Body)
				}
				if body := rec.Body.String(); !strings.Contains(body, "TEMPORAL_ADDRESS") || !strings.Contains(body, "Temporal frontend") {
					t.Errorf("503 %s: want it to name the API's Temporal address and the frontend to check", body)
				}
			}},
		{name: "list backend down", setup: func(f *fakeBackend) { f.listErr = errors.New("dial tcp: connection refused") },
			method: "GET", path: "/rollouts", auth: bearer, want: 500,
			after: func(t *testing.T, _ *fakeBackend, rec *httptest.ResponseRecorder) {
				if strings.Contains(rec.Body.String(), "connection refused") {
					t.Errorf("500 shows the internal error: %s", rec.Body)
				}
			}},

		{name: "get", setup: func(f *fakeBackend) { f.add("lab", workflows.PhaseFailed) },
			method: "GET", path: "/rollouts/rollout-lab:run-1", auth: bearer, want: 200, contains: `"failure": "VerifyGreen failed`},
		{name: "get latest of fleet", setup: func(f *fakeBackend) { f.add("lab", workflows.PhaseFailed); f.add("lab", workflows.PhaseBaking) },
			method: "GET", path: "/rollouts/rollout-lab", auth: bearer, want: 200, contains: `"id": "rollout-lab:run-2"`},
		{name: "get unknown", method: "GET", path: "/rollouts/rollout-lab:run-9", auth: bearer, want: 404},
		// encodeURIComponent and Python's quote(id, safe="") escape the colon.
		{name: "get with an escaped colon", setup: func(f *fakeBackend) { f.add("lab", workflows.PhaseFailed); f.add("lab", workflows.PhaseBaking) },
			method: "GET", path: "/rollouts/rollout-lab%3Arun-1", auth: bearer, want: 200, contains: `"id": "rollout-lab:run-1"`},
		{name: "get escaped twice", setup: func(f *fakeBackend) { f.add("lab", workflows.PhaseFailed) },
			method: "GET", path: "/rollouts/rollout-lab%253Arun-1", auth: bearer, want: 404, contains: `no rollout \"rollout-lab%3Arun-1\"`},
		{name: "get malformed id", method: "GET", path: "/rollouts/lab", auth: bearer, want: 404},
		{name: "get without token", method: "GET", path: "/rollouts/rollout-lab:run-1", want: 401},

		{name: "abort", setup: func(f *fakeBackend) { f.add("lab", workflows.PhaseProvisioning) },
			method: "POST", path: "/rollouts/rollout-lab:run-1/abort", body: `{"reason":"bad zone","by":"ci"}`, auth: bearer, want: 202,
			after: func(t *testing.T, f *fakeBackend, _ *httptest.ResponseRecorder) {
				if got, want := strings.Join(f.signals, ";"), "abort rollout-lab:run-1 bad zone ci"; got != want {
					t.Errorf("signals = %q, want %q", got, want)
				}
			}},
		{name: "abort with an escaped colon", setup: func(f *fakeBackend) { f.add("lab", workflows.PhaseProvisioning) },
			method: "POST", path: "/rollouts/rollout-lab%3arun-1/abort", auth: bearer, want: 202, contains: `"id": "rollout-lab:run-1"`},
		{name: "abort without body", setup: func(f *fakeBackend) { f.add("lab", workflows.PhaseProvisioning) },
			method: "POST", path: "/rollouts/rollout-lab/abort", auth: bearer, want: 202, contains: `"id": "rollout-lab:run-1"`},
		{name: "abort ended", setup: func(f *fakeBackend) { f.add("lab", workflows.PhaseSucceeded) },
			method: "POST", path: "/rollouts/rollout-lab:run-1/abort", auth: bearer, want: 409, contains: "has ended (succeeded)"},
		{name: "abort while deleting blue", setup: func(f *fakeBackend) { f.add("lab", workflows.PhaseDeletingBlue) },
			method: "POST", path: "/rollouts/rollout-lab:run-1/abort", auth: bearer, want: 409, contains: "nothing to roll back to"},
		// A fleet's first rollout passes its point of no return at the
		// switch, in a phase that otherwise takes an abort.
		{name: "abort a first rollout past its switch", setup: func(f *fakeBackend) {
			f.runs[f.add("lab", workflows.PhaseBaking)].NoWayBack = "the fleet's first rollout has no blue to go back to"
		},
			method: "POST", path: "/rollouts/rollout-lab:run-1/abort", auth: bearer, want: 409, contains: "first rollout has no blue", after: sentNothing},
		{name: "approve is not a way back", setup: func(f *fakeBackend) {
			f.runs[f.add("lab", workflows.PhaseAwaitingApproval)].NoWayBack = "the fleet's first rollout has no blue to go back to"
		},
			method: "POST", path: "/rollouts/rollout-lab:run-1/approve", auth: bearer, want: 202},
		{name: "abort unknown", method: "POST", path: "/rollouts/rollout-lab:run-9/abort", auth: bearer, want: 404},
		{name: "abort unknown field", setup: func(f *fakeBackend) { f.add("lab", workflows.PhaseProvisioning) },
			method: "POST", path: "/rollouts/rollout-lab:run-1/abort", body: `{"why":"x"}`, auth: bearer, want: 400, field: "why"},
		{name: "abort oversized", method: "POST", path: "/rollouts/rollout-lab:run-1/abort", body: big, auth: bearer, want: 413},
		{name: "abort without token", method: "POST", path: "/rollouts/rollout-lab:run-1/abort", want: 401},

		{name: "retry a failed rollout", setup: func(f *fakeBackend) { f.add("lab", workflows.PhaseFailed) },
			method: "POST", path: "/rollouts/rollout-lab:run-1/retry", auth: bearer, want: 201, contains: `"id": "rollout-lab:run-2"`,
			after: func(t *testing.T, f *fakeBackend, _ *httptest.ResponseRecorder) {
				if len(f.started) != 1 || f.started[0].Fleet != "lab" {
					t.Errorf("retry started %+v, want the failed rollout's input again", f.started)
				}
			}},
		{name: "retry with an escaped colon", setup: func(f *fakeBackend) { f.add("lab", workflows.PhaseFailed) },
			method: "POST", path: "/rollouts/rollout-lab%3Arun-1/retry", auth: bearer, want: 201, contains: `"id": "rollout-lab:run-2"`},
		{name: "retry while running", setup: func(f *fakeBackend) { f.add("lab", workflows.PhaseProvisioning) },
			method: "POST", path: "/rollouts/rollout-lab:run-1/retry", auth: bearer, want: 409, contains: "still running"},
		{name: "retry unknown", method: "POST", path: "/rollouts/rollout-lab:run-9/retry", auth: bearer, want: 404},
		// A rollout someone stopped, or that succeeded, is not started again
		// by a retry meant for a failed one, unless the caller says so.
		{name: "retry an aborted rollout", setup: func(f *fakeBackend) {
			ro := f.runs[f.add("lab", workflows.PhaseAborted)]
			ro.Failure, ro.StoppedBy = "aborted by alice: wrong zone", workflows.SignalAbort
		},
			method: "POST", path: "/rollouts/rollout-lab:run-1/retry", auth: bearer, want: 409, contains: "aborted by alice: wrong zone", after: startedNothing},
		{name: "retry a rolled-back rollout", setup: func(f *fakeBackend) {
			f.runs[f.add("lab", workflows.PhaseRolledBack)].StoppedBy = workflows.SignalRollback
		},
			method: "POST", path: "/rollouts/rollout-lab:run-1/retry", auth: bearer, want: 409, contains: "force=true", after: startedNothing},
		// A rollback after a failure, or an approval that timed out, is
		// no one's decision: a retry needs no force.
		{name: "retry a rollout rolled back after a failure", setup: func(f *fakeBackend) {
			f.runs[f.add("lab", workflows.PhaseRolledBack)].Failure = "VerifyLoadBalancers failed: x; rolled back automatically"
		},
			method: "POST", path: "/rollouts/rollout-lab:run-1/retry", auth: bearer, want: 201},
		{name: "retry a rollout whose approval timed out", setup: func(f *fakeBackend) {
			f.runs[f.add("lab", workflows.PhaseAborted)].Failure = "aborted: not approved within 24h0m0s (rollout.approval_timeout)"
		},
			method: "POST", path: "/rollouts/rollout-lab:run-1/retry", auth: bearer, want: 201},
		{name: "retry a succeeded rollout", setup: func(f *fakeBackend) { f.add("lab", workflows.PhaseSucceeded) },
			method: "POST", path: "/rollouts/rollout-lab:run-1/retry", auth: bearer, want: 409, contains: "it succeeded", after: startedNothing},
		{name: "retry an aborted rollout with force", setup: func(f *fakeBackend) { f.runs[f.add("lab", workflows.PhaseAborted)].StoppedBy = workflows.SignalAbort },
			method: "POST", path: "/rollouts/rollout-lab:run-1/retry?force=true", auth: bearer, want: 201},
		// force=false&force=true would force or not by which value is read;
		// force=1 or yes, read as false, would be refused as unforced
		// (or, for a failed rollout, start it) without saying why.
		{name: "retry with force given twice", setup: func(f *fakeBackend) { f.runs[f.add("lab", workflows.PhaseAborted)].StoppedBy = workflows.SignalAbort },
			method: "POST", path: "/rollouts/rollout-lab:run-1/retry?force=false&force=true", auth: bearer, want: 400, field: "force", contains: "given 2 times", after: startedNothing},
		{name: "retry with force=1", setup: func(f *fakeBackend) { f.runs[f.add("lab", workflows.PhaseAborted)].StoppedBy = workflows.SignalAbort },
			method: "POST", path: "/rollouts/rollout-lab:run-1/retry?force=1", auth: bearer, want: 400, field: "force", contains: "must be true or false", after: startedNothing},
		// A body that is not JSON is told so, not that a retry takes none.
		{name: "retry with a broken body", setup: func(f *fakeBackend) { f.add("lab", workflows.PhaseFailed) },
			method: "POST", path: "/rollouts/rollout-lab:run-1/retry", body: `nope`, auth: bearer, want: 400, field: "body", contains: "invalid JSON", after: startedNothing},
		{name: "retry with an unknown parameter", setup: func(f *fakeBackend) { f.runs[f.add("lab", workflows.PhaseAborted)].StoppedBy = workflows.SignalAbort },
			method: "POST", path: "/rollouts/rollout-lab:run-1/retry?forced=1", auth: bearer, want: 400, field: "forced", after: startedNothing},
		// A rollout, an update and a replacement all change the fleet's load
		// balancers: a retry waits as a start does.
		{name: "retry while a load balancer update runs", setup: func(f *fakeBackend) {
			f.add("lab", workflows.PhaseFailed)
			f.addRun(LBUpdates, "lab", "running", updating(workflows.PhaseUpdatingLBs))
		},
			method: "POST", path: "/rollouts/rollout-lab:run-1/retry", auth: bearer, want: 409, contains: `"rollout_id": "lbupdate-lab:run-2"`,
			after: startedNothing},
		{name: "retry while a load balancer replacement runs", setup: func(f *fakeBackend) {
			f.add("lab", workflows.PhaseFailed)
			f.addRun(LBReplacements, "lab", "running", replacing(workflows.PhaseDraining))
		},
			method: "POST", path: "/rollouts/rollout-lab:run-1/retry", auth: bearer, want: 409, contains: "running load balancer replacement"},
		{name: "retry with an empty object", setup: func(f *fakeBackend) { f.add("lab", workflows.PhaseFailed) },
			method: "POST", path: "/rollouts/rollout-lab:run-1/retry", body: `{}`, auth: bearer, want: 201},
		{name: "retry invalid JSON", setup: func(f *fakeBackend) { f.add("lab", workflows.PhaseFailed) },
			method: "POST", path: "/rollouts/rollout-lab:run-1/retry", body: `{{{{`, auth: bearer, want: 400, field: "body"},
		// The retry has the input of the rollout it retries; a reason sent
		// with it would be lost.
		{name: "retry with a reason", setup: func(f *fakeBackend) { f.add("lab", workflows.PhaseFailed) },
			method: "POST", path: "/rollouts/rollout-lab:run-1/retry", body: `{"reason":"flaky"}`, auth: bearer, want: 400, field: "reason",
			contains: "takes no body"},
		{name: "retry without token", method: "POST", path: "/rollouts/rollout-lab:run-1/retry", want: 401},
		// What the failed run left goes with the request: the fleet may
		// no longer name ns2, whose green it left.
		{name: "cleanup after cleanup-failed", setup: func(f *fakeBackend) {
			run := f.runs[f.add("lab", workflows.PhaseCleanupFailed)]
			run.Cleanup = &workflows.Cleanup{Left: []workflows.Leftover{
				{Kind: workflows.LeftoverServer, Name: "ns2-next", ID: 12, Action: "delete"}}}
			// A replacement's zone rollout: its new load balancer too.
			run.ExtraLoadBalancers = []config.LoadBalancer{{Name: "lb1-next", Address: "203.0.113.1:53"}}
		},
			method: "POST", path: "/rollouts/rollout-lab:run-1/cleanup", body: `{"reason":"token fixed","by":"ops"}`, auth: bearer, want: 201, contains: `"id": "rollout-lab:run-2"`,
			after: func(t *testing.T, f *fakeBackend, _ *httptest.ResponseRecorder) {
				if len(f.started) != 1 || f.started[0].CleanUp == nil {
					t.Fatalf("cleanup started %+v, want one cleanup-only run", f.started)
				}
				in := f.started[0]
				if in.CleanUp.From != "rollout-lab:run-1" || in.CleanUp.Blue["ns1"].DNSPort != 15301 || in.RequestedBy != "ops" || in.Reason != "token fixed" {
					t.Errorf("cleanup input %+v (%+v), want the failed run's blue, by ops", in, *in.CleanUp)
				}
				if len(in.CleanUp.Left) != 1 || in.CleanUp.Left[0].Name != "ns2-next" || in.CleanUp.Left[0].ID != 12 {
					t.Errorf("cleanup left %+v, want the failed run's ns2-next with its ID", in.CleanUp.Left)
				}
				if len(in.ExtraLoadBalancers) != 1 || in.ExtraLoadBalancers[0].Name != "lb1-next" {
					t.Errorf("cleanup's extra load balancers %+v, want the failed run's lb1-next", in.ExtraLoadBalancers)
				}
			}},
		{name: "cleanup with an escaped colon", setup: func(f *fakeBackend) { f.add("lab", workflows.PhaseCleanupFailed) },
			method: "POST", path: "/rollouts/rollout-lab%3Arun-1/cleanup", auth: bearer, want: 201, contains: `"id": "rollout-lab:run-2"`},
		{name: "cleanup after a rollback that worked", setup: func(f *fakeBackend) { f.add("lab", workflows.PhaseRolledBack) },
			method: "POST", path: "/rollouts/rollout-lab:run-1/cleanup", auth: bearer, want: 409, contains: "only a cleanup-failed rollout, or one whose workflow ended mid-way (terminated), has something left to undo"},
		// At 3 a.m. the fleet's latest run may be one Plan refused after
		// the cleanup-failed one (--fleet names the latest): the refusal
		// says how to name the one to clean up after.
		{name: "cleanup of the latest, which a cleanup-failed one preceded", setup: func(f *fakeBackend) {
			f.add("lab", workflows.PhaseCleanupFailed)
			f.add("lab", workflows.PhaseFailed)
		},
			method: "POST", path: "/rollouts/rollout-lab/cleanup", auth: bearer, want: 409,
			contains: "dnsroll rollout list --fleet lab --phase cleanup-failed", after: startedNothing},
		// The same after a terminated one, which --phase cleanup-failed
		// does not list: its phase is the one it was terminated in.
		{name: "cleanup of the latest, which a terminated one preceded", setup: func(f *fakeBackend) {
			f.runs[f.add("lab", workflows.PhaseBaking)].State = "terminated"
			f.add("lab", workflows.PhaseFailed)
		},
			method: "POST", path: "/rollouts/rollout-lab/cleanup", auth: bearer, want: 409,
			contains: "dnsroll rollout list --fleet lab --status terminated", after: startedNothing},
		// A rollout terminated (or timed out) mid-way ran none of its undo
		// steps: a cleanup puts back what it may have left, as after
		// cleanup-failed, unless it had passed its point of no return.
		// Its green servers are named to the cleanup, as a cleanup-failed
		// run's cleanup.left is: the fleet file may drop or rename a
		// nameserver before the cleanup, and its labels would miss them.
		{name: "cleanup after a rollout terminated while baking", setup: func(f *fakeBackend) {
			ro := f.runs[f.add("lab", workflows.PhaseBaking)]
			ro.State = "terminated"
			ro.Status.Green = map[string]dnsroll.Server{"ns2": {ID: 8, Label: "ns2-next"}, "ns1": {ID: 7, Label: "ns1-next"}}
		},
			method: "POST", path: "/rollouts/rollout-lab:run-1/cleanup", body: `{"reason":"terminated by mistake"}`, auth: bearer, want: 201, contains: `"id": "rollout-lab:run-2"`,
			after: func(t *testing.T, f *fakeBackend, _ *httptest.ResponseRecorder) {
				if len(f.started) != 1 || f.started[0].CleanUp == nil || f.started[0].CleanUp.From != "rollout-lab:run-1" || f.started[0].CleanUp.Blue["ns1"].Label != "ns1" {
					t.Fatalf("cleanup started %+v, want one cleanup-only run after run-1, with its blue", f.started)
				}
				want := []workflows.Leftover{
					{Kind: workflows.LeftoverServer, Name: "ns1-next", ID: 7, Action: "delete"},
					{Kind: workflows.LeftoverServer, Name: "ns2-next", ID: 8, Action: "delete"},
				}
				if got := f.started[0].CleanUp.Left; !slices.Equal(got, want) {
					t.Errorf("cleanup left %+v, want the terminated run's green servers %+v", got, want)
				}
			}},
		// Terminated between failed cleanup rounds: its cleanup is
		// recorded, but cleanup.left is filled only when a run ends
		// cleanup-failed. The green servers it knew still go with the
		// request, with their IDs.
		{name: "cleanup after a rollout terminated between failed cleanup rounds", setup: func(f *fakeBackend) {
			ro := f.runs[f.add("lab", workflows.PhaseRollingBack)]
			ro.State = "terminated"
			ro.Status.Green = map[string]dnsroll.Server{"ns2": {ID: 8, Label: "ns2-next"}, "ns1": {ID: 7, Label: "ns1-next"}}
			ro.Status.Cleanup = &workflows.Cleanup{Round: 1, LastError: "DeleteGreen failed: 401"}
		},
			method: "POST", path: "/rollouts/rollout-lab:run-1/cleanup", auth: bearer, want: 201,
			after: wantCleanupLeft(
				workflows.Leftover{Kind: workflows.LeftoverServer, Name: "ns1-next", ID: 7, Action: "delete"},
				workflows.Leftover{Kind: workflows.LeftoverServer, Name: "ns2-next", ID: 8, Action: "delete"})},
		// A cleanup-only run knows the servers it deletes from its
		// request, which its status does not show: terminated, it passes
		// them on, with what the fleet's nameservers' labels miss.
		{name: "cleanup after a cleanup-only run terminated", setup: func(f *fakeBackend) {
			id := f.add("lab", workflows.PhaseRollingBack)
			ro := f.runs[id]
			ro.State = "terminated"
			ro.Status.Cleanup = &workflows.Cleanup{Round: 2, LastError: "DeleteGreen failed: 401"}
			f.setInput(id, workflows.RolloutInput{Fleet: "lab", CleanUp: &workflows.CleanupRequest{From: "rollout-lab:run-0", Blue: ro.Blue, Left: []workflows.Leftover{
				{Kind: workflows.LeftoverLoadBalancer, Name: "lb2", Action: "point back at blue ns2"},
				{Kind: workflows.LeftoverServer, Name: "ns1-next", Action: "delete if it exists"},
				{Kind: workflows.LeftoverServer, Name: "ns3-next", ID: 13, Action: "delete"},
			}}})
		},
			method: "POST", path: "/rollouts/rollout-lab:run-1/cleanup", auth: bearer, want: 201,
			after: wantCleanupLeft(
				workflows.Leftover{Kind: workflows.LeftoverLoadBalancer, Name: "lb2", Action: "point back at blue ns2"},
				workflows.Leftover{Kind: workflows.LeftoverServer, Name: "ns1-next", Action: "delete if it exists"},
				workflows.Leftover{Kind: workflows.LeftoverServer, Name: "ns3-next", ID: 13, Action: "delete"})},
		// Its request cannot be read (Temporal down): a cleanup started
		// without the servers it names would leave them running unsaid.
		{name: "cleanup after a cleanup-only run terminated, its request unread", setup: func(f *fakeBackend) {
			ro := f.runs[f.add("lab", workflows.PhaseRollingBack)]
			ro.State = "terminated"
			f.inputErr = serviceerror.NewUnavailable("connection error: dial tcp 10.0.0.5:7233: connect: connection refused")
		},
			method: "POST", path: "/rollouts/rollout-lab:run-1/cleanup", auth: bearer, want: 503, contains: "the API got no answer from Temporal", after: startedNothing},
		// Terminated at its Plan step, before it recorded blue: a cleanup
		// would point every load balancer at no server.
		{name: "cleanup after a rollout terminated while planning", setup: func(f *fakeBackend) {
			ro := f.runs[f.add("lab", workflows.PhasePlanning)]
			ro.State, ro.Blue = "terminated", nil
		},
			method: "POST", path: "/rollouts/rollout-lab:run-1/cleanup", auth: bearer, want: 409, contains: "before it recorded any blue servers", after: startedNothing},
		{name: "cleanup after a rollout terminated while renaming", setup: func(f *fakeBackend) {
			f.runs[f.add("lab", workflows.PhaseRenaming)].State = "terminated"
		},
			method: "POST", path: "/rollouts/rollout-lab:run-1/cleanup", auth: bearer, want: 409, contains: "point of no return", after: startedNothing},
		// One still running has not ended mid-way: its own undo runs.
		{name: "cleanup of a rollout still baking", setup: func(f *fakeBackend) { f.add("lab", workflows.PhaseBaking) },
			method: "POST", path: "/rollouts/rollout-lab:run-1/cleanup", auth: bearer, want: 409, contains: "it is baking", after: startedNothing},
		{name: "cleanup after a rollout terminated while deleting blue", setup: func(f *fakeBackend) {
			f.runs[f.add("lab", workflows.PhaseDeletingBlue)].State = "terminated"
		},
			method: "POST", path: "/rollouts/rollout-lab:run-1/cleanup", auth: bearer, want: 409, contains: "point of no return", after: startedNothing},
		{name: "cleanup after a first rollout terminated past its switch", setup: func(f *fakeBackend) {
			ro := f.runs[f.add("lab", workflows.PhaseBaking)]
			ro.State, ro.NoWayBack = "timed-out", "the fleet's first rollout has no blue to go back to"
		},
			method: "POST", path: "/rollouts/rollout-lab:run-1/cleanup", auth: bearer, want: 409, contains: "no blue to go back to", after: startedNothing},
		{name: "cleanup after cleanup-failed with no blue recorded", setup: func(f *fakeBackend) { f.runs[f.add("lab", workflows.PhaseCleanupFailed)].Blue = nil },
			method: "POST", path: "/rollouts/rollout-lab:run-1/cleanup", auth: bearer, want: 409, contains: "recorded no blue servers"},
		// A later rollout may have deleted run-1's blue servers: pointing the
		// load balancers back at them would take the fleet down.
		{name: "cleanup after a rollout that later ones superseded", setup: func(f *fakeBackend) {
			f.add("lab", workflows.PhaseCleanupFailed)
			f.add("lab", workflows.PhaseCleanedUp)
			f.add("lab", workflows.PhaseSucceeded)
		},
			method: "POST", path: "/rollouts/rollout-lab:run-1/cleanup", auth: bearer, want: 409, contains: `"rollout_id": "rollout-lab:run-3"`,
			after: startedNothing},
		// Rollouts refused because the fleet was busy changed nothing.
		{name: "cleanup after a rollout that only refused ones followed", setup: func(f *fakeBackend) {
			f.add("lab", workflows.PhaseCleanupFailed)
			f.addRefused("lab")
			f.addRefused("lab")
		},
			method: "POST", path: "/rollouts/rollout-lab:run-1/cleanup", auth: bearer, want: 201, contains: `"id": "rollout-lab:run-4"`},
		{name: "cleanup after a rollout that a refused one and a real one followed", setup: func(f *fakeBackend) {
			f.add("lab", workflows.PhaseCleanupFailed)
			f.add("lab", workflows.PhaseSucceeded)
			f.addRefused("lab")
		},
			method: "POST", path: "/rollouts/rollout-lab:run-1/cleanup", auth: bearer, want: 409, contains: `"rollout_id": "rollout-lab:run-2"`,
			after: startedNothing},
		{name: "cleanup after the latest of several rollouts", setup: func(f *fakeBackend) {
			f.add("lab", workflows.PhaseSucceeded)
			f.add("lab", workflows.PhaseCleanupFailed)
		},
			method: "POST", path: "/rollouts/rollout-lab:run-2/cleanup", auth: bearer, want: 201, contains: `"id": "rollout-lab:run-3"`},
		{name: "cleanup while another rollout runs", setup: func(f *fakeBackend) {
			f.add("lab", workflows.PhaseCleanupFailed)
			f.add("lab", workflows.PhaseProvisioning)
		},
			method: "POST", path: "/rollouts/rollout-lab:run-1/cleanup", auth: bearer, want: 409, contains: "running"},
		{name: "cleanup without token", method: "POST", path: "/rollouts/rollout-lab:run-1/cleanup", want: 401},
		{name: "rollback", setup: func(f *fakeBackend) { f.add("lab", workflows.PhaseBaking) },
			method: "POST", path: "/rollouts/rollout-lab:run-1/rollback", body: `{"reason":"latency"}`, auth: bearer, want: 202},
		{name: "rollback while renaming", setup: func(f *fakeBackend) { f.add("lab", workflows.PhaseRenaming) },
			method: "POST", path: "/rollouts/rollout-lab:run-1/rollback", auth: bearer, want: 409, contains: "blue servers are being deleted"},
		{name: "rollback while rolling back", setup: func(f *fakeBackend) { f.add("lab", workflows.PhaseRollingBack) },
			method: "POST", path: "/rollouts/rollout-lab:run-1/rollback", auth: bearer, want: 409, contains: "already rolling back"},
		{name: "rollback ended", setup: func(f *fakeBackend) { f.add("lab", workflows.PhaseAborted) },
			method: "POST", path: "/rollouts/rollout-lab:run-1/rollback", auth: bearer, want: 409},
		{name: "rollback unknown", method: "POST", path: "/rollouts/rollout-lab:run-9/rollback", auth: bearer, want: 404},
		{name: "approve", setup: func(f *fakeBackend) { f.add("lab", workflows.PhaseAwaitingApproval) },
			method: "POST", path: "/rollouts/rollout-lab:run-1/approve", body: `{"by":"alice"}`, auth: bearer, want: 202, contains: `"signal": "approve"`},
		{name: "approve before the gate", setup: func(f *fakeBackend) { f.add("lab", workflows.PhaseProvisioning) },
			method: "POST", path: "/rollouts/rollout-lab:run-1/approve", auth: bearer, want: 409, contains: "not awaiting approval"},
		{name: "approve unknown", method: "POST", path: "/rollouts/rollout-lab:run-9/approve", auth: bearer, want: 404},
		{name: "approve the open gate", setup: func(f *fakeBackend) { f.runs[f.add("lab", workflows.PhaseAwaitingApproval)].ApprovalGate = 2 },
			method: "POST", path: "/rollouts/rollout-lab:run-1/approve", body: `{"gate":2}`, auth: bearer, want: 202, after: wantSignals("approve rollout-lab:run-1  api gate 2")},
		// Each run numbers its gates from 1, and the fleet's latest may
		// be a run started since the status was read: a gate is one run's.
		{name: "approve a gate of the fleet's latest", setup: func(f *fakeBackend) { f.runs[f.add("lab", workflows.PhaseAwaitingApproval)].ApprovalGate = 1 },
			method: "POST", path: "/rollouts/rollout-lab/approve", body: `{"gate":1}`, auth: bearer, want: 400, field: "gate", contains: "name the run too, rollout-lab:", after: wantSignals()},
		{name: "approve the fleet's latest at whichever gate", setup: func(f *fakeBackend) { f.runs[f.add("lab", workflows.PhaseAwaitingApproval)].ApprovalGate = 1 },
			method: "POST", path: "/rollouts/rollout-lab/approve", auth: bearer, want: 202, after: wantSignals("approve rollout-lab:run-1  api")},
		{name: "approve a closed gate", setup: func(f *fakeBackend) { f.runs[f.add("lab", workflows.PhaseAwaitingApproval)].ApprovalGate = 2 },
			method: "POST", path: "/rollouts/rollout-lab:run-1/approve", body: `{"gate":1}`, auth: bearer, want: 409, contains: "approval gate 1 is not open: gate 2 is"},
		// A status read without the workflow (no worker answered its
		// query: what Temporal recorded), or from a worker from before
		// gates were numbered, shows none open: not "gate 0".
		{name: "approve a gate the status does not number", setup: func(f *fakeBackend) { f.add("lab", workflows.PhaseAwaitingApproval) },
			method: "POST", path: "/rollouts/rollout-lab:run-1/approve", body: `{"gate":1}`, auth: bearer, want: 409, contains: "the status does not say which approval gate is open"},
		// With no worker to say which gate is open, an approve naming one
		// is sent, since the rollout takes it only at that gate: refused,
		// the operator was told to approve whichever gate is open, unseen.
		{name: "approve a gate with no worker answering", setup: func(f *fakeBackend) {
			f.runs[f.add("lab", workflows.PhaseAwaitingApproval)].ApprovalGate = 2
			f.noWorker = true
		},
			method: "POST", path: "/rollouts/rollout-lab:run-1/approve", body: `{"gate":1}`, auth: bearer, want: 202,
			contains: "takes this approve only if approval gate 1 is open", after: wantSignals("approve rollout-lab:run-1  api gate 1")},
		{name: "approve with no worker answering", setup: func(f *fakeBackend) {
			f.add("lab", workflows.PhaseAwaitingApproval)
			f.noWorker = true
		},
			method: "POST", path: "/rollouts/rollout-lab:run-1/approve", auth: bearer, want: 202,
			contains: "approves whichever approval gate is open", after: wantSignals("approve rollout-lab:run-1  api")},
		{name: "approve before the gate with no worker answering", setup: func(f *fakeBackend) {
			f.add("lab", workflows.PhaseProvisioning)
			f.noWorker = true
		},
			method: "POST", path: "/rollouts/rollout-lab:run-1/approve", body: `{"gate":1}`, auth: bearer, want: 409, contains: "not awaiting approval", after: wantSignals()},
		{name: "approve a gate of no number", setup: func(f *fakeBackend) { f.add("lab", workflows.PhaseAwaitingApproval) },
			method: "POST", path: "/rollouts/rollout-lab:run-1/approve", body: `{"gate":-1}`, auth: bearer, want: 400, contains: `"field": "gate"`},
		{name: "abort with a gate", setup: func(f *fakeBackend) { f.add("lab", workflows.PhaseAwaitingApproval) },
			method: "POST", path: "/rollouts/rollout-lab:run-1/abort", body: `{"gate":1}`, auth: bearer, want: 400, contains: "is only for approve"},

		{name: "healthz", method: "GET", path: "/healthz", want: 200, contains: `"temporal": "reachable"`},
		{name: "healthz Temporal down", setup: func(f *fakeBackend) { f.healthy = false }, method: "GET", path: "/healthz", want: 503, contains: "unreachable"},
		{name: "openapi", method: "GET", path: "/openapi.yaml", want: 200, contains: "openapi: 3.0.3"},
		{name: "unknown route", method: "GET", path: "/nope", want: 404},
		{name: "wrong method", method: "DELETE", path: "/healthz", want: 405},
	}
	runRouterCases(t, tests)
}

// With fleet configs, unknown fleets and missing revisions are 400s before
// anything starts.
// labFleets loads fleet lab, with one zone and load balancer lb1, and no other.
func labFleets(tb testing.TB) func(string) (*config.Fleet, error) {
	tb.Helper()
	lab := &config.Fleet{Name: "lab", Zones: []config.Zone{{Name: "example.com", File: "zones/{revision}/example.com.zone"}},
		LoadBalancers: []config.LoadBalancer{{Name: "lb1", Address: "127.0.0.1:5301", Fronts: config.Labels{"ns1"}}}}
	return func(name string) (*config.Fleet, error) {
		if name != "lab" {
			return nil, dnsroll.Errorf(dnsroll.ENOTFOUND, "no fleet %q: there is no %s.yaml among the fleet files (the fleets are lab)", name, name)
		}
		return lab, nil
	}
}

func TestStartChecksFleetConfig(t *testing.T) {
	ts := newTestServer(t, func(c *Config) { c.Fleets = labFleets(t) })
	for _, tt := range []struct{ body, field, contains string }{
		{`{"fleet":"prod","revision":"B"}`, "fleet", `no fleet \"prod\": there is no prod.yaml among the fleet files (the fleets are lab)`},
		{`{"fleet":"lab"}`, "revision", "is required"},
		{`{"fleet":"lab","revision":"B","live_bundle":"sha256:00"}`, "live_bundle", "looks up the fleet's live revision"},
		{`{"fleet":"lab","revision":"B","live_unknown":"x"}`, "live_unknown", "looks up the fleet's live revision"},
		{`{"fleet":"lab","revision":"B","held_by":"lbreplace-lab"}`, "held_by", "only a load balancer replacement sets it"},
		{`{"fleet":"lab","revision":"B","extra_load_balancers":[{"name":"lb9","address":"192.0.2.9:53"}]}`, "extra_load_balancers", "only a load balancer replacement sets it"},
		// A cleanup started here would skip the checks of
		// POST /rollouts/{id}/cleanup, and point the load balancers at
		// servers a later rollout may have deleted.
		{`{"fleet":"lab","revision":"B","clean_up":{"from":"rollout-lab:run-1","blue":{"ns1":{"label":"ns1"}}}}`, "clean_up", "POST /rollouts/{id}/cleanup"},
	} {
		rec := ts.do(t, "POST", "/rollouts", tt.body, "Bearer "+token)
		e := errorBody(t, rec)
		if rec.Code != 400 || e.Field != tt.field || !strings.Contains(rec.Body.String(), tt.contains) {
			t.Errorf("%s → %d %s, want 400 about %s", tt.body, rec.Code, rec.Body, tt.field)
		}
	}
	if len(ts.fake.started) != 0 {
		t.Errorf("started %v", ts.fake.started)
	}
}

// Requests are logged as JSON lines with their request ID; a sane caller ID is kept.
func TestRequestLogAndID(t *testing.T) {
	ts := newTestServer(t, nil)
	r := httptest.NewRequest("GET", "/rollouts?fleet=lab", nil)
	r.Header.Set("Authorization", "Bearer "+token)
	r.Header.Set(RequestIDHeader, "ci-build-42")
	rec := httptest.NewRecorder()
	ts.h.ServeHTTP(rec, r)
	if got := rec.Header().Get(RequestIDHeader); got != "ci-build-42" {
		t.Errorf("request ID = %q", got)
	}
	var line map[string]any
	if err := json.Unmarshal(ts.log.Bytes(), &line); err != nil {
		t.Fatalf("log %q: %v", ts.log, err)
	}
	if line["request_id"] != "ci-build-42" || line["route"] != "/rollouts" || line["status"] != float64(200) {
		t.Errorf("log line %v", line)
	}
}

// /metrics counts requests by route pattern, not by path.
func TestMetrics(t *testing.T) {
	ts := newTestServer(t, nil)
	ts.fake.add("lab", workflows.PhaseBaking)
	ts.do(t, "GET", "/rollouts/rollout-lab:run-1", "", "Bearer "+token)
	ts.do(t, "GET", "/rollouts/rollout-lab:run-1", "", "")
	rec := ts.do(t, "GET", "/metrics", "", "")
	for _, want := range []string{
		`dnsroll_api_requests_total{code="200",method="GET",route="/rollouts/{id}"} 1`,
		`dnsroll_api_requests_total{code="401",method="GET",route="/rollouts/{id}"} 1`,
		`dnsroll_api_request_duration_seconds_count{method="GET",route="/rollouts/{id}"} 2`,
	} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("metrics lack %s:\n%s", want, rec.Body)
		}
	}
}

// Pages: the API's next_page_token fetches the next page; the same token
// with other filters, or from an API with another key, is refused as a
// 400 naming page_token, never passed on to Temporal.
func TestPagination(t *testing.T) {
	ts := newTestServer(t, nil)
	ts.fake.add("lab", workflows.PhaseSucceeded)
	ts.fake.add("lab", workflows.PhaseFailed)
	var page Page
	rec := ts.do(t, "GET", "/rollouts?limit=1&fleet=lab", "", "Bearer "+token)
	if err := json.Unmarshal(rec.Body.Bytes(), &page); err != nil || len(page.Rollouts) != 1 || page.NextPageToken == "" {
		t.Fatalf("first page: %v %s", err, rec.Body)
	}
	rec = ts.do(t, "GET", "/rollouts?limit=1&fleet=lab&page_token="+page.NextPageToken, "", "Bearer "+token)
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), "rollout-lab:run-1") {
		t.Errorf("second page: %d %s", rec.Code, rec.Body)
	}
	// prod has as many runs as lab, so that the backend would take the
	// token and list prod's second page: only the API's seal refuses it.
	ts.fake.add("prod", workflows.PhaseSucceeded)
	ts.fake.add("prod", workflows.PhaseFailed)
	rec = ts.do(t, "GET", "/rollouts?limit=1&fleet=prod&page_token="+page.NextPageToken, "", "Bearer "+token)
	if rec.Code != 400 || !strings.Contains(rec.Body.String(), "is not a next_page_token this API gave") {
		t.Errorf("a token with another fleet filter: %d %s, want 400 naming page_token", rec.Code, rec.Body)
	}
	ts.fake.addRun(LBUpdates, "lab", "completed", nil)
	ts.fake.addRun(LBUpdates, "lab", "completed", nil)
	rec = ts.do(t, "GET", "/load-balancer-updates?limit=1&fleet=lab&page_token="+page.NextPageToken, "", "Bearer "+token)
	if rec.Code != 400 || !strings.Contains(rec.Body.String(), "page_token") {
		t.Errorf("a rollouts token for updates: %d %s, want 400 naming page_token", rec.Code, rec.Body)
	}
	rec = ts.do(t, "GET", "/rollouts?limit=1&fleet=lab&phase=failed&page_token="+page.NextPageToken, "", "Bearer "+token)
	if rec.Code != 400 || !strings.Contains(rec.Body.String(), "page_token") {
		t.Errorf("a token with another phase filter: %d %s, want 400 naming page_token", rec.Code, rec.Body)
	}
	rec = ts.do(t, "GET", "/rollouts?limit=1&fleet=lab&status=completed&page_token="+page.NextPageToken, "", "Bearer "+token)
	if rec.Code != 400 || !strings.Contains(rec.Body.String(), "is not a next_page_token this API gave") {
		t.Errorf("a token with another status filter: %d %s, want 400 naming page_token", rec.Code, rec.Body)
	}
	other := newTestServer(t, func(c *Config) { c.Token = "another-token" })
	other.fake.add("lab", workflows.PhaseSucceeded)
	other.fake.add("lab", workflows.PhaseFailed)
	rec = other.do(t, "GET", "/rollouts?limit=1&fleet=lab&page_token="+page.NextPageToken, "", "Bearer another-token")
	if rec.Code != 400 {
		t.Errorf("another API's token: %d %s, want 400", rec.Code, rec.Body)
	}
}

// routerCase is one request through the whole router and what to expect.
type routerCase struct {
	name         string
	setup        func(*fakeBackend) // before the request
	method, path string
	body, auth   string
	want         int
	field        string // the 400's field
	contains     string // in the body
	after        func(*testing.T, *fakeBackend, *httptest.ResponseRecorder)
}

// runRouterCases runs each case on a new server, checking the status, the
// 400's field, the body and that the log holds no token.
func runRouterCases(t *testing.T, tests []routerCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTestServer(t, func(c *Config) { c.DefaultRevision = "A" })
			if tt.setup != nil {
				tt.setup(ts.fake)
			}
			rec := ts.do(t, tt.method, tt.path, tt.body, tt.auth)
			if rec.Code != tt.want {
				t.Fatalf("%s %s → %d, want %d: %s", tt.method, tt.path, rec.Code, tt.want, rec.Body)
			}
			if tt.field != "" {
				if e := errorBody(t, rec); e.Field != tt.field || !strings.HasPrefix(e.Message, tt.field+": ") {
					t.Errorf("error %+v, want one about field %q", e, tt.field)
				}
			}
			if !strings.Contains(rec.Body.String(), tt.contains) {
				t.Errorf("body lacks %q: %s", tt.contains, rec.Body)
			}
			if tt.want == 401 && rec.Header().Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
			if tt.after != nil {
				tt.after(t, ts.fake, rec)
			}
			if strings.Contains(ts.log.String(), token) {
				t.Errorf("the log holds the token: %s", ts.log)
			}
		})
	}
}

// startedNothing is a route test's check that a refused request started
// no run.
func sentNothing(t *testing.T, f *fakeBackend, _ *httptest.ResponseRecorder) {
	t.Helper()
	if len(f.signals) != 0 {
		t.Errorf("signals sent: %q", f.signals)
	}
}

// wantCleanupLeft checks that the request started one cleanup-only run
// after run-1, whose request lists want.
func wantCleanupLeft(want ...workflows.Leftover) func(*testing.T, *fakeBackend, *httptest.ResponseRecorder) {
	return func(t *testing.T, f *fakeBackend, _ *httptest.ResponseRecorder) {
		t.Helper()
		if len(f.started) != 1 || f.started[0].CleanUp == nil || f.started[0].CleanUp.From != "rollout-lab:run-1" {
			t.Fatalf("cleanup started %+v, want one cleanup-only run after run-1", f.started)
		}
		if got := f.started[0].CleanUp.Left; !slices.Equal(got, want) {
			t.Errorf("cleanup left %+v, want %+v", got, want)
		}
	}
}

func startedNothing(t *testing.T, f *fakeBackend, _ *httptest.ResponseRecorder) {
	t.Helper()
	if len(f.started) != 0 {
		t.Errorf("a refused request started %+v", f.started)
	}
}

// A run paused in Temporal (its workflow pause) has not ended: it still
// takes abort and the other signals, cannot be retried, and keeps its
// fleet busy; a list can filter on it.
func TestPausedRunIsOpen(t *testing.T) {
	ts := newTestServer(t, nil)
	bearer := "Bearer " + token
	id := ts.fake.add("lab", workflows.PhaseBaking)
	ts.fake.runs[id].State = "paused"
	if rec := ts.do(t, "POST", "/rollouts/"+id+"/abort", `{"reason":"stop"}`, bearer); rec.Code != http.StatusAccepted {
		t.Errorf("abort a paused rollout: %d %s, want 202", rec.Code, rec.Body)
	}
	if rec := ts.do(t, "POST", "/rollouts/"+id+"/retry", "", bearer); rec.Code != http.StatusConflict {
		t.Errorf("retry a paused rollout: %d %s, want 409", rec.Code, rec.Body)
	}
	if rec := ts.do(t, "GET", "/rollouts?status=paused", "", bearer); rec.Code != http.StatusOK {
		t.Errorf("list paused rollouts: %d %s, want 200", rec.Code, rec.Body)
	}
	run := ts.fake.addRun(LBUpdates, "lab2", "paused", workflows.Status{Fleet: "lab2", Run: workflows.Run{Phase: workflows.PhaseUpdatingLBs, StartedAt: t0, Steps: []*workflows.Step{}}})
	if rec := ts.do(t, "POST", "/rollouts", `{"fleet":"lab2","revision":"B"}`, bearer); rec.Code != http.StatusConflict {
		t.Errorf("a rollout while an update is paused: %d %s, want 409", rec.Code, rec.Body)
	}
	if rec := ts.do(t, "POST", "/load-balancer-updates/"+RolloutID(run)+"/abort", `{"reason":"stop"}`, bearer); rec.Code != http.StatusAccepted {
		t.Errorf("abort a paused update: %d %s, want 202", rec.Code, rec.Body)
	}
}

// A fleet file the API host cannot read is the server's fault, not the
// request's: a 500, whose body names no path of the host (the log has it),
// not a 400 about the fleet field.
func TestUnreadableFleetIsAServerError(t *testing.T) {
	ts, rec := startWithFleetError(t, fmt.Errorf("config: %w", &fs.PathError{Op: "open", Path: "/srv/dnsroll/fleets/lab.yaml", Err: fs.ErrPermission}))
	if rec.Code != http.StatusInternalServerError || strings.Contains(rec.Body.String(), "/srv/dnsroll") {
		t.Errorf("an unreadable fleet file: %d %s; want 500 without the path", rec.Code, rec.Body)
	}
	if !strings.Contains(ts.log.String(), "/srv/dnsroll/fleets/lab.yaml") {
		t.Errorf("the log lacks the path:\n%s", ts.log)
	}
}

// The method label of the request metrics is one of HTTP's methods or
// "other": before, each request with an invented method, which needs no
// token, added a series of its own, so anyone could grow the API's memory
// and every scrape without limit.
func TestMetricsMethodLabelIsBounded(t *testing.T) {
	ts := newTestServer(t, nil)
	for i := range 50 {
		ts.h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(fmt.Sprintf("M%d", i), "/rollouts", nil))
	}
	rec := ts.do(t, "GET", "/metrics", "", "")
	if n := strings.Count(rec.Body.String(), `method="M`); n > 0 {
		t.Errorf("%d series for invented methods, want none", n)
	}
	if !strings.Contains(rec.Body.String(), `dnsroll_api_requests_total{code="405",method="other",route="unmatched"} 50`) {
		t.Errorf("metrics lack the 50 requests as method other:\n%s", rec.Body)
	}
}

// Without a token (--insecure-no-auth, on loopback), the API refuses what
// a web page the operator visits could send: a request with an Origin
// header (a cross-site form or fetch) or for a host name other than
// localhost (DNS rebinding). Before, a page could start or abort
// rollouts through the operator's browser.
func TestNoAuthRefusesBrowsers(t *testing.T) {
	ts := newTestServer(t, func(c *Config) { c.Token = "" })
	ts.fake.add("lab", workflows.PhaseBaking)
	for _, tt := range []struct {
		name, host, origin string
		want               int
	}{
		{"a cross-site form", "127.0.0.1:8080", "https://evil.example", http.StatusForbidden},
		{"DNS rebinding", "evil.example:8080", "", http.StatusForbidden},
		{"the CLI, by address", "127.0.0.1:8080", "", http.StatusAccepted},
		{"curl at localhost", "localhost:8080", "", http.StatusAccepted},
		{"IPv6 loopback", "[::1]:8080", "", http.StatusAccepted},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/rollouts/rollout-lab:run-1/abort", strings.NewReader(`{"reason":"x"}`))
			r.Host = tt.host
			if tt.origin != "" {
				r.Header.Set("Origin", tt.origin)
			}
			rec := httptest.NewRecorder()
			ts.h.ServeHTTP(rec, r)
			if rec.Code != tt.want {
				t.Errorf("status %d (%s), want %d", rec.Code, rec.Body, tt.want)
			}
			// A client generated from openapi.yaml knows the 403.
			checkSpec(t, r, rec)
		})
	}
	// With a token, a browser cannot send it cross-site: nothing changes.
	authed := newTestServer(t, nil)
	authed.fake.add("lab", workflows.PhaseBaking)
	r := httptest.NewRequest("GET", "/rollouts/rollout-lab:run-1", nil)
	r.Host, r.Header["Authorization"] = "dnsroll.example.net", []string{"Bearer " + token}
	rec := httptest.NewRecorder()
	authed.h.ServeHTTP(rec, r)
	if rec.Code != http.StatusOK {
		t.Errorf("with a token, by host name: status %d, want 200", rec.Code)
	}
}

// /healthz, which needs no token, asks Temporal at most once a second
// however often it is called: before, each call was a gRPC call to the
// frontend, which anyone who reached the API could multiply.
func TestHealthzAsksTemporalOnceASecond(t *testing.T) {
	ts := newTestServer(t, nil)
	start := time.Now()
	for range 100 {
		if rec := ts.do(t, "GET", "/healthz", "", ""); rec.Code != http.StatusOK {
			t.Fatalf("healthz: %d", rec.Code)
		}
	}
	ts.fake.mu.Lock()
	n := ts.fake.healthChecks
	ts.fake.mu.Unlock()
	if most := int(time.Since(start)/time.Second) + 1; n > most {
		t.Errorf("%d health checks of Temporal for 100 calls in %s, want at most %d", n, time.Since(start), most)
	}
	// A caller that hangs up does not make the answer an error for the
	// others.
	time.Sleep(healthAge + 100*time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	ts.h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/healthz", nil).WithContext(ctx))
	if rec := ts.do(t, "GET", "/healthz", "", ""); rec.Code != http.StatusOK {
		t.Errorf("healthz after a caller hung up: %d, want 200", rec.Code)
	}
	// A second on, it asks again: a Temporal that went down is not
	// reported up for longer.
	ts.fake.mu.Lock()
	ts.fake.healthy = false
	ts.fake.mu.Unlock()
	time.Sleep(healthAge + 100*time.Millisecond)
	if rec := ts.do(t, "GET", "/healthz", "", ""); rec.Code != http.StatusServiceUnavailable {
		t.Errorf("healthz a second after Temporal went down: %d, want 503", rec.Code)
	}
}

// A signal to a rollout that ended is a 409 saying so, and is not sent:
// one whose workflow was terminated mid-way (its phase is no end), and
// one that ended between the API's read and its signal, which Temporal
// answers as not found. A 404 would tell the operator there is no such
// rollout.
func TestSignalARunThatEnded(t *testing.T) {
	bearer := "Bearer " + token
	ts := newTestServer(t, nil)
	id := ts.fake.add("lab", workflows.PhaseSwitching)
	ts.fake.runs[id].State = "terminated"
	rec := ts.do(t, "POST", "/rollouts/"+id+"/abort", "", bearer)
	if rec.Code != http.StatusConflict || !strings.Contains(rec.Body.String(), "the rollout is terminated") || len(ts.fake.signals) != 0 {
		t.Errorf("abort a terminated rollout: %d %s, signals %v; want 409 saying it is terminated, nothing sent", rec.Code, rec.Body, ts.fake.signals)
	}
	ts = newTestServer(t, nil)
	id = ts.fake.add("lab", workflows.PhaseBaking)
	ts.fake.signalErr = dnsroll.Errorf(dnsroll.ENOTFOUND, "no running rollout %s", id)
	rec = ts.do(t, "POST", "/rollouts/"+id+"/abort", "", bearer)
	if rec.Code != http.StatusConflict || !strings.Contains(rec.Body.String(), "it has ended") {
		t.Errorf("abort a rollout that ended after the read: %d %s, want 409 saying it has ended", rec.Code, rec.Body)
	}
}

// A fleet whose file does not load for a reason of its own (a file it
// names is missing) is a 400 about the fleet, whose message says where;
// only a file the host cannot read is the server's fault.
func TestFleetThatDoesNotLoadIsABadRequest(t *testing.T) {
	_, rec := startWithFleetError(t, fmt.Errorf("fleet lab: ansible.playbook: %w", &fs.PathError{Op: "open", Path: "ansible/missing.yml", Err: fs.ErrNotExist}))
	if rec.Code != http.StatusBadRequest || errorBody(t, rec).Field != "fleet" || !strings.Contains(rec.Body.String(), "ansible/missing.yml") {
		t.Errorf("a fleet naming a missing file: %d %s; want 400 about fleet, naming the file", rec.Code, rec.Body)
	}
}

// startWithFleetError asks for a rollout of fleet lab from an API whose
// fleets all fail to load with err.
func startWithFleetError(t *testing.T, err error) (*testServer, *httptest.ResponseRecorder) {
	t.Helper()
	ts := newTestServer(t, func(c *Config) {
		c.Fleets = func(string) (*config.Fleet, error) { return nil, err }
	})
	return ts, ts.do(t, "POST", "/rollouts", `{"fleet":"lab","revision":"B"}`, "Bearer "+token)
}

// A CI job's rerun with its Idempotency-Key gets the rollout its first
// run started, with 200, even once a load balancer update runs on the
// fleet: that rollout ended before the update began. Before, the rerun
// got the update's 409, saying the job's rollout waits, though it had run.
func TestStartWithIdempotencyKeyWhileAnUpdateRuns(t *testing.T) {
	ts := newTestServer(t, nil)
	start := func(key string) *httptest.ResponseRecorder {
		t.Helper()
		r := httptest.NewRequest("POST", "/rollouts", strings.NewReader(`{"fleet":"lab","revision":"B","reason":"ci"}`))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("Authorization", "Bearer "+token)
		r.Header.Set("Idempotency-Key", key)
		return ts.send(t, r)
	}
	if rec := start("job-41"); rec.Code != 201 {
		t.Fatalf("first start: %d %s", rec.Code, rec.Body)
	}
	ts.fake.mu.Lock()
	ts.fake.runs["rollout-lab:run-1"].State = "failed"
	ts.fake.mu.Unlock()
	ts.fake.addRun(LBUpdates, "lab", "running", updating(workflows.PhaseUpdatingLBs))
	if rec := start("job-41"); rec.Code != 200 || !strings.Contains(rec.Body.String(), `"id": "rollout-lab:run-1"`) {
		t.Errorf("the same start again: %d %s; want 200 with the rollout the first one started", rec.Code, rec.Body)
	}
	if rec := start("job-42"); rec.Code != 409 || !strings.Contains(rec.Body.String(), "lbupdate-lab:run-2") {
		t.Errorf("another key: %d %s; want 409 naming the update", rec.Code, rec.Body)
	}
	if len(ts.fake.started) != 1 {
		t.Errorf("started %d rollouts, want 1", len(ts.fake.started))
	}
}

// A CI job that retries POST /rollouts with its Idempotency-Key (its first
// answer was lost) gets the rollout its first request started, with 200,
// not a 409 about its own rollout; the key with another body is a 400
// about the header, and so is a key that is no key.
func TestStartWithIdempotencyKey(t *testing.T) {
	ts := newTestServer(t, nil)
	start := func(body, key string) *httptest.ResponseRecorder {
		t.Helper()
		r := httptest.NewRequest("POST", "/rollouts", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("Authorization", "Bearer "+token)
		if key != "" {
			r.Header.Set("Idempotency-Key", key)
		}
		return ts.send(t, r)
	}
	body := `{"fleet":"lab","revision":"B","reason":"ci"}`
	if rec := start(body, "job-41"); rec.Code != 201 || !strings.Contains(rec.Body.String(), `"id": "rollout-lab:run-1"`) {
		t.Fatalf("first start: %d %s", rec.Code, rec.Body)
	}
	if rec := start(body, "job-41"); rec.Code != 200 || !strings.Contains(rec.Body.String(), `"id": "rollout-lab:run-1"`) ||
		rec.Header().Get("Location") != "/rollouts/rollout-lab:run-1" {
		t.Errorf("the same start again: %d %s; want 200 with the rollout the first one started", rec.Code, rec.Body)
	}
	if len(ts.fake.started) != 1 {
		t.Errorf("started %d rollouts, want 1", len(ts.fake.started))
	}
	if rec := start(body, "job-42"); rec.Code != 409 {
		t.Errorf("another key while it runs: %d %s, want 409", rec.Code, rec.Body)
	}
	if rec := start(`{"fleet":"lab","revision":"C","reason":"ci"}`, "job-41"); rec.Code != 400 || errorBody(t, rec).Field != "Idempotency-Key" {
		t.Errorf("the key with another request: %d %s, want a 400 about Idempotency-Key", rec.Code, rec.Body)
	}
	for _, bad := range []string{"has space", strings.Repeat("k", 256), "caf\u00e9"} {
		if rec := start(body, bad); rec.Code != 400 || errorBody(t, rec).Field != "Idempotency-Key" {
			t.Errorf("key %q: %d %s, want a 400 about Idempotency-Key", bad, rec.Code, rec.Body)
		}
	}
	// Two keys: which one the start is once for would be a guess.
	r := httptest.NewRequest("POST", "/rollouts", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Authorization", "Bearer "+token)
	r.Header["Idempotency-Key"] = []string{"job-41", "job-43"}
	if rec := ts.send(t, r); rec.Code != 400 || errorBody(t, rec).Field != "Idempotency-Key" {
		t.Errorf("two keys: %d %s, want a 400 about Idempotency-Key", rec.Code, rec.Body)
	}
}

// Only POST /rollouts honours an Idempotency-Key. A CI job that sends one
// with a retry, a cleanup or a load balancer start, and sends the request
// again after a lost answer, would start a second run (more servers) once
// the first had ended: the key is refused, naming it, and nothing starts.
func TestIdempotencyKeyOnlyWhereHonoured(t *testing.T) {
	for _, tt := range []struct{ path, body string }{
		{"/rollouts/rollout-lab:run-1/retry", ""},
		{"/rollouts/rollout-lab:run-1/cleanup", `{"reason":"ci"}`},
		{"/load-balancer-updates", `{"fleet":"lab","update":{"kind":"config"}}`},
		{"/load-balancer-replacements", `{"fleet":"lab","domain":"example.com","parent":["127.0.0.1:53"]}`},
		{"/plans", `{"fleet":"lab","revision":"B"}`},
	} {
		t.Run(tt.path, func(t *testing.T) {
			ts := newTestServer(t, nil)
			ts.fake.add("lab", workflows.PhaseCleanupFailed)
			r := httptest.NewRequest("POST", tt.path, strings.NewReader(tt.body))
			r.Header.Set("Content-Type", "application/json")
			r.Header.Set("Authorization", "Bearer "+token)
			r.Header.Set("Idempotency-Key", "job-41")
			rec := ts.send(t, r)
			if rec.Code != 400 || errorBody(t, rec).Field != "Idempotency-Key" {
				t.Errorf("%d %s, want a 400 about Idempotency-Key", rec.Code, rec.Body)
			}
			if n := len(ts.fake.started) + len(ts.fake.lbStarted) + len(ts.fake.planned); n != 0 {
				t.Errorf("%d runs started, want none", n)
			}
		})
	}
	// A read changes nothing, whatever headers a CI's HTTP client adds.
	ts := newTestServer(t, nil)
	r := httptest.NewRequest("GET", "/load-balancer-updates", nil)
	r.Header.Set("Authorization", "Bearer "+token)
	r.Header.Set("Idempotency-Key", "job-41")
	if rec := ts.send(t, r); rec.Code != 200 {
		t.Errorf("GET /load-balancer-updates with a key: %d %s, want 200", rec.Code, rec.Body)
	}
}

// A conflict the backend reports as itself (Temporal refusing a signal to
// a run in a state that forbids it) is a 409: as a 500 the client would
// call it transient and send it again.
func TestBackendConflictIsA409(t *testing.T) {
	ts := newTestServer(t, nil)
	id := ts.fake.add("lab", workflows.PhaseProvisioning)
	ts.fake.signalErr = dnsroll.Errorf(dnsroll.ECONFLICT, "rollout %s cannot take abort now", id)
	rec := ts.do(t, "POST", "/rollouts/"+id+"/abort", "", "Bearer "+token)
	if rec.Code != 409 || errorBody(t, rec).Code != dnsroll.ECONFLICT {
		t.Errorf("%d %s, want 409 conflict", rec.Code, rec.Body)
	}
}

// A request ID that is not one (spaces, markup, any length) is replaced
// by one the API makes up, not echoed into the response and the log.
func TestRequestIDNotOneIsReplaced(t *testing.T) {
	ts := newTestServer(t, nil)
	for _, bad := range []string{"a b", "<script>", strings.Repeat("x", 65)} {
		r := httptest.NewRequest("GET", "/healthz", nil)
		r.Header.Set(RequestIDHeader, bad)
		got := ts.send(t, r).Header().Get(RequestIDHeader)
		if got == bad || !regexp.MustCompile(`^[0-9a-f]{16}$`).MatchString(got) {
			t.Errorf("X-Request-ID %q: answered %q, want one made up (16 hex digits)", bad, got)
		}
	}
}
