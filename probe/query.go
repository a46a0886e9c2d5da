package probe

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/dnsroll/dnsroll/zone"
)

// reply is one answer as received: the message, its size on the wire, and
// whether a truncated UDP answer was asked again over TCP.
type reply struct {
	msg  *dns.Msg
	size int
	// udpSize is the size of the UDP answer (truncated or not) and udpEDNS
	// whether it carried an OPT record; both zero over TCP.
	udpSize int
	udpEDNS bool
	retried bool
}

// query asks addr for (name, qtype) with recursion desired set to rd,
// retrying network errors and asking again over TCP when a UDP answer is
// truncated.
func (p *Prober) query(ctx context.Context, addr, proto, name string, qtype uint16, rd bool) (reply, error) {
	r, err := p.exchange(ctx, addr, proto, name, qtype, rd)
	if err == nil && r.msg.Truncated && proto == "udp" {
		var t reply
		t, err = p.exchange(ctx, addr, "tcp", name, qtype, rd)
		if err != nil {
			err = fmt.Errorf("UDP answer truncated, TCP retry: %w", err)
		}
		r = reply{msg: t.msg, size: t.size, udpSize: r.udpSize, udpEDNS: r.udpEDNS, retried: true}
	}
	return r, err
}

func (p *Prober) exchange(ctx context.Context, addr, proto, name string, qtype uint16, rd bool) (reply, error) {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.RecursionDesired = rd
	// DO: signed zones answer with their RRSIGs and denial records.
	m.SetEdns0(p.bufSize(), true)
	var err error
	for range max(p.Attempts, 1) {
		if ctx.Err() != nil {
			return reply{}, ctx.Err()
		}
		m.Id = dns.Id()
		var r reply
		if r, err = p.once(ctx, addr, proto, m); err == nil {
			if proto == "udp" {
				r.udpSize, r.udpEDNS = r.size, r.msg.IsEdns0() != nil
			}
			return r, nil
		}
	}
	return reply{}, err
}

// once sends m and reads the answer with the same ID and question.
// Sockets are kept for the next query to the same address: opening one
// per query would cost more than the query (most of the CPU time in the
// bench). A socket that failed is closed, so a late answer to a query
// that timed out cannot be taken for another's.
func (p *Prober) once(ctx context.Context, addr, proto string, m *dns.Msg) (reply, error) {
	co, reused, err := p.conns.get(ctx, proto, addr, p.timeout())
	if err != nil {
		return reply{}, err
	}
	r, err := p.roundTrip(ctx, co, m)
	if err != nil && reused && proto == "tcp" && ctx.Err() == nil {
		// The server may have closed an idle connection: that costs no attempt.
		co.Close()
		if co, _, err = p.conns.dial(ctx, proto, addr, p.timeout()); err != nil {
			return reply{}, err
		}
		r, err = p.roundTrip(ctx, co, m)
	}
	if err != nil {
		co.Close()
	} else {
		p.conns.put(proto+"/"+addr, co)
	}
	return r, err
}

// udpBufs are read buffers big enough for any UDP answer; allocating one
// per query made the garbage collector the bench's second-biggest cost.
var udpBufs = sync.Pool{New: func() any { b := make([]byte, dns.MaxMsgSize); return &b }}

// read reads one message: a datagram over UDP, a length-prefixed message
// over TCP. The result is the caller's.
func read(co *dns.Conn) ([]byte, error) {
	if _, ok := co.Conn.(net.PacketConn); !ok {
		return co.ReadMsgHeader(nil)
	}
	bp := udpBufs.Get().(*[]byte)
	defer udpBufs.Put(bp)
	n, err := co.Conn.Read(*bp)
	if err != nil {
		return nil, err
	}
	if n < 12 {
		return nil, dns.ErrShortRead
	}
	return append([]byte(nil), (*bp)[:n]...), nil
}

func (p *Prober) roundTrip(ctx context.Context, co *dns.Conn, m *dns.Msg) (reply, error) {
	_ = co.SetDeadline(time.Now().Add(p.timeout()))
	// The deadline bounds the attempt; cancellation cuts it short.
	stop := context.AfterFunc(ctx, func() { _ = co.SetDeadline(time.Now()) })
	defer stop()
	if err := co.WriteMsg(m); err != nil {
		return reply{}, ctxErr(ctx, err)
	}
	for {
		raw, err := read(co)
		if err != nil {
			return reply{}, ctxErr(ctx, err)
		}
		r := new(dns.Msg)
		if err := r.Unpack(raw); err != nil {
			return reply{}, fmt.Errorf("bad answer: %w", err)
		}
		// A late answer to an earlier attempt is not this query's answer.
		if r.Id != m.Id || len(r.Question) != 1 || !sameQuestion(r.Question[0], m.Question[0]) {
			continue
		}
		return reply{msg: r, size: len(raw)}, nil
	}
}

// sameQuestion compares an answer's question with the query's on the
// wire: "\070oo.example.com." asked is "Foo.example.com." answered.
func sameQuestion(a, b dns.Question) bool {
	return a.Qtype == b.Qtype && a.Qclass == b.Qclass &&
		(strings.EqualFold(a.Name, b.Name) || zone.SameName(a.Name, b.Name))
}

func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

func (p *Prober) bufSize() uint16 {
	if p.EDNSBufSize == 0 {
		return 1232
	}
	return p.EDNSBufSize
}

func (p *Prober) timeout() time.Duration {
	if p.Timeout <= 0 {
		return 2 * time.Second
	}
	return p.Timeout
}

// pool keeps idle sockets by protocol and address.
type pool struct {
	mu   sync.Mutex
	idle map[string][]*dns.Conn
}

// get returns an idle socket to addr, or a new one.
func (pl *pool) get(ctx context.Context, proto, addr string, timeout time.Duration) (*dns.Conn, bool, error) {
	key := proto + "/" + addr
	pl.mu.Lock()
	if l := pl.idle[key]; len(l) > 0 {
		co := l[len(l)-1]
		pl.idle[key] = l[:len(l)-1]
		pl.mu.Unlock()
		return co, true, nil
	}
	pl.mu.Unlock()
	return pl.dial(ctx, proto, addr, timeout)
}

func (pl *pool) dial(ctx context.Context, proto, addr string, timeout time.Duration) (*dns.Conn, bool, error) {
	if proto != "udp" && proto != "tcp" {
		return nil, false, fmt.Errorf("unknown protocol %q, want udp or tcp", proto)
	}
	d := net.Dialer{Timeout: timeout}
	c, err := d.DialContext(ctx, proto, addr)
	if err != nil {
		return nil, false, err
	}
	if proto == "tcp" {
		// The length prefix and the message then take one read, not two.
		c = bufferedConn{Conn: c, r: bufio.NewReader(c)}
	}
	return &dns.Conn{Conn: c, UDPSize: dns.MaxMsgSize}, false, nil
}

// bufferedConn reads a TCP connection through a buffer.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

func (pl *pool) put(key string, co *dns.Conn) {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	if pl.idle == nil {
		pl.idle = map[string][]*dns.Conn{}
	}
	pl.idle[key] = append(pl.idle[key], co)
}

// closeIdle closes every idle connection; later queries dial again.
func (pl *pool) closeIdle() {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	for _, l := range pl.idle {
		for _, co := range l {
			co.Close()
		}
	}
	pl.idle = nil
}

// isTimeout reports whether err is a network timeout.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
