package linodesim_test

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/linode/linodego"

	"github.com/dnsroll/dnsroll/lab/linodesim"
)

func TestRetryAfter429IsRetried(t *testing.T) {
	e := newEnv(t, linodesim.Options{})
	e.create(t, "ns1")
	e.sim.InjectFault(linodesim.Fault{Method: "GET", PathPrefix: "/v4/linode/instances", Status: 429, RetryAfter: 1, Count: 2})
	start := time.Now()
	got, err := e.lc.ListInstances(ctx(t), nil)
	if err != nil || len(got) != 1 {
		t.Fatalf("list through 429s: %v, %v", got, err)
	}
	if left := e.sim.Faults(); len(left) != 0 {
		t.Fatalf("both 429s should have been consumed, left %+v", left)
	}
	if d := time.Since(start); d > 900*time.Millisecond {
		t.Errorf("took %v: Retry-After should be capped by the client's max retry wait", d)
	}

	e.sim.InjectFault(linodesim.Fault{Status: 429, RetryAfter: 7})
	r := e.do(t, "GET", "/v4/linode/instances/1001", "")
	if reason, _ := r.reason(t); r.status != 429 || r.header.Get("Retry-After") != "7" || reason == "" {
		t.Fatalf("raw 429: %d %q %s", r.status, r.header.Get("Retry-After"), r.body)
	}

	// linodego retries POST on 503 too: the create happens exactly once.
	e.sim.InjectFault(linodesim.Fault{Method: "POST", Status: 503})
	if in := e.create(t, "ns2"); in.Label != "ns2" || len(e.sim.Instances()) != 2 {
		t.Fatalf("create through 503: %+v, %d instances", in, len(e.sim.Instances()))
	}
}

func TestLoseResponseCreatesAnyway(t *testing.T) {
	e := newEnv(t, linodesim.Options{})
	e.sim.InjectFault(linodesim.Fault{Method: "POST", PathPrefix: "/v4/linode/instances", LoseResponse: true})
	opts := linodego.InstanceCreateOptions{Label: "ns1-next", Region: "us-east", Type: "g6-nanode-1", Tags: []string{"fleet"}}
	if _, err := e.lc.CreateInstance(ctx(t), opts); apiStatus(err) != 502 {
		t.Fatalf("client should see a 502, got %v", err)
	}
	got := e.sim.Instances()
	if len(got) != 1 || got[0].Label != "ns1-next" {
		t.Fatalf("the create must have happened: %+v", got)
	}
	// A naive retry now trips over the label: why creates look up first.
	if _, err := e.lc.CreateInstance(ctx(t), opts); apiStatus(err) != 400 {
		t.Fatalf("retry: %v", err)
	}
	f := &linodego.Filter{}
	f.AddField(linodego.Eq, "label", "ns1-next")
	b, _ := f.MarshalJSON()
	if found, err := e.lc.ListInstances(ctx(t), &linodego.ListOptions{Filter: string(b)}); err != nil || len(found) != 1 {
		t.Fatalf("lookup by label: %v, %v", found, err)
	}
}

func TestDelayAndCount(t *testing.T) {
	e := newEnv(t, linodesim.Options{})
	e.sim.InjectFault(linodesim.Fault{Method: "GET", Delay: 100 * time.Millisecond})
	start := time.Now()
	if _, err := e.lc.ListInstances(ctx(t), nil); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 100*time.Millisecond {
		t.Errorf("delay fault took only %v", d)
	}
	e.sim.InjectFault(linodesim.Fault{Method: "GET", Delay: 5 * time.Second})
	c, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := e.lc.ListInstances(c, nil); err == nil {
		t.Error("a slow reply should trip the client's deadline")
	}
	e.sim.ClearFaults()

	e.sim.InjectFault(linodesim.Fault{Method: "DELETE", Status: 500, Count: -1})
	e.create(t, "ns1")
	for range 3 {
		if err := e.lc.DeleteInstance(ctx(t), 1001); apiStatus(err) != 500 {
			t.Fatalf("count -1 should fail every time: %v", err)
		}
	}
	if len(e.sim.Faults()) != 1 {
		t.Fatal("an unlimited fault stays until cleared")
	}
}

func TestFaultControlEndpoint(t *testing.T) {
	e := newEnv(t, linodesim.Options{})
	r := e.do(t, "POST", "/_sim/faults", `{"method":"GET","path_prefix":"/v4/linode/instances/","status":500,"count":2,"delay":"1ms"}`)
	if r.status != 200 {
		t.Fatalf("post fault: %d %s", r.status, r.body)
	}
	r = e.do(t, "POST", "/_sim/faults", `[{"Method":"POST","PathPrefix":"/v4/linode/instances","Status":429,"RetryAfter":1,"Delay":1000000}]`)
	if r.status != 200 {
		t.Fatalf("post Go-named faults: %d %s", r.status, r.body)
	}
	var list []linodesim.Fault
	if err := json.Unmarshal([]byte(e.do(t, "GET", "/_sim/faults", "").body), &list); err != nil {
		t.Fatal(err)
	}
	want := []linodesim.Fault{
		{Method: "GET", PathPrefix: "/v4/linode/instances/", Status: 500, Count: 2, Delay: time.Millisecond},
		{Method: "POST", PathPrefix: "/v4/linode/instances", Status: 429, RetryAfter: 1, Count: 1, Delay: time.Millisecond},
	}
	if len(list) != 2 || list[0] != want[0] || list[1] != want[1] {
		t.Fatalf("faults %+v, want %+v", list, want)
	}
	if r := e.do(t, "GET", "/v4/linode/instances/1", ""); r.status != 500 {
		t.Errorf("fault not applied: %d", r.status)
	}
	if r := e.do(t, "GET", "/v4/linode/instances", ""); r.status != 200 {
		t.Errorf("prefix /v4/linode/instances/ must not match the list: %d", r.status)
	}
	if r := e.do(t, "DELETE", "/_sim/faults", ""); r.status != 200 || len(e.sim.Faults()) != 0 {
		t.Errorf("clear: %d, %d left", r.status, len(e.sim.Faults()))
	}
	if r := e.do(t, "POST", "/_sim/faults", `{"stauts":500}`); r.status != 400 || !strings.Contains(r.body, "stauts") {
		t.Errorf("typo in fault: %d %s", r.status, r.body)
	}
	if r := e.do(t, "POST", "/_sim/faults", `{"delay":"soon"}`); r.status != 400 {
		t.Errorf("bad delay: %d %s", r.status, r.body)
	}
}

// As on Linode, creating Linodes has a rate limit of its own: 20 requests
// per 15 seconds. The 21st is a 429 with Retry-After until the window
// moves, and then creates go through again.
func TestCreateRateLimit(t *testing.T) {
	e := newEnv(t, linodesim.Options{})
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	linodesim.SetClock(e.sim, func() time.Time { return now })
	body := func(i int) string {
		return `{"label":"ns` + strconv.Itoa(i) + `","region":"us-east","type":"g6-nanode-1","image":"linode/debian12","root_pass":"Correct-Horse-Battery-9"}`
	}
	for i := range 20 {
		if r := e.do(t, "POST", "/v4/linode/instances", body(i)); r.status != 200 {
			t.Fatalf("create %d: %d %s", i+1, r.status, r.body)
		}
		now = now.Add(500 * time.Millisecond)
	}
	r := e.do(t, "POST", "/v4/linode/instances", body(20))
	if reason, _ := r.reason(t); r.status != 429 || r.header.Get("Retry-After") != "5" || r.header.Get("X-RateLimit-Limit") != "20" || reason != "Too Many Requests" {
		t.Fatalf("the 21st create within 15s: %d, Retry-After %q, limit %q: %s; want 429 after 5s, limit 20",
			r.status, r.header.Get("Retry-After"), r.header.Get("X-RateLimit-Limit"), r.body)
	}
	if n := len(e.sim.Instances()); n != 20 {
		t.Fatalf("%d instances after a refused create, want 20", n)
	}
	if r := e.do(t, "GET", "/v4/linode/instances", ""); r.status != 200 {
		t.Errorf("a list while creates are limited: %d, want 200: the limit is the create's own", r.status)
	}
	now = now.Add(5 * time.Second)
	if r := e.do(t, "POST", "/v4/linode/instances", body(20)); r.status != 200 {
		t.Fatalf("a create once the window moved: %d %s", r.status, r.body)
	}
}

// Retry-After is enough: it rounds the wait up to whole seconds, so a
// client that waits it out is not refused again. The moment the oldest
// create leaves the window, one more create goes through, and counts.
func TestCreateRateLimitRetryAfterIsEnough(t *testing.T) {
	e := newEnv(t, linodesim.Options{})
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	now := t0
	linodesim.SetClock(e.sim, func() time.Time { return now })
	create := func(i int) reply {
		return e.do(t, "POST", "/v4/linode/instances", `{"label":"ns`+strconv.Itoa(i)+`","region":"us-east","type":"g6-nanode-1","image":"linode/debian12","root_pass":"Correct-Horse-Battery-9"}`)
	}
	for i := range 20 {
		if r := create(i); r.status != 200 {
			t.Fatalf("create %d: %d %s", i+1, r.status, r.body)
		}
		now = now.Add(500 * time.Millisecond)
	}
	now = t0.Add(10250 * time.Millisecond) // 4.75 s before the first create leaves the window
	r := create(20)
	if r.status != 429 || r.header.Get("Retry-After") != "5" {
		t.Fatalf("a create 4.75 s before the window moves: %d, Retry-After %q; want 429 after 5 s, rounded up", r.status, r.header.Get("Retry-After"))
	}
	now = t0.Add(15 * time.Second) // exactly when the first leaves it
	if r := create(20); r.status != 200 {
		t.Fatalf("a create as the first leaves the window: %d %s", r.status, r.body)
	}
	if r := create(21); r.status != 429 {
		t.Errorf("a second create at the same moment: %d %s, want 429: the first took the one free place", r.status, r.body)
	}
}
