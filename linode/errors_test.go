package linode_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/lab/linodesim"
	"github.com/dnsroll/dnsroll/linode"
)

func TestTokenNeverInErrors(t *testing.T) {
	e := newEnv(t)
	c := ctx(t)
	e.create(t, "ns1")
	var errs []error
	add := func(err error) {
		if err == nil {
			t.Errorf("case %d: expected an error", len(errs))
		}
		errs = append(errs, err)
	}
	_, err := e.cloud.Get(c, 4242)
	add(err)
	_, err = e.cloud.Create(c, spec("ns1", tag), nil)
	add(err)
	_, err = e.cloud.Create(c, spec("x", tag), nil)
	add(err)
	add(e.cloud.Rename(c, 4242, "ns9"))
	e.sim.InjectFault(linodesim.Fault{Status: 500})
	_, err = e.cloud.List(c, tag)
	add(err)
	e.sim.InjectFault(linodesim.Fault{LoseResponse: true, Method: "POST"})
	_, err = e.cloud.Create(c, spec("ns2", tag), nil)
	add(err)

	const wrong = "wrong-secret-token-91f0"
	_, err = newCloud(t, e.srv.URL+"/v4", wrong).List(c, tag)
	if !strings.Contains(err.Error(), "Invalid Token") {
		t.Errorf("401 should say why: %v", err)
	}
	add(err)

	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	_, err = newCloud(t, dead.URL+"/v4", token).Get(c, 1)
	add(err)

	for i, err := range errs {
		if err == nil {
			continue
		}
		if msg := err.Error(); strings.Contains(msg, token) || strings.Contains(msg, wrong) || strings.Contains(msg, "Bearer") {
			t.Errorf("case %d leaks the token: %q", i, msg)
		}
		if !strings.HasPrefix(err.Error(), "linode: ") {
			t.Errorf("case %d lacks the prefix: %q", i, err)
		}
	}
}

func TestContextErrorsSurvive(t *testing.T) {
	e := newEnv(t)
	e.sim.InjectFault(linodesim.Fault{Method: "GET", Delay: 5 * time.Second})
	c, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := e.cloud.Get(c, 1001)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a timed-out call should match context.DeadlineExceeded: %v", err)
	}
	if errors.Is(err, dnsroll.ErrNotFound) {
		t.Fatal("a timeout is not a not-found")
	}
}

func TestRetriesThroughFaults(t *testing.T) {
	e := newEnv(t)
	e.sim.InjectFault(linodesim.Fault{Method: "POST", Status: 429, RetryAfter: 10, Count: 2})
	e.sim.InjectFault(linodesim.Fault{Method: "GET", Status: 503, Count: 2})
	start := time.Now()
	s, err := e.cloud.Create(ctx(t), spec("ns1", tag), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.cloud.Get(ctx(t), s.ID); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("RetryWait should cap Retry-After, took %v", d)
	}
	if n := len(e.sim.Instances()); n != 1 {
		t.Fatalf("%d instances after retried create", n)
	}
}

func TestNewOptions(t *testing.T) {
	if _, err := linode.New(linode.Options{}); dnsroll.ErrorCode(err) != dnsroll.EINVALID {
		t.Errorf("no token: %v", err)
	}
	for _, bad := range []string{"ftp://x/v4", "not a url", "/v4"} {
		if _, err := linode.New(linode.Options{Token: "t", BaseURL: bad}); dnsroll.ErrorCode(err) != dnsroll.EINVALID {
			t.Errorf("base URL %q: %v", bad, err)
		}
	}
	if _, err := linode.New(linode.Options{Token: "t"}); err != nil {
		t.Errorf("default base URL: %v", err)
	}

	// The simulator behind a path prefix: the prefix must be kept.
	sim, _ := linodesim.New(linodesim.Options{Token: token})
	srv := httptest.NewServer(http.StripPrefix("/proxy", sim))
	defer srv.Close()
	cloud := newCloud(t, srv.URL+"/proxy/v4/", token)
	if _, err := cloud.Create(ctx(t), spec("ns1", tag), nil); err != nil {
		t.Fatalf("through a prefix: %v", err)
	}
	if list, err := cloud.List(ctx(t), tag); err != nil || len(list) != 1 {
		t.Fatalf("list through a prefix: %v, %v", list, err)
	}
}

// Linode refuses to delete an instance while it is cloned or restored
// from a backup, with a 400. A delete request carries no input that could
// be wrong, so that 400 passes and the delete is retried: were it final,
// a rollback would leave its green running and billing.
func TestDeleteRefusedForNowIsRetried(t *testing.T) {
	e := newEnv(t)
	s, err := e.cloud.Create(ctx(t), spec("ns1-next", tag), nil)
	if err != nil {
		t.Fatal(err)
	}
	e.sim.InjectFault(linodesim.Fault{Method: "DELETE", Status: 400})
	err = e.cloud.Delete(ctx(t), s.ID)
	if err == nil || dnsroll.ErrorCode(err) == dnsroll.EINVALID {
		t.Fatalf("delete refused with a 400: %v; want an error a retry may clear", err)
	}
	if err := e.cloud.Delete(ctx(t), s.ID); err != nil {
		t.Fatalf("the retried delete: %v", err)
	}
}

// Linode answers a request on an instance that is busy with a 400 whose
// reason is "Linode busy.", which linodego retries by itself, a thousand
// times by default: a step would wait for hours inside one call, showing
// no failed attempt. A few retries, then the error goes to the step's
// retries, where the Web UI shows it.
func TestBusyLinodeReachesTheStep(t *testing.T) {
	e := newEnv(t)
	s, err := e.cloud.Create(ctx(t), spec("ns1-next", tag), nil)
	if err != nil {
		t.Fatal(err)
	}
	const busyFor = 5000
	e.sim.InjectFault(linodesim.Fault{Method: "DELETE", Status: 400, Reason: "Linode busy.", Count: busyFor})
	err = e.cloud.Delete(ctx(t), s.ID)
	if err == nil || !strings.Contains(err.Error(), "Linode busy.") || dnsroll.ErrorCode(err) == dnsroll.EINVALID {
		t.Fatalf("delete of a busy Linode: %v; want its retryable error", err)
	}
	left := e.sim.Faults()
	if len(left) != 1 {
		t.Fatalf("faults left %v", left)
	}
	if asked := busyFor - left[0].Count; asked > linode.RetryCount+1 {
		t.Errorf("one Delete sent %d requests to a busy Linode, want at most %d", asked, linode.RetryCount+1)
	}
	e.sim.ClearFaults()
	// A rename (the rollout's last step, past its point of no return) or
	// a create that meets a busy Linode stays retryable too: a busy
	// Linode is no mistake in the request.
	e.sim.InjectFault(linodesim.Fault{Method: "PUT", Status: 400, Reason: "Linode busy.", Count: busyFor})
	if err := e.cloud.Rename(ctx(t), s.ID, "ns1"); err == nil || dnsroll.ErrorCode(err) != dnsroll.EINTERNAL {
		t.Fatalf("rename of a busy Linode: %v (code %q); want an internal error, which its step retries", err, dnsroll.ErrorCode(err))
	}
	e.sim.ClearFaults()
	if err := e.cloud.Delete(ctx(t), s.ID); err != nil {
		t.Fatalf("the retried delete: %v", err)
	}
}

// An error page that is not the API's JSON (a proxy's or a firewall's in
// front of it) may echo the request, as block and debug pages do: the
// errors, which go into workflow history, carry neither that copy of the
// token nor the new Linode's root password, and still say what answered.
func TestEchoedRequestNotInErrors(t *testing.T) {
	for _, status := range []int{http.StatusBadRequest, http.StatusForbidden, http.StatusInternalServerError} {
		echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(status)
			_, _ = io.WriteString(w, "<html>Request blocked: "+r.Header.Get("Authorization")+" "+string(body)+"</html>")
		}))
		cloud := newCloud(t, echo.URL+"/v4", token)
		_, createErr := cloud.Create(ctx(t), spec("ns1", tag), nil)
		deleteErr := cloud.Delete(ctx(t), 4242)
		echo.Close()
		for what, err := range map[string]error{"create": createErr, "delete": deleteErr} {
			if err == nil {
				t.Fatalf("HTTP %d: %s: no error", status, what)
			}
			msg := err.Error()
			if strings.Contains(msg, token) || strings.Contains(msg, "root_pass") || strings.Contains(msg, "Request blocked") {
				t.Errorf("HTTP %d: %s: the error holds the echoed request: %q", status, what, msg)
			}
			if !strings.Contains(msg, fmt.Sprintf("[%d]", status)) || !strings.Contains(msg, "text/html") {
				t.Errorf("HTTP %d: %s: the error does not say what answered: %q", status, what, msg)
			}
		}
	}
}
