package dnsdist

import (
	"context"
	"errors"
	"math"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/internal/pidfile"
	"github.com/dnsroll/dnsroll/lb"
	"github.com/dnsroll/dnsroll/lb/lbtest"
)

// stageLab is one lab load balancer run by the real playbook, with a
// driver that reaches its console directly (lb.Local).
type stageLab struct {
	lbtest.Lab
	d *Driver
}

func newStageLab(t testing.TB) *stageLab {
	t.Helper()
	needLab(t)
	lab := lbtest.NewLab(t, "dnsdist")
	l := &stageLab{Lab: lab, d: &Driver{Reach: lab.Reach()}}
	t.Cleanup(func() {
		if t.Failed() {
			log, _ := os.ReadFile(filepath.Join(l.Dir, "dnsdist.log"))
			t.Logf("dnsdist.log:\n%s", log)
		}
		pid, _ := PID(l.Dir)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := Stop(ctx, l.Dir); err != nil {
			t.Errorf("Stop: %v", err)
		}
		if pid != 0 && pidfile.Alive(pid, "dnsdist") {
			t.Errorf("dnsdist pid %d still runs after Stop", pid)
		}
	})
	return l
}

// TestContract runs the drivers' contract (lbtest.Contract) on a lab
// dnsdist: a repeated Point or Flip must not restart dnsdist.
func TestContract(t *testing.T) {
	l := newStageLab(t)
	lbtest.Contract(t, lbtest.Subject{Driver: l.d, Fleet: l.Fleet, LB: l.LB, State: func(t testing.TB) any {
		pid, err := PID(l.Dir)
		if err != nil {
			t.Fatal(err)
		}
		return pid
	}})
}

func (l *stageLab) stage(t testing.TB, live, staged []dnsroll.Server) {
	t.Helper()
	defer logTime(t, "Stage", time.Now())
	if err := l.d.Stage(context.Background(), l.Fleet, l.LB, live, staged); err != nil {
		t.Fatalf("Stage: %v", err)
	}
}

func (l *stageLab) flip(t testing.TB, shares ...lb.Share) {
	t.Helper()
	if err := l.d.Flip(context.Background(), l.Fleet, l.LB, shares); err != nil {
		t.Fatalf("Flip: %v", err)
	}
}

func (l *stageLab) stats(t *testing.T) map[string]lb.BackendStats {
	t.Helper()
	st, err := l.d.Stats(context.Background(), l.Fleet, l.LB)
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	m := map[string]lb.BackendStats{}
	for _, s := range st {
		m[s.Addr] = s
	}
	return m
}

func share(s dnsroll.Server, w int) lb.Share { return lb.Share{Server: s, Weight: w} }

// TestLabStageFlip stages green beside blue, then flips to green and back
// under a steady UDP and TCP load through a real dnsdist: no query may be
// lost, every query sent after a flip returned must be answered by the side
// flipped to, and dnsdist must never restart. It also checks that staging
// and flipping are idempotent, that a flip to an unstaged backend fails
// saying so and changes nothing, and that Point afterwards removes the
// staged side under load without losing a query.
func TestLabStageFlip(t *testing.T) {
	l := newStageLab(t)
	blue, green := lbtest.StartTXT(t, "blue"), lbtest.StartTXT(t, "green")
	addr := l.LB.Address

	l.stage(t, []dnsroll.Server{blue}, []dnsroll.Server{green})
	lbtest.WantTXT(t, addr, "blue")
	st := l.stats(t)
	if g := st[green.DNSAddr()]; !g.Up || g.Weight != 0 {
		t.Errorf("staged green: %+v, want up with weight 0", g)
	}
	if b := st[blue.DNSAddr()]; !b.Up || b.Weight != 1 {
		t.Errorf("live blue: %+v, want up with weight 1", b)
	}
	conf, _ := os.ReadFile(filepath.Join(l.Dir, "dnsdist.conf"))
	if !strings.Contains(string(conf), "address = '"+green.DNSAddr()+"', name = '"+green.DNSAddr()+"', pool = 'staged'") {
		t.Errorf("dnsdist.conf does not record green as staged:\n%s", conf)
	}
	pid, err := PID(l.Dir)
	if err != nil {
		t.Fatal(err)
	}

	load := startFlipLoad(t, addr, 1000, 4, 800)
	time.Sleep(300 * time.Millisecond)
	l.flip(t, share(green, 1), share(blue, 0))
	toGreen := time.Now()
	time.Sleep(500 * time.Millisecond)
	l.flip(t, share(green, 1), share(blue, 0)) // idempotent
	time.Sleep(500 * time.Millisecond)
	backStart := time.Now()
	l.flip(t, share(blue, 1)) // the rollback: blue alone, green staged
	toBlue := time.Now()
	time.Sleep(500 * time.Millisecond)
	answers := load.stop()
	checkLoad(t, answers, []string{"udp", "tcp"},
		window{from: toGreen, to: backStart, want: "green"},
		window{from: toBlue, to: time.Now().Add(time.Hour), want: "blue"})
	st = l.stats(t)
	if g, b := st[green.DNSAddr()], st[blue.DNSAddr()]; g.Weight != 0 || !g.Up || b.Weight != 1 {
		t.Errorf("after flipping back: green %+v, blue %+v; want green staged, blue live", g, b)
	}

	// A flip to a backend never staged fails, saying so, and changes nothing.
	red := lbtest.StartTXT(t, "red")
	err = l.d.Flip(context.Background(), l.Fleet, l.LB, []lb.Share{share(red, 1)})
	if dnsroll.ErrorCode(err) != dnsroll.EINVALID || !strings.Contains(err.Error(), "stage them first") {
		t.Errorf("Flip to an unstaged backend: %v; want EINVALID saying to stage first", err)
	}
	lbtest.WantTXT(t, addr, "blue")

	// Staging again changes nothing live.
	l.stage(t, []dnsroll.Server{blue}, []dnsroll.Server{green})
	lbtest.WantTXT(t, addr, "blue")
	if got, _ := PID(l.Dir); got != pid {
		t.Errorf("dnsdist pid changed from %d to %d: stage and flip must not restart it", pid, got)
	}

	// Point removes the staged side, under load, losing nothing.
	load = startFlipLoad(t, addr, 1000, 4, 800)
	time.Sleep(200 * time.Millisecond)
	pointStart := time.Now()
	if err := l.d.Point(context.Background(), l.Fleet, l.LB, []dnsroll.Server{blue}); err != nil {
		t.Fatalf("Point: %v", err)
	}
	logTime(t, "Point", pointStart)
	checkLoad(t, load.stop(), []string{"udp", "tcp"}, window{from: time.Now().Add(-time.Hour), to: time.Now().Add(time.Hour), want: "blue"})
	if st := l.stats(t); len(st) != 1 || st[blue.DNSAddr()].Weight != 1 {
		t.Errorf("after Point at blue dnsdist has %v, want blue alone", st)
	}

	// dnsdist closes the console on a key it cannot decrypt with: the
	// client says so, and the driver, holding a stale key, reads it again.
	wrong := testKey(t)
	conn, err := net.Dial("tcp", net.JoinHostPort(labConsoleHost, l.LB.Address[strings.LastIndex(l.LB.Address, ":")+1:]))
	if err != nil {
		t.Fatal(err)
	}
	c, err := OpenConsole(context.Background(), conn, wrong)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Exec(context.Background(), "showServers()"); !errors.Is(err, ErrConsoleClosed) {
		t.Errorf("real console with a wrong key: %v, want ErrConsoleClosed", err)
	}
	c.Close()
	l.d.mu.Lock()
	for _, k := range l.d.keys {
		k.key = wrong
	}
	l.d.mu.Unlock()
	l.stats(t)
}

// TestLabFlipWeights flips to blue 90, green 10 and checks that dnsdist's
// own counters, and the answers, give green about a tenth of the queries.
func TestLabFlipWeights(t *testing.T) {
	l := newStageLab(t)
	blue, green := lbtest.StartTXT(t, "blue"), lbtest.StartTXT(t, "green")
	l.stage(t, []dnsroll.Server{blue}, []dnsroll.Server{green})
	l.flip(t, share(blue, 90), share(green, 10))
	before := l.stats(t)
	if b, g := before[blue.DNSAddr()], before[green.DNSAddr()]; b.Weight != 90 || g.Weight != 10 {
		t.Fatalf("weights after the flip: blue %d, green %d; want 90 and 10", b.Weight, g.Weight)
	}

	const n = 4000
	c := &dns.Client{Timeout: 2 * time.Second}
	byAnswer := map[string]int{}
	for range n {
		m := new(dns.Msg)
		m.SetQuestion(lbtest.QueryName, dns.TypeTXT)
		r, _, err := c.Exchange(m, l.LB.Address)
		if err != nil {
			t.Fatal(err)
		}
		byAnswer[txtOf(r)]++
	}
	after := l.stats(t)
	dq := func(s dnsroll.Server) float64 {
		return float64(after[s.DNSAddr()].Queries - before[s.DNSAddr()].Queries)
	}
	pct := 100 * dq(green) / (dq(green) + dq(blue))
	answered := 100 * float64(byAnswer["green"]) / n
	t.Logf("green's share: %.1f%% by dnsdist's counters (%v queries), %.1f%% by the answers %v", pct, dq(green)+dq(blue), answered, byAnswer)
	if math.Abs(pct-10) > 2.5 {
		t.Errorf("green's share by dnsdist's counters is %.1f%%, want 10 ± 2.5", pct)
	}
	if math.Abs(pct-answered) > 1 {
		t.Errorf("dnsdist's counters say %.1f%% and the answers %.1f%%; Stats must count what reached each backend", pct, answered)
	}
	if g := after[green.DNSAddr()]; g.Responses+g.Drops+uint64(g.Outstanding) != g.Queries || g.Drops != 0 {
		t.Errorf("green's stats do not add up: %+v", g)
	}

	// A restart (here: stopped, then started by the next play, whose config
	// says blue alone is live) comes back with the flip's split.
	if err := Stop(context.Background(), l.Dir); err != nil {
		t.Fatal(err)
	}
	l.stage(t, []dnsroll.Server{blue}, []dnsroll.Server{green})
	restarted := l.stats(t)
	if b, g := restarted[blue.DNSAddr()], restarted[green.DNSAddr()]; b.Weight != 90 || g.Weight != 10 {
		t.Errorf("after a restart: blue weight %d, green %d; want the flip's 90 and 10", b.Weight, g.Weight)
	}
}

// A flip that cannot record its split (a full disk) says so, so that it
// is retried: before, the write's failure was ignored, an empty file took
// the record's place, and the next restart of dnsdist served the config's
// backends instead of the flip's.
func TestLabFlipOnAFullDisk(t *testing.T) {
	l := newStageLab(t)
	blue, green := lbtest.StartTXT(t, "blue"), lbtest.StartTXT(t, "green")
	l.stage(t, []dnsroll.Server{blue}, []dnsroll.Server{green})
	split := filepath.Join(l.Dir, "split")
	if err := os.Symlink("/dev/full", split+".tmp"); err != nil {
		t.Fatal(err)
	}
	err := l.d.Flip(context.Background(), l.Fleet, l.LB, []lb.Share{share(green, 1), share(blue, 0)})
	if err == nil || !strings.Contains(err.Error(), "could not record it") {
		t.Fatalf("flip on a full disk: %v, want it to say the split was not recorded", err)
	}
	lbtest.WantTXT(t, l.LB.Address, "green")
	if fi, err := os.Lstat(split); err == nil && fi.Mode()&os.ModeSymlink != 0 {
		t.Errorf("the failed write took the record's place: %s", split)
	}
}

// New settings that dnsdist cannot start with (an address another
// program holds) fail the play, and the load balancer serves as before with its
// previous config: before, --check-config passed them (it binds nothing),
// the restart stopped the dnsdist that served, and nothing served until an
// operator came.
func TestLabSettingsDnsdistCannotStartWithKeepTheOldOne(t *testing.T) {
	l := newStageLab(t)
	blue := lbtest.StartTXT(t, "blue")
	ctx := context.Background()
	if err := l.d.Point(ctx, l.Fleet, l.LB, []dnsroll.Server{blue}); err != nil {
		t.Fatal(err)
	}
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	moved := l.LB
	moved.Address = held.Addr().String()
	err = l.d.Point(ctx, l.Fleet, moved, []dnsroll.Server{blue})
	if err == nil || !strings.Contains(err.Error(), "the previous config was put back") {
		t.Fatalf("point at an address dnsdist cannot bind: %v; want it to fail, saying the previous config is back", err)
	}
	lbtest.WantTXT(t, l.LB.Address, "blue")
}

// TestLabPointDrains switches from a backend that answers slowly, under
// load: Point must wait until dnsdist has no outstanding query to it before
// removing it, so every query is answered. A fixed one-second drain would
// remove it with 1.2 s queries still in flight. (Not slower: dnsdist drops
// an answer later than its 2 s UDP timeout, and a loaded machine may add
// most of a second to each.)
func TestLabPointDrains(t *testing.T) {
	l := newStageLab(t)
	slow := startSlowTXT(t, "slow", 1200*time.Millisecond)
	green := lbtest.StartTXT(t, "green")
	if err := l.d.Point(context.Background(), l.Fleet, l.LB, []dnsroll.Server{slow}); err != nil {
		t.Fatal(err)
	}
	load := startFlipLoad(t, l.LB.Address, 500, 0, 0)
	time.Sleep(300 * time.Millisecond)
	start := time.Now()
	if err := l.d.Point(context.Background(), l.Fleet, l.LB, []dnsroll.Server{green}); err != nil {
		t.Fatalf("Point: %v", err)
	}
	t.Logf("Point took %v", time.Since(start).Round(time.Millisecond))
	answers := load.stop()
	checkLoad(t, answers, []string{"udp"})
	if st := l.stats(t); len(st) != 1 || !st[green.DNSAddr()].Up {
		t.Errorf("after Point at green dnsdist has %v, want green alone", st)
	}
}

// startSlowTXT is lbtest.StartTXT's backend, except that it answers the
// load's queries after delay (health checks at once, so it stays up).
func startSlowTXT(t *testing.T, answer string, delay time.Duration) dnsroll.Server {
	t.Helper()
	h := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		m.Authoritative = true
		if r.Question[0].Name == lbtest.QueryName {
			time.Sleep(delay)
			m.Answer = []dns.RR{&dns.TXT{Hdr: dns.RR_Header{Name: lbtest.QueryName, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 60}, Txt: []string{answer}}}
		}
		_ = w.WriteMsg(m)
	})
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: h}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	go func() { _ = srv.ActivateAndServe() }()
	<-started
	t.Cleanup(func() { _ = srv.Shutdown() })
	return dnsroll.Server{Label: answer, IPv4: "127.0.0.1", DNSPort: pc.LocalAddr().(*net.UDPAddr).Port}
}

func logTime(t testing.TB, what string, start time.Time) {
	t.Helper()
	t.Logf("%s took %v", what, time.Since(start).Round(time.Millisecond))
}

// BenchmarkFlip measures one Flip on a lab dnsdist through lb.Local: the
// console exchange that moves traffic, and reading the split back. Each
// iteration flips to the other side, so every one changes the pools.
func BenchmarkFlip(b *testing.B) {
	l := newStageLab(b)
	blue, green := lbtest.StartTXT(b, "blue"), lbtest.StartTXT(b, "green")
	l.stage(b, []dnsroll.Server{blue}, []dnsroll.Server{green})
	sides := [][]lb.Share{{share(green, 1), share(blue, 0)}, {share(blue, 1), share(green, 0)}}
	l.flip(b, sides[1]...) // the console key is read once, before timing
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := l.d.Flip(context.Background(), l.Fleet, l.LB, sides[i%2]); err != nil {
			b.Fatal(err)
		}
	}
}

// A rollout started again after one that failed past the point of no
// return finds its load balancer already serving green, with blue gone
// from it: staging blue as live and green as staged must not fail, must
// not take traffic from green, and the flips that follow work both ways.
func TestLabStageWhenAlreadyOnGreen(t *testing.T) {
	l := newStageLab(t)
	blue, green := lbtest.StartTXT(t, "blue"), lbtest.StartTXT(t, "green")
	addr := l.LB.Address
	if err := l.d.Point(context.Background(), l.Fleet, l.LB, []dnsroll.Server{green}); err != nil {
		t.Fatalf("Point: %v", err)
	}
	lbtest.WantTXT(t, addr, "green")

	l.stage(t, []dnsroll.Server{blue}, []dnsroll.Server{green})
	lbtest.WantTXT(t, addr, "green")
	l.flip(t, share(green, 100), share(blue, 0))
	lbtest.WantTXT(t, addr, "green")
	l.flip(t, share(blue, 100), share(green, 0))
	lbtest.WantTXT(t, addr, "blue")
}

// A flip to a load balancer whose dnsdist is not running (killed, stopped,
// failed to come back) says so with lb.ErrNotRunning, as nginx's does, so
// that the flip activity starts it with its playbook: before, it failed
// to reach the console, round after round, while the load balancer served
// nothing.
func TestLabFlipWhenDnsdistIsNotRunning(t *testing.T) {
	l := newStageLab(t)
	blue, green := lbtest.StartTXT(t, "blue"), lbtest.StartTXT(t, "green")
	l.stage(t, []dnsroll.Server{blue}, []dnsroll.Server{green})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := Stop(ctx, l.Dir); err != nil {
		t.Fatal(err)
	}
	err := l.d.Flip(context.Background(), l.Fleet, l.LB, []lb.Share{share(green, 1), share(blue, 0)})
	if !errors.Is(err, lb.ErrNotRunning) {
		t.Fatalf("flip with dnsdist stopped: %v, want it to wrap lb.ErrNotRunning", err)
	}
	// What the flip activity then does: the playbook starts it.
	if err := l.d.Point(context.Background(), l.Fleet, l.LB, []dnsroll.Server{green}); err != nil {
		t.Fatalf("Point after the flip found dnsdist stopped: %v", err)
	}
	lbtest.WantTXT(t, l.LB.Address, "green")
}

// TestLabFlipToADownBackendChangesNothing: a staged backend whose health
// check fails is not flipped to: the flip fails saying so, and the live
// backend keeps the traffic and the default pool, as it had them.
func TestLabFlipToADownBackendChangesNothing(t *testing.T) {
	l := newStageLab(t)
	blue := lbtest.StartTXT(t, "blue")
	var down atomic.Bool
	green := lbtest.Serve(t, "green", dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		if down.Load() {
			m.Rcode = dns.RcodeServerFailure
		} else {
			m.Authoritative = true
			m.Answer = []dns.RR{&dns.TXT{Hdr: dns.RR_Header{Name: r.Question[0].Name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 60}, Txt: []string{"green"}}}
		}
		_ = w.WriteMsg(m)
	}))
	l.stage(t, []dnsroll.Server{blue}, []dnsroll.Server{green})
	down.Store(true)
	for deadline := time.Now().Add(20 * time.Second); l.stats(t)[green.DNSAddr()].Up; time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("dnsdist still has green up 20 s after its health check began to fail")
		}
	}
	err := l.d.Flip(context.Background(), l.Fleet, l.LB, []lb.Share{share(green, 1), share(blue, 0)})
	if err == nil || !strings.Contains(err.Error(), "staged but down") {
		t.Errorf("flip to a down backend: %v, want it refused as down", err)
	}
	st := l.stats(t)
	if g, b := st[green.DNSAddr()], st[blue.DNSAddr()]; g.Weight != 0 || b.Weight != 1 {
		t.Errorf("after the refused flip green has weight %d and blue %d, want 0 and 1 as before", g.Weight, b.Weight)
	}
	lbtest.WantTXT(t, l.LB.Address, "blue")
}

// TestLabPointIPv6: two lab load balancers on ::1, each on its own port,
// serve side by side; their consoles, on one address, must not collide.
func TestLabPointIPv6(t *testing.T) {
	blue := lbtest.StartTXT(t, "blue")
	for range 2 {
		l := newStageLab(t) // each in a lab directory of its own
		l.LB.Address = "[::1]:" + lbtest.FreePort(t)
		if err := l.d.Point(context.Background(), l.Fleet, l.LB, []dnsroll.Server{blue}); err != nil {
			t.Fatalf("Point the load balancer at %s: %v", l.LB.Address, err)
		}
		lbtest.WantTXT(t, l.LB.Address, "blue")
	}
}

// watchPoolLua, put before a flip's chunk, shadows getServers with proxies
// of dnsdist's servers that, after each addPool and rmPool, count the
// default pool's servers; dnsrollPoolOps and dnsrollPoolEmptied say what
// they saw. A query arriving while the pool is empty gets no answer from
// a backend, and the console chunk does not stop queries meanwhile (only
// Lua configuration takes the Lua lock), so the order inside one flip is
// what keeps a flip from dropping queries.
const watchPoolLua = `dnsrollPoolOps, dnsrollPoolEmptied = 0, ''
local realServers, realPool = getServers, getPoolServers
local function proxy(s)
  return setmetatable({}, {
    __index = function(_, k)
      if k == 'addPool' or k == 'rmPool' then
        return function(_, p)
          s[k](s, p)
          dnsrollPoolOps = dnsrollPoolOps + 1
          local ok, l = pcall(realPool, '')
          if not ok or #l == 0 then dnsrollPoolEmptied = dnsrollPoolEmptied .. k .. '(' .. p .. ') ' .. s.name .. '; ' end
        end
      end
      local v = s[k]
      if type(v) == 'function' then return function(_, ...) return v(s, ...) end end
      return v
    end,
    __newindex = function(_, k, v) s[k] = v end,
  })
end
local function getServers()
  local out = {}
  for i, s in ipairs(realServers()) do out[i] = proxy(s) end
  return out
end
`

// TestLabFlipNeverEmptiesThePool runs the flip's own chunk in a real
// dnsdist, watched after every pool change: the side flipped to joins the
// default pool before the other side leaves it, both ways, so no query
// ever finds the pool empty. The load test (TestLabStageFlip) rarely lands
// in the microseconds between two changes; this sees every one.
func TestLabFlipNeverEmptiesThePool(t *testing.T) {
	l := newStageLab(t)
	blue, green := lbtest.StartTXT(t, "blue"), lbtest.StartTXT(t, "green")
	l.stage(t, []dnsroll.Server{blue}, []dnsroll.Server{green})
	st, err := l.d.console(l.Fleet, l.LB)
	if err != nil {
		t.Fatal(err)
	}
	for _, shares := range [][]lb.Share{{share(green, 1), share(blue, 0)}, {share(blue, 1)}, {share(green, 1), share(blue, 9)}, {share(green, 1)}} {
		want, err := split(shares)
		if err != nil {
			t.Fatal(err)
		}
		out, err := l.d.exec(context.Background(), l.Fleet, l.LB, watchPoolLua+flipLua(want, st.splitFile),
			"return 'dnsroll-ok ' .. dnsrollPoolOps .. ' ' .. dnsrollPoolEmptied")
		if err != nil {
			t.Fatal(err)
		}
		if err := checkFlip(out[0], want, st.splitFile); err != nil {
			t.Fatalf("flip to %v: %v", want, err)
		}
		ops, emptied, _ := strings.Cut(strings.TrimSpace(strings.TrimPrefix(out[1], "dnsroll-ok ")), " ")
		if ops == "0" {
			t.Fatalf("flip to %v: the watch saw no pool change (%q): it watches nothing", want, out[1])
		}
		if emptied != "" {
			t.Errorf("flip to %v: the default pool was empty after %s", want, emptied)
		}
	}
	lbtest.WantTXT(t, l.LB.Address, "green")
}
