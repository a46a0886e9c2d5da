package api

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// A password or token in the base URL is never in an error: CI logs keep
// them. A query or fragment is refused, since it would end up in the
// middle of every request's path.
func TestClientBaseURLSecrets(t *testing.T) {
	closed := closedAddr(t)
	for _, tc := range []struct {
		name, url, want string
	}{
		{"password, connection refused", "http://ci:hunter2@" + closed, "http://ci:xxxxx@" + closed},
		{"query", "http://ci:hunter2@" + closed + "/?token=hunter2", "query or fragment"},
		{"empty query", "http://" + closed + "/?", "query or fragment"},
		{"fragment", "http://" + closed + "/#hunter2", "query or fragment"},
		{"unparsable", "http://ci:hunter2@[::1", "base URL"},
		// A password with a character that ends a host part (/ ? #)
		// makes url.Parse take it for a port, and quote it.
		{"password with a slash", "https://ci:hunter2/x@" + closed, "does not parse as a URL"},
		{"password with a hash", "https://ci:hunter2#x@" + closed, "does not parse as a URL"},
		{"no scheme", "ci:hunter2@" + closed, "http:// or https://"},
		// A user part alone, no password, is a host:port to SplitHostPort:
		// the hint for a missing scheme must not quote it.
		{"no scheme, a token as the user", "hunter2@" + closed, "does not parse as a URL"},
		// A host:port, as one writes it for most tools, is what an operator
		// most often leaves the scheme off: the error suggests the fix.
		{"host:port", closed, "must start with http:// or https://, as in http://" + closed},
		{"name:port", "localhost:8080", "as in http://localhost:8080"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &Client{URL: tc.url}
			_, err := c.Get(context.Background(), "rollout-lab")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want one saying %q", err, tc.want)
			}
			if err != nil && strings.Contains(err.Error(), "hunter2") {
				t.Errorf("the error shows the secret: %v", err)
			}
		})
	}
}

// Retrying retries what a proxy or a restarting API answers for a while
// (5xx, 429, a refused connection), and returns a 4xx at once.
func TestRetrying(t *testing.T) {
	for _, tc := range []struct {
		name     string
		answers  []int
		wantErr  string
		retries  int
		wantRead int
	}{
		{"502, 503, 429, then 200", []int{502, 503, 429, 200}, "", 3, 4},
		{"404 at once", []int{404, 200}, "HTTP 404", 0, 1},
		{"502 until it gives up", []int{502, 502, 502, 502, 502, 502, 502, 502, 502, 502, 502, 502, 502, 502, 502, 502, 502, 502, 502, 502}, "HTTP 502", -1, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			reads := 0
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				code := tc.answers[min(reads, len(tc.answers)-1)]
				reads++
				mu.Unlock()
				if code != 200 {
					http.Error(w, "<html><body>Bad Gateway</body></html>", code)
					return
				}
				_, _ = w.Write([]byte(`{"id":"rollout-lab:r1","state":"completed"}`))
			}))
			defer srv.Close()
			c := &Client{URL: srv.URL}
			var retries int
			// Long enough for the cases that end in an answer on a loaded
			// machine; short for the one that gives up.
			retryFor := 5 * time.Second
			if tc.retries < 0 {
				retryFor = 300 * time.Millisecond
			}
			read := Retrying(Retry{For: retryFor, Wait: 20 * time.Millisecond, OnRetry: func(error, time.Duration) { retries++ }},
				func(ctx context.Context) (Rollout, string, error) {
					ro, err := c.Get(ctx, "rollout-lab:r1")
					return ro, ro.State, err
				})
			start := time.Now()
			ro, _, err := read(context.Background())
			switch {
			case tc.wantErr == "" && (err != nil || ro.State != "completed"):
				t.Errorf("err %v, state %q; want completed", err, ro.State)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("err %v, want %q", err, tc.wantErr)
			}
			if tc.retries >= 0 && (retries != tc.retries || reads != tc.wantRead) {
				t.Errorf("%d retries, %d reads; want %d, %d", retries, reads, tc.retries, tc.wantRead)
			}
			if tc.retries < 0 {
				if d := time.Since(start); d < 300*time.Millisecond || d > 2*time.Second || retries < 3 {
					t.Errorf("gave up after %s and %d retries, want after 300ms and a few", d, retries)
				}
				if !Transient(err) {
					t.Errorf("Transient(%v) = false after giving up", err)
				}
			}
		})
	}
}

func TestTransient(t *testing.T) {
	closed := closedAddr(t)
	_, refused := (&Client{URL: "http://" + closed}).Get(context.Background(), "x")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, canceled := (&Client{URL: "http://" + closed}).Get(ctx, "x")
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{refused, true},
		{canceled, false},
		{&Error{Status: 502}, true},
		{&Error{Status: 429}, true},
		{&Error{Status: 404}, false},
		{&Error{Status: 409}, false},
		{errors.New("bad response"), false},
	} {
		if got := Transient(tc.err); got != tc.want {
			t.Errorf("Transient(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

// closedAddr is a loopback address where nothing listens: a connection
// to it is refused.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// A server-side failure's message points at the API's log "under this
// request_id": the error the CLI prints carries that ID, or the operator
// cannot find the log line.
func TestClientErrorCarriesTheRequestID(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte(`{"code":"internal","message":"internal error; the API's log has the details under this request_id","request_id":"5eed"}`))
	}))
	t.Cleanup(srv.Close)
	_, err := (&Client{URL: srv.URL, HTTP: srv.Client()}).Get(context.Background(), "rollout-lab")
	if err == nil || !strings.Contains(err.Error(), "5eed") {
		t.Errorf("err = %v, want one naming request_id 5eed", err)
	}
	four := &Error{Status: 400, Body: ErrorBody{Code: "invalid", Message: "fleet: unknown", RequestID: "5eed"}}
	if got := four.Error(); got != "fleet: unknown" {
		t.Errorf("a 400's error: %q, want its message alone", got)
	}
}

// An error page that is not the API's JSON (a proxy's, a firewall's) is
// quoted for the operator, who needs to see what answered, but never with
// the bearer token it may echo, and not at any length: CI logs keep what
// the CLI prints.
func TestClientErrorPageHidesTheToken(t *testing.T) {
	const token = "s3cret-api-token"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusForbidden)
		_, _ = w.Write([]byte("<html><title>403 Forbidden</title>request blocked: Authorization: " + r.Header.Get("Authorization") + strings.Repeat(" padding", 5000) + "</html>"))
	}))
	t.Cleanup(srv.Close)
	_, err := (&Client{URL: srv.URL, Token: token, HTTP: srv.Client()}).Get(context.Background(), "rollout-lab")
	if err == nil {
		t.Fatal("no error")
	}
	msg := err.Error()
	if strings.Contains(msg, token) || !strings.Contains(msg, "HTTP 403") || !strings.Contains(msg, "403 Forbidden") || len(msg) > 600 {
		t.Errorf("error (%d bytes) %q: want HTTP 403 and the page's start, without the token, and short", len(msg), msg)
	}
}

// A gateway's JSON error in front of the API is read as the API's own: its
// message is printed, but never with the token it echoes; and one without a
// message, such as {"error": ...}, is quoted as a page, not dropped.
func TestClientJSONErrorHidesTheToken(t *testing.T) {
	const token = "s3cret-api-token"
	for _, tt := range []struct {
		status     int
		body, want string
	}{
		{http.StatusUnauthorized, `{"message":"invalid credentials: %s"}`, "invalid credentials: Bearer [token]"},
		{http.StatusUnauthorized, `{"error":"invalid credentials: %s"}`, `HTTP 401: {"error":"invalid credentials: Bearer [token]"}`},
		// A 5xx's request_id is printed too.
		{http.StatusBadGateway, `{"message":"upstream down","request_id":"%s"}`, "upstream down (request_id Bearer [token])"},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(tt.status)
			_, _ = fmt.Fprintf(w, tt.body, r.Header.Get("Authorization"))
		}))
		_, err := (&Client{URL: srv.URL, Token: token, HTTP: srv.Client()}).Get(context.Background(), "rollout-lab")
		srv.Close()
		if err == nil || strings.Contains(err.Error(), token) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want one saying %q, without the token", tt.body, err, tt.want)
		}
	}
}

// StartOnce without a key sends one request: a start retried after its
// answer was lost could start a second rollout once the first ended.
func TestStartOnceWithoutAKeyDoesNotRetry(t *testing.T) {
	var mu sync.Mutex
	posts := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		posts++
		n := posts
		mu.Unlock()
		if n == 1 {
			http.Error(w, "Bad Gateway", http.StatusBadGateway)
			return
		}
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write([]byte(`{"id":"rollout-lab:r2","workflow_id":"rollout-lab","run_id":"r2","fleet":"lab","links":{}}`))
	}))
	defer srv.Close()
	c := &Client{URL: srv.URL}
	_, err := c.StartOnce(context.Background(), StartRequest{Fleet: "lab"}, "", Retry{For: 5 * time.Second, Wait: 10 * time.Millisecond})
	if err == nil || posts != 1 {
		t.Errorf("StartOnce without a key: err %v after %d posts; want the 502 after one", err, posts)
	}
}

// Poll follows a run paused in Temporal until it ends: a pause is not
// an end, and following stopped there would report a run that goes on as
// one that ended before its own end.
func TestPollFollowsAPausedRun(t *testing.T) {
	states := []string{"running", "paused", "paused", "running", "completed"}
	reads := 0
	got, err := Poll(context.Background(), time.Millisecond, func(context.Context) (string, string, error) {
		s := states[min(reads, len(states)-1)]
		reads++
		return s, s, nil
	}, nil)
	if err != nil || got != "completed" || reads != len(states) {
		t.Errorf("Poll returned %q, %v after %d reads; want completed after %d", got, err, reads, len(states))
	}
}
