package lbtest

import (
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// Busy is DNS-over-TCP clients that never let their connection through a
// load balancer go idle, as dnsperf and busy resolvers do: each keeps
// busyWindow queries in flight on one connection, sending the next as an
// answer arrives. A proxy's idle timeout never closes such a connection,
// so only the proxy itself can end it. A client whose connection is
// closed sends the queries it was waiting for again on a new one, as
// DNS-over-TCP clients do; a query neither answered nor cut off by a close
// within lostAfter is hung, what no client can recover from: shorter than
// the 10 s a stopping nginx worker keeps its connections by default
// (worker_shutdown_timeout), and longer than a loaded machine holds up an
// answer.
type Busy struct {
	addr string
	done chan struct{}
	wg   sync.WaitGroup

	mu       sync.Mutex
	answers  map[string]int // by TXT answer
	closes   int
	hung     int
	failures []string
}

// busyWindow is how many queries each client keeps in flight.
const busyWindow = 4

// StartBusy starts n busy clients through addr; they stop when the test
// ends, or at Stop.
func StartBusy(t testing.TB, addr string, n int) *Busy {
	t.Helper()
	b := &Busy{addr: addr, done: make(chan struct{}), answers: map[string]int{}}
	for range n {
		b.wg.Add(1)
		go b.client()
	}
	t.Cleanup(b.Stop)
	return b
}

// client runs one busy connection, and a new one each time it is closed.
func (b *Busy) client() {
	defer b.wg.Done()
	for !b.stopped() {
		c, err := dns.DialTimeout("tcp", b.addr, lostAfter)
		if err != nil {
			b.fail("dial: " + err.Error())
			time.Sleep(10 * time.Millisecond)
			continue
		}
		b.serve(c)
		c.Close()
	}
}

// serve keeps c busy until it closes, hangs or the load stops.
func (b *Busy) serve(c *dns.Conn) {
	send := func() error {
		m := new(dns.Msg)
		m.SetQuestion(QueryName, dns.TypeTXT)
		_ = c.SetWriteDeadline(time.Now().Add(lostAfter))
		return c.WriteMsg(m)
	}
	for range busyWindow {
		if err := send(); err != nil {
			b.closed(err)
			return
		}
	}
	for !b.stopped() {
		_ = c.SetReadDeadline(time.Now().Add(lostAfter))
		r, err := c.ReadMsg()
		if err != nil {
			b.closed(err)
			return
		}
		b.mu.Lock()
		b.answers[txt(r)]++
		b.mu.Unlock()
		if err := send(); err != nil {
			b.closed(err)
			return
		}
	}
}

// closed counts the end of a connection: cut off (the client retries on a
// new one) or hung.
func (b *Busy) closed(err error) {
	if b.stopped() {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		b.hung++
		if len(b.failures) < 5 {
			b.failures = append(b.failures, "hung: "+err.Error())
		}
		return
	}
	b.closes++
}

func (b *Busy) fail(msg string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.failures) < 5 {
		b.failures = append(b.failures, msg)
	}
}

func (b *Busy) stopped() bool {
	select {
	case <-b.done:
		return true
	default:
		return false
	}
}

// Answers returns how many answers the clients got so far, by TXT answer.
func (b *Busy) Answers() map[string]int {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make(map[string]int, len(b.answers))
	for k, v := range b.answers {
		out[k] = v
	}
	return out
}

// Stop ends the load; Report says what it saw.
func (b *Busy) Stop() {
	select {
	case <-b.done:
	default:
		close(b.done)
	}
	b.wg.Wait()
}

// Report stops the load, logs it, and fails t if a connection hung or
// could not be made, or the clients got fewer than 100 answers.
func (b *Busy) Report(t testing.TB, what string) {
	t.Helper()
	b.Stop()
	b.mu.Lock()
	defer b.mu.Unlock()
	total := 0
	for _, n := range b.answers {
		total += n
	}
	// A connection cut off is no failure: its client asked again on a new one.
	t.Logf("%s: busy TCP answers %v, connections cut off %d, hung %d; failures %q", what, b.answers, b.closes, b.hung, b.failures)
	if b.hung > 0 || len(b.failures) > 0 {
		t.Errorf("%s: %d busy TCP connections hung with queries in flight (%q): a stopping worker must answer them or close the connection", what, b.hung, b.failures)
	}
	if total < 100 {
		t.Errorf("%s: the busy TCP clients got only %d answers: too few to measure", what, total)
	}
}

// txt is r's one TXT string, or its rcode.
func txt(r *dns.Msg) string {
	if len(r.Answer) == 1 {
		if t, ok := r.Answer[0].(*dns.TXT); ok && len(t.Txt) == 1 {
			return t.Txt[0]
		}
	}
	return dns.RcodeToString[r.Rcode]
}
