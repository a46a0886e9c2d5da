package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Client calls the API; the CLI and the end-to-end tests use it.
type Client struct {
	// URL is the API's base URL, such as http://127.0.0.1:8080. Errors
	// show it without its password (BaseURL).
	URL   string
	Token string
	HTTP  *http.Client
}

// Error is a non-2xx response.
type Error struct {
	Status int
	Body   ErrorBody
}

// Error is the API's message; a server-side failure's also names its
// request_id, under which the API's log has the details.
func (e *Error) Error() string {
	msg := e.Body.Message
	if msg == "" {
		msg = fmt.Sprintf("API: HTTP %d", e.Status)
	}
	if e.Status >= 500 && e.Body.RequestID != "" {
		msg += " (request_id " + e.Body.RequestID + ")"
	}
	return msg
}

// Start posts a rollout.
func (c *Client) Start(ctx context.Context, req StartRequest) (Started, error) {
	return c.StartOnce(ctx, req, "", Retry{})
}

// StartOnce posts a rollout with Idempotency-Key key, retrying transient
// errors as r says: with a key, a start whose answer was lost is safe to
// send again, and gets the rollout it started. Without one nothing is
// retried, since a retry could start a second rollout once the first ended.
func (c *Client) StartOnce(ctx context.Context, req StartRequest, key string, r Retry) (Started, error) {
	var out Started
	post := func(ctx context.Context) (Started, string, error) {
		var h http.Header
		if key != "" {
			h = http.Header{"Idempotency-Key": {key}}
		}
		return out, "", c.doWith(ctx, http.MethodPost, "/rollouts", h, req, &out)
	}
	if key == "" || r.For <= 0 {
		_, _, err := post(ctx)
		return out, err
	}
	_, _, err := Retrying(r, post)(ctx)
	return out, err
}

// planTimeout bounds a POST /plans, which waits for a worker to plan: the
// server's own wait (Config.PlanWait) with room to spare.
const planTimeout = 3 * time.Minute

// Plan asks for a dry run of a rollout (POST /plans): what the rollout's
// Plan step finds, or its refusal as an *Error with status 400.
func (c *Client) Plan(ctx context.Context, req StartRequest) (Planned, error) {
	var out Planned
	if c.HTTP == nil {
		planning := *c
		planning.HTTP = &http.Client{Timeout: planTimeout}
		c = &planning
	}
	return out, c.do(ctx, http.MethodPost, "/plans", req, &out)
}

// Get reads one rollout by ID ("rollout-<fleet>" alone is the latest).
func (c *Client) Get(ctx context.Context, id string) (Rollout, error) {
	var out Rollout
	return out, c.do(ctx, http.MethodGet, "/rollouts/"+url.PathEscape(id), nil, &out)
}

// ListOptions select a page of a list: the filters, the page's size
// (the API's default when 0) and the next_page_token of the page before.
type ListOptions struct {
	Fleet, Status string
	// Phase filters rollouts only.
	Phase     string
	Limit     int
	PageToken string
}

// List reads one page of rollouts.
func (c *Client) List(ctx context.Context, q ListOptions) (Page, error) {
	var out Page
	return out, c.do(ctx, http.MethodGet, listPath(Rollouts, q), nil, &out)
}

// listPath is the URL of a page of k's runs; empty filters are left out.
func listPath(k Kind, lq ListOptions) string {
	q := url.Values{}
	for k, v := range map[string]string{"fleet": lq.Fleet, "status": lq.Status, "phase": lq.Phase, "page_token": lq.PageToken} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if lq.Limit > 0 {
		q.Set("limit", strconv.Itoa(lq.Limit))
	}
	if len(q) > 0 {
		return k.Path + "?" + q.Encode()
	}
	return k.Path
}

// Retry starts an ended rollout again with its original input.
func (c *Client) Retry(ctx context.Context, id string, force bool) (Started, error) {
	var out Started
	path := "/rollouts/" + url.PathEscape(id) + "/retry"
	if force {
		path += "?force=true"
	}
	err := c.do(ctx, http.MethodPost, path, nil, &out)
	return out, err
}

// Cleanup starts a run that finishes the cleanup of a cleanup-failed rollout.
func (c *Client) Cleanup(ctx context.Context, id string, in SignalRequest) (Started, error) {
	var out Started
	err := c.do(ctx, http.MethodPost, "/rollouts/"+url.PathEscape(id)+"/cleanup", in, &out)
	return out, err
}

// Signal sends abort, rollback or approve.
func (c *Client) Signal(ctx context.Context, id, name string, in SignalRequest) (Accepted, error) {
	var out Accepted
	return out, c.do(ctx, http.MethodPost, "/rollouts/"+url.PathEscape(id)+"/"+name, in, &out)
}

// Wait polls a rollout until it leaves the running state, calling onChange
// with each status it reads.
func (c *Client) Wait(ctx context.Context, id string, poll time.Duration, onChange func(Rollout)) (Rollout, error) {
	return Poll(ctx, poll, func(ctx context.Context) (Rollout, string, error) {
		ro, err := c.Get(ctx, id)
		return ro, ro.State, err
	}, onChange)
}

// Poll calls read every poll until the state it returns is no longer
// running, calling onChange with each value it reads.
func Poll[T any](ctx context.Context, poll time.Duration, read func(context.Context) (T, string, error), onChange func(T)) (T, error) {
	for {
		v, state, err := read(ctx)
		if err != nil {
			return v, err
		}
		if onChange != nil {
			onChange(v)
		}
		if !Open(state) {
			return v, nil
		}
		select {
		case <-ctx.Done():
			return v, ctx.Err()
		case <-time.After(poll):
		}
	}
}

// Retry is how Retrying retries a read that fails transiently.
type Retry struct {
	// For is how long a row of failed reads may last, from the first,
	// before the last error is returned.
	For time.Duration
	// Wait is the wait after the first failure (default 1s); it doubles
	// after each one, up to maxRetryWait.
	Wait time.Duration
	// OnRetry, if set, hears of each error that is retried and of the
	// wait before the next try.
	OnRetry func(err error, wait time.Duration)
}

// maxRetryWait bounds a retry's wait, so that following picks up soon
// after the API is back.
const maxRetryWait = 30 * time.Second

// Retrying is read, for Poll, retrying transient errors (Transient) as r
// says: one 502 from a proxy should not end the following of a run that
// goes on. It returns any other error at once, and the last transient one
// once r.For has passed. Only reads may be retried so, and starts that
// carry an Idempotency-Key (StartOnce).
func Retrying[T any](r Retry, read func(context.Context) (T, string, error)) func(context.Context) (T, string, error) {
	return func(ctx context.Context) (T, string, error) {
		var first time.Time
		wait := r.Wait
		if wait <= 0 {
			wait = time.Second
		}
		for {
			v, state, err := read(ctx)
			if err == nil || !Transient(err) || ctx.Err() != nil {
				return v, state, err
			}
			if first.IsZero() {
				first = time.Now()
			}
			left := r.For - time.Since(first)
			if left <= 0 {
				return v, state, fmt.Errorf("still failing after %s: %w", r.For, err)
			}
			wait = min(wait, left)
			if r.OnRetry != nil {
				r.OnRetry(err, wait)
			}
			select {
			case <-ctx.Done():
				return v, state, ctx.Err()
			case <-time.After(wait):
			}
			wait = min(2*wait, maxRetryWait)
		}
	}
}

// Transient reports whether err may pass when the request is repeated:
// a 5xx or 429 from the API or a proxy in front of it, or a connection
// refused, reset, cut short or timed out, as while the API restarts.
func Transient(err error) bool {
	var e *Error
	if errors.As(err, &e) {
		return e.Status >= 500 || e.Status == http.StatusTooManyRequests
	}
	if errors.Is(err, context.Canceled) {
		return false
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	var dns *net.DNSError
	if errors.As(err, &dns) && dns.IsTemporary {
		return true
	}
	for _, t := range []error{syscall.ECONNREFUSED, syscall.ECONNRESET, syscall.EPIPE, io.EOF, io.ErrUnexpectedEOF} {
		if errors.Is(err, t) {
			return true
		}
	}
	return false
}

// LBStarted is the 201 of a load balancer update's or replacement's start.
type LBStarted = WorkflowRun[struct{}]

// StartRun starts a run of k: req is an LBUpdateRequest for LBUpdates, an
// LBReplaceRequest for LBReplacements.
func (c *Client) StartRun(ctx context.Context, k Kind, req any) (LBStarted, error) {
	var out LBStarted
	return out, c.do(ctx, http.MethodPost, k.Path, req, &out)
}

// ReadRun reads a run of k ("<prefix><fleet>" alone is the latest) into
// out: a *WorkflowRun[workflows.Status] for LBUpdates, a
// *WorkflowRun[workflows.LBReplaceStatus] for LBReplacements.
func (c *Client) ReadRun(ctx context.Context, k Kind, id string, out any) error {
	return c.do(ctx, http.MethodGet, k.Path+"/"+url.PathEscape(id), nil, out)
}

// ListRuns reads one page of k's runs (LBUpdates or LBReplacements).
func (c *Client) ListRuns(ctx context.Context, k Kind, q ListOptions) (RunPage, error) {
	var out RunPage
	return out, c.do(ctx, http.MethodGet, listPath(k, q), nil, &out)
}

// SignalRun sends signal name to a run of k.
func (c *Client) SignalRun(ctx context.Context, k Kind, id, name string, in SignalRequest) (LBAccepted, error) {
	var out LBAccepted
	return out, c.do(ctx, http.MethodPost, k.Path+"/"+url.PathEscape(id)+"/"+name, in, &out)
}

// BaseURL parses c.URL. It refuses a query or a fragment, which would
// end up in the middle of every request's path, and its errors never
// show a password or a query, which CI logs would keep.
func (c *Client) BaseURL() (*url.URL, error) {
	// A bare host:port is the usual slip. It is shown in the hint only
	// when it has no user part, which could hold a password.
	if !strings.Contains(c.URL, "://") && !strings.Contains(c.URL, "@") {
		if host, port, err := net.SplitHostPort(c.URL); err == nil && host != "" && port != "" {
			return nil, fmt.Errorf("API base URL: must start with http:// or https://, as in http://%s", c.URL)
		}
	}
	u, err := url.Parse(c.URL)
	if err != nil {
		// Parse quotes what it could not read: with a user part, that
		// may be a password holding / ? or #, taken for a port.
		if strings.Contains(c.URL, "@") {
			return nil, errors.New("API base URL: does not parse as a URL (not shown: its user part may hold a password); percent-encode / ? # in a password, or pass the token with --token")
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("API base URL: %w", err)
	}
	if u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || u.RawFragment != "" {
		bare := *u
		bare.RawQuery, bare.ForceQuery, bare.Fragment, bare.RawFragment = "", false, "", ""
		return nil, fmt.Errorf("API base URL %s: a query or fragment is not allowed (it would be part of every request's path)", bare.Redacted())
	}
	// Without one of these schemes the rest is opaque, which Redacted
	// does not redact: only the scheme is shown.
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("API base URL: must be http:// or https:// and a host, such as http://127.0.0.1:8080 (scheme %q)", u.Scheme)
	}
	return u, nil
}

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	return c.doWith(ctx, method, path, nil, in, out)
}

// doWith is do with extra request headers.
func (c *Client) doWith(ctx context.Context, method, path string, header http.Header, in, out any) error {
	base, err := c.BaseURL()
	if err != nil {
		return err
	}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(base.String(), "/")+path, body)
	if err != nil {
		return fmt.Errorf("API %s %s: %w", method, path, err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("API %s: %w", base.Redacted(), err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("API %s: %w", base.Redacted(), err)
	}
	if resp.StatusCode/100 != 2 {
		e := &Error{Status: resp.StatusCode}
		// A gateway's JSON may lack a message, or echo the request.
		if json.Unmarshal(b, &e.Body) != nil || e.Body.Message == "" {
			e.Body.Message = fmt.Sprintf("API: HTTP %d: %s", resp.StatusCode, c.errorPage(b))
		} else {
			for _, f := range []*string{&e.Body.Message, &e.Body.Code, &e.Body.Field, &e.Body.RolloutID, &e.Body.RequestID} {
				*f = c.hideToken(*f)
			}
		}
		return e
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("API %s %s: bad response: %w", method, path, err)
	}
	return nil
}

// errorPage is the start of an error response that is not the API's JSON
// (a proxy's or a firewall's page), for the operator to see what answered:
// cut short, and without the token, which a page that echoes the request
// holds. What the CLI prints stays in CI logs.
func (c *Client) errorPage(b []byte) string {
	page := c.hideToken(strings.Join(strings.Fields(string(b)), " "))
	if r := []rune(page); len(r) > 300 {
		page = string(r[:300]) + "…"
	}
	return page
}

// hideToken is s without the bearer token.
func (c *Client) hideToken(s string) string {
	if c.Token == "" {
		return s
	}
	return strings.ReplaceAll(s, c.Token, "[token]")
}
