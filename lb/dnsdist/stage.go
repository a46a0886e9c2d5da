package dnsdist

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/config"
	"github.com/dnsroll/dnsroll/lb"
)

// Stage makes balancer know every server in live and staged, health-checked
// and up, with live serving as it does now and staged getting no traffic
// (pool "staged"). It runs the playbook in stage mode, which never touches
// a live backend, and renders a config that records both, so a restart
// comes back the same way. Idempotent. Errors have code dnsroll.EINVALID
// when the input or the rendered config is invalid; anything else may
// succeed on retry.
func (d *Driver) Stage(ctx context.Context, fleet *config.Fleet, balancer config.LoadBalancer, live, staged []dnsroll.Server) error {
	if err := d.play(ctx, fleet, balancer, "stage", live, staged); err != nil {
		return fmt.Errorf("dnsdist: stage %s: %w", balancer.Name, err)
	}
	return nil
}

// Flip sets which staged backends get balancer's traffic, and how much,
// through the console in one exchange: every share with a weight gets it
// and joins the default pool, then every other backend leaves that pool.
// Adding before removing means no query ever finds the pool empty, and a
// backend that leaves keeps answering the queries it has (only rmServer
// would drop them; Point does that once they drained). It then reads the
// pool back and fails unless dnsdist serves exactly that split, all up.
// Idempotent. A share naming a backend dnsdist does not know is EINVALID:
// stage it first. A weighted backend that is down fails the flip before
// anything changes; that may pass on retry.
func (d *Driver) Flip(ctx context.Context, fleet *config.Fleet, balancer config.LoadBalancer, shares []lb.Share) error {
	if err := d.flip(ctx, fleet, balancer, shares); err != nil {
		return fmt.Errorf("dnsdist: flip %s: %w", balancer.Name, err)
	}
	return nil
}

func (d *Driver) flip(ctx context.Context, fleet *config.Fleet, balancer config.LoadBalancer, shares []lb.Share) error {
	want, err := split(shares)
	if err != nil {
		return err
	}
	st, err := d.console(fleet, balancer)
	if err != nil {
		return err
	}
	out, err := d.exec(ctx, fleet, balancer, flipLua(want, st.splitFile))
	if err != nil {
		if d.stopped(ctx, fleet, balancer) {
			return fmt.Errorf("%w (%w: its playbook starts dnsdist)", err, lb.ErrNotRunning)
		}
		return err
	}
	return checkFlip(out[0], want, st.splitFile)
}

// stopped reports whether balancer's dnsdist is known not to run, after
// its console failed: then no flip can reach it, and the flip activity
// starts it with its playbook. Anything unsure (the load balancer not
// reached) is false, so the flip is retried as it is.
func (d *Driver) stopped(ctx context.Context, fleet *config.Fleet, balancer config.LoadBalancer) bool {
	dir, err := d.Dir(fleet, balancer.Name)
	if err != nil {
		return false
	}
	if dir != "" {
		_, err := PID(dir)
		return err != nil
	}
	ch, err := lb.Open(ctx, d.Channels, "dnsdist", fleet, balancer)
	if err != nil {
		return false
	}
	// is-active prints the unit's state and fails unless it is active.
	out, _ := ch.Run(ctx, "systemctl is-active dnsdist")
	switch strings.TrimSpace(string(out)) {
	case "inactive", "failed":
		return true
	}
	return false
}

// split checks shares and returns each backend's weight by address.
func split(shares []lb.Share) (map[string]int, error) {
	want := map[string]int{}
	total := 0
	for _, s := range shares {
		addr, err := IPPort(s.Server.DNSAddr())
		if err != nil {
			return nil, dnsroll.Errorf(dnsroll.EINVALID, "share %q: %v", s.Server.Label, err)
		}
		if _, dup := want[addr]; dup {
			return nil, dnsroll.Errorf(dnsroll.EINVALID, "shares name backend %s twice", addr)
		}
		if s.Weight < 0 || s.Weight > 1_000_000 {
			return nil, dnsroll.Errorf(dnsroll.EINVALID, "share %s: weight %d, want 0 to 1000000", addr, s.Weight)
		}
		want[addr] = s.Weight
		total += s.Weight
	}
	if total == 0 {
		return nil, dnsroll.Errorf(dnsroll.EINVALID, "shares: no backend has a weight above 0; that would send every query SERVFAIL")
	}
	return want, nil
}

// flipLua is the flip: names are addresses checked by IPPort, and
// splitFile a path checked by pathRE, so they are safe inside Lua strings.
// dnsdist runs a console chunk under its Lua lock, so nothing else
// reconfigures it halfway. After the pools it records the split in
// splitFile (the config applies it at a restart); the traffic has moved
// by then, so a failure to record only marks the reply.
func flipLua(want map[string]int, splitFile string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "local splitFile = '%s'\n", splitFile)
	b.WriteString("local want = {")
	for _, addr := range sortedKeys(want) {
		fmt.Fprintf(&b, "['%s'] = %d, ", addr, want[addr])
	}
	b.WriteString("}\n" + membersLua + `
local byName = {}
for _, s in ipairs(getServers()) do byName[s.name] = s end
local missing, down = {}, {}
for n, w in pairs(want) do
  local s = byName[n]
  if s == nil then missing[#missing + 1] = n
  elseif w > 0 and not s:isUp() then down[#down + 1] = n end
end
if #missing > 0 then return 'dnsroll-unstaged ' .. table.concat(missing, ' ') end
if #down > 0 then return 'dnsroll-down ' .. table.concat(down, ' ') end
local live, staged = members(''), members('staged')
for n, w in pairs(want) do
  if w > 0 then
    local s = byName[n]
    s.weight = w
    if not live[n] then s:addPool('') end
    for _ = 2, (live[n] or 1) do s:rmPool('') end
  end
end
for n, s in pairs(byName) do
  if live[n] and (want[n] or 0) == 0 then
    if not staged[n] then s:addPool('staged') end
    for _ = 1, live[n] do s:rmPool('') end
  end
end
for n, w in pairs(want) do
  if w > 0 then for _ = 1, (staged[n] or 0) do byName[n]:rmPool('staged') end end
end
local recorded = 'unrecorded'
local f = io.open(splitFile .. '.tmp', 'w')
if f then
  -- A write that fails (a full disk) shows at the latest when the file
  -- closes; only a whole record replaces the last one.
  local whole = true
  for n, w in pairs(want) do if w > 0 and not f:write(n, ' ', w, '\n') then whole = false end end
  if not f:close() then whole = false end
  if whole and os.rename(splitFile .. '.tmp', splitFile) then recorded = 'recorded' else os.remove(splitFile .. '.tmp') end
end
` + readPoolLua)
	return b.String()
}

// membersLua defines members(pool): how many times each backend name is
// in pool. addPool does not check for duplicates, and getPoolServers fails
// on a pool that does not exist.
const membersLua = `local function members(p)
  local ok, l = pcall(getPoolServers, p)
  local m = {}
  if ok then for _, s in ipairs(l) do m[s.name] = (m[s.name] or 0) + 1 end end
  return m
end`

// readPoolLua returns the default pool as dnsdist now has it, after
// whether the split was recorded:
// "dnsroll-ok recorded|unrecorded name=weight=up|down ...".
const readPoolLua = `local o = {'dnsroll-ok', recorded}
local ok, l = pcall(getPoolServers, '')
for _, s in ipairs(ok and l or {}) do o[#o + 1] = s.name .. '=' .. s.weight .. '=' .. (s:isUp() and 'up' or 'down') end
return table.concat(o, ' ')`

// checkFlip reads flipLua's reply and fails unless the default pool is
// exactly the weighted shares, each once, with its weight, up, and the
// split was recorded in splitFile.
func checkFlip(out string, want map[string]int, splitFile string) error {
	fields := strings.Fields(out)
	if len(fields) == 0 {
		return fmt.Errorf("console: empty reply")
	}
	switch fields[0] {
	case "dnsroll-unstaged":
		return dnsroll.Errorf(dnsroll.EINVALID, "backends %s are not staged on this load balancer; stage them first (Stage), then flip", strings.Join(fields[1:], ", "))
	case "dnsroll-down":
		return fmt.Errorf("backends %s are staged but down (health check failing); nothing was changed", strings.Join(fields[1:], ", "))
	case "dnsroll-ok":
	default:
		return fmt.Errorf("console: %s", strings.TrimSpace(out))
	}
	if len(fields) < 2 {
		return fmt.Errorf("console: unexpected reply %q", strings.TrimSpace(out))
	}
	recorded := fields[1] == "recorded"
	got := map[string]string{}
	for _, f := range fields[2:] {
		name, rest, _ := strings.Cut(f, "=")
		if _, dup := got[name]; dup {
			return fmt.Errorf("after the flip backend %s is in the default pool twice: %s", name, out)
		}
		got[name] = rest
	}
	var wrong []string
	for addr, w := range want {
		if w == 0 {
			continue
		}
		if got[addr] != fmt.Sprintf("%d=up", w) {
			wrong = append(wrong, fmt.Sprintf("%s: want weight %d and up, dnsdist has %q", addr, w, got[addr]))
		}
		delete(got, addr)
	}
	for addr, rest := range got {
		wrong = append(wrong, fmt.Sprintf("%s: still in the default pool (%s)", addr, rest))
	}
	if len(wrong) > 0 {
		sort.Strings(wrong)
		return fmt.Errorf("dnsdist does not serve the split after the flip: %s", strings.Join(wrong, "; "))
	}
	if !recorded {
		// Retrying the flip retries the record; the traffic is already right.
		return fmt.Errorf("dnsdist serves the split, but could not record it in %s for a restart; check that dnsdist can write that directory", splitFile)
	}
	return nil
}

// Stats reads dnsdist's own counters for each backend it knows, sorted by
// address. dnsdist 1.7 counts no responses per backend, so Responses is
// Queries less Drops (queries it timed out) and Outstanding. Weight is zero
// for a backend outside the default pool.
func (d *Driver) Stats(ctx context.Context, fleet *config.Fleet, balancer config.LoadBalancer) ([]lb.BackendStats, error) {
	out, err := d.exec(ctx, fleet, balancer, statsLua, "showServers()")
	if err != nil {
		return nil, fmt.Errorf("dnsdist: stats %s: %w", balancer.Name, err)
	}
	stats, err := parseStats(out[0], out[1])
	if err != nil {
		return nil, fmt.Errorf("dnsdist: stats %s: %w", balancer.Name, err)
	}
	return stats, nil
}

// statsLua returns "dnsroll-ok name up|down weight outstanding drops ..."
// with weight 0 for a backend outside the default pool.
const statsLua = membersLua + `
local live = members('')
local o = {'dnsroll-ok'}
for _, s in ipairs(getServers()) do
  o[#o + 1] = s.name .. ' ' .. (s:isUp() and 'up' or 'down') .. ' ' .. (live[s.name] and s.weight or 0) .. ' ' .. s:getOutstanding() .. ' ' .. s:getDrops()
end
return table.concat(o, ' ')`

// parseStats joins statsLua's reply with showServers()'s table, the only
// place dnsdist 1.7 shows a backend's query count. That table truncates
// names, so it is matched by its Address column (backends are named by
// their address).
func parseStats(lua, table string) ([]lb.BackendStats, error) {
	f := strings.Fields(lua)
	if len(f) == 0 || f[0] != "dnsroll-ok" || (len(f)-1)%5 != 0 {
		return nil, fmt.Errorf("console: unexpected reply %q", strings.TrimSpace(lua))
	}
	queries := map[string]uint64{}
	for _, line := range strings.Split(table, "\n") {
		c := strings.Fields(line)
		if len(c) < 9 || c[0] == "#" {
			continue
		}
		if _, err := strconv.Atoi(c[0]); err != nil {
			continue // the header and the "All" line
		}
		if n, err := strconv.ParseUint(c[8], 10, 64); err == nil {
			queries[c[2]] = n
		}
	}
	var stats []lb.BackendStats
	for i := 1; i+4 < len(f); i += 5 {
		weight, err1 := strconv.Atoi(f[i+2])
		outstanding, err2 := strconv.Atoi(f[i+3])
		drops, err3 := strconv.ParseUint(f[i+4], 10, 64)
		if err := errors.Join(err1, err2, err3); err != nil {
			return nil, fmt.Errorf("console: backend %s: %v", f[i], err)
		}
		s := lb.BackendStats{Addr: f[i], Up: f[i+1] == "up", Weight: weight, Outstanding: outstanding, Drops: drops, Queries: queries[f[i]]}
		if answered := int64(s.Queries) - int64(drops) - int64(outstanding); answered > 0 {
			s.Responses = uint64(answered)
		}
		stats = append(stats, s)
	}
	sort.Slice(stats, func(i, j int) bool { return stats[i].Addr < stats[j].Addr })
	return stats, nil
}

func sortedKeys(m map[string]int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
