package probe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/dnsroll/dnsroll/zone"
)

// Outcomes of one check.
const (
	OutcomePass  = "pass"  // the server answered as expected
	OutcomeFail  = "fail"  // the server answered, wrongly
	OutcomeError = "error" // no usable answer: timeout, network error, bad input
)

// parallel is how many queries one Probe has in flight at once.
const parallel = 8

// Prober runs checks against one server at a time. The zero value works:
// 2 s timeout, one attempt, 1232-byte EDNS buffer.
type Prober struct {
	// Timeout bounds one attempt of one query (dial, write and read).
	Timeout time.Duration
	// Attempts is how many times a query is sent when it times out or fails
	// at the network level. Wrong answers are not retried.
	Attempts int
	// EDNSBufSize is the advertised UDP payload size; 0 means 1232.
	EDNSBufSize uint16
}

type outcome struct {
	Result
	zone   string
	serial uint32
	soa    bool
}

// Probe sends every check to addr (host:port) over each protocol ("udp",
// "tcp"; none means both) with recursion off, and verifies the RCODE, the
// AA flag and the answer RRs of the asked type and name. A truncated UDP
// answer is asked again over TCP. A Report with no checks is not OK. When
// ctx ends, the remaining checks are errors.
func (p *Prober) Probe(ctx context.Context, addr string, protocols []string, checks []Check) Report {
	if len(protocols) == 0 {
		protocols = []string{"udp", "tcp"}
	}
	type job struct {
		c     Check
		proto string
	}
	var jobs []job
	for _, proto := range protocols {
		for _, c := range checks {
			jobs = append(jobs, job{c, proto})
		}
	}
	outs := make([]outcome, len(jobs))
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	for i, j := range jobs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			outs[i] = p.run(ctx, addr, j.proto, j.c)
		}()
	}
	wg.Wait()

	rep := Report{Addr: addr}
	if len(jobs) == 0 {
		outs = append(outs, outcome{Result: Result{Outcome: OutcomeError, Detail: "no checks to run"}})
	}
	for _, o := range outs {
		if o.soa {
			if rep.Serials == nil {
				rep.Serials = map[string]uint32{}
			}
			if _, ok := rep.Serials[o.zone]; !ok {
				rep.Serials[o.zone] = o.serial
			}
		}
		switch o.Outcome {
		case OutcomePass:
			rep.Passed++
			continue
		case OutcomeFail:
			rep.Failed++
		default:
			rep.Errors++
		}
		if len(rep.Results) < MaxResults {
			rep.Results = append(rep.Results, o.Result)
		}
	}
	rep.OK = rep.Failed == 0 && rep.Errors == 0
	return rep
}

// run performs one check over one protocol.
func (p *Prober) run(ctx context.Context, addr, proto string, c Check) outcome {
	o := outcome{Result: Result{Check: c.String() + " " + proto, Protocol: proto, Outcome: OutcomeError}, zone: dns.CanonicalName(c.Zone)}
	qtype, ok := dns.StringToType[strings.ToUpper(c.Type)]
	switch {
	case proto != "udp" && proto != "tcp":
		o.Detail = fmt.Sprintf("unknown protocol %q, want udp or tcp", proto)
		return o
	case !ok:
		o.Detail = fmt.Sprintf("unknown query type %q", c.Type)
		return o
	}
	name := dns.CanonicalName(c.Name)
	r, err := p.query(ctx, addr, proto, name, qtype)
	if err != nil {
		o.Detail = describe(err, p)
		return o
	}
	if qtype == dns.TypeSOA && name == o.zone {
		for _, rr := range r.Answer {
			if soa, ok := rr.(*dns.SOA); ok && dns.CanonicalName(soa.Hdr.Name) == name {
				o.serial, o.soa = soa.Serial, true
			}
		}
	}
	var problems []string
	if r.Rcode != c.Want.Rcode {
		problems = append(problems, fmt.Sprintf("rcode %s, want %s", rcode(r.Rcode), rcode(c.Want.Rcode)))
	}
	if !r.Authoritative {
		problems = append(problems, "missing AA flag")
	}
	if r.Rcode == c.Want.Rcode {
		var got []string
		for _, rr := range r.Answer {
			if rr.Header().Rrtype == qtype && dns.CanonicalName(rr.Header().Name) == name {
				got = append(got, zone.CanonicalRR(rr))
			}
		}
		sort.Strings(got)
		if !slices.Equal(got, c.Want.RRs) {
			problems = append(problems, fmt.Sprintf("got %q want %q", got, c.Want.RRs))
		}
	}
	o.Outcome = OutcomePass
	if len(problems) > 0 {
		o.Outcome, o.Detail = OutcomeFail, clip(strings.Join(problems, "; "), 400)
	}
	return o
}

// query asks addr for (name, qtype), retrying network errors and asking
// again over TCP when a UDP answer is truncated.
func (p *Prober) query(ctx context.Context, addr, proto, name string, qtype uint16) (*dns.Msg, error) {
	r, err := p.exchange(ctx, addr, proto, name, qtype)
	if err == nil && r.Truncated && proto == "udp" {
		r, err = p.exchange(ctx, addr, "tcp", name, qtype)
		if err != nil {
			err = fmt.Errorf("UDP answer truncated, TCP retry: %w", err)
		}
	}
	return r, err
}

func (p *Prober) exchange(ctx context.Context, addr, proto, name string, qtype uint16) (*dns.Msg, error) {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.RecursionDesired = false
	size := p.EDNSBufSize
	if size == 0 {
		size = 1232
	}
	m.SetEdns0(size, false)
	var err error
	for range max(p.Attempts, 1) {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		m.Id = dns.Id()
		var r *dns.Msg
		if r, err = p.once(ctx, addr, proto, m); err == nil {
			return r, nil
		}
	}
	return nil, err
}

func (p *Prober) once(ctx context.Context, addr, proto string, m *dns.Msg) (*dns.Msg, error) {
	c := &dns.Client{Net: proto, Timeout: p.timeout()}
	conn, err := c.DialContext(ctx, addr)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	// The client only honours ctx deadlines; cancellation unblocks the read.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()
	r, _, err := c.ExchangeWithConnContext(ctx, m, conn)
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return r, err
}

func (p *Prober) timeout() time.Duration {
	if p.Timeout <= 0 {
		return 2 * time.Second
	}
	return p.Timeout
}

// describe turns a query error into a short Detail.
func describe(err error, p *Prober) string {
	var ne net.Error
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return "canceled: " + err.Error()
	case errors.As(err, &ne) && ne.Timeout():
		return fmt.Sprintf("timeout: no answer in %s after %d attempt(s)", p.timeout(), max(p.Attempts, 1))
	}
	return clip(err.Error(), 200)
}

func rcode(rc int) string {
	if s, ok := dns.RcodeToString[rc]; ok {
		return s
	}
	return fmt.Sprintf("RCODE%d", rc)
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
