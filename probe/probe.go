package probe

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
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

// Kinds of check, the keys of Report.Kinds.
const (
	// KindAnswer: RCODE, AA flag and answer section as the zone files say.
	KindAnswer = "answer"
	// KindEDNS: a UDP answer carries an OPT record and fits the buffer
	// size the query advertised.
	KindEDNS = "edns"
	// KindRecursion: a recursive query for a name outside the zones is
	// REFUSED without the RA flag.
	KindRecursion = "recursion"
	// KindSerial: each zone's SOA serial is the planned one, the same on
	// every target, and not behind the baseline's.
	KindSerial = "serial"
	// KindDiff: answers equal the baseline's (when no change is expected).
	KindDiff = "diff"
	// KindLatency: the round's answers came within probe.max_latency at
	// the 95th percentile.
	KindLatency = "latency"
)

// DefaultConcurrency is how many queries one Probe or Analyze call has in
// flight when Prober.Concurrency is 0.
const DefaultConcurrency = 16

// Prober runs checks against servers. The zero value works: 2 s timeout,
// one attempt, 1232-byte EDNS buffer, 16 queries in flight. A Prober keeps
// its sockets open while a call is in progress (see engine), and is safe
// for concurrent use.
type Prober struct {
	// Timeout bounds one attempt of one query (dial, write and read).
	Timeout time.Duration
	// Attempts is how many times a query is sent when it times out or fails
	// at the network level. Wrong answers are not retried.
	Attempts int
	// EDNSBufSize is the advertised UDP payload size; 0 means 1232.
	EDNSBufSize uint16
	// Concurrency bounds the queries in flight per call; 0 means 16.
	Concurrency int

	mu    sync.Mutex
	eng   *engine
	users int
	// baselineSOA holds the answers BaselineSerials got, by server address
	// and canonical apex, for the next analysis to compare with rather than
	// ask again (takeBaselineSOA).
	baselineSOA map[string]map[string]observed
}

// observed is one check over one protocol: its outcomes and, when the
// server answered, the answer itself (for comparing servers).
type observed struct {
	answer Result
	edns   *Result
	got    zone.Answer
	// sigs are the RRSIGs of the answer section, and denial the
	// authority section of an NXDOMAIN, a no-data or wildcard answer or a
	// referral, whose NSEC and NSEC3 records the DNSSEC checks verify,
	// and its SOA, which marks a no-data answer.
	sigs, denial []dns.RR
	// replied is set when the server answered at all, aa when with AA.
	replied, aa bool
	// unasked marks a check not asked over this protocol (OneProtocol).
	unasked bool
	// rtt is how long the answer took (reply.rtt); 0 for one not asked
	// here (a SOA answer coverage had in hand).
	rtt    time.Duration
	zone   string
	serial uint32
	soa    bool
}

// Probe sends every check to addr (host:port) over each protocol ("udp",
// "tcp"; none means both) with recursion off, and verifies the RCODE, the
// AA flag and the answer section, and that UDP answers fit the EDNS
// buffer. A truncated UDP answer is asked again over TCP. A Report with no
// checks is not OK. When ctx ends, the remaining checks are errors.
func (p *Prober) Probe(ctx context.Context, addr string, protocols []string, checks []Check) Report {
	p.acquire()
	defer p.release()
	sem := make(chan struct{}, p.concurrency())
	rep := Report{Addr: addr}
	s := &asked{addr: addr, protocols: protocols}
	p.askAll(ctx, sem, checks, []*asked{s})
	p.record(&rep, s.obs, MaxResults)
	if len(checks) == 0 {
		rep.add(Result{Kind: KindAnswer, Outcome: OutcomeError, Detail: "no checks to run"}, MaxResults)
	}
	rep.finish()
	return rep
}

// memo is the first answer to one check over one protocol and, once
// checked, its outcome. Answers that are the same bytes but for the ID
// take that outcome instead of being decoded and checked again.
type memo struct {
	mu    sync.Mutex
	raw   []byte        // the first answer, claimed when it arrived
	ready chan struct{} // closed when o is set or the claim dropped
	ok    bool          // o is raw's outcome
	o     observed
}

func (m *memo) seen(raw []byte) ([]byte, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.raw == nil {
		m.raw, m.ready = append([]byte(nil), raw...), make(chan struct{})
		return m.raw, false
	}
	if len(raw) == len(m.raw) && bytes.Equal(raw[2:], m.raw[2:]) {
		return nil, true
	}
	return append([]byte(nil), raw...), false
}

func (m *memo) drop(raw []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.owns(raw) && !m.ok {
		close(m.ready)
	}
}

// owns reports whether raw is the claimed answer itself, not a copy.
func (m *memo) owns(raw []byte) bool {
	return len(raw) > 0 && len(m.raw) > 0 && &raw[0] == &m.raw[0]
}

// keep records o as the outcome of the claimed answer raw.
func (m *memo) keep(raw []byte, o observed) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.owns(raw) && !m.ok {
		m.o, m.ok = o, true
		close(m.ready)
	}
}

// outcome waits for the claimed answer's outcome; false if it has none.
func (m *memo) outcome() (observed, bool) {
	m.mu.Lock()
	ready := m.ready
	m.mu.Unlock()
	<-ready
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.o, m.ok
}

// maxBatch bounds the queries sent with one system call per socket.
const maxBatch = 64

// asked is one server, the protocols to ask it over, and its observations,
// indexed by protocol, then check.
type asked struct {
	addr      string
	protocols []string
	obs       [][]observed
	// knownSOA are apex SOA answers over UDP already in hand, by canonical
	// apex: a check they answer is not asked over UDP again.
	knownSOA map[string]observed
}

// askAll asks every server every check over each of its protocols (none
// means both), at most cap(sem) queries outstanding across every caller
// sharing sem. It goes check by check, so every server (green and blue)
// gets the same question at about the same moment, and it waits for no
// answer before sending the next query while the window has room.
func (p *Prober) askAll(ctx context.Context, sem chan struct{}, checks []Check, servers []*asked) {
	e := p.acquire()
	defer p.release()
	defer context.AfterFunc(ctx, e.kick)()
	for _, s := range servers {
		if len(s.protocols) == 0 {
			s.protocols = []string{"udp", "tcp"}
		}
		s.obs = make([][]observed, len(s.protocols))
		for pi := range s.protocols {
			s.obs[pi] = make([]observed, len(checks))
		}
	}
	// Every server of a fleet gives the same answer, byte for byte, to the
	// same question: the first is decoded and checked, the others are
	// compared with it and take its outcome (decoding was the biggest cost
	// after the system calls). Any other answer is checked in full. An
	// answer like one that could not be decoded is an error without
	// further attempts: it cannot be decoded either.
	memos := map[string][]memo{}
	for _, s := range servers {
		for _, proto := range s.protocols {
			if memos[proto] == nil {
				memos[proto] = make([]memo, len(checks))
			}
		}
	}
	// Queries go out in batches: those the window has room for, then the
	// batch is flushed before waiting for room.
	b := e.batch()
	srvs := make([][]*server, len(servers))
	for si, s := range servers {
		for _, proto := range s.protocols {
			srv, _ := e.server(proto, s.addr) // nil for an unknown protocol
			srvs[si] = append(srvs[si], srv)
		}
	}
	var wg sync.WaitGroup
	for ci, c := range checks {
		qtype, known := zone.TypeCode(c.Type)
		name := dns.CanonicalName(c.Name) // Checks made it the wire form (zone.NormalName)
		var q *packed
		var qerr error
		if known {
			q, qerr = e.pack(name, qtype, false)
		}
		zoneName := dns.CanonicalName(c.Zone)
		labels := map[string]string{}
		for si, s := range servers {
			for pi, proto := range s.protocols {
				label, ok := labels[proto]
				if !ok {
					label = c.String() + " " + proto
					labels[proto] = label
				}
				o := &s.obs[pi][ci]
				if c.OneProtocol && pi > 0 {
					*o = observed{unasked: true}
					continue
				}
				if k, ok := s.knownSOA[zoneName]; ok && proto == "udp" && qtype == dns.TypeSOA && name == zoneName {
					*o = k
					o.answer.Check = label
					continue
				}
				*o = observed{answer: Result{Check: label, Kind: KindAnswer, Protocol: proto, Outcome: OutcomeError}, zone: zoneName}
				switch {
				case srvs[si][pi] == nil:
					o.answer.Detail = fmt.Sprintf("unknown protocol %q, want udp or tcp", proto)
					continue
				case !known:
					o.answer.Detail = fmt.Sprintf("unknown query type %q", c.Type)
					continue
				case qerr != nil:
					o.answer.Detail = clip(qerr.Error(), 200)
					continue
				}
				select {
				case sem <- struct{}{}:
				default:
					b.flush()
					select {
					case sem <- struct{}{}:
					case <-ctx.Done():
						o.answer.Detail = describe(ctx.Err(), p)
						continue
					}
				}
				wg.Add(1)
				m := &memos[proto][ci]
				b.add(ctx, srvs[si][pi], q, m, func(r reply, err error) {
					if r.known {
						var ok bool
						if *o, ok = m.outcome(); !ok {
							// The first could not be decoded, nor can this.
							*o = observed{answer: Result{Check: label, Kind: KindAnswer, Protocol: proto, Outcome: OutcomeError, Detail: "bad answer"}, zone: zoneName}
						}
						o.rtt = r.rtt
					} else {
						p.observe(o, c, proto, name, qtype, r, err)
						if err == nil {
							m.keep(r.raw, *o)
						}
					}
					<-sem
					wg.Done()
				})
				if b.n >= maxBatch {
					b.flush()
				}
			}
		}
	}
	b.flush()
	wg.Wait()
}

// record adds observations to rep, keeping the SOA serials seen.
func (p *Prober) record(rep *Report, obs [][]observed, samples int) {
	for _, l := range obs {
		for _, o := range l {
			if o.unasked {
				continue
			}
			if o.soa {
				if rep.Serials == nil {
					rep.Serials = map[string]uint32{}
				}
				if _, ok := rep.Serials[o.zone]; !ok {
					rep.Serials[o.zone] = o.serial
				}
			}
			rep.add(o.answer, samples)
			if o.edns != nil {
				rep.add(*o.edns, samples)
			}
		}
	}
}

// observe checks the answer r (or err) to c over proto into o.
func (p *Prober) observe(o *observed, c Check, proto, name string, qtype uint16, r reply, err error) {
	if err != nil {
		o.answer.Detail = describe(err, p)
		return
	}
	if proto == "udp" {
		o.edns = p.checkEDNS(c, r)
	}
	m := r.msg
	o.got = received(m, c.Want)
	o.sigs = only(m.Answer, dns.TypeRRSIG)
	if m.Rcode == dns.RcodeNameError || m.Rcode == dns.RcodeSuccess {
		o.denial = only(m.Ns, dns.TypeSOA, dns.TypeNSEC, dns.TypeNSEC3, dns.TypeRRSIG)
	}
	o.replied, o.aa, o.rtt = true, m.Authoritative, r.rtt
	if qtype == dns.TypeSOA && name == o.zone {
		for _, rr := range m.Answer {
			if soa, ok := rr.(*dns.SOA); ok && soa.Hdr.Name == name {
				o.serial, o.soa = soa.Serial, true
			}
		}
	}
	var problems []string
	if m.Rcode != c.Want.Rcode {
		problems = append(problems, fmt.Sprintf("rcode %s, want %s", rcode(m.Rcode), rcode(c.Want.Rcode)))
	}
	switch {
	case c.Want.Referral && m.Authoritative:
		problems = append(problems, "AA flag on what must be a referral to the child zone")
	case !c.Want.Referral && !m.Authoritative && c.Want.Rcode != dns.RcodeRefused:
		// A server refuses a zone it does not serve without AA.
		problems = append(problems, "missing AA flag")
	}
	if m.Rcode == c.Want.Rcode {
		problems = append(problems, differs("", o.got.RRs, c.Want.RRs)...)
		if c.Want.Referral {
			problems = append(problems, differs("referral NS: ", o.got.Authority, c.Want.Authority)...)
			if proto == "udp" {
				// named sends the glue that fits the buffer and sets no TC
				// flag: over UDP the glue may be short, but what it holds
				// must be the zone's. TCP carries it whole.
				problems = append(problems, notWithin("glue: ", o.got.Additional, c.Want.Additional)...)
			} else {
				problems = append(problems, differs("glue: ", o.got.Additional, c.Want.Additional)...)
			}
		}
	}
	o.answer.Outcome = OutcomePass
	if len(problems) > 0 {
		o.answer.Outcome, o.answer.Detail = OutcomeFail, clip(strings.Join(problems, "; "), 400)
	}
}

// received is m as an Answer, without RRSIGs (see KindDNSSEC). For a
// referral, the NS records of the authority section and the addresses of
// the additional section are kept, but for those want holds as optional
// (the zone's own, which a server may add or not); other records there
// (DS, RRSIG, NSEC) are not the referral's.
func received(m *dns.Msg, want zone.Answer) zone.Answer {
	var rrs []dns.RR
	for _, rr := range m.Answer {
		if rr.Header().Rrtype != dns.TypeRRSIG {
			rrs = append(rrs, rr)
		}
	}
	a := zone.Answer{Rcode: m.Rcode, RRs: zone.FromWire(rrs)}
	if want.Referral {
		a.Referral = !m.Authoritative
		a.Authority = zone.FromWire(only(m.Ns, dns.TypeNS))
		a.Additional = zone.FromWire(only(m.Extra, dns.TypeA, dns.TypeAAAA))
		a.Additional = slices.DeleteFunc(a.Additional, want.Optional.Holds)
	}
	return a
}

// only is the records of rrs of the given types.
func only(rrs []dns.RR, types ...uint16) []dns.RR {
	var out []dns.RR
	for _, rr := range rrs {
		if slices.Contains(types, rr.Header().Rrtype) {
			out = append(out, rr)
		}
	}
	return out
}

// differs names a section whose records are not the wanted ones.
func differs(section string, got, want zone.Records) []string {
	if got.Equal(want) {
		return nil
	}
	return []string{fmt.Sprintf("%sgot %q want %q", section, got.Strings(), want.Strings())}
}

// notWithin reports the records of got that want does not hold.
func notWithin(section string, got, want zone.Records) []string {
	var extra zone.Records
	for _, rr := range got {
		if !want.Holds(rr) {
			extra = append(extra, rr)
		}
	}
	if len(extra) == 0 {
		return nil
	}
	return []string{fmt.Sprintf("%snot in the zone: %q (want %q or part of it)", section, extra.Strings(), want.Strings())}
}

// checkEDNS verifies that a UDP answer is EDNS-aware and fits the buffer
// the query advertised: a server that ignores it would have its answers
// fragmented or dropped on the way to resolvers.
func (p *Prober) checkEDNS(c Check, r reply) *Result {
	res := &Result{Check: c.String() + " udp", Kind: KindEDNS, Protocol: "udp", Outcome: OutcomePass}
	switch {
	case !r.udpEDNS:
		res.Outcome, res.Detail = OutcomeFail, "the UDP answer has no EDNS OPT record"
	case r.udpSize > int(p.bufSize()):
		res.Outcome, res.Detail = OutcomeFail, fmt.Sprintf("UDP answer of %d bytes exceeds the %d-byte EDNS buffer", r.udpSize, p.bufSize())
	}
	return res
}

// describe turns a query error into a short Detail.
func describe(err error, p *Prober) string {
	what := "answer"
	var oe *net.OpError
	switch {
	case errors.As(err, &oe) && oe.Op == "dial" && oe.Timeout():
		// Before the context's case: a dial's timeout is also a
		// context.DeadlineExceeded.
		what = strings.ToUpper(oe.Net) + " connection"
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return "canceled: " + err.Error()
	case !isTimeout(err):
		return clip(err.Error(), 200)
	}
	d := fmt.Sprintf("timeout: no %s in %s after %d attempt(s)", what, p.timeout(), max(p.Attempts, 1))
	if errors.Is(err, errTruncated) {
		d = errTruncated.Error() + ", TCP retry: " + d
	}
	return d
}

func (p *Prober) concurrency() int {
	if p.Concurrency <= 0 {
		return DefaultConcurrency
	}
	return p.Concurrency
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
