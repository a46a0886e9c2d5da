package nginx

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/config"
	"github.com/dnsroll/dnsroll/lb"
)

// nginx cannot change an upstream without a reload, so its two-phase
// switch is: Stage, with the playbook, records the backends a flip may use
// (each checked to accept TCP from the load balancer) and validates the
// config that gives the staged ones the traffic; Flip sends the config for
// the wanted split over the kept-open channel in one shell command
// (flip.sh) that checks the backends were staged, validates with nginx -t,
// reloads and waits until the old workers stop serving, and then asks the
// control socket that the new ones serve it.

// flipScript is flip.sh, the body of that command.
//
//go:embed flip.sh
var flipScript string

// flipTimeout bounds the wait for a reload's new workers on the load
// balancer; the old ones stop serving within milliseconds.
const flipTimeout = 10 * time.Second

// Exit codes of flip.sh, and of nginx.sh before it and inplace.sh.
const (
	flipInvalid    = 2
	flipNotRunning = 3
	// superseded: a command that reached the load balancer after this
	// one ran first; this one did nothing (nginx.sh).
	superseded = 6
)

// Stage makes balancer serve live as it does now and records live and
// staged as the backends a flip may give traffic to, once each accepts TCP
// from the load balancer; the config giving staged the traffic is
// validated by nginx -t and placed beside the live one. Staged backends
// are absent from the running config: nginx has no idle upstream server.
// Idempotent, like Point.
func (d *Driver) Stage(ctx context.Context, fleet *config.Fleet, balancer config.LoadBalancer, live, staged []dnsroll.Server) error {
	return wrap("stage", balancer.Name, d.stage(ctx, fleet, balancer, live, staged))
}

func (d *Driver) stage(ctx context.Context, fleet *config.Fleet, balancer config.LoadBalancer, live, staged []dnsroll.Server) error {
	j, err := d.job(fleet, balancer, live, nil)
	if err != nil {
		return err
	}
	all, err := stagedVar(append(append([]dnsroll.Server{}, live...), staged...))
	if err != nil {
		return err
	}
	vars := j.req.Hosts[0].Vars
	vars["dnsroll_nginx_staged"] = all
	if len(staged) > 0 {
		data := j.data
		data.Backends, data.Weights, data.ConfigID = nil, nil, ""
		for _, s := range staged {
			data.Backends = append(data.Backends, s.DNSAddr())
		}
		conf, err := d.render(data)
		if err != nil {
			return err
		}
		vars["dnsroll_nginx_staged_conf"] = conf
	}
	return d.apply(ctx, j)
}

// Flip makes balancer serve exactly shares: each backend with a weight
// gets that share of the queries (nginx's weight=), and one with weight
// zero none. It is one command over the kept-open channel; it returns once
// nginx's new workers serve the split and none of the old ones takes a
// new connection (those they have close within the config's shutdown
// timeout, so busy TCP clients move over too). Every backend in shares
// must have been staged. Flipping to the split nginx already serves
// changes nothing.
func (d *Driver) Flip(ctx context.Context, fleet *config.Fleet, balancer config.LoadBalancer, shares []lb.Share) error {
	return wrap("flip", balancer.Name, d.flip(ctx, fleet, balancer, shares))
}

func (d *Driver) flip(ctx context.Context, fleet *config.Fleet, balancer config.LoadBalancer, shares []lb.Share) error {
	var backends []dnsroll.Server
	var need []string
	var ws []int
	seen := map[string]bool{}
	for _, s := range shares {
		addr, err := normalizeAddr(s.Server.DNSAddr())
		if err != nil {
			return dnsroll.Errorf(dnsroll.EINVALID, "share %s: %v", s.Server.Label, err)
		}
		if s.Weight < 0 {
			return dnsroll.Errorf(dnsroll.EINVALID, "share %s (%s): weight %d is negative", s.Server.Label, addr, s.Weight)
		}
		if seen[addr] {
			return dnsroll.Errorf(dnsroll.EINVALID, "share %s: %s appears twice", s.Server.Label, addr)
		}
		seen[addr] = true
		need = append(need, addr)
		if s.Weight > 0 {
			backends = append(backends, s.Server)
			ws = append(ws, s.Weight)
		}
	}
	if len(backends) == 0 {
		return dnsroll.Errorf(dnsroll.EINVALID, "no share has a weight above zero (%v): a flip must give the traffic to some backend", shares)
	}
	j, err := d.job(fleet, balancer, backends, reduce(ws))
	if err != nil {
		return err
	}
	ch, err := d.channel(ctx, fleet, balancer)
	if err != nil {
		return err
	}
	// Not serving (no nginx, a mixed reload) reads as another config.
	running, _ := askConfigID(ctx, ch, j.socket)
	reload := running != j.id
	_, err = ch.Run(ctx, flipCommand(j, need, reload))
	if exitCode(err) == flipNotRunning {
		return fmt.Errorf("%w (%w: its playbook starts nginx)", err, lb.ErrNotRunning)
	}
	if err != nil {
		return scriptError(err)
	}
	if !reload {
		return nil
	}
	return waitServing(ctx, ch, j)
}

// waitServing waits until the control socket answers j's ID: the old
// workers no longer serve, but the new ones may still be starting.
func waitServing(ctx context.Context, ch lb.Channel, j job) error {
	ctx, cancel := context.WithTimeout(ctx, flipTimeout)
	defer cancel()
	for {
		err := verifyThrough(ctx, ch, j.socket, j.id)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(2 * time.Millisecond):
		}
	}
}

// Stats fails: nginx keeps no per-backend counters.
func (d *Driver) Stats(_ context.Context, _ *config.Fleet, balancer config.LoadBalancer) ([]lb.BackendStats, error) {
	return nil, dnsroll.Errorf(dnsroll.EINVALID, "nginx: stats %s: nginx keeps no per-backend statistics, and canary analysis needs a driver that does: set driver: dnsdist for this load balancer", balancer.Name)
}

// channel opens the kept-open channel to balancer.
func (d *Driver) channel(ctx context.Context, fleet *config.Fleet, balancer config.LoadBalancer) (lb.Channel, error) {
	return lb.Open(ctx, d.Channels, "nginx", fleet, balancer)
}

// flipCommand is the one command line a flip runs on the load balancer:
// flip.sh, after the values it needs.
func flipCommand(j job, need []string, reload bool) string {
	r := "0"
	if reload {
		r = "1"
	}
	return command(j, flipTimeout, flipScript, [][2]string{
		{"staged", j.paths.stateDir + "/staged"}, {"reload", r},
		{"need", strings.Join(need, " ")}, {"config", j.conf},
	})
}

// libScript is nginx.sh, the functions flip.sh and inplace.sh share.
//
//go:embed nginx.sh
var libScript string

// command is one command line for /bin/sh on the load balancer: the job's
// paths (and its lock, in the state directory), timeout and vars as shell variables, nginx_t (nginx -t as the
// running nginx reads its config), nginx.sh, then script. With a lock,
// nginx.sh writes a newline to the output before script runs, to find
// out whether its caller is still there.
func command(j job, timeout time.Duration, script string, vars [][2]string) string {
	nginxT := make([]string, len(j.paths.nginx))
	for i, a := range j.paths.nginx {
		nginxT[i] = quote(a)
	}
	var b strings.Builder
	lock := ""
	if j.paths.stateDir != "" {
		lock = j.paths.stateDir + "/command.lock"
	}
	vars = append([][2]string{{"conf", j.paths.conf}, {"pid", j.paths.pid}, {"lock", lock}, {"timeout", strconv.Itoa(int(timeout / time.Second))}}, vars...)
	for _, kv := range vars {
		fmt.Fprintf(&b, "%s=%s\n", kv[0], quote(kv[1]))
	}
	fmt.Fprintf(&b, "nginx_t() { %s -t -q -c \"$1\"; }\n", strings.Join(nginxT, " "))
	b.WriteString(libScript)
	b.WriteString(script)
	return b.String()
}

// scriptError gives err, from a command of nginx.sh and the script after
// it, the code its exit status means: invalid (no retry helps), or
// superseded, a conflict: a retry would reach the load balancer after the
// newer command that ran first, and undo it.
func scriptError(err error) error {
	switch exitCode(err) {
	case flipInvalid:
		return dnsroll.Errorf(dnsroll.EINVALID, "%v", err)
	case superseded:
		return dnsroll.Errorf(dnsroll.ECONFLICT, "%v", err)
	}
	return err
}

// exitCode is the exit status in err, from a command run here or over SSH;
// 0 when err is nil or carries none.
func exitCode(err error) int {
	var local interface{ ExitCode() int }
	var remote interface{ ExitStatus() int }
	switch {
	case err == nil:
		return 0
	case errors.As(err, &local):
		return local.ExitCode()
	case errors.As(err, &remote):
		return remote.ExitStatus()
	}
	return -1
}

// reduce divides weights by their greatest common divisor, so that 50/50
// renders as the same config (and ID) as 1/1, and one backend's 100 as
// Point's config for it.
func reduce(ws []int) []int {
	g := 0
	for _, w := range ws {
		g = gcd(g, w)
	}
	out := make([]int, len(ws))
	for i, w := range ws {
		out[i] = w / g
	}
	return out
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// stagedVar is the role's dnsroll_nginx_staged for backends, deduplicated.
func stagedVar(backends []dnsroll.Server) ([]map[string]any, error) {
	out := []map[string]any{} // the role loops over it: never null
	seen := map[string]bool{}
	for _, b := range backends {
		addr, err := normalizeAddr(b.DNSAddr())
		if err != nil {
			return nil, dnsroll.Errorf(dnsroll.EINVALID, "backend %s: %v", b.Label, err)
		}
		if seen[addr] {
			continue
		}
		seen[addr] = true
		host, port, _ := net.SplitHostPort(addr)
		n, _ := strconv.Atoi(port)
		out = append(out, map[string]any{"addr": addr, "host": host, "port": n})
	}
	return out, nil
}

// wrap prefixes a Stager error with what failed, keeping its code.
func wrap(op, name string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("nginx: %s %s: %w", op, name, err)
}

// quote quotes s for a POSIX shell.
func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
