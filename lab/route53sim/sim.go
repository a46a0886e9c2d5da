// Package route53sim simulates the part of the Amazon Route 53 Domains API
// that the route53domains registrar driver uses (GetDomainDetail,
// UpdateDomainNameservers, GetOperationDetail), speaking the AWS JSON 1.1
// protocol so that the unmodified aws-sdk-go-v2 client talks to it. It
// validates requests as the real API documents (a domain of this account,
// glue only and always for name servers inside the domain, at most one
// IPv4 and one IPv6 address each), answers with an operation ID, and
// completes the operation by calling Options.OnUpdate, which in the lab
// rewrites the parent zone (lab/delegation) so that DNS really changes.
package route53sim

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/dnsroll/dnsroll/registrar"
)

// targetPrefix is the X-Amz-Target of every Route 53 Domains operation.
const targetPrefix = "Route53Domains_v20140515."

// Options configure a simulator.
type Options struct {
	// OnUpdate applies a domain's new name servers once an update
	// operation runs; its error fails the operation (status ERROR).
	// Nil applies nothing outside the simulator.
	OnUpdate func(ctx context.Context, domain string, ns []registrar.NameServer) error
	// Delay is how long an operation is pending before it runs: SUBMITTED
	// for the first half, IN_PROGRESS for the second, as the real API
	// reports a new operation SUBMITTED first.
	Delay time.Duration
}

// Operation is one UpdateDomainNameservers request and its fate.
type Operation struct {
	ID, Domain string
	NS         []registrar.NameServer
	Status     string // SUBMITTED, IN_PROGRESS, SUCCESSFUL or ERROR
	Message    string
	Submitted  time.Time
	Updated    time.Time
}

// Sim is the simulator, an http.Handler.
type Sim struct {
	opts    Options
	mu      sync.Mutex
	domains map[string][]registrar.NameServer // by domain without trailing dot
	ops     map[string]*Operation
	order   []string
}

// New returns a simulator whose account has no domains yet.
func New(opts Options) *Sim {
	return &Sim{opts: opts, domains: map[string][]registrar.NameServer{}, ops: map[string]*Operation{}}
}

// AddDomain registers domain in the simulated account with ns.
func (s *Sim) AddDomain(domain string, ns []registrar.NameServer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.domains[key(domain)] = registrar.Canonical(ns)
}

// Domain returns a registered domain's name servers as the simulator
// holds them.
func (s *Sim) Domain(domain string) ([]registrar.NameServer, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ns, ok := s.domains[key(domain)]
	return ns, ok
}

// Operations returns every operation so far, oldest first.
func (s *Sim) Operations() []Operation {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Operation, len(s.order))
	for i, id := range s.order {
		out[i] = *s.ops[id]
	}
	return out
}

func key(domain string) string { return strings.TrimSuffix(strings.ToLower(domain), ".") }

// apiError is an AWS JSON 1.1 error: the SDK maps __type to its error
// types (types.InvalidInput).
type apiError struct {
	status int
	Type   string `json:"__type"`
	Msg    string `json:"message"`
}

func invalid(format string, a ...any) *apiError {
	return &apiError{status: http.StatusBadRequest, Type: "InvalidInput", Msg: fmt.Sprintf(format, a...)}
}

func (s *Sim) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	out, aerr := s.handle(r)
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-Requestid", newID())
	if aerr != nil {
		w.Header().Set("X-Amzn-Errortype", aerr.Type)
		w.WriteHeader(aerr.status)
		_ = json.NewEncoder(w).Encode(aerr)
		return
	}
	_ = json.NewEncoder(w).Encode(out)
}

func (s *Sim) handle(r *http.Request) (any, *apiError) {
	if r.Method != http.MethodPost || r.URL.Path != "/" {
		return nil, &apiError{status: http.StatusNotFound, Type: "UnknownOperationException", Msg: "POST / only"}
	}
	// The real API refuses unsigned requests; the simulator checks that
	// the client signs (SigV4), not the signature.
	if !strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 Credential=") {
		return nil, &apiError{status: http.StatusForbidden, Type: "MissingAuthenticationTokenException", Msg: "Missing Authentication Token"}
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/x-amz-json-1.1" {
		return nil, &apiError{status: http.StatusBadRequest, Type: "SerializationException", Msg: "Content-Type must be application/x-amz-json-1.1, not " + ct}
	}
	op, ok := strings.CutPrefix(r.Header.Get("X-Amz-Target"), targetPrefix)
	if !ok {
		return nil, &apiError{status: http.StatusBadRequest, Type: "UnknownOperationException", Msg: "X-Amz-Target must start with " + targetPrefix}
	}
	decode := func(in any) *apiError {
		if err := json.NewDecoder(r.Body).Decode(in); err != nil {
			return &apiError{status: http.StatusBadRequest, Type: "SerializationException", Msg: err.Error()}
		}
		return nil
	}
	switch op {
	case "GetDomainDetail":
		var in struct{ DomainName string }
		if err := decode(&in); err != nil {
			return nil, err
		}
		return s.getDomainDetail(in.DomainName)
	case "UpdateDomainNameservers":
		var in struct {
			DomainName  string
			Nameservers []struct {
				Name    string
				GlueIps []string
			}
		}
		if err := decode(&in); err != nil {
			return nil, err
		}
		var ns []registrar.NameServer
		for _, n := range in.Nameservers {
			v := registrar.NameServer{Name: n.Name}
			for _, ip := range n.GlueIps {
				a, err := netip.ParseAddr(ip)
				if err != nil {
					return nil, invalid("Glue IP %q of name server %s is not an IP address", ip, n.Name)
				}
				v.Addrs = append(v.Addrs, a)
			}
			ns = append(ns, v)
		}
		return s.updateDomainNameservers(in.DomainName, ns)
	case "GetOperationDetail":
		var in struct{ OperationId string }
		if err := decode(&in); err != nil {
			return nil, err
		}
		return s.getOperationDetail(in.OperationId)
	case "ListOperations":
		var in struct{ Status, Type []string }
		if err := decode(&in); err != nil {
			return nil, err
		}
		return s.listOperations(in.Status, in.Type), nil
	default:
		return nil, &apiError{status: http.StatusBadRequest, Type: "UnknownOperationException", Msg: "the simulator does not implement " + op}
	}
}

type nameserverJSON struct {
	Name    string
	GlueIps []string `json:",omitempty"`
}

func (s *Sim) getDomainDetail(domain string) (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ns, ok := s.domains[key(domain)]
	if !ok {
		return nil, invalid("Domain %s not found in this account", domain)
	}
	out := struct {
		DomainName  string
		Nameservers []nameserverJSON
		StatusList  []string
	}{DomainName: key(domain), StatusList: []string{"clientTransferProhibited"}}
	for _, n := range ns {
		j := nameserverJSON{Name: strings.TrimSuffix(n.Name, ".")}
		for _, a := range n.Addrs {
			j.GlueIps = append(j.GlueIps, a.String())
		}
		out.Nameservers = append(out.Nameservers, j)
	}
	return out, nil
}

// validate checks a name server list as Route 53 Domains documents it.
func validate(domain string, ns []registrar.NameServer) *apiError {
	if len(ns) == 0 {
		return invalid("Nameservers must contain at least one name server")
	}
	seen := map[string]bool{}
	for _, n := range ns {
		if n.Name == "" {
			return invalid("Nameservers: Name is required")
		}
		if len(n.Name) > 255 {
			return invalid("Name server name %s is longer than 255 characters", n.Name)
		}
		if _, ok := dns.IsDomainName(n.Name); !ok || !strings.Contains(strings.Trim(n.Name, "."), ".") {
			return invalid("Name server name %s is not a valid host name", n.Name)
		}
		name := registrar.Fqdn(n.Name)
		if seen[name] {
			return invalid("Name server %s is listed more than once", n.Name)
		}
		seen[name] = true
		in := registrar.InDomain(name, domain)
		if in && len(n.Addrs) == 0 {
			return invalid("Name server %s is a subdomain of %s and requires glue IPs", n.Name, domain)
		}
		if !in && len(n.Addrs) > 0 {
			return invalid("Glue IPs are allowed only for name servers that are subdomains of %s, not for %s", domain, n.Name)
		}
		var v4, v6 int
		for _, a := range n.Addrs {
			if a.Is4() {
				v4++
			} else {
				v6++
			}
		}
		if v4 > 1 || v6 > 1 {
			return invalid("Glue IPs of %s can contain only one IPv4 and one IPv6 address", n.Name)
		}
	}
	return nil
}

func (s *Sim) updateDomainNameservers(domain string, ns []registrar.NameServer) (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.domains[key(domain)]; !ok {
		return nil, invalid("Domain %s not found in this account", domain)
	}
	if err := validate(domain, ns); err != nil {
		return nil, err
	}
	for _, id := range s.order {
		if o := s.ops[id]; o.Domain == key(domain) && o.Pending() {
			return nil, &apiError{status: http.StatusBadRequest, Type: "DuplicateRequest", Msg: "an operation on " + domain + " is in progress: " + id}
		}
	}
	now := time.Now()
	op := &Operation{ID: newID(), Domain: key(domain), NS: registrar.Canonical(ns), Status: "SUBMITTED", Submitted: now, Updated: now}
	s.ops[op.ID] = op
	s.order = append(s.order, op.ID)
	go s.run(op.ID)
	return struct{ OperationId string }{op.ID}, nil
}

// run completes an operation: OnUpdate, then the account's record.
func (s *Sim) run(id string) {
	time.Sleep(s.opts.Delay / 2)
	s.mu.Lock()
	s.ops[id].Status, s.ops[id].Updated = "IN_PROGRESS", time.Now()
	s.mu.Unlock()
	time.Sleep(s.opts.Delay - s.opts.Delay/2)
	s.mu.Lock()
	op := *s.ops[id]
	s.mu.Unlock()
	var err error
	if s.opts.OnUpdate != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err = s.opts.OnUpdate(ctx, op.Domain, op.NS)
		cancel()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.ops[id]
	o.Updated = time.Now()
	if err != nil {
		o.Status, o.Message = "ERROR", err.Error()
		return
	}
	o.Status = "SUCCESSFUL"
	s.domains[op.Domain] = op.NS
}

// Pending reports whether the operation has yet to succeed or fail.
func (op *Operation) Pending() bool { return op.Status == "SUBMITTED" || op.Status == "IN_PROGRESS" }

func (s *Sim) getOperationDetail(id string) (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	op, ok := s.ops[id]
	if !ok {
		return nil, invalid("Operation %s not found", id)
	}
	return op.json(), nil
}

// operationJSON is an operation as GetOperationDetail and ListOperations
// give it.
type operationJSON struct {
	OperationId     string
	Status          string
	Message         string `json:",omitempty"`
	DomainName      string
	Type            string
	SubmittedDate   float64
	LastUpdatedDate float64
}

func (op *Operation) json() operationJSON {
	return operationJSON{op.ID, op.Status, op.Message, op.Domain, "UPDATE_NAMESERVER", epoch(op.Submitted), epoch(op.Updated)}
}

// listOperations lists the account's operations, oldest first, with one
// of statuses and types when they are given (every operation here is an
// UPDATE_NAMESERVER); all fit in one page.
func (s *Sim) listOperations(statuses, types []string) any {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := struct{ Operations []operationJSON }{Operations: []operationJSON{}}
	for _, id := range s.order {
		op := s.ops[id]
		if (len(statuses) > 0 && !slices.Contains(statuses, op.Status)) || (len(types) > 0 && !slices.Contains(types, "UPDATE_NAMESERVER")) {
			continue
		}
		out.Operations = append(out.Operations, op.json())
	}
	return out
}

// epoch is a JSON 1.1 timestamp: seconds since 1970 as a number.
func epoch(t time.Time) float64 { return float64(t.UnixMilli()) / 1000 }

func newID() string {
	b := make([]byte, 16)
	_, _ = crand.Read(b)
	h := hex.EncodeToString(b)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
