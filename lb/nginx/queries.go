package nginx

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/dnsroll/dnsroll/config"
	"github.com/dnsroll/dnsroll/lb"
)

// Queries is the number of DNS sessions balancer's nginx has received
// since it started: the counter a replacement's drain watches fall quiet.
// It is stub_status's accepts, which counts every TCP connection and every
// new UDP session (nginx's ngx_event_recvmsg), minus its requests, which
// are the status reads themselves (one request per connection; the status
// server is the config's only http server), so reading it does not move
// it. Two limits: UDP queries from one client port while that client's
// session is open (until nginx relays the reply) count once, and the
// control socket's connections (a flip's checks) count too. A reload keeps
// the counter; a new master (a binary upgrade) starts it from zero.
func (d *Driver) Queries(ctx context.Context, fleet *config.Fleet, balancer config.LoadBalancer) (uint64, error) {
	n, err := d.queries(ctx, fleet, balancer)
	return n, wrap("queries", balancer.Name, err)
}

func (d *Driver) queries(ctx context.Context, fleet *config.Fleet, balancer config.LoadBalancer) (uint64, error) {
	j, err := d.job(fleet, balancer, nil, nil)
	if err != nil {
		return 0, err
	}
	ch, err := d.channel(ctx, fleet, balancer)
	if err != nil {
		return 0, err
	}
	st, err := readStatus(ctx, ch, j.data.StatusSocket)
	if err != nil {
		return 0, err
	}
	return st.sessions(), nil
}

// status is two of stub_status's counters.
type status struct {
	accepts, requests uint64
}

// sessions is the stream sessions among accepts: never below zero, should
// a client other than Queries have sent one connection several requests.
func (s status) sessions() uint64 {
	return s.accepts - min(s.requests, s.accepts)
}

// readStatus asks the stub_status server on socket, through ch, which
// reaches the load balancer's unix sockets: plain HTTP over the
// connection, so the load balancer needs no HTTP client.
func readStatus(ctx context.Context, ch lb.Channel, socket string) (status, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	conn, err := ch.Dial(ctx, "unix", socket)
	if err != nil {
		return status{}, fmt.Errorf("status socket: %w (the config of an nginx started before dnsroll served stub_status has none: run the load balancer playbook)", err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	if _, err := io.WriteString(conn, "GET / HTTP/1.0\r\nHost: localhost\r\n\r\n"); err != nil {
		return status{}, fmt.Errorf("status socket %s: %w", socket, err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return status{}, fmt.Errorf("status socket %s: %w", socket, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if err != nil {
		return status{}, fmt.Errorf("status socket %s: %w", socket, err)
	}
	if resp.StatusCode != http.StatusOK {
		return status{}, fmt.Errorf("status socket %s: %s", socket, resp.Status)
	}
	return parseStatus(string(body))
}

// parseStatus reads stub_status's page: the line of numbers under
// "server accepts handled requests".
func parseStatus(body string) (status, error) {
	lines := strings.Split(body, "\n")
	for i, l := range lines {
		if strings.TrimSpace(l) != "server accepts handled requests" || i+1 == len(lines) {
			continue
		}
		f := strings.Fields(lines[i+1])
		if len(f) != 3 {
			break
		}
		var n [3]uint64
		for k, s := range f {
			v, err := strconv.ParseUint(s, 10, 64)
			if err != nil {
				return status{}, fmt.Errorf("stub_status counter %q: %w", s, err)
			}
			n[k] = v
		}
		return status{accepts: n[0], requests: n[2]}, nil
	}
	return status{}, fmt.Errorf("stub_status page without its counters (\"server accepts handled requests\" and a line of three numbers): %q", body)
}
