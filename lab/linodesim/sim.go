// Package linodesim is a Linode API v4 simulator for the lab and for tests.
//
// It speaks enough of the API that the unmodified linodego client works
// against it over HTTP, so the lab exercises the same code path as
// production. This comment is the one account of how faithful it is.
//
// As the real API does, it models:
//   - instances: create, get, list, PUT of label and tags, delete, boot,
//     reboot, shutdown and their IPs. Status moves provisioning → booting
//     → running (offline when created unbooted or without an image) on a
//     timer; rebooting, shutting_down and offline follow power actions,
//     and a power action on an instance in transition is 400 "Linode
//     busy.". A deleted instance shows "deleting", keeping its label, for
//     Options.DeleteDelay, then is a 404.
//   - creates and renames are refused with a 400 naming the field and
//     Linode's reason: a label outside 3-64 characters or Linode's
//     pattern, or taken in any letter case ("Label must be unique among
//     your linodes"); tags outside 3-50 characters; a region, plan, image
//     or firewall the account cannot use; an image without root_pass; a
//     root_pass outside 7-128 characters or weak ("Password does not meet
//     strength requirement", by an approximation of Linode's unpublished
//     score that lets some weak ones pass); SSH key types Linode does not
//     install.
//   - user data for cloud-init (metadata.user_data: base64, at most 16 KiB
//     decoded), refused for a region without "Metadata" in its
//     capabilities (Options.NoMetadata) or an image without "cloud-init"
//     (Options.NoCloudInit). The instance shows has_user_data; the user
//     data, write-only as on Linode, goes to Options.OnCreate in Boot.
//   - creating Linodes is limited to 20 per 15 s: past it, 429 "Too Many
//     Requests" with Retry-After and X-RateLimit-*.
//   - errors are {"errors":[{"reason","field"}]} as application/json:
//     401 "Invalid Token", 403 "Unauthorized" for what a restricted user's
//     grants deny, 404 "Not found".
//   - pagination (page, pages, results; page_size 25-500, default 100)
//     and X-Filter with +and, +or, +eq, +neq, +contains, +gt(e), +lt(e),
//     +order_by and +order; a field it cannot filter on is a 400 on
//     X-Filter.
//   - lookups of regions (and their plan availability), plans, images,
//     firewalls and their rules and settings, account settings and
//     availability, the profile and a restricted user's grants (204 for
//     an unrestricted one), and resource locks on v4beta.
//
// It leaves out, on purpose: the general rate limits (200 a minute for
// paginated lists, more for other calls), and X-RateLimit-* on answers
// that are not 429s; 503 with X-Maintenance-Mode, which linodego does not
// retry; which fields Linode really lets X-Filter name (it takes more
// than the API reference marks filterable, and Linode has answered
// "Could not apply filter" for some it marks); private IPv4 addresses,
// VPCs and interfaces; events; and every other endpoint. Faults (429,
// 5xx, slow or lost responses, filters that match nothing or are
// refused) can be injected through Go or through POST /_sim/faults.
//
// It never stores or echoes a root_pass, user data or the token.
package linodesim

import (
	"cmp"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// timeLayout is how Linode formats timestamps: UTC with no zone suffix.
const timeLayout = "2006-01-02T15:04:05"

// Options configures a simulator.
type Options struct {
	// Token is the bearer token every request must carry, as on real Linode.
	Token string
	// BootDelay is how long each of provisioning and booting lasts, so
	// callers that wait for "running" are exercised.
	BootDelay time.Duration
	// OnCreate, when set, is called outside the simulator's lock for every
	// instance created, with what its VM gets (Boot), which the simulator
	// itself never stores; it returns the instance's public IPv4. The
	// machine lab boots a machine there; the instance is provisioning
	// until it returns. An error fails the create with a 500, and no
	// instance is kept.
	OnCreate func(inst Instance, boot Boot) (ipv4 string, err error)
	// OnDelete is called, outside the simulator's lock, when an instance is
	// deleted; the lab uses it to stop the process or machine that plays
	// that VM. As on Linode, the instance then shows status "deleting",
	// and keeps its label, for DeleteDelay before it is gone.
	OnDelete func(inst Instance)
	// DeleteDelay is how long a deleted instance shows status "deleting"
	// before requests for it get 404; zero removes it at once.
	DeleteDelay time.Duration
	// StateFile, when set, is loaded at start and rewritten after every
	// change, so instances survive a restart of the lab.
	StateFile string
	// Logger receives request and fault logs; nil logs nothing.
	Logger *slog.Logger
	// Images are the account's private images ("private/123"), which it
	// may deploy besides Linode's public ones.
	Images []string
	// Firewalls are the IDs of the account's Cloud Firewalls, which accept
	// all inbound traffic; a create request naming another is refused.
	Firewalls []int
	// FirewallRules are more of the account's Cloud Firewalls, by ID,
	// with inbound rules that GET /v4/networking/firewalls/{id}/rules
	// serves. The simulator only reports them: no traffic passes it.
	FirewallRules map[int]Firewall
	// DefaultFirewall is the firewall Linode puts a new Linode behind when
	// its create names none (the account's firewall settings); 0 is none.
	// With InterfacesForNewLinodes on Linode Interfaces, that is
	// DefaultInterfaceFirewall instead.
	DefaultFirewall, DefaultInterfaceFirewall int
	// InterfacesForNewLinodes is the account setting of that name;
	// empty is legacy_config_only.
	InterfacesForNewLinodes string
	// SoldOut are the plans Linode has none of left in a region, by
	// region: GET /v4/regions/{id}/availability lists them as unavailable
	// (the real API lists select premium and GPU plans there, and a plan
	// it does not list is available), and a create of one there is
	// refused.
	SoldOut map[string][]string
	// ClosedRegions are regions this account may not create Linodes in:
	// GET /v4/account/availability/{id} lists "Linodes" as unavailable
	// there, and a create there is refused.
	ClosedRegions []string
	// CreateLimit is how many creates of a Linode the token's user may
	// make per CreateWindow, as Linode limits them (20 per 15 s); more is
	// a 429 with Retry-After until the window moves on. Zero is Linode's
	// limit; a negative limit is none.
	CreateLimit  int
	CreateWindow time.Duration
	// NoMetadata are regions without Linode's Metadata service: their
	// capabilities leave out "Metadata", and a create there with user
	// data is refused. Which regions have it varies on real Linode (it
	// started in a few and spreads); here every region has it but these.
	NoMetadata []string
	// NoCloudInit are private images (of Images) without the "cloud-init"
	// capability, as an image captured without it has; a create from one
	// with user data is refused. Linode's public images here all have it.
	NoCloudInit []string
}

// Boot is what a new instance's VM gets from Linode on its first boot:
// root's SSH keys and password from the create request, and the user data
// the Metadata service serves to cloud-init.
type Boot struct {
	AuthorizedKeys []string
	RootPass       string
	// UserData is decoded from the request's base64; nil when it had none.
	UserData []byte
}

// Linode's own limit on creating Linodes, as its API reference gives it.
const (
	linodeCreateLimit  = 20
	linodeCreateWindow = 15 * time.Second
)

// Instance is a simulated Linode as tests and the lab see it.
type Instance struct {
	ID     int      `json:"id"`
	Label  string   `json:"label"`
	Status string   `json:"status"`
	Tags   []string `json:"tags"`
	IPv4   []string `json:"ipv4"`
	Region string   `json:"region"`
	Type   string   `json:"type"`
	Image  string   `json:"image"`
	// FirewallID is the firewall the create request named; the real API
	// shows it under the instance's firewalls, not in the instance.
	FirewallID int `json:"firewall_id,omitempty"`
	// HasUserData says the create carried user data, which the
	// simulator, as Linode, never shows.
	HasUserData bool      `json:"has_user_data,omitempty"`
	Created     time.Time `json:"created"`
	Updated     time.Time `json:"updated"`
}

// record is an instance plus the power transition that decides its status.
type record struct {
	Instance
	// Phase is the last power action: create, create-offline, boot, reboot
	// or shutdown. PhaseAt is when it started.
	Phase   string    `json:"phase"`
	PhaseAt time.Time `json:"phase_at"`
	// hooking is set while Options.OnCreate runs: the instance is
	// provisioning until it returns, however long that takes, as
	// Linode's create answers "provisioning" with the instance's address.
	hooking bool
}

// state is what the StateFile holds.
type state struct {
	NextID     int           `json:"next_id"`
	Instances  []*record     `json:"instances"`
	NextLockID int           `json:"next_lock_id,omitempty"`
	Locks      []*lockRecord `json:"locks,omitempty"`
}

// Sim is the simulator. It is an http.Handler serving the API under /v4 and
// test controls under /_sim (GET|POST|DELETE /_sim/faults, GET
// /_sim/instances), all behind the bearer token.
type Sim struct {
	opts Options
	log  *slog.Logger
	mux  *http.ServeMux
	now  func() time.Time // replaced in tests

	mu     sync.Mutex
	nextID int
	insts  map[int]*record
	faults []Fault
	// creates are when the creates of the last CreateWindow came.
	creates []time.Time
	// restricted is the token's user's grants (Restrict); nil, the
	// user is unrestricted.
	restricted *restriction
	// locks are the account's resource locks, by ID.
	locks      map[int]*lockRecord
	nextLockID int
}

// firstID is where Linode-like IDs start; IDs are never reused.
const firstID = 1001

// New returns a simulator, loading opts.StateFile if it exists.
func New(opts Options) (*Sim, error) {
	if opts.Token == "" {
		return nil, errors.New("linodesim: a token is required")
	}
	if opts.CreateLimit == 0 {
		opts.CreateLimit = linodeCreateLimit
	}
	opts.CreateWindow = cmp.Or(opts.CreateWindow, linodeCreateWindow)
	s := &Sim{opts: opts, log: opts.Logger, now: time.Now, nextID: firstID, insts: map[int]*record{}, locks: map[int]*lockRecord{}, nextLockID: firstLockID}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if opts.StateFile != "" {
		if err := s.load(); err != nil {
			return nil, err
		}
	}
	m := http.NewServeMux()
	m.HandleFunc("GET /v4/linode/instances", s.list)
	m.HandleFunc("POST /v4/linode/instances", s.createLimited(s.mayCreate(s.create)))
	m.HandleFunc("GET /v4/linode/instances/{id}", s.get)
	m.HandleFunc("PUT /v4/linode/instances/{id}", s.mayChange(s.update))
	m.HandleFunc("DELETE /v4/linode/instances/{id}", s.mayChange(s.delete))
	m.HandleFunc("GET /v4/linode/instances/{id}/ips", s.ips)
	m.HandleFunc("POST /v4/linode/instances/{id}/boot", s.mayChange(s.power("boot")))
	m.HandleFunc("POST /v4/linode/instances/{id}/reboot", s.mayChange(s.power("reboot")))
	m.HandleFunc("POST /v4/linode/instances/{id}/shutdown", s.mayChange(s.power("shutdown")))
	m.HandleFunc("GET /v4/regions/{id}", s.getRegion)
	m.HandleFunc("GET /v4/regions/{id}/availability", s.getRegionAvailability)
	m.HandleFunc("GET /v4/account/availability/{id}", s.getAccountAvailability)
	m.HandleFunc("GET /v4/linode/types/{id}", s.getType)
	m.HandleFunc("GET /v4/images/{id...}", s.getImage)
	m.HandleFunc("GET /v4/networking/firewalls/{id}", s.getFirewall)
	m.HandleFunc("GET /v4/networking/firewalls/{id}/rules", s.getFirewallRules)
	m.HandleFunc("GET /v4/networking/firewalls/settings", s.getFirewallSettings)
	m.HandleFunc("GET /v4/account/settings", s.getAccountSettings)
	m.HandleFunc("GET /v4/profile", s.getProfile)
	m.HandleFunc("GET /v4/profile/grants", s.getGrants)
	// Linode serves its resource locks on v4beta alone.
	m.HandleFunc("GET /v4beta/locks", s.mayLock(s.listLocks))
	m.HandleFunc("POST /v4beta/locks", s.mayLock(s.createLock))
	m.HandleFunc("GET /v4beta/locks/{id}", s.mayLock(s.getLock))
	m.HandleFunc("DELETE /v4beta/locks/{id}", s.mayLock(s.deleteLock))
	m.HandleFunc("GET /_sim/faults", s.getFaults)
	m.HandleFunc("POST /_sim/faults", s.postFault)
	m.HandleFunc("DELETE /_sim/faults", s.deleteFaults)
	m.HandleFunc("GET /_sim/instances", s.getInstances)
	m.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) { notFound(w) })
	s.mux = m
	return s, nil
}

// ServeHTTP authenticates, applies injected faults and routes the request.
func (s *Sim) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	s.log.Debug("linodesim request", "method", r.Method, "path", r.URL.Path)
	if !s.authorized(r) {
		writeErr(w, http.StatusUnauthorized, "Invalid Token", "")
		return
	}
	if strings.HasPrefix(r.URL.Path, "/_sim/") {
		s.mux.ServeHTTP(w, r)
		return
	}
	s.mu.Lock()
	s.purge(s.now())
	s.mu.Unlock()
	f, ok := s.takeFault(r)
	if !ok {
		s.mux.ServeHTTP(w, r)
		return
	}
	s.log.Info("linodesim fault", "method", r.Method, "path", r.URL.Path, "status", f.Status,
		"delay", f.Delay, "lose_response", f.LoseResponse, "filter_matches_nothing", f.FilterMatchesNothing, "filter_refused", f.FilterRefused)
	if f.Delay > 0 {
		t := time.NewTimer(f.Delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			return
		}
	}
	switch {
	case f.FilterMatchesNothing && r.Header.Get("X-Filter") != "":
		writeJSON(w, http.StatusOK, map[string]any{"data": []any{}, "page": 1, "pages": 1, "results": 0})
	case f.FilterRefused && r.Header.Get("X-Filter") != "":
		writeErr(w, http.StatusBadRequest, "Cannot filter on tags", "X-Filter")
	case f.LoseResponse:
		s.mux.ServeHTTP(discard{h: http.Header{}}, r)
		writeErr(w, cmp.Or(f.Status, http.StatusBadGateway), "Bad Gateway", "")
	case f.Status != 0:
		if f.RetryAfter > 0 {
			w.Header().Set("Retry-After", fmt.Sprint(f.RetryAfter))
		}
		writeErr(w, f.Status, cmp.Or(f.Reason, http.StatusText(f.Status), "Injected fault"), "")
	default:
		s.mux.ServeHTTP(w, r)
	}
}

// Instances returns a snapshot of every instance, ordered by ID.
func (s *Sim) Instances() []Instance {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	s.purge(now)
	out := make([]Instance, 0, len(s.insts))
	for _, rec := range s.sorted() {
		out = append(out, s.snapshot(rec, now))
	}
	return out
}

// Created is how many instances have ever been created, deleted ones
// included: IDs are never reused. A test that a refusal created nothing
// reads it, since an instance created and deleted again leaves no trace
// in Instances.
func (s *Sim) Created() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nextID - firstID
}

func (s *Sim) authorized(r *http.Request) bool {
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && subtle.ConstantTimeCompare([]byte(got), []byte(s.opts.Token)) == 1
}

// sorted returns the records ordered by ID; the caller holds s.mu.
func (s *Sim) sorted() []*record {
	recs := make([]*record, 0, len(s.insts))
	for _, rec := range s.insts {
		recs = append(recs, rec)
	}
	slices.SortFunc(recs, func(a, b *record) int { return a.ID - b.ID })
	return recs
}

// snapshot copies rec with its status as of now; the caller holds s.mu.
func (s *Sim) snapshot(rec *record, now time.Time) Instance {
	in := rec.Instance
	in.Status = s.status(rec, now)
	in.Tags = slices.Clone(rec.Tags)
	in.IPv4 = slices.Clone(rec.IPv4)
	return in
}

// status derives the status from the last power action and the time since.
func (s *Sim) status(rec *record, now time.Time) string {
	d := s.opts.BootDelay
	el := now.Sub(rec.PhaseAt)
	switch rec.Phase {
	case "create", "create-offline":
		if rec.hooking || el < d {
			return "provisioning"
		}
		if rec.Phase == "create-offline" {
			return "offline"
		}
		if el < 2*d {
			return "booting"
		}
		return "running"
	case "boot", "reboot":
		if el < d {
			return map[string]string{"boot": "booting", "reboot": "rebooting"}[rec.Phase]
		}
		return "running"
	case "shutdown":
		if el < d {
			return "shutting_down"
		}
		return "offline"
	case "delete":
		return "deleting"
	}
	return "running"
}

// purge removes the instances whose deletion has run its course; the
// caller holds s.mu.
func (s *Sim) purge(now time.Time) {
	changed := false
	for id, rec := range s.insts {
		if rec.Phase == "delete" && now.Sub(rec.PhaseAt) >= s.opts.DeleteDelay {
			delete(s.insts, id)
			changed = true
		}
	}
	if changed {
		if err := s.save(); err != nil {
			s.log.Error("linodesim: save state", "error", err)
		}
	}
}

func (s *Sim) load() error {
	data, err := os.ReadFile(s.opts.StateFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("linodesim: %w", err)
	}
	var st state
	if err := json.Unmarshal(data, &st); err != nil {
		return fmt.Errorf("linodesim: state file %s: %w", s.opts.StateFile, err)
	}
	s.nextID = max(st.NextID, firstID)
	for _, rec := range st.Instances {
		s.insts[rec.ID] = rec
		s.nextID = max(s.nextID, rec.ID+1)
	}
	s.nextLockID = max(st.NextLockID, firstLockID)
	for _, l := range st.Locks {
		s.locks[l.ID] = l
		s.nextLockID = max(s.nextLockID, l.ID+1)
	}
	return nil
}

// save writes the state file atomically; the caller holds s.mu.
func (s *Sim) save() error {
	if s.opts.StateFile == "" {
		return nil
	}
	locks := slices.Collect(maps.Values(s.locks))
	slices.SortFunc(locks, func(a, b *lockRecord) int { return a.ID - b.ID })
	data, err := json.MarshalIndent(state{NextID: s.nextID, Instances: s.sorted(), NextLockID: s.nextLockID, Locks: locks}, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(s.opts.StateFile), ".linodesim-*")
	if err != nil {
		return err
	}
	defer func() { _ = os.Remove(tmp.Name()) }() // a no-op after the rename
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		_ = tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), s.opts.StateFile)
}

// apiErr is one entry of Linode's error list.
type apiErr struct {
	Reason string `json:"reason"`
	Field  string `json:"field,omitempty"`
}

func writeErr(w http.ResponseWriter, status int, reason, field string) {
	writeJSON(w, status, map[string][]apiErr{"errors": {{Reason: reason, Field: field}}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// discard swallows a response whose delivery a fault pretends was lost.
type discard struct{ h http.Header }

func (d discard) Header() http.Header         { return d.h }
func (d discard) Write(b []byte) (int, error) { return len(b), nil }
func (d discard) WriteHeader(int)             {}
