package dnsdist

import (
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/dnsroll/dnsroll/lb/lbtest"
)

// answer is one query of a load and what came back.
type answer struct {
	proto string
	sent  time.Time
	got   time.Time // when the answer came
	txt   string    // "" when no answer came
}

// load sends a steady stream of queries to addr over UDP (one socket, about
// udpRate a second) and over TCP (tcpConns kept-open connections, one query
// at a time each, about tcpRate a second in all) until stop is called.
type load struct {
	mu      sync.Mutex
	answers []*answer
	done    chan struct{}
	wg      sync.WaitGroup
}

func startFlipLoad(t *testing.T, addr string, udpRate, tcpConns, tcpRate int) *load {
	t.Helper()
	l := &load{done: make(chan struct{})}
	conn, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	bigReadBuffer(conn.(*net.UDPConn))
	pending := map[uint16]*answer{}
	l.wg.Add(1)
	go func() { // UDP replies
		defer l.wg.Done()
		buf := make([]byte, 1500)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			m := new(dns.Msg)
			if m.Unpack(buf[:n]) != nil {
				continue
			}
			l.mu.Lock()
			if a := pending[m.Id]; a != nil {
				a.txt, a.got = txtOf(m), time.Now()
				delete(pending, m.Id)
			}
			l.mu.Unlock()
		}
	}()
	l.wg.Add(1)
	go func() { // UDP queries
		defer l.wg.Done()
		tick := time.NewTicker(time.Second / time.Duration(udpRate))
		defer tick.Stop()
		var id uint16
		for {
			select {
			case <-l.done:
				l.awaitReplies(pending)
				conn.Close()
				return
			case <-tick.C:
			}
			l.mu.Lock()
			full := len(pending) >= maxInFlight
			l.mu.Unlock()
			if full {
				continue // no query sent this tick
			}
			id++
			m := new(dns.Msg)
			m.SetQuestion(lbtest.QueryName, dns.TypeTXT)
			m.Id = id
			b, _ := m.Pack()
			a := &answer{proto: "udp", sent: time.Now()}
			l.mu.Lock()
			pending[id] = a
			l.answers = append(l.answers, a)
			l.mu.Unlock()
			_, _ = conn.Write(b)
		}
	}()
	for range tcpConns {
		c := &dns.Client{Net: "tcp", Timeout: lateReplies}
		tc, err := c.Dial(addr)
		if err != nil {
			t.Fatal(err)
		}
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			defer tc.Close()
			tick := time.NewTicker(time.Second * time.Duration(tcpConns) / time.Duration(tcpRate))
			defer tick.Stop()
			for {
				select {
				case <-l.done:
					return
				case <-tick.C:
				}
				m := new(dns.Msg)
				m.SetQuestion(lbtest.QueryName, dns.TypeTXT)
				a := &answer{proto: "tcp", sent: time.Now()}
				r, _, err := c.ExchangeWithConn(m, tc)
				if err == nil {
					a.txt, a.got = txtOf(r), time.Now()
				}
				l.mu.Lock()
				l.answers = append(l.answers, a)
				l.mu.Unlock()
				if err != nil {
					return // a broken connection is a loss; stop this stream
				}
			}
		}()
	}
	return l
}

// maxInFlight caps the UDP queries awaiting a reply. Each socket on the
// way (dnsdist's listener, its socket to a backend, the backend's) holds
// them all in the kernel's default buffer (rmem_default, 208 KiB: 256
// small datagrams, measured on loopback): when a loaded machine holds dnsdist or the
// backends off the CPU, the load waits instead of overflowing a buffer, a
// loss no switch caused (seen at 1000 a second: every lost query a
// RcvbufErrors in /proc/net/snmp).
const maxInFlight = 64

// lateReplies bounds the wait for a reply: a UDP one comes within
// dnsdist's 2 s timeout or never, and the rest is the reader's turn on a
// loaded machine; TCP is never resent, so a slow reply is not a loss.
const lateReplies = 10 * time.Second

// awaitReplies returns once no UDP query is pending, or after lateReplies.
func (l *load) awaitReplies(pending map[uint16]*answer) {
	for deadline := time.Now().Add(lateReplies); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		l.mu.Lock()
		n := len(pending)
		l.mu.Unlock()
		if n == 0 {
			return
		}
	}
}

// stop ends the load, waits for late replies, and returns every query.
func (l *load) stop() []*answer {
	close(l.done)
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.answers
}

func txtOf(m *dns.Msg) string {
	if len(m.Answer) == 1 {
		if t, ok := m.Answer[0].(*dns.TXT); ok && len(t.Txt) == 1 {
			return t.Txt[0]
		}
	}
	return "rcode " + dns.RcodeToString[m.Rcode]
}

// checkLoad fails the test unless at least 100 queries went over each of
// protos, every query was answered, and every query in a window (see window) was
// answered by its want.
func checkLoad(t *testing.T, answers []*answer, protos []string, windows ...window) {
	t.Helper()
	count := map[string]int{}
	lost := map[string]int{}
	wrong := make([]int, len(windows))
	for _, a := range answers {
		count[a.proto]++
		if a.txt == "" {
			lost[a.proto]++
			continue
		}
		for i, w := range windows {
			if !a.sent.Before(w.from) && a.got.Before(w.to) && a.txt != w.want {
				if wrong[i]++; wrong[i] == 1 {
					t.Errorf("%s query sent %v after the flip to %s was answered %q", a.proto, a.sent.Sub(w.from).Round(time.Millisecond), w.want, a.txt)
				}
			}
		}
	}
	for i, n := range wrong {
		if n > 0 {
			t.Errorf("%d queries after the flip to %s were answered by another backend", n, windows[i].want)
		}
	}
	t.Logf("queries: %v, lost: %v", count, lost)
	for _, proto := range protos {
		if count[proto] < 100 || lost[proto] != 0 {
			t.Errorf("%s: %d of %d queries lost; want 0 of at least 100", proto, lost[proto], count[proto])
		}
	}
}

// window is a time span in which every answer must be want: every query
// sent from from on and answered before to. A query sent before to but answered after may have
// waited in a socket until the next flip took effect.
type window struct {
	from, to time.Time
	want     string
}

// bigReadBuffer gives the load's socket room for several seconds of
// replies: on a busy machine the reader may not run for a while, and a
// reply dropped by a full socket buffer here would count as lost by
// dnsdist. SO_RCVBUFFORCE passes net.core.rmem_max when run as root.
func bigReadBuffer(c *net.UDPConn) {
	const size = 8 << 20
	_ = c.SetReadBuffer(size)
	if raw, err := c.SyscallConn(); err == nil {
		_ = raw.Control(func(fd uintptr) {
			_ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUFFORCE, size)
		})
	}
}
