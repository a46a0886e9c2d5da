package linodesim_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/linode/linodego"

	"github.com/dnsroll/dnsroll/lab/linodesim"
)

const token = "sim-test-token-7c1e"

// env is a simulator served over HTTP with a real linodego client.
type env struct {
	sim *linodesim.Sim
	srv *httptest.Server
	lc  *linodego.Client
}

func newEnv(t *testing.T, opts linodesim.Options) *env {
	t.Helper()
	if opts.Token == "" {
		opts.Token = token
	}
	sim, err := linodesim.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	return &env{sim: sim, srv: srv, lc: newClient(t, srv.URL, opts.Token)}
}

// newClient is an unmodified linodego client with short retry waits.
func newClient(t *testing.T, url, tok string) *linodego.Client {
	t.Helper()
	c := linodego.NewClient(nil)
	if _, err := c.UseURL(url + "/v4"); err != nil {
		t.Fatal(err)
	}
	c.SetToken(tok)
	c.SetRetryWaitTime(5 * time.Millisecond).SetRetryMaxWaitTime(20 * time.Millisecond).SetPollDelay(5 * time.Millisecond)
	return &c
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

// create makes an instance from an image, as dnsroll does.
func (e *env) create(t *testing.T, label string, tags ...string) *linodego.Instance {
	t.Helper()
	inst, err := e.lc.CreateInstance(ctx(t), linodego.InstanceCreateOptions{
		Label: label, Region: "us-east", Type: "g6-nanode-1", Image: "linode/debian12",
		RootPass: "Very-Secret-Root-Pass-1", Tags: tags,
	})
	if err != nil {
		t.Fatalf("create %s: %v", label, err)
	}
	return inst
}

// reply is a raw HTTP answer.
type reply struct {
	status int
	header http.Header
	body   string
}

func (r reply) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(r.body), &m); err != nil {
		t.Fatalf("body %q: %v", r.body, err)
	}
	return m
}

// reason is the first error reason and field of an error reply.
func (r reply) reason(t *testing.T) (reason, field string) {
	t.Helper()
	var e struct {
		Errors []struct{ Reason, Field string } `json:"errors"`
	}
	if err := json.Unmarshal([]byte(r.body), &e); err != nil || len(e.Errors) == 0 {
		t.Fatalf("not a Linode error body: %q (%v)", r.body, err)
	}
	return e.Errors[0].Reason, e.Errors[0].Field
}

// do sends a raw request with the token unless tok is "-", and checks that
// every reply is JSON.
func (e *env) do(t *testing.T, method, path, body string, hdr ...string) reply {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx(t), method, e.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s %s: Content-Type %q, want application/json", method, path, ct)
	}
	return reply{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

// apiStatus is the HTTP status in a linodego error, or 0.
func apiStatus(err error) int {
	if e, ok := err.(*linodego.Error); ok {
		return e.Code
	}
	return 0
}
