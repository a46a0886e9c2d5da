// Package api is dnsroll's HTTP API for CI and operators: start rollouts,
// list and read them, and send them abort, rollback and approve. It holds no
// state of its own: rollouts are Temporal workflows, read through the
// workflow's status query or its result, and signalled by name, so the API,
// the CLI, the Web UI and `temporal workflow signal` all see the same thing.
package api

import (
	"cmp"
	"context"
	_ "embed"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/dnsroll/dnsroll/config"
	"github.com/dnsroll/dnsroll/rollouts"
	"github.com/dnsroll/dnsroll/workflows"
)

// OpenAPI is the API's OpenAPI 3 description, served at /openapi.yaml. The
// router tests check every response they see against it.
//
//go:embed openapi.yaml
var OpenAPI []byte

// Backend is what the API needs from Temporal. Temporal implements it; the
// router tests use a fake.
type Backend interface {
	// Start starts a rollout. It returns an ECONFLICT error when the fleet
	// already has a running rollout. A start with key, the request's
	// Idempotency-Key, that the fleet's latest rollout was started with
	// returns that rollout, replayed (rollouts.StartOnce).
	Start(ctx context.Context, in workflows.RolloutInput, key string) (run rollouts.Run, replayed bool, err error)
	// Replayed is the rollout Start with in and key returns replayed,
	// without starting one (rollouts.Replayed); ok is false when none.
	Replayed(ctx context.Context, in workflows.RolloutInput, key string) (run rollouts.Run, ok bool, err error)
	// Get returns one rollout; an empty RunID means the fleet's latest.
	// It returns an ENOTFOUND error for a rollout that does not exist.
	Get(ctx context.Context, run rollouts.Run) (Rollout, error)
	// List returns one page of the runs of f's kind, newest first, and the
	// token of the next page (nil on the last page).
	List(ctx context.Context, f Filter) ([]Summary, []byte, error)
	// Signal sends abort, rollback or approve. It returns an ENOTFOUND error
	// when the rollout is not running.
	Signal(ctx context.Context, run rollouts.Run, name string, in workflows.SignalInput) error
	// LastRevision is the revision of the fleet's latest successful
	// rollout, "" when it has none.
	LastRevision(ctx context.Context, fleet string) (string, error)
	// Live is the bundle of the fleet's latest successful rollout, which
	// a rollout compares with (rollouts.Live); when the lookup cannot
	// tell, why says so. Both are empty when the fleet has none.
	Live(ctx context.Context, fleet string) (bundle, why string)
	// Retry starts a rollout again with the input run was started with,
	// and returns the new run and that input. It returns an ENOTFOUND
	// error for a rollout that does not exist, and ECONFLICT as Start.
	Retry(ctx context.Context, run rollouts.Run) (rollouts.Run, workflows.RolloutInput, error)
	// Input is the input rollout run was started with. It returns an
	// ENOTFOUND error for a rollout that does not exist.
	Input(ctx context.Context, run rollouts.Run) (workflows.RolloutInput, error)
	// StartWorkflow starts a run of k's workflow for fleet with input in.
	// It returns an ECONFLICT error when the fleet already has one running.
	StartWorkflow(ctx context.Context, k Kind, fleet string, in any) (rollouts.Run, error)
	// Read reads a run of k's workflow (an empty RunID means the fleet's
	// latest): the run, its state (as Rollout.State) and, unless status is
	// nil, its status decoded into status. It returns an ENOTFOUND error
	// for a run that does not exist.
	Read(ctx context.Context, k Kind, run rollouts.Run, status any) (rollouts.Run, string, error)
	// LaterChange is the newest rollout of run's fleet, started after
	// it, that may have changed the fleet, with its state (as
	// Rollout.State); an empty Run when there is none. A rollout refused
	// because the fleet was busy, or at its Plan step, changed nothing and
	// is passed over.
	LaterChange(ctx context.Context, run rollouts.Run) (rollouts.Run, string, error)
	// Plan runs a dry run of a rollout of in on a worker and returns its
	// report; a plan the rollout's Plan step would refuse is an EINVALID
	// error.
	Plan(ctx context.Context, in workflows.RolloutInput) (workflows.PlanReport, rollouts.Run, error)
	// Health returns an error when Temporal cannot be reached.
	Health(ctx context.Context) error
}

// Config holds the server's dependencies and settings. main reads them once
// and copies them here.
type Config struct {
	Backend Backend
	// Token is the bearer token every /rollouts request must carry. Empty
	// means no authentication, which only `dnsroll api --insecure-no-auth`
	// allows.
	Token string
	// Fleets, when set, loads a fleet config so that POST /rollouts rejects
	// unknown fleets and bad revisions before anything starts.
	Fleets func(name string) (*config.Fleet, error)
	// DefaultRevision is rolled out when a request names no revision and the
	// fleet has no successful rollout to repeat.
	DefaultRevision string
	// WebUIURL is the Temporal Web UI base URL for links; empty for none.
	WebUIURL  string
	Namespace string
	// Registry receives the API's request metrics; /metrics serves it, along
	// with whatever else (the SDK's metrics) was registered there.
	Registry *prometheus.Registry
	Logger   *slog.Logger
	// MaxBody bounds request bodies; larger ones get 413.
	MaxBody int64
	// PlanWait bounds how long POST /plans waits for a worker to plan
	// (default 2m; the Plan step takes seconds).
	PlanWait time.Duration
}

// Server serves the API.
type Server struct {
	cfg     Config
	log     *slog.Logger
	metrics *httpMetrics
	pages   pageTokens
	health  healthCache
}

// healthCache keeps Temporal's health for a second, so that /healthz,
// which needs no token, asks Temporal at most once a second however
// often it is called.
type healthCache struct {
	mu  sync.Mutex
	at  time.Time
	err error
}

// healthAge is how long a health check's result stands.
const healthAge = time.Second

// check returns Temporal's health, asking it when the last answer is
// older than healthAge.
func (c *healthCache) check(ctx context.Context, backend Backend) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.at.IsZero() && time.Since(c.at) < healthAge {
		return c.err
	}
	// A caller that hangs up does not make the answer an error for the
	// others.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Second)
	defer cancel()
	c.err, c.at = backend.Health(ctx), time.Now()
	return c.err
}

// New returns a server. It registers its metrics in cfg.Registry, so build
// one server per registry.
func New(cfg Config) *Server {
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = 64 << 10
	}
	if cfg.Namespace == "" {
		cfg.Namespace = "default"
	}
	if cfg.PlanWait <= 0 {
		cfg.PlanWait = 2 * time.Minute
	}
	return &Server{cfg: cfg, log: cfg.Logger, metrics: newHTTPMetrics(cfg.Registry), pages: newPageTokens(cfg.Token)}
}

// Handler builds the router.
func (s *Server) Handler() http.Handler {
	mux := chi.NewRouter()
	// HEAD is served wherever GET is, as HTTP wants (a monitor's HEAD
	// /healthz); the server sends no body.
	mux.Use(requestID, s.logRequests, s.metrics.middleware, s.recoverPanics, middleware.GetHead)
	mux.NotFound(func(w http.ResponseWriter, r *http.Request) {
		s.fail(w, r, errorf(http.StatusNotFound, "not_found", "no route %s %s", r.Method, r.URL.Path))
	})
	mux.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		allow := allowed(mux, r)
		w.Header().Set("Allow", allow)
		s.fail(w, r, errorf(http.StatusMethodNotAllowed, "method_not_allowed", "%s is not allowed on %s (allowed: %s)", r.Method, r.URL.Path, allow))
	})
	s.route(mux)
	return mux
}

// allowed lists the methods routes serves on r's path, for a 405's Allow
// header (which HTTP requires): HEAD wherever GET is.
func allowed(routes chi.Routes, r *http.Request) string {
	path := cmp.Or(r.URL.RawPath, r.URL.Path)
	var methods []string
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		served := routes.Match(chi.NewRouteContext(), m, path)
		if m == http.MethodHead {
			served = slices.Contains(methods, http.MethodGet)
		}
		if served {
			methods = append(methods, m)
		}
	}
	return strings.Join(methods, ", ")
}

// route registers the API's routes on r.
func (s *Server) route(r chi.Router) {

	// Probes, scrapers and API clients fetch these without a token.
	r.Get("/healthz", s.healthz)
	r.Get("/openapi.yaml", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/yaml")
		_, _ = w.Write(OpenAPI)
	})
	r.Method(http.MethodGet, "/metrics", promhttp.HandlerFor(s.cfg.Registry, promhttp.HandlerOpts{}))

	// A group, not a sub-router: its middleware runs after routing, so even
	// a 401 is counted under its route pattern.
	r.Group(func(r chi.Router) {
		r.Use(bearerAuth(s.cfg.Token, s.fail), keyOnlyOnStarts(s.fail))
		r.Post("/rollouts", s.createRollout)
		r.Post("/plans", s.createPlan)
		r.Get("/rollouts", s.listRollouts)
		r.Get("/rollouts/{id}", s.getRollout)
		for _, name := range Rollouts.Signals {
			r.Post("/rollouts/{id}/"+name, s.signal(name))
		}
		r.Post("/rollouts/{id}/retry", s.retryRollout)
		r.Post("/rollouts/{id}/cleanup", s.cleanupRollout)
		s.routeLB(r, LBUpdates, createLB(s, LBUpdates, s.validateLBUpdate, lbUpdateInput), s.getLBUpdate)
		s.routeLB(r, LBReplacements, createLB(s, LBReplacements, s.validateLBReplace, lbReplaceInput), s.getLBReplacement)
	})
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	if err := s.health.check(r.Context(), s.cfg.Backend); err != nil {
		s.log.Warn("health check: Temporal unreachable", "request_id", RequestID(r.Context()), "error", err)
		writeJSON(w, http.StatusServiceUnavailable, health{Status: "unavailable", Temporal: "unreachable"})
		return
	}
	writeJSON(w, http.StatusOK, health{Status: "ok", Temporal: "reachable"})
}

type health struct {
	Status   string `json:"status"`
	Temporal string `json:"temporal"`
}
