package api

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"

	"github.com/dnsroll/dnsroll/workflows"
)

// FuzzRouter sends arbitrary methods, paths, queries, headers and bodies
// through the whole router. Whatever a client sends is the client's
// mistake or a valid request: never a 5xx, never a panic (the recovery
// middleware would turn one into a 500). The seeds in
// testdata/fuzz/FuzzRouter are requests that once got a 500, and requests
// of every route; `make test` runs a short fuzz beyond them.
func FuzzRouter(f *testing.F) {
	ts := newTestServer(f, nil)
	ts.fake.add("lab", workflows.PhaseProvisioning)
	bearer := "Bearer " + token
	// Every route, with a plausible ID and a small body.
	err := chi.Walk(ts.h.(chi.Routes), func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		for _, k := range Kinds {
			if strings.HasPrefix(route, k.Path+"/") {
				route = strings.Replace(route, "{id}", k.ID("lab")+":abc", 1)
			}
		}
		f.Add(method, route, "application/json", bearer, `{"reason":"x"}`)
		return nil
	})
	if err != nil {
		f.Fatal(err)
	}
	// Bodies a start must refuse with a 4xx.
	for _, body := range []string{
		`{"fleet":"lab","revision":"B","expect_changes":"yes"}`,
		`{"fleet":"` + strings.Repeat("a", 70000) + `"}`,
		`[1,2,3]`,
		`{"fleet":"lab"}{"fleet":"lab"}`,
		`{"fleet":"lab","clean_up":{"from":"x"}}`,
		`{"fleet":"lab","update":{"kind":"console"},"parent":["::1"]}`,
	} {
		for _, k := range Kinds {
			f.Add("POST", k.Path, "application/json", bearer, body)
		}
	}
	// Odd targets, with a body that is not JSON.
	for _, seed := range []string{
		"GET /rollouts?page_token=%%%",
		"GET /rollouts?page_token=AAAA&limit=-1",
		"GET /rollouts?fleet=lab&status=running&phase=baking&limit=1000000",
		"POST /rollouts",
		"GET /rollouts/%2e%2e/%2e%2e",
		"DELETE /rollouts/rollout-lab",
	} {
		method, target, _ := strings.Cut(seed, " ")
		f.Add(method, target, "text/plain", bearer, "fleet=lab")
	}
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
