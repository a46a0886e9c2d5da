package activities

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/dnsroll/dnsroll/config"
)

// A webhook reaches Notify by name only (history carries no URL): the URL
// comes from the worker's fleet file or, with url_env, its environment,
// and the body is signed with the secret that secret_env names.
func TestNotifyLooksTheURLUpByName(t *testing.T) {
	type delivery struct{ path, signature, body, event, id string }
	got := make(chan delivery, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- delivery{r.URL.RequestURI(), r.Header.Get("X-Dnsroll-Signature"), string(b), r.Header.Get("X-Dnsroll-Event"), r.Header.Get("X-Dnsroll-Delivery")}
	}))
	defer srv.Close()
	t.Setenv("HOOK_SECRET", "sekret-hmac")
	t.Setenv("HOOK_URL", srv.URL+"/from-env?token=sekret-env")
	fleet, err := config.Parse([]byte(testFleetYAML + `ansible: {connection: local}
notifications:
  webhooks:
    - {url: "` + srv.URL + `/from-file?token=sekret-file", secret_env: HOOK_SECRET}
    - {name: chat, url_env: HOOK_URL}
`))
	if err != nil {
		t.Fatal(err)
	}
	hist := fleet.ForHistory()
	// Nor the variables' names: a secret written there by mistake would
	// go into history with them.
	for _, w := range hist.Notifications.Webhooks {
		if w.URL != "" || w.URLEnv != "" || w.SecretEnv != "" {
			t.Fatalf("the fleet for history keeps %+v", w)
		}
	}
	if hist.Notifications.Webhooks[0].Name != "webhook-1" {
		t.Fatalf("the fleet for history names its first webhook %q", hist.Notifications.Webhooks[0].Name)
	}
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	acts := &Activities{Fleets: func(string) (*config.Fleet, error) { return fleet, nil }}
	env.RegisterActivity(acts)

	ids := map[string]bool{}
	for i, tt := range []struct{ hook, path string }{
		{"webhook-1", "/from-file?token=sekret-file"},
		{"chat", "/from-env?token=sekret-env"},
	} {
		w := hist.Notifications.Webhooks[0]
		if tt.hook == "chat" {
			w = hist.Notifications.Webhooks[1]
		}
		seq := i + 1
		if _, err := env.ExecuteActivity(acts.Notify, NotifyInput{Webhook: w, Event: "started", Fleet: "lab", Seq: seq}); err != nil {
			t.Fatalf("%s: %v", tt.hook, err)
		}
		d := <-got
		if d.path != tt.path {
			t.Errorf("%s: posted to %s, want %s", tt.hook, d.path, tt.path)
		}
		// Receivers drop a retry's duplicate by its delivery ID: the
		// run's ID with the event's sequence number, one per event.
		if d.event != "started" || !strings.HasSuffix(d.id, "/"+strconv.Itoa(seq)) || ids[d.id] {
			t.Errorf("%s: event %q, delivery %q (earlier %v); want started, a new ID ending /%d", tt.hook, d.event, d.id, ids, seq)
		}
		ids[d.id] = true
		if tt.hook == "webhook-1" {
			mac := hmac.New(sha256.New, []byte("sekret-hmac"))
			mac.Write([]byte(d.body))
			if want := "sha256=" + hex.EncodeToString(mac.Sum(nil)); d.signature != want {
				t.Errorf("signature %q, want %q", d.signature, want)
			}
		}
	}

	// An input from before the variables' names left history names its
	// url_env: it is used as it is.
	if _, err := env.ExecuteActivity(acts.Notify, NotifyInput{Webhook: config.Webhook{Name: "old", URLEnv: "HOOK_URL"}, Event: "started", Fleet: "lab", Seq: 3}); err != nil {
		t.Errorf("an input that names its url_env: %v", err)
	} else if d := <-got; d.path != "/from-env?token=sekret-env" {
		t.Errorf("an input that names its url_env: posted to %s", d.path)
	}

	_, err = env.ExecuteActivity(acts.Notify, NotifyInput{Webhook: config.Webhook{Name: "gone"}, Event: "started", Fleet: "lab"})
	if err == nil || !strings.Contains(err.Error(), `no webhook named "gone"`) {
		t.Errorf("a webhook no longer in the fleet file: %v", err)
	}
	t.Setenv("HOOK_URL", "")
	_, err = env.ExecuteActivity(acts.Notify, NotifyInput{Webhook: hist.Notifications.Webhooks[1], Event: "started", Fleet: "lab"})
	if err == nil || !strings.Contains(err.Error(), "url_env HOOK_URL is not set on this worker") {
		t.Errorf("url_env unset: %v", err)
	}
	// The variable's URL is checked as the fleet file's is: one that
	// carries credentials, or is not http, is refused for good.
	for _, bad := range []string{"https://user:sekret@hooks.example.net/x", "ftp://hooks.example.net/x"} {
		t.Setenv("HOOK_URL", bad)
		_, err = env.ExecuteActivity(acts.Notify, NotifyInput{Webhook: hist.Notifications.Webhooks[1], Event: "started", Fleet: "lab"})
		var app *temporal.ApplicationError
		if err == nil || !strings.Contains(err.Error(), "webhook chat: $HOOK_URL must") || strings.Contains(err.Error(), "sekret") || !errors.As(err, &app) || !app.NonRetryable() {
			t.Errorf("url_env set to %s: %v; want it refused for good, without the URL", bad, err)
		}
	}
}

// A secret_env naming a variable that is unset or empty on the worker
// refuses the delivery, as an unset url_env does, rather than sending a
// body "signed" with an empty HMAC key that anyone can compute. Nothing
// reaches the receiver, and the error is not retried.
func TestNotifyRefusesUnsetSecretEnv(t *testing.T) {
	var posts atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { posts.Add(1) }))
	defer srv.Close()
	fleet, err := config.Parse([]byte(testFleetYAML + `ansible: {connection: local}
notifications:
  webhooks:
    - {name: chat, url: "` + srv.URL + `/hook", secret_env: HOOK_SECRET}
`))
	if err != nil {
		t.Fatal(err)
	}
	hook := fleet.ForHistory().Notifications.Webhooks[0]
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	acts := &Activities{Fleets: func(string) (*config.Fleet, error) { return fleet, nil }}
	env.RegisterActivity(acts)

	for _, tt := range []struct {
		name  string
		unset bool
	}{{"empty", false}, {"unset", true}} {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("HOOK_SECRET", "")
			if tt.unset {
				os.Unsetenv("HOOK_SECRET")
			}
			_, err := env.ExecuteActivity(acts.Notify, NotifyInput{Webhook: hook, Event: "started", Fleet: "lab", Seq: 1})
			if err == nil || !strings.Contains(err.Error(), "webhook chat: secret_env HOOK_SECRET is not set on this worker") {
				t.Errorf("secret_env %s: err %v, want it to say secret_env HOOK_SECRET is not set", tt.name, err)
			}
			var app *temporal.ApplicationError
			if !errors.As(err, &app) || !app.NonRetryable() {
				t.Errorf("secret_env %s: err %v is retried", tt.name, err)
			}
			if n := posts.Load(); n != 0 {
				t.Errorf("secret_env %s: %d requests reached the receiver", tt.name, n)
			}
		})
	}
}

// A webhook that answers with a redirect is not followed: a 307 or 308
// would send the body and its signature on to wherever the receiver (or
// whoever took its name over) pointed. The delivery fails, naming it.
func TestNotifyFollowsNoRedirect(t *testing.T) {
	var elsewhere atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { elsewhere.Add(1) }))
	defer other.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/collect", http.StatusTemporaryRedirect)
	}))
	defer srv.Close()
	t.Setenv("HOOK_SECRET", "sekret-hmac")
	fleet, err := config.Parse([]byte(testFleetYAML + `ansible: {connection: local}
notifications:
  webhooks:
    - {url: "` + srv.URL + `/hook", secret_env: HOOK_SECRET}
`))
	if err != nil {
		t.Fatal(err)
	}
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	acts := &Activities{Fleets: func(string) (*config.Fleet, error) { return fleet, nil }}
	env.RegisterActivity(acts)
	_, err = env.ExecuteActivity(acts.Notify, NotifyInput{Webhook: fleet.ForHistory().Notifications.Webhooks[0], Event: "started", Fleet: "lab", Seq: 1})
	var app *temporal.ApplicationError
	if err == nil || !strings.Contains(err.Error(), "HTTP 307") || !errors.As(err, &app) || !app.NonRetryable() {
		t.Errorf("a webhook that redirects: %v; want the delivery to fail with its 307, for good", err)
	}
	if n := elsewhere.Load(); n != 0 {
		t.Errorf("the redirect was followed: %d request(s) elsewhere", n)
	}
}

// A delivery that fails names the webhook's host alone: its URL may carry
// a token, in its query or user part, and the error goes to the step's
// status, history and the worker's log.
func TestNotifyErrorsHideTheURLsSecrets(t *testing.T) {
	answer := func(code int) string {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if code/100 == 3 {
				http.Redirect(w, r, "/elsewhere", code)
				return
			}
			w.WriteHeader(code)
		}))
		t.Cleanup(srv.Close)
		return srv.URL
	}
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	acts := &Activities{}
	env.RegisterActivity(acts)
	// A receiver that is down or failing may come back: that is retried;
	// a redirect is not followed on any attempt, so it is not.
	for _, tt := range []struct {
		name, base, want string
		retried          bool
	}{
		{"an HTTP error", answer(http.StatusInternalServerError), "HTTP 500", true},
		{"a client error", answer(http.StatusNotFound), "HTTP 404", true},
		{"a redirect", answer(http.StatusFound), "HTTP 302", false},
		{"a refused connection", closed.URL, "refused", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			base := strings.TrimPrefix(tt.base, "http://")
			hook := config.Webhook{Name: "chat", URL: "http://hook:sekret-user@" + base + "/x?token=sekret-query"}
			_, err := env.ExecuteActivity(acts.Notify, NotifyInput{Webhook: hook, Event: "started", Fleet: "lab", Seq: 1})
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "(http://"+base+")") {
				t.Errorf("err %v, want it to say %s and name http://%s", err, tt.want, base)
			}
			if err != nil && strings.Contains(err.Error(), "sekret") {
				t.Errorf("the error shows the URL's secrets: %v", err)
			}
			var app *temporal.ApplicationError
			if errors.As(err, &app) && app.NonRetryable() == tt.retried {
				t.Errorf("err %v: retried %v, want %v", err, !app.NonRetryable(), tt.retried)
			}
		})
	}
}

// The body tells the receiver what happened and where: the event, fleet,
// revision, phase, reason, the approval gate an awaiting_approval is for,
// the rollout and its web UI link, and the sequence number that makes
// its delivery ID; and the signature covers those very bytes.
func TestNotifyBody(t *testing.T) {
	got := make(chan []byte, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- b
	}))
	defer srv.Close()
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	acts := &Activities{WebUIURL: "https://temporal.example.net"}
	env.RegisterActivity(acts)
	in := NotifyInput{Webhook: config.Webhook{Name: "chat", URL: srv.URL + "/hook"}, Event: config.EventAwaitingApproval,
		Fleet: "lab", Revision: "r7", Phase: "awaiting-approval", Reason: "canary step 2", ApprovalGate: 2, Seq: 9}
	if _, err := env.ExecuteActivity(acts.Notify, in); err != nil {
		t.Fatal(err)
	}
	var n Notification
	body := <-got
	if err := json.Unmarshal(body, &n); err != nil {
		t.Fatalf("body %s: %v", body, err)
	}
	if n.Event != in.Event || n.Fleet != "lab" || n.Revision != "r7" || n.Phase != in.Phase || n.Reason != in.Reason ||
		n.ApprovalGate != 2 || n.Seq != 9 || n.RolloutID != n.WorkflowID+":"+n.RunID || n.RunID == "" ||
		!strings.HasPrefix(n.WebUI, "https://temporal.example.net/") || n.SentAt.IsZero() {
		t.Errorf("body %s does not carry the event as sent", body)
	}
}
