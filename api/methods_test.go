package api

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// A 405 says in its Allow header which methods the path takes (RFC 9110
// requires it), HEAD among them wherever GET is; its body is the API's
// JSON error, as every other error's.
func TestMethodNotAllowedSaysWhatIs(t *testing.T) {
	ts := newTestServer(t, nil)
	for _, tt := range []struct {
		name, method, path, allow string
	}{
		{"list and start", http.MethodDelete, "/rollouts", "GET, HEAD, POST"},
		{"options", http.MethodOptions, "/rollouts", "GET, HEAD, POST"},
		{"a rollout", http.MethodPut, "/rollouts/rollout-lab", "GET, HEAD"},
		{"a signal", http.MethodGet, "/rollouts/rollout-lab/abort", "POST"},
		{"plans", http.MethodGet, "/plans", "POST"},
		{"health", http.MethodPost, "/healthz", "GET, HEAD"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rec := ts.do(t, tt.method, tt.path, "", "Bearer "+token)
			if rec.Code != http.StatusMethodNotAllowed {
				t.Fatalf("%s %s: %d, want 405", tt.method, tt.path, rec.Code)
			}
			if got := rec.Header().Get("Allow"); got != tt.allow {
				t.Errorf("%s %s: Allow %q, want %q", tt.method, tt.path, got, tt.allow)
			}
			if e := errorBody(t, rec); e.Code != "method_not_allowed" {
				t.Errorf("%s %s: code %q, want method_not_allowed", tt.method, tt.path, e.Code)
			}
		})
	}
}

// HEAD answers as GET does, without a body, wherever GET is served: a
// monitor's HEAD /healthz, or a HEAD of a rollout, which still needs the
// token.
func TestHeadAnswersAsGet(t *testing.T) {
	ts := newTestServer(t, nil)
	for _, tt := range []struct {
		path, auth string
		want       int
	}{
		{"/healthz", "", http.StatusOK},
		{"/openapi.yaml", "", http.StatusOK},
		{"/rollouts", "Bearer " + token, http.StatusOK},
		{"/rollouts", "", http.StatusUnauthorized},
		{"/rollouts/rollout-nosuch", "Bearer " + token, http.StatusNotFound},
	} {
		r := httptest.NewRequest(http.MethodHead, tt.path, nil)
		if tt.auth != "" {
			r.Header.Set("Authorization", tt.auth)
		}
		rec := httptest.NewRecorder()
		ts.h.ServeHTTP(rec, r)
		if rec.Code != tt.want {
			t.Errorf("HEAD %s (auth %q): %d, want %d as GET", tt.path, tt.auth, rec.Code, tt.want)
		}
	}
}

// A client that hangs up mid-request (Ctrl-C on `dnsroll rollout plan`
// or --wait) is no fault of the API: the backend's error that follows is
// not logged as an error nor counted as a 500, which would page whoever
// watches the API's 5xx rate; it is counted as 499, as nginx does.
func TestClientGoneIsNoServerError(t *testing.T) {
	ts := newTestServer(t, nil)
	ts.fake.listErr = fmt.Errorf("list rollouts: %w", context.Canceled)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := httptest.NewRequestWithContext(ctx, http.MethodGet, "/rollouts", nil)
	r.Header.Set("Authorization", "Bearer "+token)
	rec := httptest.NewRecorder()
	ts.h.ServeHTTP(rec, r)
	if rec.Code != 499 {
		t.Errorf("status %d, want 499", rec.Code)
	}
	if strings.Contains(ts.log.String(), `"level":"ERROR"`) {
		t.Errorf("logged as an error:\n%s", ts.log)
	}
	metrics := ts.do(t, "GET", "/metrics", "", "")
	if want := `dnsroll_api_requests_total{code="499",method="GET",route="/rollouts"} 1`; !strings.Contains(metrics.Body.String(), want) {
		t.Errorf("metrics lack %s:\n%s", want, metrics.Body)
	}
}
