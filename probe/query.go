package probe

import (
	"context"
	"errors"
	"net"
	"time"

	"github.com/miekg/dns"
)

// reply is one answer as received: the message and its size on the wire.
type reply struct {
	msg *dns.Msg
	// raw is the answer on the wire. known is set, and msg nil, when raw
	// is byte for byte an answer the caller checks anyway (see memo).
	raw   []byte
	known bool
	size  int
	// udpSize is the size of the UDP answer (truncated or not) and udpEDNS
	// whether it carried an OPT record; both zero over TCP.
	udpSize int
	udpEDNS bool
	// rtt is how long the answer took, from its attempt's first send:
	// the resends of a lost datagram count.
	rtt time.Duration
}

// query asks addr for (name, qtype) with recursion desired set to rd,
// retrying lost queries and asking again over TCP when a UDP answer is
// truncated, and waits for the answer.
func (p *Prober) query(ctx context.Context, addr, proto, name string, qtype uint16, rd bool) (reply, error) {
	e := p.acquire()
	defer p.release()
	type result struct {
		r   reply
		err error
	}
	ch := make(chan result, 1)
	e.ask(ctx, addr, proto, name, qtype, rd, nil, func(r reply, err error) { ch <- result{r, err} })
	select {
	case res := <-ch:
		return res.r, res.err
	case <-ctx.Done():
		return reply{}, ctx.Err()
	}
}

// acquire returns the engine of the Prober's calls in progress, or a new
// one; release closes it after the last call, so no socket outlives them.
func (p *Prober) acquire() *engine {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.eng == nil {
		p.eng = newEngine(p.timeout(), p.Attempts, p.bufSize())
	}
	p.users++
	return p.eng
}

func (p *Prober) release() {
	p.mu.Lock()
	p.users--
	var e *engine
	if p.users == 0 {
		e, p.eng = p.eng, nil
	}
	p.mu.Unlock()
	if e != nil {
		e.close()
	}
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

// isTimeout reports whether err is a network timeout.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
