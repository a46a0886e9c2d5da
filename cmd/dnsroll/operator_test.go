package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dnsroll/dnsroll/api"
	"github.com/dnsroll/dnsroll/workflows"
)

// `dnsroll help CMD [SUB]` and `dnsroll GROUP help SUB` print that
// command's help, as CMD [SUB] --help does, on stdout with exit 0; help
// for a command that does not exist is a usage error naming it.
func TestCLIHelpNamesACommand(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"help", "rollout"}, 0, "Usage: dnsroll rollout <command>"},
		{[]string{"help", "rollout", "start"}, 0, "Usage: dnsroll rollout start [flags]"},
		{[]string{"rollout", "help", "start"}, 0, "Usage: dnsroll rollout start [flags]"},
		{[]string{"lb", "help", "status"}, 0, "Usage: dnsroll lb status [flags]"},
		{[]string{"help", "fleet"}, 0, "Usage: dnsroll fleet validate FILE|DIR"},
		{[]string{"help", "worker"}, 0, "Usage: dnsroll worker [flags]"},
		{[]string{"help", "nosuch"}, 1, `unknown command "nosuch"`},
		{[]string{"rollout", "help", "nosuch"}, 1, `unknown rollout command "nosuch"`},
	} {
		out, errOut, code := cli(t, tc.args...)
		printed, other := out, errOut
		if tc.code != 0 {
			printed, other = errOut, out
		}
		if code != tc.code || other != "" || !strings.Contains(printed, tc.want) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit %d and %q", tc.args, code, out, errOut, tc.code, tc.want)
		}
	}
}

// Ctrl-C while status --follow --json follows a run says once that the
// run goes on and how to follow it, as without --json: no second error
// from reading the run with the interrupted context, and no JSON of a run
// that has not ended.
func TestCLIFollowJSONInterrupted(t *testing.T) {
	newFakeAPI(t, 1000)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(300*time.Millisecond, cancel)
	var out, errOut bytes.Buffer
	err := run(ctx, streams{out: &out, err: &errOut}, []string{"rollout", "status", "--id", "rollout-lab:r1", "--json", "--follow", "--poll", "100ms"})
	code := report(&errOut, err)
	if code != 1 || out.Len() != 0 {
		t.Errorf("exit %d, stdout %q; want exit 1 and nothing on stdout", code, out.String())
	}
	lines := strings.Split(strings.TrimSpace(errOut.String()), "\n")
	last := lines[len(lines)-1]
	if !strings.HasPrefix(last, "dnsroll: stopped following rollout-lab:r1; it goes on: dnsroll rollout status --id rollout-lab:r1 --follow") ||
		strings.Contains(errOut.String(), "canceled") {
		t.Errorf("stderr:\n%s\nwant it to end in one line saying the rollout goes on, and no other error", errOut.String())
	}
}

// A 401 from the API names what to check: the token the CLI sends, from
// $DNSROLL_API_TOKEN or --token, or that it sent none; and the API it
// asked. The token itself is not shown.
func TestCLIUnauthorizedNamesTheToken(t *testing.T) {
	srv := httptest.NewServer(api.New(api.Config{Token: "the-right-token-0123"}).Handler())
	t.Cleanup(srv.Close)
	t.Setenv("DNSROLL_API_URL", srv.URL)
	for _, tc := range []struct {
		token string
		want  string
	}{
		{"a-wrong-token-4567", "check $DNSROLL_API_TOKEN (or --token)"},
		{"", "no token was sent: set $DNSROLL_API_TOKEN (or --token)"},
	} {
		t.Setenv("DNSROLL_API_TOKEN", tc.token)
		out, errOut, code := cli(t, "rollout", "list")
		if code != 1 || out != "" || strings.Count(strings.TrimSpace(errOut), "\n") != 0 ||
			!strings.Contains(errOut, tc.want) || !strings.Contains(errOut, srv.URL) || !strings.Contains(errOut, "401") {
			t.Errorf("token %q: exit %d, stdout %q, stderr %q; want exit 1 and one line naming %s, the API and 401", tc.token, code, out, errOut, tc.want)
		}
		if tc.token != "" && strings.Contains(errOut, tc.token) {
			t.Errorf("stderr %q shows the token", errOut)
		}
	}
	// The API it names is named without the password its URL may hold.
	t.Setenv("DNSROLL_API_URL", strings.Replace(srv.URL, "http://", "http://ci:hunter2@", 1))
	t.Setenv("DNSROLL_API_TOKEN", "a-wrong-token-4567")
	if out, errOut, code := cli(t, "rollout", "list"); code != 1 || !strings.Contains(errOut, "401") || strings.Contains(out+errOut, "hunter2") {
		t.Errorf("a URL with a password: exit %d, stdout %q, stderr %q; want exit 1, the 401, and no password", code, out, errOut)
	}
}

// An API that cannot be reached (nothing listens there, or its name does
// not resolve) is one line naming the URL and where the CLI took it from.
func TestCLIUnreachableAPINamesTheSetting(t *testing.T) {
	t.Setenv("DNSROLL_API_TOKEN", "a-token-0123456789")
	for _, url := range []string{"http://127.0.0.1:1", "http://nosuch.invalid:8080"} {
		t.Setenv("DNSROLL_API_URL", url)
		out, errOut, code := cli(t, "rollout", "list")
		if code != 1 || out != "" || strings.Count(strings.TrimSpace(errOut), "\n") != 0 ||
			!strings.Contains(errOut, url) || !strings.Contains(errOut, "--api-url or $DNSROLL_API_URL") {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want exit 1 and one line naming the URL and --api-url or $DNSROLL_API_URL", url, code, out, errOut)
		}
	}
}

// dnsroll --help says what each exit status means, the ones of a followed
// run included, so that a CI script can tell a run rolled back from a
// typo without the README.
func TestCLIUsageNamesExitStatuses(t *testing.T) {
	out, _, _ := cli(t, "--help")
	wantAll(t, "dnsroll --help", out, "Exit status:", "0 ", "1 ",
		fmt.Sprintf("%d a followed run", exitStopped), fmt.Sprintf("%d a followed run", exitNeedsHands))
}

// Ctrl-C (or a CI job cancelled) while a start or a signal waits for the
// API's answer leaves the operator not knowing whether it was done: the
// error says it may have been, and how to look, rather than Go's
// "context canceled".
func TestCLIInterruptedChangeSaysHowToLook(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The server sees the client hang up once the body is read.
		_, _ = io.Copy(io.Discard, r.Body)
		<-r.Context().Done()
	}))
	t.Cleanup(srv.Close)
	t.Setenv("DNSROLL_API_URL", srv.URL)
	t.Setenv("DNSROLL_API_TOKEN", "a-token-0123456789")
	for _, tc := range []struct {
		args []string
		look string
	}{
		{[]string{"rollout", "start", "--fleet", "lab", "--revision", "B", "--wait"}, "dnsroll rollout status --id rollout-lab"},
		{[]string{"rollout", "retry", "--id", "rollout-lab:r1"}, "dnsroll rollout status --id rollout-lab"},
		{[]string{"rollout", "cleanup", "--id", "rollout-lab:r1", "--reason", "x"}, "dnsroll rollout status --id rollout-lab"},
		{[]string{"rollout", "abort", "--fleet", "lab"}, "dnsroll rollout status --id rollout-lab"},
		{[]string{"lb", "abort", "--fleet", "lab", "--update"}, "dnsroll lb status --id lbupdate-lab"},
		{[]string{"lb", "update", "--fleet", "lab", "--kind", "config"}, "dnsroll lb status --id lbupdate-lab"},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		var out, errOut bytes.Buffer
		code := report(&errOut, run(ctx, streams{out: &out, err: &errOut}, tc.args))
		cancel()
		if code != 1 || !strings.Contains(errOut.String(), "may have been done") || !strings.HasSuffix(strings.TrimSpace(errOut.String()), tc.look) ||
			strings.Count(strings.TrimSpace(errOut.String()), "\n") != 0 {
			t.Errorf("%v: exit %d, stderr %q; want exit 1 and one line saying it may have been done and to look with %s", tc.args, code, errOut.String(), tc.look)
		}
	}
}

// Ctrl-C cancels the request (context.Canceled, not a timeout), and the
// HTTP client's own timeout ends it with the context still live: both
// say that the change may have been done, and where to look. Another
// error is left as it is.
func TestUnansweredSaysItMayHaveBeenDone(t *testing.T) {
	interrupted, cancel := context.WithCancel(context.Background())
	cancel()
	timedOut := &url.Error{Op: "Post", URL: "http://127.0.0.1:8080/lb-updates", Err: os.ErrDeadlineExceeded}
	refused := errors.New("409: lab is busy")
	for _, tc := range []struct {
		name string
		ctx  context.Context
		err  error
		want string
	}{
		{"interrupted", interrupted, context.Canceled, "interrupted before the API answered, so it may have been done: look with dnsroll lb status --id lbupdate-lab"},
		{"timed out", context.Background(), timedOut, "the API did not answer in time, so it may have been done: look with dnsroll lb status --id lbupdate-lab"},
		{"refused", context.Background(), refused, refused.Error()},
	} {
		got := unanswered(tc.ctx, tc.err, "lb", "lbupdate-lab")
		if got == nil || !strings.HasSuffix(got.Error(), tc.want) || (tc.err != context.Canceled && !errors.Is(got, tc.err)) {
			t.Errorf("%s: %v; want an error wrapping %v, ending %q", tc.name, got, tc.err, tc.want)
		}
	}
	if err := unanswered(interrupted, nil, "lb", "lbupdate-lab"); err != nil {
		t.Errorf("no error: %v", err)
	}
}

// A running rollout no worker answers for is said to be so, on stderr,
// by status and once by --wait/--follow: otherwise they show the phase
// it started in, and wait, without a word about why nothing moves.
func TestCLISaysNoWorkerAnswers(t *testing.T) {
	const warning = "no worker answered the status query of rollout rollout-lab:r1: is a worker running on task queue dnsroll?"
	var reads atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ro := api.Rollout{ID: "rollout-lab:r1", WorkflowID: "rollout-lab", RunID: "r1", State: "running", Warning: warning,
			Status: workflows.Status{Fleet: "lab", Run: workflows.Run{Phase: workflows.PhasePlanning, StartedAt: time.Now()}}}
		if reads.Add(1) > 3 {
			ro.State, ro.Phase, ro.Warning, ro.EndedAt = "completed", workflows.PhaseSucceeded, "", time.Now()
		}
		_ = json.NewEncoder(w).Encode(ro)
	}))
	t.Cleanup(srv.Close)
	t.Setenv("DNSROLL_API_URL", srv.URL)
	t.Setenv("DNSROLL_API_TOKEN", "a-token-0123456789")
	// status alone, which an operator runs first.
	out, errOut, code := cli(t, "rollout", "status", "--id", "rollout-lab:r1")
	if code != 0 || strings.Count(errOut, warning) != 1 || strings.Contains(out, warning) {
		t.Errorf("status: exit %d, stdout %q, stderr %q; want exit 0 and the warning once, on stderr", code, out, errOut)
	}
	out, errOut, code = cli(t, "rollout", "status", "--id", "rollout-lab:r1", "--follow", "--poll", "100ms")
	if code != 0 || strings.Count(errOut, warning) != 1 || strings.Contains(out, warning) {
		t.Errorf("exit %d, stdout %q, stderr %q; want exit 0 and the warning once, on stderr", code, out, errOut)
	}
}
