package api

import (
	"net/http"
	"net/http/httptest"
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
