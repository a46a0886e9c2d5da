package probe

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/net/ipv4"

	"github.com/dnsroll/dnsroll/zone"
)

// Sockets per server. Each has its own 16-bit ID space (the window,
// probe.concurrency, is at most 1,024) and, for UDP, its own random
// source port. One UDP socket per server gets its answers in the largest
// batches per system call and reader wake-up: four cost about 12% more
// CPU per query in make bench-analysis (docs/benchmarks-analysis.md).
const (
	udpSockets = 1
	tcpConns   = 2
)

// engine sends the queries of a Prober's calls and matches their answers,
// so that many queries are outstanding at once without a goroutine or a
// socket each (the old exchange-per-goroutine design spent most of its
// time in the scheduler and in reads that found nothing yet). Each query is
// packed once; a send copies it with a fresh ID. Every socket has a reader
// that matches answers to outstanding queries by ID and question and drops
// anything else; a janitor retries queries whose answer is late. TCP
// connections carry many queries at once (RFC 7766 pipelining), answered
// in any order. No reader, nor the janitor, ever waits for a connection to
// be dialled (see server.dialing); no UDP reader writes over TCP; a TCP
// write waits at most a timeout (see write).
type engine struct {
	timeout  time.Duration
	attempts int
	bufSize  uint16

	mu      sync.Mutex
	servers map[string]*server // by proto + "/" + addr
	packed  map[qkey]*packed
	closed  bool

	// srtt is a moving average of UDP round trips, in nanoseconds, that
	// sets when a query whose answer is late is sent again (see rto).
	srtt atomic.Int64

	kickc chan struct{}
	stop  chan struct{}
	// dials ends with the engine, ending the dials in progress.
	dials     context.Context
	stopDials context.CancelFunc
	wg        sync.WaitGroup
}

type qkey struct {
	name  string
	qtype uint16
	rd    bool
}

// packed is a query on the wire with ID zero, and the end of its question.
type packed struct {
	wire []byte
	qend int
}

// server is one address over one protocol and its sockets.
type server struct {
	proto, addr string
	want        int // sockets to have: udpSockets or tcpConns
	// quick is set when dialling cannot block, for UDP to an IP address:
	// such a socket is dialled where it is needed.
	quick bool
	mu    sync.Mutex
	socks []*sock
	next  int
	// dialing is the connection being dialled, one at a time, on a
	// goroutine of its own: a TCP port that drops connections blocks
	// their dial for a timeout, and must hold up neither the caller, nor
	// the readers, nor the janitor (which locks mu).
	dialing *dialing
}

// dialing is a dial in progress; done is closed when it ended, with err.
type dialing struct {
	done chan struct{}
	err  error
}

// sock is one UDP socket or TCP connection and its outstanding queries.
type sock struct {
	srv  *server
	conn net.Conn
	pc   *ipv4.PacketConn // conn, for batches of UDP datagrams
	tcp  bool
	wmu  sync.Mutex // orders TCP writes

	mu      sync.Mutex
	pending map[uint16]*call
	// answered is set once the socket got an answer: a TCP connection that
	// then fails was likely closed by the server while idle.
	answered bool
	// seq numbers the queries written on s; answeredSeq is the highest
	// number answered, answeredRTT how long that answer took. A query is
	// presumed lost, and sent again, only when one written after it was
	// answered and it has waited a quarter longer than that one did (the
	// reordering window of RACK, RFC 8985): a server that is just slow
	// gets no more queries to answer, even when it answers them in another
	// order than they came, as a server answering each on its own thread
	// does.
	seq, answeredSeq uint64
	answeredRTT      time.Duration
	dead             bool
}

// call is one query until it is answered or given up.
type call struct {
	ctx  context.Context
	q    *packed
	srv  *server
	left int // attempts left after the current one
	// free is how many more resends after a kept TCP connection broke cost
	// no attempt: servers close idle connections, and each of a server's
	// connections may have been closed.
	free int
	// tc holds the UDP answer that was truncated, while TCP is asked.
	tc *reply
	// known, when set, is asked about each answer before it is decoded.
	known    knower
	deadline time.Time
	// id is the query's ID on its socket, sent when it was first written
	// in this attempt; resendAt is when a UDP datagram is written again,
	// resends how often it was.
	id       uint16
	sent     time.Time
	resendAt time.Time
	seq      uint64
	resends  int
	done     func(reply, error)
}

// knower is told of answers before they are decoded, so that one the
// caller has (or is getting) the outcome of is not decoded again.
type knower interface {
	// seen reports whether raw is such an answer, but for its ID. When it
	// is not, a copy of raw may be claimed, and is returned: its outcome
	// is then expected from this call, and other answers like it wait for
	// it. raw is the reader's buffer, which seen must not keep.
	seen(raw []byte) (copied []byte, dup bool)
	// drop gives up the claim of raw, which could not be decoded.
	drop(raw []byte)
}

// maxResends bounds the datagrams sent again within one attempt.
const maxResends = 2

// rto is how long a UDP query waits for its answer before its datagram is
// sent again within the same attempt, with the same ID: a few round
// trips, as TCP does, so that one datagram lost to a full socket buffer
// costs a fraction of the attempt's timeout. It is at least 250 ms: a
// server that is merely slow (a busy machine stalls processes for tens of
// milliseconds) must not get every query of the window twice, which would
// make it slower still.
func (e *engine) rto() time.Duration {
	return min(max(4*time.Duration(e.srtt.Load()), 250*time.Millisecond), e.timeout/2)
}

func newEngine(timeout time.Duration, attempts int, bufSize uint16) *engine {
	e := &engine{timeout: timeout, attempts: max(attempts, 1), bufSize: bufSize,
		servers: map[string]*server{}, packed: map[qkey]*packed{},
		kickc: make(chan struct{}, 1), stop: make(chan struct{})}
	e.dials, e.stopDials = context.WithCancel(context.Background())
	e.wg.Add(1)
	go e.janitor()
	return e
}

// ask sends (name, qtype) to addr over proto with recursion desired set
// to rd, and calls done once with the answer or why there is none. done
// runs on one of the engine's goroutines, or on the caller's when the
// query cannot be sent; it must not block.
func (e *engine) ask(ctx context.Context, addr, proto, name string, qtype uint16, rd bool, known knower, done func(reply, error)) {
	q, err := e.pack(name, qtype, rd)
	if err != nil {
		done(reply{}, err)
		return
	}
	srv, err := e.server(proto, addr)
	if err != nil {
		done(reply{}, err)
		return
	}
	e.send(&call{ctx: ctx, q: q, srv: srv, left: e.attempts - 1, free: tcpConns + 1, known: known, done: done})
}

// pack returns the query packed once for every server and protocol.
func (e *engine) pack(name string, qtype uint16, rd bool) (*packed, error) {
	k := qkey{name, qtype, rd}
	e.mu.Lock()
	q := e.packed[k]
	e.mu.Unlock()
	if q != nil {
		return q, nil
	}
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.Id, m.RecursionDesired = 0, rd
	// DO: signed zones answer with their RRSIGs and denial records.
	m.SetEdns0(e.bufSize, true)
	wire, err := m.Pack()
	if err != nil {
		return nil, fmt.Errorf("packing the query %s %s: %w", name, zone.TypeName(qtype), err)
	}
	qend := 12
	if _, qend, err = dns.UnpackDomainName(wire, 12); err != nil {
		return nil, fmt.Errorf("packing the query %s %s: %w", name, zone.TypeName(qtype), err)
	}
	q = &packed{wire: wire, qend: qend + 4}
	e.mu.Lock()
	e.packed[k] = q
	e.mu.Unlock()
	return q, nil
}

// server returns addr over proto, added on first use; none once the
// engine is closed.
func (e *engine) server(proto, addr string) (*server, error) {
	if proto != "udp" && proto != "tcp" {
		return nil, fmt.Errorf("unknown protocol %q, want udp or tcp", proto)
	}
	key := proto + "/" + addr
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		// close walks e.servers without the lock: a reader taking a
		// truncated answer as the engine closes must not add to it.
		return nil, net.ErrClosed
	}
	s := e.servers[key]
	if s == nil {
		s = &server{proto: proto, addr: addr, want: udpSockets}
		if proto == "tcp" {
			s.want = tcpConns
		} else if _, err := netip.ParseAddrPort(addr); err == nil {
			s.quick = true
		}
		e.servers[key] = s
	}
	return s, nil
}

// send sends c on one of its server's sockets under a fresh ID.
func (e *engine) send(c *call) {
	if err := c.ctx.Err(); err != nil {
		e.finish(c, reply{}, err)
		return
	}
	s, err := e.sock(c)
	if err != nil || s == nil {
		return
	}
	if o, ok := e.register(s, c, nil); ok {
		e.write(s, []outgoing{o})
	}
}

// await sends c once the dial d it waits for ends, or fails it. It runs
// on a goroutine of its own, and stops waiting when c's context ends.
func (e *engine) await(c *call, d *dialing) {
	select {
	case <-d.done:
	case <-c.ctx.Done():
		e.finish(c, reply{}, c.ctx.Err())
		return
	}
	if d.err != nil {
		e.failed(c, nil, d.err)
		return
	}
	e.send(c)
}

// spawn runs f on a goroutine that close waits for, unless the engine is
// closed.
func (e *engine) spawn(f func()) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return false
	}
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		f()
	}()
	return true
}

// outgoing is one query registered on a socket, ready to write.
type outgoing struct {
	id  uint16
	c   *call
	buf []byte // with the TCP length prefix
}

// register gives c a fresh ID on s, and returns it ready to write, packed
// at the end of *slab (a batch's buffer, reused once its queries are
// written), or in a buffer of its own for a nil slab. When it cannot, c
// is sent elsewhere or failed, and ok is false.
func (e *engine) register(s *sock, c *call, slab *[]byte) (o outgoing, ok bool) {
	s.mu.Lock()
	if s.dead {
		s.mu.Unlock()
		e.send(c) // e.sock skips it
		return o, false
	}
	if len(s.pending) >= 1<<16-1 {
		s.mu.Unlock()
		e.failed(c, nil, errors.New("16-bit DNS ID space of the socket full: lower probe.concurrency"))
		return o, false
	}
	id := uint16(rand.Uint32())
	for s.pending[id] != nil {
		id = uint16(rand.Uint32())
	}
	now := time.Now()
	c.id, c.sent, c.deadline = id, now, now.Add(e.timeout)
	c.resendAt, c.resends = now.Add(e.rto()), 0
	s.seq++
	c.seq = s.seq
	s.pending[id] = c
	s.mu.Unlock()
	var dst []byte
	if slab != nil {
		dst = *slab
	}
	start := len(dst)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(c.q.wire)))
	dst = append(dst, c.q.wire...)
	binary.BigEndian.PutUint16(dst[start+2:], id)
	if slab != nil {
		*slab = dst
	}
	return outgoing{id: id, c: c, buf: dst[start:len(dst):len(dst)]}, true
}

// write sends queries registered on s: over UDP with one sendmmsg for
// the lot, over TCP with one write, pipelined.
func (e *engine) write(s *sock, outs []outgoing) {
	if s.tcp {
		var buf []byte
		if len(outs) == 1 {
			buf = outs[0].buf
		} else {
			for _, o := range outs {
				buf = append(buf, o.buf...)
			}
		}
		s.wmu.Lock()
		// A server that stops reading (its receive window full) fails the
		// connection within a timeout rather than block the writer: a UDP
		// reader asking a truncated answer again, the janitor, the caller.
		_ = s.conn.SetWriteDeadline(time.Now().Add(e.timeout))
		_, err := s.conn.Write(buf)
		s.wmu.Unlock()
		if err != nil {
			e.kill(s, err) // fails every query outstanding on it
		}
		return
	}
	msgs := make([]ipv4.Message, len(outs))
	bufs := make([][]byte, len(outs))
	for i, o := range outs {
		bufs[i] = o.buf[2:]
		msgs[i].Buffers = bufs[i : i+1]
	}
	sent := 0
	var err error
	for sent < len(msgs) {
		var n int
		n, err = s.pc.WriteBatch(msgs[sent:], 0)
		if err != nil {
			break
		}
		sent += n
	}
	for _, o := range outs[sent:] {
		if s.take(o.id, o.c) {
			e.failed(o.c, s, err)
		}
	}
}

// batch gathers queries to send with one system call per socket. One
// socket per server takes a whole batch; the next batch takes the next.
type batch struct {
	e     *engine
	socks map[*server]*sock
	out   map[*sock][]outgoing
	order []*sock
	n     int
	// slab holds the packed queries until they are written.
	slab []byte
}

func (e *engine) batch() *batch {
	return &batch{e: e, socks: map[*server]*sock{}, out: map[*sock][]outgoing{}}
}

// add is ask, with the server and the packed query already looked up
// (e.server, e.pack), but the query waits in b until flush.
func (b *batch) add(ctx context.Context, srv *server, q *packed, known knower, done func(reply, error)) {
	e := b.e
	var err error
	c := &call{ctx: ctx, q: q, srv: srv, left: e.attempts - 1, free: tcpConns + 1, known: known, done: done}
	if err := ctx.Err(); err != nil {
		e.finish(c, reply{}, err)
		return
	}
	s := b.socks[srv]
	if s == nil {
		if s, err = e.sock(c); err != nil || s == nil {
			return
		}
		b.socks[srv] = s
	}
	o, ok := e.register(s, c, &b.slab)
	if !ok {
		return
	}
	if b.out[s] == nil {
		b.order = append(b.order, s)
	}
	b.out[s] = append(b.out[s], o)
	b.n++
}

// flush sends the queries added since the last flush.
func (b *batch) flush() {
	for _, s := range b.order {
		b.e.write(s, b.out[s])
	}
	clear(b.socks)
	clear(b.out)
	b.order, b.n, b.slab = b.order[:0], 0, b.slab[:0]
}

// take removes c from s's outstanding queries, unless an answer or a
// failure already did.
func (s *sock) take(id uint16, c *call) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pending[id] != c {
		return false
	}
	delete(s.pending, id)
	return true
}

// sock returns a socket of c's server to send c on, dialling one while
// the server has fewer than its share: at once when that cannot block,
// else on a goroutine of its own, meanwhile using another socket. With
// none to use, c waits for the dial on a goroutine of its own (await), or
// fails, and sock returns nil.
func (e *engine) sock(c *call) (*sock, error) {
	srv := c.srv
	srv.mu.Lock()
	live := srv.socks[:0]
	for _, s := range srv.socks {
		s.mu.Lock()
		if !s.dead {
			live = append(live, s)
		}
		s.mu.Unlock()
	}
	clear(srv.socks[len(live):])
	srv.socks = live
	var err error
	if len(srv.socks) < srv.want && srv.dialing == nil {
		if srv.quick {
			var s *sock
			if s, err = e.dial(context.Background(), srv); err == nil {
				srv.socks = append(srv.socks, s)
			}
		} else {
			err = e.startDial(srv)
		}
	}
	if err != nil || len(srv.socks) == 0 {
		d := srv.dialing
		srv.mu.Unlock()
		if err == nil && !e.spawn(func() { e.await(c, d) }) {
			err = net.ErrClosed
		}
		if err != nil {
			e.failed(c, nil, err)
		}
		return nil, err
	}
	srv.next = (srv.next + 1) % len(srv.socks)
	s := srv.socks[srv.next]
	srv.mu.Unlock()
	return s, nil
}

// startDial dials srv on a goroutine of its own; srv.mu is held.
func (e *engine) startDial(srv *server) error {
	d := &dialing{done: make(chan struct{})}
	ok := e.spawn(func() {
		ctx, cancel := context.WithTimeout(e.dials, e.timeout)
		s, err := e.dial(ctx, srv)
		cancel()
		srv.mu.Lock()
		e.mu.Lock()
		closed := e.closed
		e.mu.Unlock()
		if err == nil && !closed {
			srv.socks = append(srv.socks, s)
		}
		srv.dialing, d.err = nil, err
		srv.mu.Unlock()
		if err == nil && closed {
			// close looked at srv's sockets before this one was added.
			e.kill(s, net.ErrClosed)
		}
		close(d.done)
	})
	if !ok {
		return net.ErrClosed
	}
	srv.dialing = d
	return nil
}

func (e *engine) dial(ctx context.Context, srv *server) (*sock, error) {
	e.mu.Lock()
	closed := e.closed
	e.mu.Unlock()
	if closed {
		return nil, net.ErrClosed
	}
	// The kernel picks a random source port per socket.
	var d net.Dialer
	conn, err := d.DialContext(ctx, srv.proto, srv.addr)
	if err != nil {
		return nil, err
	}
	s := &sock{srv: srv, conn: conn, tcp: srv.proto == "tcp", pending: map[uint16]*call{}}
	if u, ok := conn.(*net.UDPConn); ok {
		// A window of answers can arrive at once.
		_ = u.SetReadBuffer(1 << 20)
		s.pc = ipv4.NewPacketConn(u)
	}
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		conn.Close()
		return nil, net.ErrClosed
	}
	e.wg.Add(1)
	e.mu.Unlock()
	go func() {
		defer e.wg.Done()
		if s.tcp {
			e.readTCP(s)
		} else {
			e.readUDP(s)
		}
	}()
	return s, nil
}

func (e *engine) readUDP(s *sock) {
	// Up to 32 datagrams a system call, each of any size: a window's
	// answers arrive in bursts (8 a call cost about 8% more CPU per query).
	msgs := make([]ipv4.Message, 32)
	for i := range msgs {
		msgs[i].Buffers = [][]byte{make([]byte, dns.MaxMsgSize)}
	}
	for {
		n, err := s.pc.ReadBatch(msgs, 0)
		switch {
		case errors.Is(err, syscall.ECONNREFUSED):
			// An ICMP port unreachable for one of the socket's queries, which
			// one is unknown: nothing listens there, so all of them failed.
			e.failAll(s, err)
			continue
		case err != nil:
			e.kill(s, err)
			return
		}
		for _, m := range msgs[:n] {
			e.answer(s, m.Buffers[0][:m.N])
		}
	}
}

func (e *engine) readTCP(s *sock) {
	r := bufio.NewReaderSize(s.conn, 16<<10)
	var hdr [2]byte
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			e.kill(s, err)
			return
		}
		msg := make([]byte, binary.BigEndian.Uint16(hdr[:]))
		if _, err := io.ReadFull(r, msg); err != nil {
			e.kill(s, err)
			return
		}
		e.answer(s, msg)
	}
}

// answer matches one message read from s to its query, by ID and
// question; a message that matches none (a late answer to a query asked
// again, or anything foreign) is dropped, as is one that is no response
// to a standard query: a query echoed back is no answer.
func (e *engine) answer(s *sock, raw []byte) {
	const qrOpcode, response = 0xf8, 0x80 // QR and opcode, in the third byte
	if len(raw) < 12 || raw[2]&qrOpcode != response {
		return
	}
	id := binary.BigEndian.Uint16(raw)
	s.mu.Lock()
	c := s.pending[id]
	if c == nil || !sameQuestionWire(raw, c.q) {
		s.mu.Unlock()
		return
	}
	delete(s.pending, id)
	s.answered = true
	took := time.Since(c.sent)
	if c.seq > s.answeredSeq {
		s.answeredSeq, s.answeredRTT = c.seq, took
	}
	if !s.tcp && c.resends == 0 {
		// Only unambiguous round trips count (Karn's rule).
		rtt := int64(took)
		old := e.srtt.Load()
		if old == 0 {
			old = rtt
		}
		e.srtt.Store(old - old/8 + rtt/8)
	}
	s.mu.Unlock()
	const tcBit = 0x02 // in the third byte of the header
	known := c.known != nil && c.tc == nil && raw[2]&tcBit == 0
	if known {
		// Most answers are like one already in hand: compared where the
		// reader read them, they need no copy of their own.
		copied, dup := c.known.seen(raw)
		if dup {
			e.finish(c, reply{size: len(raw), known: true, rtt: took}, nil)
			return
		}
		raw = copied
	} else {
		raw = append([]byte(nil), raw...) // the reader reuses its buffer
	}
	m, err := unpackAnswer(raw)
	if err != nil {
		if known {
			c.known.drop(raw)
		}
		e.failed(c, s, fmt.Errorf("bad answer: %w", err))
		return
	}
	r := reply{msg: m, raw: raw, size: len(raw), rtt: took}
	if !s.tcp {
		r.udpSize, r.udpEDNS = len(raw), m.IsEdns0() != nil
		if m.Truncated {
			// Ask again over TCP, as a resolver does, with attempts anew.
			c.tc = &r
			srv, err := e.server("tcp", c.srv.addr)
			if err != nil { // closed
				e.finish(c, reply{}, err)
				return
			}
			c.srv, c.left, c.free = srv, e.attempts-1, tcpConns+1
			// Not on this reader: a write to a server that stopped reading
			// waits up to a timeout, while this socket's answers would not.
			if !e.spawn(func() { e.send(c) }) {
				e.finish(c, reply{}, net.ErrClosed)
			}
			return
		}
	}
	e.finish(c, r, nil)
}

// sameQuestionWire reports whether raw, a message with at least a header,
// asks q's one question. Names compare case-insensitively byte by byte
// ("\070oo.example.com." asked is "Foo.example.com." answered); label
// lengths are at most 63 and so never fold.
func sameQuestionWire(raw []byte, q *packed) bool {
	if len(raw) < q.qend || binary.BigEndian.Uint16(raw[4:]) != 1 {
		return false
	}
	name := q.qend - 4
	for i := 12; i < q.qend; i++ {
		a, b := raw[i], q.wire[i]
		if i < name {
			a, b = lower(a), lower(b)
		}
		if a != b {
			return false
		}
	}
	return true
}

func lower(b byte) byte {
	if 'A' <= b && b <= 'Z' {
		return b + 'a' - 'A'
	}
	return b
}

// failed handles an attempt of c that got no usable answer: it is sent
// again while attempts are left, else done with err. s is the socket it
// failed on, if any.
func (e *engine) failed(c *call, s *sock, err error) {
	if cerr := c.ctx.Err(); cerr != nil {
		e.finish(c, reply{}, cerr)
		return
	}
	switch {
	case s != nil && s.tcp && c.free > 0 && !isTimeout(err) && s.wasAnswered():
		c.free--
		e.send(c)
	case c.left > 0:
		c.left--
		e.send(c)
	default:
		e.finish(c, reply{}, err)
	}
}

func (s *sock) wasAnswered() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.answered
}

// errTruncated marks the errors of queries asked again over TCP.
var errTruncated = errors.New("UDP answer truncated")

func (e *engine) finish(c *call, r reply, err error) {
	if c.tc != nil {
		if err != nil {
			err = fmt.Errorf("%w, TCP retry: %w", errTruncated, err)
		}
		r = reply{msg: r.msg, size: r.size, udpSize: c.tc.udpSize, udpEDNS: c.tc.udpEDNS, rtt: c.tc.rtt + r.rtt}
	}
	c.done(r, err)
}

// kill closes s and fails its outstanding queries: a TCP connection that
// broke, or a socket that can no longer read. Only the first kill does,
// with its reason: the others (its reader's, which the close ended) find
// none, as no query is added to a dead socket.
func (e *engine) kill(s *sock, err error) {
	s.mu.Lock()
	already := s.dead
	s.dead = true
	s.mu.Unlock()
	if already {
		return
	}
	s.conn.Close()
	e.failAll(s, err)
}

// failAll fails every outstanding query of s with err.
func (e *engine) failAll(s *sock, err error) {
	s.mu.Lock()
	calls := make([]*call, 0, len(s.pending))
	for id, c := range s.pending {
		calls = append(calls, c)
		delete(s.pending, id)
	}
	s.mu.Unlock()
	e.mu.Lock()
	closed := e.closed
	e.mu.Unlock()
	for _, c := range calls {
		if closed {
			e.finish(c, reply{}, net.ErrClosed)
			continue
		}
		e.failed(c, s, err)
	}
}

// kick makes the janitor look now, as when a context ends.
func (e *engine) kick() {
	select {
	case e.kickc <- struct{}{}:
	default:
	}
}

// janitor sends again, or gives up, queries whose answer is late or whose
// context ended, a few times per timeout.
func (e *engine) janitor() {
	defer e.wg.Done()
	t := time.NewTicker(min(max(e.timeout/8, 5*time.Millisecond), 20*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-e.stop:
			return
		case <-t.C:
		case <-e.kickc:
		}
		type late struct {
			c *call
			s *sock
		}
		var lates, again []late
		now := time.Now()
		rto := e.rto()
		e.mu.Lock()
		servers := make([]*server, 0, len(e.servers))
		for _, srv := range e.servers {
			servers = append(servers, srv)
		}
		e.mu.Unlock()
		for _, srv := range servers {
			srv.mu.Lock()
			socks := append([]*sock(nil), srv.socks...)
			srv.mu.Unlock()
			for _, s := range socks {
				s.mu.Lock()
				for id, c := range s.pending {
					switch {
					case now.After(c.deadline) || c.ctx.Err() != nil:
						delete(s.pending, id)
						lates = append(lates, late{c, s})
					case !s.tcp && c.resends < maxResends && now.After(c.resendAt) && s.answeredSeq > c.seq &&
						now.Sub(c.sent) > s.answeredRTT+s.answeredRTT/4:
						c.resends++
						c.resendAt = now.Add(rto << c.resends)
						again = append(again, late{c, s})
					}
				}
				s.mu.Unlock()
			}
		}
		for _, l := range again {
			// The same ID: an answer to either datagram is the answer.
			buf := append([]byte(nil), l.c.q.wire...)
			binary.BigEndian.PutUint16(buf, l.c.id)
			_, _ = l.s.conn.Write(buf)
		}
		var tcp []late
		for _, l := range lates {
			if l.s.tcp {
				tcp = append(tcp, l)
				continue
			}
			e.late(l.c, l.s)
		}
		// Not here: asked again over a full TCP connection (a server that
		// stopped reading), a query waits up to a timeout, and every
		// server's timeouts and resends would wait with it.
		if len(tcp) > 0 && !e.spawn(func() {
			for _, l := range tcp {
				e.late(l.c, l.s)
			}
		}) {
			for _, l := range tcp {
				e.late(l.c, l.s) // closed: nothing waits
			}
		}
	}
}

// late fails the attempt of c, outstanding on s, that got no answer in
// time. A late answer to it finds no query and is dropped.
func (e *engine) late(c *call, s *sock) {
	e.failed(c, s, fmt.Errorf("no answer from %s over %s: %w", s.srv.addr, s.srv.proto, os.ErrDeadlineExceeded))
}

// close closes every socket; queries still outstanding fail.
func (e *engine) close() {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return
	}
	e.closed = true
	servers := e.servers
	e.mu.Unlock()
	close(e.stop)
	e.stopDials()
	for _, srv := range servers {
		srv.mu.Lock()
		socks := srv.socks
		srv.mu.Unlock()
		for _, s := range socks {
			e.kill(s, net.ErrClosed)
		}
	}
	e.wg.Wait()
}
