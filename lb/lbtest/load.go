package lbtest

import (
	"net"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// Load is a steady stream of queries through a load balancer, over UDP
// and over TCP (a new connection per query, so that every query needs the
// listening socket), counting those that got no answer: the measure of
// an update done in place.
type Load struct {
	mu   sync.Mutex
	sent map[string]int
	lost map[string]int
	late map[string]int
	// stalls are the spans from sending to answer of the queries
	// answered late; udpTimeouts are when UDP senders stopped waiting
	// for an answer and went on to their next query (Overlapped).
	stalls      [][2]time.Time
	udpTimeouts []time.Time
	errs        []string
	done        chan struct{}
	wg          sync.WaitGroup
}

// loadTimeout is how long a sender waits for its query's answer before it
// sends the next; lostAfter is how long the query may still take before it
// counts as lost. No query is resent, so a UDP datagram dropped is a query
// lost. An answer a loaded machine held up is late, not lost; its sender
// meanwhile has its next query in flight too (Overlapped).
const (
	loadTimeout = time.Second
	lostAfter   = 5 * time.Second
)

// StartLoad sends queries to addr from udp senders over UDP and tcp over
// TCP, each one query at a time with a pause of gap after each answer (or
// after loadTimeout without one), until Stop.
func StartLoad(t testing.TB, addr string, udp, tcp int, gap time.Duration) *Load {
	t.Helper()
	l := &Load{sent: map[string]int{}, lost: map[string]int{}, late: map[string]int{}, done: make(chan struct{})}
	for i := range udp + tcp {
		proto := "udp"
		if i >= udp {
			proto = "tcp"
		}
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for {
				select {
				case <-l.done:
					return
				default:
				}
				answered := make(chan struct{})
				l.wg.Add(1)
				go func() {
					defer l.wg.Done()
					defer close(answered)
					l.query(proto, addr)
				}()
				select {
				case <-answered:
				case <-time.After(loadTimeout):
					if proto == "udp" {
						l.mu.Lock()
						l.udpTimeouts = append(l.udpTimeouts, time.Now())
						l.mu.Unlock()
					}
				}
				time.Sleep(gap)
			}
		}()
	}
	t.Cleanup(func() { l.Stop() })
	return l
}

// query sends one query to addr over proto and counts it.
func (l *Load) query(proto, addr string) {
	c := &dns.Client{Net: proto, Timeout: lostAfter}
	m := new(dns.Msg)
	m.SetQuestion(QueryName, dns.TypeTXT)
	start := time.Now()
	r, _, err := c.Exchange(m, addr)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sent[proto]++
	if err != nil || r == nil || r.Rcode != dns.RcodeSuccess {
		l.lost[proto]++
		if len(l.errs) < 5 {
			l.errs = append(l.errs, proto+": "+errText(err, r))
		}
	} else if time.Since(start) > loadTimeout {
		l.late[proto]++
		l.stalls = append(l.stalls, [2]time.Time{start, time.Now()})
	}
}

// Stop ends the load, waiting for the answers still due, and returns the
// queries sent and lost, by protocol, and a few of the errors.
func (l *Load) Stop() (sent, lost map[string]int, errs []string) {
	select {
	case <-l.done:
	default:
		close(l.done)
	}
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.sent, l.lost, l.errs
}

// Overlapped is how many times, after Stop, a UDP sender went on to its
// next query while a query of the load (any sender's, either protocol)
// was held up, and then answered late: a stall, in which the sender's
// unanswered query may still be in flight. A worker stopping then can
// drop both, so each such time allows one more loss than a stop's. A
// sender that goes on with no stall proven has, as far as anyone can
// tell, lost its query already: it allows nothing, and a stop that takes
// its next query too is a loss the bounds catch.
func (l *Load) Overlapped() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, at := range l.udpTimeouts {
		for _, s := range l.stalls {
			if at.After(s[0]) && at.Before(s[1]) {
				n++
				break
			}
		}
	}
	return n
}

func errText(err error, r *dns.Msg) string {
	if err != nil {
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			return "timeout"
		}
		return err.Error()
	}
	if r == nil {
		return "no reply"
	}
	return dns.RcodeToString[r.Rcode]
}

// InPlaceUDPSenders is how many UDP senders StartInPlaceLoad runs: with
// one query each at a time, the most UDP sessions it has in flight.
const InPlaceUDPSenders = 2

// StartInPlaceLoad is the in-place update tests' load through addr:
// InPlaceUDPSenders UDP and 2 TCP senders, one query at a time each, a
// millisecond apart, given half a second to get going.
func StartInPlaceLoad(t testing.TB, addr string) *Load {
	t.Helper()
	l := StartLoad(t, addr, InPlaceUDPSenders, 2, time.Millisecond)
	time.Sleep(500 * time.Millisecond)
	return l
}

// Report lets the load run half a second more, stops it, logs what it
// measured, and fails t unless each protocol sent at least 100 queries:
// fewer measure nothing. It returns the queries sent and lost in all.
func (l *Load) Report(t testing.TB, what string) (sent, lost int) {
	t.Helper()
	time.Sleep(500 * time.Millisecond)
	s, lo, errs := l.Stop()
	l.mu.Lock()
	late := l.late
	l.mu.Unlock()
	t.Logf("%s: queries sent %v, lost %v, answered after %s %v, UDP sent over a stall %d; first errors %q", what, s, lo, loadTimeout, late, l.Overlapped(), errs)
	if s["udp"] < 100 || s["tcp"] < 100 {
		t.Errorf("the load sent only %v: too few to measure", s)
	}
	return s["udp"] + s["tcp"], lo["udp"] + lo["tcp"]
}
