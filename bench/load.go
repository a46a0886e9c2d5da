package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// queries is dnsperf's input: names the lab zone has in every revision, so
// any answer but NOERROR is a failure.
const queries = `www.example.com A
mail.example.com A
example.com MX
release.example.com TXT
example.com SOA
example.com NS
`

// second is one second of a load's replies, by when they arrived.
type second struct {
	Answered int     `json:"answered"`
	Lost     int     `json:"lost"`
	Failed   int     `json:"failed"`
	LatAvgMS float64 `json:"latency_avg_ms"`
	LatMaxMS float64 `json:"latency_max_ms"`
	latSum   float64
}

// loadStats is what dnsperf reported at the end, plus the per-second series
// taken from its per-query lines.
type loadStats struct {
	Sent, Completed, Lost int
	// Failed counts replies whose rcode was not NOERROR.
	Failed        int
	LatAvgMS      float64
	LatMaxMS      float64
	Reconnections int
	// Start is when dnsperf started; Seconds[i] began i seconds after it.
	Start   time.Time
	Seconds []second
	Summary string
}

// load is one dnsperf process sending a steady load to one address.
type load struct {
	cmd     *exec.Cmd
	start   time.Time
	timeout time.Duration
	stderr  bytes.Buffer
	done    chan struct{}

	mu      sync.Mutex
	stopped bool
	secs    []second
	summary strings.Builder
}

// startLoad runs dnsperf against addr at qps queries per second over proto
// (udp or tcp) until stop. With -v dnsperf prints a line per reply or
// timeout, which gives the per-second series; its final statistics give the
// totals. A reply later than timeout counts as lost.
func startLoad(addr, proto string, qps int, queryFile string, timeout time.Duration) (*load, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	args := []string{
		"-s", host, "-p", port, "-m", proto, "-d", queryFile,
		"-Q", strconv.Itoa(qps), "-l", "3600", "-t", strconv.Itoa(int(timeout.Seconds())),
		// Four clients: four source ports (UDP) or connections (TCP), as
		// from more than one resolver. Enough outstanding queries that a
		// slow second cannot throttle the offered load.
		"-c", "4", "-q", "2000", "-v",
	}
	l := &load{cmd: exec.Command("dnsperf", args...), timeout: timeout, done: make(chan struct{})}
	l.cmd.Stderr = &l.stderr
	out, err := l.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(&l.summary, "dnsperf %s\n", strings.Join(args, " "))
	l.start = time.Now()
	if err := l.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start dnsperf: %w", err)
	}
	go l.read(out)
	return l, nil
}

// read consumes dnsperf's output. Replies are counted in the second they
// arrive in; a timeout in the second its query was sent. It runs beside the
// load it measures, so it parses bytes in place rather than allocate.
func (l *load) read(r io.Reader) {
	defer close(l.done)
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			l.line(bytes.TrimRight(line, "\r\n"), time.Since(l.start))
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			return
		}
	}
}

// line counts one line of output: "> NOERROR name type 0.000123" for a
// reply, "> T name type" for a timeout, anything else for the summary.
func (l *load) line(line []byte, at time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !bytes.HasPrefix(line, []byte("> ")) {
		l.summary.Write(line)
		l.summary.WriteByte('\n')
		return
	}
	if l.stopped {
		// After the interrupt dnsperf gives up on what is still
		// outstanding; its totals, not these lines, count that.
		return
	}
	rest := line[2:]
	rcode := rest
	if i := bytes.IndexByte(rest, ' '); i >= 0 {
		rcode = rest[:i]
	}
	if string(rcode) == "T" {
		l.bin(at-l.timeout).Lost++
		return
	}
	s := l.bin(at)
	s.Answered++
	if string(rcode) != "NOERROR" {
		s.Failed++
	}
	if i := bytes.LastIndexByte(rest, ' '); i >= 0 {
		if lat, err := strconv.ParseFloat(string(rest[i+1:]), 64); err == nil {
			ms := lat * 1000
			s.latSum += ms
			s.LatMaxMS = max(s.LatMaxMS, ms)
		}
	}
}

func (l *load) bin(at time.Duration) *second {
	i := max(int(at/time.Second), 0)
	for len(l.secs) <= i {
		l.secs = append(l.secs, second{})
	}
	return &l.secs[i]
}

// stop interrupts dnsperf, which stops sending, waits for the replies still
// due and prints its statistics.
func (l *load) stop() (loadStats, error) {
	l.mu.Lock()
	l.stopped = true
	l.mu.Unlock()
	_ = l.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-l.done:
	case <-time.After(l.timeout + 10*time.Second):
		_ = l.cmd.Process.Kill()
		<-l.done
	}
	err := l.cmd.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	st, perr := parseSummary(l.summary.String())
	if perr != nil {
		return st, fmt.Errorf("dnsperf: %v (%v): %s", perr, err, strings.TrimSpace(l.stderr.String()))
	}
	for i := range l.secs {
		if s := &l.secs[i]; s.Answered > 0 {
			s.LatAvgMS = s.latSum / float64(s.Answered)
		}
	}
	st.Seconds, st.Start = append([]second(nil), l.secs...), l.start
	return st, nil
}

var (
	statRE   = regexp.MustCompile(`(?m)^\s*(Queries sent|Queries completed|Queries lost|Reconnections):\s+(\d+)`)
	rcodesRE = regexp.MustCompile(`(?m)^\s*Response codes:\s*(.*)$`)
	rcodeRE  = regexp.MustCompile(`([A-Z]+) (\d+) \(`)
	latRE    = regexp.MustCompile(`(?m)^\s*Average Latency \(s\):\s+([0-9.]+) \(min [0-9.]+, max ([0-9.]+)\)`)
)

// parseSummary reads dnsperf's final statistics.
func parseSummary(text string) (loadStats, error) {
	st := loadStats{Summary: text}
	found := 0
	for _, m := range statRE.FindAllStringSubmatch(text, -1) {
		n, _ := strconv.Atoi(m[2])
		switch m[1] {
		case "Queries sent":
			st.Sent, found = n, found+1
		case "Queries completed":
			st.Completed = n
		case "Queries lost":
			st.Lost, found = n, found+1
		case "Reconnections":
			st.Reconnections = n
		}
	}
	if found < 2 {
		return st, fmt.Errorf("no statistics in its output")
	}
	if m := rcodesRE.FindStringSubmatch(text); m != nil {
		for _, rc := range rcodeRE.FindAllStringSubmatch(m[1], -1) {
			if rc[1] != "NOERROR" {
				n, _ := strconv.Atoi(rc[2])
				st.Failed += n
			}
		}
	}
	// The first "Average Latency" is the queries'; TCP runs add one for
	// connections after it.
	if m := latRE.FindStringSubmatch(text); m != nil {
		avg, _ := strconv.ParseFloat(m[1], 64)
		mx, _ := strconv.ParseFloat(m[2], 64)
		st.LatAvgMS, st.LatMaxMS = avg*1000, mx*1000
	}
	return st, nil
}
