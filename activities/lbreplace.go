package activities

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/config"
	"github.com/dnsroll/dnsroll/preflight"
	"github.com/dnsroll/dnsroll/registrar"
	"github.com/dnsroll/dnsroll/registrar/manual"
)

// Activities of LoadBalancerReplaceWorkflow: blue-green for the load
// balancers themselves, through the glue records at the parent zone.

// ParentInput names a delegation and the parent zone's servers to ask.
type ParentInput struct {
	Domain string `json:"domain"`
	// Parent are the parent zone's servers, host:port.
	Parent []string `json:"parent"`
	// Child, when set, is a server of the domain itself (a load balancer's
	// address) asked for the zone's own NS TTL, and the addresses the zone
	// gives its name servers.
	Child string `json:"child,omitempty"`
	// AddrsFrom, when set (and Child is not), are servers of the domain
	// asked in turn, at the first that answers, for the same: a check a
	// dead old load balancer must not fail, before anything is created or
	// while the old glue is put back.
	AddrsFrom []string `json:"addrs_from,omitempty"`
	// Registrar, when set, is also checked: this worker knows the name and,
	// for a registrar with an API, can read the domain there. The
	// replacement's first check sets it, so that a wrong name or missing
	// credentials stop it before anything is created.
	Registrar string `json:"registrar,omitempty"`
}

// ParentResult is what the parent serves now.
type ParentResult struct {
	Attempt int32                  `json:"attempt"`
	NS      []registrar.NameServer `json:"ns"`
	NSTTL   time.Duration          `json:"ns_ttl"`
	GlueTTL time.Duration          `json:"glue_ttl"`
	// ZoneNSTTL is the TTL of the zone's own NS records (0 without Child).
	ZoneNSTTL time.Duration `json:"zone_ns_ttl"`
	// ZoneAddrs are the addresses the zone itself gives the name servers of
	// NS inside the domain, as Child answers (none without Child), and
	// ZoneAddrTTL their longest TTL. Resolvers take them over the glue.
	ZoneAddrs   []registrar.NameServer `json:"zone_addrs,omitempty"`
	ZoneAddrTTL time.Duration          `json:"zone_addr_ttl,omitempty"`
	// ZoneUnasked says why no server of AddrsFrom answered for the zone.
	ZoneUnasked string `json:"zone_unasked,omitempty"`
}

// CheckParent reads the delegation that every parent server serves, with
// its TTLs, through the referral checker: the workflow believes this, not
// a registrar's answer or an operator's signal.
func (a *Activities) CheckParent(ctx context.Context, in ParentInput) (ParentResult, error) {
	defer keepAlive(ctx, "asking the parent for the delegation")()
	servers, err := ParseParent(in.Parent)
	if err != nil {
		return ParentResult{}, failure(ctx, err)
	}
	ref, err := registrar.Check(ctx, servers, in.Domain)
	if err != nil {
		return ParentResult{}, failure(ctx, err)
	}
	if err := a.checkRegistrar(ctx, in.Registrar, servers, in.Domain, ref.NS); err != nil {
		return ParentResult{}, failure(ctx, err)
	}
	res := ParentResult{Attempt: attempt(ctx), NS: ref.NS, NSTTL: ref.NSTTL, GlueTTL: ref.GlueTTL}
	if in.Child != "" {
		if err := askZone(ctx, &res, in.Child, in.Domain); err != nil {
			return ParentResult{}, failure(ctx, err)
		}
		return res, nil
	}
	var why []string
	for _, server := range in.AddrsFrom {
		err := askZone(ctx, &res, server, in.Domain)
		if err == nil {
			return res, nil
		}
		why = append(why, err.Error())
	}
	res.ZoneNSTTL, res.ZoneAddrs, res.ZoneAddrTTL, res.ZoneUnasked = 0, nil, 0, strings.Join(why, "; ")
	return res, nil
}

// askZone asks server, authoritative for domain, for the zone's NS TTL
// and its own addresses of res's name servers.
func askZone(ctx context.Context, res *ParentResult, server, domain string) (err error) {
	if res.ZoneNSTTL, err = zoneNSTTL(ctx, server, domain); err != nil {
		return err
	}
	res.ZoneAddrs, res.ZoneAddrTTL, err = zoneAddrs(ctx, server, domain, res.NS)
	return err
}

// ParseParent reads a replacement's parent zone servers: addresses with
// ports, which the delegation is asked at directly (names would need a
// resolver, which is what the check must not trust). Its errors start with
// the field, parent[1].
func ParseParent(parent []string) ([]netip.AddrPort, error) {
	if len(parent) == 0 {
		return nil, dnsroll.Errorf(dnsroll.EINVALID, "parent: no parent zone servers given; list them as address:port")
	}
	out := make([]netip.AddrPort, len(parent))
	for i, p := range parent {
		ap, err := netip.ParseAddrPort(p)
		if err != nil || ap.Port() == 0 {
			return nil, dnsroll.Errorf(dnsroll.EINVALID, "parent[%d]: %q %s", i, p, parentProblem(p))
		}
		out[i] = ap
	}
	return out, nil
}

// hostNameRE is what a host name looks like: letters, digits, dashes and
// dots, with a letter in its last label.
var hostNameRE = regexp.MustCompile(`^(?i)([a-z0-9-]+\.)*[a-z0-9-]*[a-z][a-z0-9-]*\.?$`)

// parentProblem says what is wrong with p, which is not an IP address and
// port: "is not address:port" alone leaves a:53 with a host name, or an
// address without its port, looking right to whoever wrote it.
func parentProblem(p string) string {
	const form = "is not address:port, such as 192.0.2.53:53"
	if p == "" {
		return "is empty: give address:port, such as 192.0.2.53:53"
	}
	if ip, err := netip.ParseAddr(p); err == nil {
		if ip.Is6() && !ip.Is4In6() {
			return fmt.Sprintf("has no port: an IPv6 address goes in brackets, with the port after them: [%s]:53", p)
		}
		return fmt.Sprintf("has no port: write the address with its port: %s:53", p)
	}
	host, port, err := net.SplitHostPort(p)
	if err != nil {
		if strings.Count(p, ":") > 1 && !strings.HasPrefix(p, "[") {
			return form + " (an IPv6 address goes in brackets, with the port after them: [2001:db8::53]:53)"
		}
		host, port = p, ""
	}
	_, err = netip.ParseAddr(host)
	switch n, perr := strconv.Atoi(port); {
	case err != nil && hostNameRE.MatchString(host):
		return "must be an IP address, not a host name, with its port (address:port, such as 192.0.2.53:53): the delegation is asked at the parent's servers directly, without trusting a resolver; `dig +short " + host + "` gives the address"
	case err == nil && (perr != nil || n < 1 || n > 65535):
		return fmt.Sprintf("%s: its port must be a number from 1 to 65535 (53 for DNS), got %q", form, port)
	}
	return form
}

// zoneNSTTL asks server, authoritative for domain, for its NS TTL.
func zoneNSTTL(ctx context.Context, server, domain string) (time.Duration, error) {
	r, err := askServer(ctx, server, registrar.Fqdn(domain), dns.TypeNS)
	if err != nil {
		return 0, fmt.Errorf("zone NS TTL: ask %s: %w", server, err)
	}
	if r.Rcode != dns.RcodeSuccess {
		return 0, fmt.Errorf("zone NS TTL: %s answers %s for %s", server, dns.RcodeToString[r.Rcode], registrar.Fqdn(domain))
	}
	var ttl time.Duration
	for _, rr := range r.Answer {
		if _, ok := rr.(*dns.NS); ok {
			ttl = max(ttl, time.Duration(rr.Header().Ttl)*time.Second)
		}
	}
	if ttl == 0 {
		return 0, fmt.Errorf("zone NS TTL: %s gives no NS records for %s", server, registrar.Fqdn(domain))
	}
	return ttl, nil
}

// askServer asks server for name's records of qtype, without recursion:
// what the zone's own server holds.
func askServer(ctx context.Context, server, name string, qtype uint16) (*dns.Msg, error) {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.RecursionDesired = false
	r, _, err := (&dns.Client{Timeout: 2 * time.Second}).ExchangeContext(ctx, m, server)
	return r, err
}

// zoneAddrs asks server, authoritative for domain, for the A and AAAA
// records of the name servers of ns inside domain: those with glue, whose
// addresses the zone holds too. A name it gives none of is left out.
func zoneAddrs(ctx context.Context, server, domain string, ns []registrar.NameServer) ([]registrar.NameServer, time.Duration, error) {
	var out []registrar.NameServer
	var ttl time.Duration
	for _, n := range ns {
		if !registrar.InDomain(n.Name, domain) {
			continue
		}
		got := registrar.NameServer{Name: registrar.Fqdn(n.Name)}
		for _, qtype := range []uint16{dns.TypeA, dns.TypeAAAA} {
			r, err := askServer(ctx, server, got.Name, qtype)
			if err != nil {
				return nil, 0, fmt.Errorf("zone's address of %s: ask %s: %w", got.Name, server, err)
			}
			if r.Rcode != dns.RcodeSuccess || !r.Authoritative {
				return nil, 0, fmt.Errorf("zone's address of %s: %s answers %s%s, not as the zone's server", got.Name, server, dns.RcodeToString[r.Rcode], map[bool]string{true: "", false: " without AA"}[r.Authoritative])
			}
			for _, rr := range r.Answer {
				if a, ok := registrar.AddrOf(rr); ok && strings.EqualFold(rr.Header().Name, got.Name) {
					got.Addrs = append(got.Addrs, a)
					ttl = max(ttl, time.Duration(rr.Header().Ttl)*time.Second)
				}
			}
		}
		if len(got.Addrs) > 0 {
			out = append(out, got)
		}
	}
	return out, ttl, nil
}

// SetGlueInput asks the registrar for a delegation.
type SetGlueInput struct {
	// Registrar names the registrar: "manual" (the default, a person
	// changes the glue) or one the worker built (Activities.Registrars).
	Registrar string                 `json:"registrar,omitempty"`
	Domain    string                 `json:"domain"`
	Parent    []string               `json:"parent"`
	NS        []registrar.NameServer `json:"ns"`
}

// SetGlueResult says whether the change was requested or must be made by
// the operator, following Instructions.
type SetGlueResult struct {
	Attempt      int32  `json:"attempt"`
	Instructions string `json:"instructions,omitempty"`
}

// SetGlue asks the registrar for the delegation. The manual registrar's
// *ActionRequired is a result, not an error: the workflow shows its
// instructions and waits for the operator.
func (a *Activities) SetGlue(ctx context.Context, in SetGlueInput) (SetGlueResult, error) {
	defer keepAlive(ctx, "asking the registrar for the delegation")()
	parent, err := ParseParent(in.Parent)
	if err != nil {
		return SetGlueResult{}, failure(ctx, err)
	}
	reg, err := a.registrarFor(ctx, in.Registrar, parent)
	if err != nil {
		return SetGlueResult{}, failure(ctx, err)
	}
	err = reg.SetGlue(ctx, in.Domain, in.NS)
	var action *registrar.ActionRequired
	if errors.As(err, &action) {
		return SetGlueResult{Attempt: attempt(ctx), Instructions: action.Instructions()}, nil
	}
	if err != nil {
		return SetGlueResult{}, failure(ctx, err)
	}
	return SetGlueResult{Attempt: attempt(ctx)}, nil
}

// ManualRegistrar is the name of the registrar every worker has: a
// person changes the glue (package registrar/manual).
const ManualRegistrar = "manual"

// RegistrarMaker builds a registrar with an API. The worker makes these
// from its own configuration, so credentials never travel in workflow
// input or history. (Only manual reads the parent's servers.)
type RegistrarMaker func(ctx context.Context) (registrar.Registrar, error)

// registrarFor makes the registrar called name; a name the worker has no
// registrar for is invalid input, naming those it has.
func (a *Activities) registrarFor(ctx context.Context, name string, parent []netip.AddrPort) (registrar.Registrar, error) {
	if name == "" || name == ManualRegistrar {
		return &manual.Registrar{Parent: parent}, nil
	}
	mk, ok := a.Registrars[name]
	if !ok {
		names := append([]string{ManualRegistrar}, slices.Sorted(maps.Keys(a.Registrars))...)
		return nil, dnsroll.Errorf(dnsroll.EINVALID, "registrar: %q is not a registrar this worker has; set registrar to one of %s (see docs/load-balancers.md)", name, strings.Join(names, ", "))
	}
	reg, err := mk(ctx)
	if err != nil {
		return nil, fmt.Errorf("registrar %s: %w", name, err)
	}
	return reg, nil
}

// checkRegistrar makes the named registrar and, unless it is manual, reads
// the domain's delegation through it: the worker's credentials work, the
// domain is in the account, and its delegation there is served, the
// parent's referral. Glue that differs means another domain than the
// parent servers answer for, a wrong parent server, or a change still
// pending at the registrar: the replacement would move glue it never read,
// or wait for glue the parent will not serve.
func (a *Activities) checkRegistrar(ctx context.Context, name string, parent []netip.AddrPort, domain string, served []registrar.NameServer) error {
	if name == "" || name == ManualRegistrar {
		return nil
	}
	reg, err := a.registrarFor(ctx, name, parent)
	if err != nil {
		return err
	}
	glue, err := reg.Glue(ctx, domain)
	if err != nil {
		return err
	}
	if !registrar.Equal(registrar.Delegation(domain, glue), registrar.Delegation(domain, served)) {
		// Retried until the step's deadline: a change still pending at
		// the registrar reaches the parent in minutes.
		return fmt.Errorf("the registrar %s delegates %s to %s, but the parent servers %v serve %s: check domain and parent (a change still pending at the registrar is waited for)",
			name, registrar.Fqdn(domain), registrar.Text(glue), parent, registrar.Text(served))
	}
	return nil
}

// LoadBalancerInput names one load balancer of a fleet.
type LoadBalancerInput struct {
	Fleet *config.Fleet       `json:"fleet"`
	LB    config.LoadBalancer `json:"lb"`
}

// NewLoadBalancer is a created and provisioned replacement.
type NewLoadBalancer struct {
	Attempt int32               `json:"attempt"`
	LB      config.LoadBalancer `json:"lb"`
	Server  dnsroll.Server      `json:"server"`
}

// CheckOffersInput is the fleet whose load balancers are to be replaced.
type CheckOffersInput struct {
	Fleet *config.Fleet `json:"fleet"`
}

// CheckNewLoadBalancerOffers refuses, before any is created, load
// balancer replacements the cloud cannot make: each is made in the
// region, plan and image of the first nameserver it fronts
// (CreateLoadBalancer), which may have changed in the fleet file since a
// rollout last created that nameserver. It also refuses a token that may
// not create them, or not delete the old load balancers, old load
// balancers a lock keeps from deletion, and old load balancers whose
// label the new ones could not take (checkOldLabels).
// Its note names the old load balancers the replacement will not delete.
func (a *Activities) CheckNewLoadBalancerOffers(ctx context.Context, in CheckOffersInput) (StepResult, error) {
	defer keepAlive(ctx, "checking what the new load balancers need")()
	offers, err := preflight.LoadBalancerOffers(in.Fleet)
	if err != nil {
		return StepResult{}, failure(ctx, err)
	}
	for _, o := range offers {
		if err := in.Fleet.NewServerUser(o.Slot, true); err != nil {
			return StepResult{}, failure(ctx, dnsroll.Errorf(dnsroll.EINVALID, "%s%v", o.Prefix, err))
		}
	}
	if err := a.checkOffers(ctx, in.Fleet, offers); err != nil {
		return StepResult{}, failure(ctx, err)
	}
	notes, err := a.checkOldLabels(ctx, in.Fleet)
	if err != nil {
		return StepResult{}, failure(ctx, err)
	}
	if err := a.checkReplaceGrants(ctx, in.Fleet); err != nil {
		return StepResult{}, failure(ctx, err)
	}
	return StepResult{Attempt: attempt(ctx), Note: strings.Join(notes, "; ")}, nil
}

// replaced are the fleet's servers a load balancer replacement deletes
// or renames: the old load balancers, and replacements an earlier run
// left (which CreateLoadBalancer reuses, and its undo deletes), with how
// many of those there are.
func (a *Activities) replaced(ctx context.Context, fleet *config.Fleet) (changing []dnsroll.Server, left int, err error) {
	servers, err := a.Cloud.List(ctx, fleet.Tag())
	if err != nil {
		return nil, 0, err
	}
	for _, s := range servers {
		if s.Status == dnsroll.StatusDeleting {
			continue
		}
		for _, lb := range fleet.LoadBalancers {
			switch s.Label {
			case lb.Name:
				changing = append(changing, s)
			case dnsroll.NextLabel(lb.Name):
				changing = append(changing, s)
				left++
			}
		}
	}
	return changing, left, nil
}

// checkOldLabels refuses load balancers whose label the replacement could
// not free for <lb>-next, which takes it at the end: Linode keeps labels
// unique in the account, letter case aside, and DeleteLoadBalancer
// deletes only a fleet-tagged server labelled exactly <lb>, at the
// address the fleet gives it. A label held by a Linode without the
// fleet's tag (built by hand, or another fleet's), by the fleet's own in
// other letter case or at another address, or an <lb>-next held outside
// the fleet, would stop the rename after the old load balancers were
// deleted, past the point of no return. (Rollouts refuse the same of
// nameserver labels: preflight.Labels.) A load balancer whose
// label no Linode holds is not one of this account's Linodes, or one
// under another label: the replacement cannot delete it but may replace
// it, and a note for each says so.
func (a *Activities) checkOldLabels(ctx context.Context, fleet *config.Fleet) ([]string, error) {
	if a.Cloud == nil {
		return nil, nil
	}
	var labels []string
	for _, lb := range fleet.LoadBalancers {
		labels = append(labels, lb.Name, dnsroll.NextLabel(lb.Name))
	}
	holders, err := a.Cloud.Holding(ctx, labels)
	if err != nil {
		return nil, err
	}
	tag := fleet.Tag()
	var errs, notes []string
	for i, lb := range fleet.LoadBalancers {
		held := false
		for _, s := range holders {
			old := strings.EqualFold(s.Label, lb.Name)
			if !old && !strings.EqualFold(s.Label, dnsroll.NextLabel(lb.Name)) || s.Status == dnsroll.StatusDeleting {
				continue
			}
			held = held || old
			switch {
			case !s.HasTag(tag) && old:
				errs = append(errs, fmt.Sprintf("load_balancers[%d]: %s is the label of Linode %d (%s), not this fleet's (tag %s): the replacement deletes only the fleet's servers, "+
					"so it would leave this one running and %s could not take its label (labels are unique in a Linode account) once the glue had moved; "+
					"if Linode %d is load balancer %s, tag it: linode-cli linodes update %d %s; if it is not, relabel it",
					i, s.Label, s.ID, preflight.TagsOf(s), tag, dnsroll.NextLabel(lb.Name), s.ID, lb.Name, s.ID, tagFlags(append(slices.Clone(s.Tags), tag))))
			case !s.HasTag(tag):
				errs = append(errs, fmt.Sprintf("load_balancers[%d]: %s is the label of Linode %d (%s), not this fleet's (tag %s), and the replacement of %s is created under it: relabel or delete that Linode",
					i, s.Label, s.ID, preflight.TagsOf(s), tag, lb.Name))
			case s.Label != lb.Name && s.Label != dnsroll.NextLabel(lb.Name):
				fix := fmt.Sprintf("relabel the Linode %s, or name the load balancer %s in the fleet file", lb.Name, s.Label)
				if !old {
					fix = fmt.Sprintf("it is a replacement left behind: relabel it %s, or delete it", dnsroll.NextLabel(lb.Name))
				}
				errs = append(errs, fmt.Sprintf("load_balancers[%d]: Linode %d of this fleet is labelled %s, and load balancer %s differs from it only in letter case, which Linode's labels ignore: %s",
					i, s.ID, s.Label, lb.Name, fix))
			case old:
				if err := atAddress(s, lb.Address); err != nil {
					errs = append(errs, fmt.Sprintf("load_balancers[%d]: %v", i, err))
				}
			}
		}
		if !held {
			notes = append(notes, fmt.Sprintf("%s: no Linode this token can see is labelled %s, so the replacement will not delete the old load balancer at %s: once it is drained, take it down yourself "+
				"(if it is a Linode under another label, relabel it %s and tag it %s before the replacement, and it is deleted)", lb.Name, lb.Name, lb.Address, lb.Name, tag))
		}
	}
	if len(errs) > 0 {
		return nil, dnsroll.Errorf(dnsroll.EINVALID, "%s", strings.Join(errs, "; "))
	}
	return notes, nil
}

// tagFlags are linode-cli's flags that set tags, which replace the
// Linode's own.
func tagFlags(tags []string) string {
	var b []string
	for _, t := range tags {
		b = append(b, "--tags "+t)
	}
	return strings.Join(b, " ")
}

// checkReplaceGrants refuses a token that may not create the new load
// balancers, or not delete the old ones (DeleteLoadBalancer) and rename
// or delete a replacement an earlier run left (which CreateLoadBalancer
// reuses), as preflight.Grants says; then any of those a lock keeps from
// deletion (preflight.Locks). A cloud that is not a preflight.Grantor,
// or a preflight.Locker, is not asked that.
func (a *Activities) checkReplaceGrants(ctx context.Context, fleet *config.Fleet) error {
	grantor, isGrantor := a.Cloud.(preflight.Grantor)
	locker, isLocker := a.Cloud.(preflight.Locker)
	if !isGrantor && !isLocker {
		return nil
	}
	changing, left, err := a.replaced(ctx, fleet)
	if err != nil {
		return err
	}
	if isGrantor {
		if err := preflight.Grants(ctx, grantor, fleet, changing, left < len(fleet.LoadBalancers)); err != nil {
			return err
		}
	}
	if isLocker {
		return preflight.Locks(ctx, locker, fleet, changing)
	}
	return nil
}

// CreateLoadBalancer makes LB's replacement, <name>-next: a fleet-tagged
// server (idempotent, as EnsureServer) in the region and plan of the first
// slot it fronts, provisioned by LB's driver in front of the same
// nameservers.
func (a *Activities) CreateLoadBalancer(ctx context.Context, in LoadBalancerInput) (NewLoadBalancer, error) {
	i, err := in.Fleet.ReplacementSlot(in.LB)
	if err != nil {
		return NewLoadBalancer{}, failure(ctx, dnsroll.Errorf(dnsroll.EINVALID, "%v", err))
	}
	slot := in.Fleet.Nameservers[i]
	spec := dnsroll.ServerSpec{Label: dnsroll.NextLabel(in.LB.Name), Region: slot.Region, Type: slot.Type, Image: slot.Image, FirewallID: in.LB.FirewallID, Tags: []string{in.Fleet.Tag()}}
	res, err := a.EnsureServer(ctx, EnsureServerInput{StepFleet: StepFleet{Fleet: in.Fleet}, Spec: spec, KeepUnlike: true})
	if err != nil {
		return NewLoadBalancer{}, err
	}
	// A list Linode slows with 429s outlasts the heartbeat timeout.
	stop := keepAlive(ctx, "looking up the nameservers "+in.LB.Name+" fronts")
	backends, err := a.frontedServers(ctx, in)
	stop()
	if err != nil {
		return NewLoadBalancer{}, failure(ctx, err)
	}
	next := in.LB
	next.Name = spec.Label
	next.Address, next.SSHHost, err = replacementAddress(in.LB, res.Server)
	if err != nil {
		return NewLoadBalancer{}, failure(ctx, err)
	}
	d, err := a.driver(next)
	if err != nil {
		return NewLoadBalancer{}, failure(ctx, err)
	}
	var progress atomic.Value
	progress.Store("provisioning " + next.Name)
	stop = heartbeatEvery(ctx, 2*time.Second, progress.Load)
	if in.Fleet.Ansible.Connection == "ssh" {
		err = a.meetNewServer(ctx, in.Fleet.Name, res.Server, func(msg string) { progress.Store(msg) })
		progress.Store("provisioning " + next.Name)
	}
	if err == nil {
		err = d.Point(ctx, in.Fleet, next, backends)
	}
	stop()
	if err != nil {
		return NewLoadBalancer{}, failure(ctx, atLoadBalancer(next.Name, "provision", err))
	}
	return NewLoadBalancer{Attempt: attempt(ctx), LB: next, Server: res.Server}, nil
}

// replacementAddress is where the replacement of old, on server s,
// listens and is reached over SSH. It keeps old's address family: glue
// that named an IPv6 address names the new server's, rather than an IPv4
// address in its place. Over SSH it is reached at s's IPv4 address, under
// which meetNewServer recorded its host key.
func replacementAddress(old config.LoadBalancer, s dnsroll.Server) (address, sshHost string, err error) {
	host, _, _ := net.SplitHostPort(old.Address)
	if ip, perr := netip.ParseAddr(host); perr != nil || ip.Unmap().Is4() {
		return net.JoinHostPort(s.IPv4, "53"), "", nil
	}
	if s.IPv6 == "" {
		return "", "", dnsroll.Errorf(dnsroll.EINVALID, "load balancer %s is at the IPv6 address %s, but the cloud gives its replacement %s no IPv6 address to listen on", old.Name, old.Address, s.Label)
	}
	return net.JoinHostPort(s.IPv6, "53"), s.IPv4, nil
}

// VerifyLoadBalancer checks through LB's own address that it answers from
// the nameservers it fronts.
func (a *Activities) VerifyLoadBalancer(ctx context.Context, in LoadBalancerInput) (StepResult, error) {
	defer keepAlive(ctx, "checking the load balancer's answers")()
	backends, err := a.frontedServers(ctx, in)
	if err == nil {
		err = confirmServing(ctx, in.Fleet, in.LB, backends)
	}
	if err != nil {
		return StepResult{}, failure(ctx, atLoadBalancer(in.LB.Name, "", err))
	}
	return StepResult{Attempt: attempt(ctx), Note: in.LB.Name + " answers from " + in.LB.Fronts.String()}, nil
}

// frontedServers are the running servers of the slots LB fronts, in its
// order, with the port each answers DNS on.
func (a *Activities) frontedServers(ctx context.Context, in LoadBalancerInput) ([]dnsroll.Server, error) {
	var out []dnsroll.Server
	for _, label := range in.LB.Fronts {
		s, found, err := a.findByLabel(ctx, in.Fleet.Tag(), label)
		if err == nil && !found {
			err = dnsroll.Errorf(dnsroll.ENOTFOUND, "load balancer %s fronts %s, which has no fleet-tagged server", in.LB.Name, label)
		}
		if err == nil {
			s, err = a.waitRunning(ctx, in.Fleet, s)
		}
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// QueriesResult is one load balancer's total query counter.
type QueriesResult struct {
	Attempt int32 `json:"attempt"`
	// Counted is false for drivers that keep no counter.
	Counted bool   `json:"counted"`
	Queries uint64 `json:"queries"`
}

// LoadBalancerQueries reads LB's query counter (CountQueries): the
// counter a drain watches fall quiet.
func (a *Activities) LoadBalancerQueries(ctx context.Context, in LoadBalancerInput) (QueriesResult, error) {
	defer keepAlive(ctx, "reading the load balancer's query counter")()
	d, err := a.driver(in.LB)
	if err != nil {
		return QueriesResult{}, failure(ctx, err)
	}
	n, counted, err := CountQueries(ctx, d, in.Fleet, in.LB)
	if err != nil {
		return QueriesResult{}, failure(ctx, atLoadBalancer(in.LB.Name, "query counter", err))
	}
	return QueriesResult{Attempt: attempt(ctx), Counted: counted, Queries: n}, nil
}

// LoadBalancersInput names several of a fleet's load balancers.
type LoadBalancersInput struct {
	Fleet *config.Fleet         `json:"fleet"`
	LBs   []config.LoadBalancer `json:"lbs"`
}

// LoadBalancersQueriesResult is the query counter of each load balancer
// asked for, in the order asked.
type LoadBalancersQueriesResult struct {
	Attempt int32       `json:"attempt"`
	LBs     []LBQueries `json:"lbs"`
}

// LBQueries is one load balancer's query counter (QueriesResult), or
// Error, why it could not be read.
type LBQueries struct {
	Name    string `json:"name"`
	Counted bool   `json:"counted"`
	Queries uint64 `json:"queries"`
	Error   string `json:"error,omitempty"`
}

// maxCounterReads bounds the counters LoadBalancersQueries reads at once.
const maxCounterReads = 16

// LoadBalancersQueries reads the query counter of each of LBs
// (CountQueries), several at once: one step a drain round, however many
// load balancers, so that a drain's workflow history does not grow with
// them round after round. A counter that cannot be read is reported with
// its error, which the drain takes as a load balancer not known quiet; it
// is not retried, since the next round reads it again. The step itself
// fails only when cancelled.
func (a *Activities) LoadBalancersQueries(ctx context.Context, in LoadBalancersInput) (LoadBalancersQueriesResult, error) {
	defer keepAlive(ctx, "reading the load balancers' query counters")()
	out := make([]LBQueries, len(in.LBs))
	slots := make(chan struct{}, maxCounterReads)
	var wg sync.WaitGroup
	for i, balancer := range in.LBs {
		wg.Go(func() {
			slots <- struct{}{}
			defer func() { <-slots }()
			out[i] = a.lbQueries(ctx, in.Fleet, balancer)
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return LoadBalancersQueriesResult{}, err
	}
	return LoadBalancersQueriesResult{Attempt: attempt(ctx), LBs: out}, nil
}

// lbQueries is balancer's query counter, or the error reading it.
func (a *Activities) lbQueries(ctx context.Context, fleet *config.Fleet, balancer config.LoadBalancer) LBQueries {
	d, err := a.driver(balancer)
	if err != nil {
		return LBQueries{Name: balancer.Name, Error: atLoadBalancer(balancer.Name, "", err).Error()}
	}
	n, counted, err := CountQueries(ctx, d, fleet, balancer)
	if err != nil {
		return LBQueries{Name: balancer.Name, Error: atLoadBalancer(balancer.Name, "query counter", err).Error()}
	}
	return LBQueries{Name: balancer.Name, Counted: counted, Queries: n}
}

// CountQueries is balancer's own count of the queries it received, through
// its driver d: a QueryCounter's (nginx), or else the sum of what a
// Stager's Stats say it sent each backend (dnsdist). counted is false for
// a driver with neither.
func CountQueries(ctx context.Context, d LoadBalancer, fleet *config.Fleet, balancer config.LoadBalancer) (n uint64, counted bool, err error) {
	switch d := d.(type) {
	case QueryCounter:
		n, err = d.Queries(ctx, fleet, balancer)
		return n, true, err
	case Stager:
		stats, err := d.Stats(ctx, fleet, balancer)
		for _, s := range stats {
			n += s.Queries
		}
		return n, true, err
	}
	return 0, false, nil
}

// DeleteLoadBalancerInput deletes the fleet-tagged server labelled Label;
// one that is already gone is success.
type DeleteLoadBalancerInput struct {
	Fleet *config.Fleet `json:"fleet"`
	Label string        `json:"label"`
	// Address is the load balancer's address in the fleet, when set: a
	// server at another public IPv4 address is not that load balancer.
	Address string `json:"address,omitempty"`
	// ID, when set, is the server's, which the workflow learnt from its
	// create: it is deleted by ID, as a list may not show it yet.
	ID int `json:"id,omitempty"`
}

// DeleteLoadBalancer deletes a load balancer's server, if it is the
// fleet's; an untagged one is refused, never touched, and so is one at
// another address than the fleet gives the load balancer, or, given by
// ID, one with another label.
func (a *Activities) DeleteLoadBalancer(ctx context.Context, in DeleteLoadBalancerInput) (StepResult, error) {
	// Its lookup, a list Linode may slow with 429s, heartbeats too.
	defer keepAlive(ctx, "deleting "+in.Label)()
	if in.ID != 0 {
		return a.deleteLoadBalancerByID(ctx, in)
	}
	s, found, err := a.findByLabel(ctx, in.Fleet.Tag(), in.Label)
	if err != nil {
		return StepResult{}, failure(ctx, err)
	}
	if !found {
		return StepResult{Attempt: attempt(ctx), Note: in.Label + ": no fleet-tagged server; nothing to delete"}, nil
	}
	if err := atAddress(s, in.Address); err != nil {
		return StepResult{}, failure(ctx, err)
	}
	return a.deleteServer(ctx, DeleteServerInput{Tag: in.Fleet.Tag(), Server: s})
}

// deleteLoadBalancerByID is DeleteLoadBalancer of a server whose ID the
// workflow knows, without a list, which may not show it yet.
func (a *Activities) deleteLoadBalancerByID(ctx context.Context, in DeleteLoadBalancerInput) (StepResult, error) {
	s, err := a.Cloud.Get(ctx, in.ID)
	if errors.Is(err, dnsroll.ErrNotFound) {
		return StepResult{Attempt: attempt(ctx), Note: fmt.Sprintf("%s (Linode %d): already deleted", in.Label, in.ID)}, nil
	}
	if err != nil {
		return StepResult{}, failure(ctx, err)
	}
	if s.Label != in.Label {
		return StepResult{}, failure(ctx, refuse("refusing to delete Linode %d as %s: it is labelled %s", s.ID, in.Label, s.Label))
	}
	if err := atAddress(s, in.Address); err != nil {
		return StepResult{}, failure(ctx, err)
	}
	return a.deleteServer(ctx, DeleteServerInput{Tag: in.Fleet.Tag(), Server: s})
}

// atAddress refuses s when it is at another public IPv4 address than
// address, a load balancer's host:port in the fleet, or at another SLAAC
// address of the same /64 (Linode gives a region's Linodes theirs from
// one). A fleet file not updated after an earlier replacement would
// otherwise have its label name the live replacement, which the glue
// points at. Addresses Linode does not report with the instance (private,
// loopback in the labs, IPv6 of a routed range) are not compared.
func atAddress(s dnsroll.Server, address string) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return nil
	}
	want, err := netip.ParseAddr(host)
	if err != nil {
		return nil
	}
	want = want.Unmap()
	var have netip.Addr // the zero Addr where s has none
	switch {
	case want.Is4():
		have, _ = netip.ParseAddr(s.IPv4)
		if !publicIPv4(want) || !publicIPv4(have) {
			return nil
		}
	default:
		have, _ = netip.ParseAddr(s.IPv6)
		if !have.IsValid() || !netip.PrefixFrom(have, 64).Masked().Contains(want) {
			return nil
		}
	}
	if want == have {
		return nil
	}
	return dnsroll.Errorf(dnsroll.ECONFLICT, "%s (Linode %d) is at %s, not %s, the address the fleet gives it: the fleet file is out of date "+
		"(an earlier replacement moved it?), so this server may be the live load balancer the glue names; it is not deleted: "+
		"correct load_balancers[].address, and delete the old server by hand if it is still there", s.Label, s.ID, have, want)
}

func publicIPv4(a netip.Addr) bool {
	return a.Is4() && a.IsGlobalUnicast() && !a.IsPrivate()
}
