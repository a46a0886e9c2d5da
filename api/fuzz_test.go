package api

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/dnsroll/dnsroll/workflows"
)

// FuzzRouter sends arbitrary methods, paths, queries, headers and bodies
// through the whole router. Whatever a client sends is the client's
// mistake or a valid request: never a 5xx, never a panic (the recovery
// middleware would turn one into a 500). The seeds in
// testdata/fuzz/FuzzRouter are requests that once got a 500, and requests
// of every route; `make test` runs a short fuzz beyond them.
func FuzzRouter(f *testing.F) {
	for _, seed := range []struct{ method, target, ctype, body string }{
		{"GET", "/rollouts/rollout-lab:abc", "", ""},
		{"POST", "/rollouts/rollout-lab:abc/abort", "application/json", `{}`},
		{"POST", "/rollouts/rollout-lab:abc/rollback", "application/json", `{"reason":"x"}`},
		{"POST", "/rollouts/rollout-lab:abc/approve", "", ""},
		{"POST", "/rollouts/rollout-lab:abc/retry", "", ""},
		{"POST", "/rollouts/rollout-lab:abc/cleanup", "", ""},
		{"GET", "/rollouts?page_token=%%%", "", ""},
		{"GET", "/rollouts?page_token=AAAA&limit=-1", "", ""},
		{"GET", "/rollouts?fleet=lab&status=running&phase=baking&limit=1000000", "", ""},
		{"POST", "/rollouts", "application/json", `{"fleet":"lab","revision":"B"}`},
		{"POST", "/rollouts", "application/json", `{"fleet":"lab","revision":"B","expect_changes":"yes"}`},
		{"POST", "/rollouts", "text/plain", `fleet=lab`},
		{"POST", "/rollouts", "application/json", `{"fleet":"` + strings.Repeat("a", 70000) + `"}`},
		{"POST", "/rollouts", "application/json", `[1,2,3]`},
		{"POST", "/rollouts", "application/json", `{"fleet":"lab"}{"fleet":"lab"}`},
		{"GET", "/rollouts/rollout-lab", "", ""},
		{"GET", "/rollouts/%2e%2e/%2e%2e", "", ""},
		{"DELETE", "/rollouts/rollout-lab", "", ""},
		{"GET", "/healthz", "", ""},
		{"GET", "/metrics", "", ""},
		{"GET", "/openapi.yaml", "", ""},
	} {
		f.Add(seed.method, seed.target, seed.ctype, "Bearer "+token, seed.body)
	}
	ts := newTestServer(f, nil)
	ts.fake.add("lab", workflows.PhaseProvisioning)
	f.Fuzz(func(t *testing.T, method, target, ctype, auth, body string) {
		if !validMethod(method) || !strings.HasPrefix(target, "/") {
			return // net/http itself refuses these before any handler runs
		}
		r, err := http.NewRequest(method, "http://dnsroll.test"+target, strings.NewReader(body))
		if err != nil {
			return
		}
		r.RequestURI = target
		if ctype != "" && validHeader(ctype) {
			r.Header.Set("Content-Type", ctype)
		}
		if validHeader(auth) {
			r.Header.Set("Authorization", auth)
		}
		rec := httptest.NewRecorder()
		ts.h.ServeHTTP(rec, r)
		if rec.Code >= 500 && !(target == "/healthz" || strings.HasPrefix(target, "/healthz?")) {
			t.Fatalf("%s %s (Content-Type %q, body %q) → %d: %s", method, target, ctype, body, rec.Code, rec.Body)
		}
	})
}

func validMethod(m string) bool {
	if m == "" {
		return false
	}
	for _, c := range m {
		if c < 'A' || c > 'Z' {
			return false
		}
	}
	return true
}

func validHeader(v string) bool {
	for _, c := range v {
		if c < ' ' || c == 0x7f {
			return false
		}
	}
	return true
}
