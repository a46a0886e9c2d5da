package main

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"go.temporal.io/sdk/client"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/api"
	"github.com/dnsroll/dnsroll/config"
	"github.com/dnsroll/dnsroll/preflight"
	"github.com/dnsroll/dnsroll/worker"
)

// apiFlags are the API's settings besides the Temporal connection.
type apiFlags struct {
	listen          string
	fleets          string
	defaultRevision string
	webUI           string
	insecureNoAuth  bool
}

func runAPI(ctx context.Context, std streams, args []string) error {
	fs := newFlags(std, "api", `
Serves the dnsroll HTTP API (see /openapi.yaml): POST /rollouts, POST /plans
(a dry run), GET /rollouts, GET /rollouts/{id},
POST /rollouts/{id}/abort|rollback|approve|retry|cleanup;
POST and GET /load-balancer-updates, GET /load-balancer-updates/{id},
POST /load-balancer-updates/{id}/abort; the same for
/load-balancer-replacements, whose runs take
abort|rollback|approve|glue-updated|force-drain|zone-revision; /healthz and /metrics. It
keeps no state: runs live in Temporal.

Every /rollouts, /plans and /load-balancer-* request needs "Authorization: Bearer $DNSROLL_API_TOKEN". The
API refuses to start without DNSROLL_API_TOKEN unless --insecure-no-auth says
otherwise (local development only).

{temporal environment} The namespace needs the Keyword search attributes
{search attributes}; the API checks at startup.`)
	var tf temporalFlags
	tf.register(fs)
	var f apiFlags
	fs.StringVar(&f.listen, "listen", envOr("DNSROLL_API_ADDR", "127.0.0.1:8080"), "listen address ($DNSROLL_API_ADDR)")
	fs.StringVar(&f.fleets, "fleets", os.Getenv("DNSROLL_FLEETS"), "directory of fleet configs; when set, every one is checked at startup, and POST /rollouts rejects unknown fleets, unknown revisions and zone files that do not parse with 400 before starting anything ($DNSROLL_FLEETS)")
	fs.StringVar(&f.defaultRevision, "default-revision", os.Getenv("DNSROLL_DEFAULT_REVISION"), "revision for a POST without one to a fleet with no successful rollout yet ($DNSROLL_DEFAULT_REVISION)")
	fs.StringVar(&f.webUI, "web-ui-url", "", "Temporal Web UI base URL, for links in responses (default $DNSROLL_WEB_UI_URL)")
	fs.BoolVar(&f.insecureNoAuth, "insecure-no-auth", false, "serve /rollouts, /plans and /load-balancer-* without a token when DNSROLL_API_TOKEN is unset (development only)")
	if err := parseFlagsOnly(fs, args); err != nil {
		return err
	}
	if err := checkListen("--listen (or DNSROLL_API_ADDR)", f.listen, "127.0.0.1:8080"); err != nil {
		return err
	}
	f.webUI = cmp.Or(f.webUI, os.Getenv("DNSROLL_WEB_UI_URL"))
	if err := dnsroll.CheckWebUIURL(f.webUI); err != nil {
		return fmt.Errorf("--web-ui-url (or DNSROLL_WEB_UI_URL): %w", err)
	}
	if f.defaultRevision != "" && !config.ValidRevision(f.defaultRevision) {
		return fmt.Errorf("--default-revision (or DNSROLL_DEFAULT_REVISION) %q: must be %s", f.defaultRevision, config.RevisionRule)
	}
	if f.fleets != "" {
		// The API cannot know which cloud the workers use; the rest of the
		// checks are the workers'.
		if _, err := preflight.Dir(f.fleets, preflight.Target{}); err != nil {
			return err
		}
	}
	raw := os.Getenv("DNSROLL_API_TOKEN")
	token := strings.TrimSpace(raw)
	log := slog.New(slog.NewJSONHandler(std.err, nil))
	switch {
	case token == "" && !f.insecureNoAuth:
		unset := "is not set"
		if raw != "" {
			unset = "is blank"
		}
		return fmt.Errorf("DNSROLL_API_TOKEN %s: the API does not start without a bearer token (--insecure-no-auth serves without one, for local development only)", unset)
	case token == "" && !loopback(f.listen):
		return fmt.Errorf("--insecure-no-auth serves without a token on loopback only, and --listen %q is not: anyone who reached it could start and abort rollouts; listen on 127.0.0.1 or localhost, or set DNSROLL_API_TOKEN", f.listen)
	case token == "":
		log.Warn("serving WITHOUT authentication (--insecure-no-auth): anyone who reaches the API can start and abort rollouts")
	case len(token) < 16:
		log.Warn("DNSROLL_API_TOKEN is shorter than 16 characters; use a long random token")
	}

	reg, sdkMetrics, closeMetrics := newMetrics()
	defer closeMetrics()
	tf.metrics = sdkMetrics
	c, err := tf.dialReady(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	cfg := f.config(c, tf.namespace, token, log)
	cfg.Registry = reg
	ln, err := net.Listen("tcp", f.listen)
	if err != nil {
		return fmt.Errorf("api: %w", err)
	}
	log.Info("API listening", "addr", ln.Addr().String(), "temporal", tf.address, "namespace", tf.namespace, "auth", token != "")
	return serveHTTP(ctx, ln, api.New(cfg).Handler())
}

// config copies the settings onto an api.Config.
func (f apiFlags) config(c client.Client, namespace, token string, log *slog.Logger) api.Config {
	cfg := api.Config{
		Backend: &api.Temporal{Client: c, Namespace: namespace},
		Token:   token, DefaultRevision: f.defaultRevision, WebUIURL: f.webUI,
		Namespace: namespace, Logger: log,
	}
	if f.fleets != "" {
		load := worker.FleetLoader(f.fleets)
		cfg.Fleets = func(name string) (*config.Fleet, error) { return load(name) }
	}
	return cfg
}

// devAPI is the API that `dnsroll dev` serves beside the lab.
type devAPI struct {
	url string
	// tokenHint tells the user where the token is, without printing it.
	tokenHint string
}

// startDevAPI serves the API for the lab until ctx ends. The token is
// DNSROLL_API_TOKEN when set (`make dev` passes it through); otherwise a
// random one kept in <lab dir>/api-token, so it survives restarts and never
// reaches the terminal or a log. A POST without a revision to a fleet that
// has never succeeded rolls out the lab's revision A.
func startDevAPI(ctx context.Context, c client.Client, f labFlags, listen, webUI string, reg *prometheus.Registry) (*devAPI, error) {
	d := &devAPI{tokenHint: "export DNSROLL_API_TOKEN=...   # the token make dev was given"}
	token := strings.TrimSpace(os.Getenv("DNSROLL_API_TOKEN"))
	if token == "" {
		path := filepath.Join(f.dir, "api-token")
		var err error
		if token, err = labToken(path); err != nil {
			return nil, err
		}
		d.tokenHint = "export DNSROLL_API_TOKEN=$(cat " + path + ")"
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, fmt.Errorf("dev API (--api-addr): %w", err)
	}
	d.url = "http://" + ln.Addr().String()
	fl := apiFlags{fleets: f.fleets, defaultRevision: "A", webUI: webUI}
	logf, err := os.OpenFile(filepath.Join(f.dir, "api.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		ln.Close()
		return nil, err
	}
	cfg := fl.config(c, "default", token, slog.New(slog.NewJSONHandler(logf, nil)))
	cfg.Registry = reg
	go func() {
		defer logf.Close()
		_ = serveHTTP(ctx, ln, api.New(cfg).Handler())
	}()
	return d, nil
}

// labToken reads the lab's API token, making one the first time.
func labToken(path string) (string, error) {
	if b, err := os.ReadFile(path); err == nil && len(strings.TrimSpace(string(b))) >= 16 {
		return strings.TrimSpace(string(b)), nil
	}
	var raw [24]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", err
	}
	token := hex.EncodeToString(raw[:])
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return "", err
	}
	return token, os.WriteFile(path, []byte(token+"\n"), 0o600)
}

// print tells the user how to reach the dev API.
func (d *devAPI) print(w io.Writer) {
	fmt.Fprintf(w, "  API:        %s (log in api.log in the lab directory)\n\n", d.url)
	fmt.Fprintf(w, "  export DNSROLL_API_URL=%s\n  %s\n", d.url, d.tokenHint)
	fmt.Fprintf(w, "  curl -H \"Authorization: Bearer $DNSROLL_API_TOKEN\" -d '{\"fleet\":\"lab\",\"revision\":\"B\"}' $DNSROLL_API_URL/rollouts\n")
	fmt.Fprintf(w, "  dnsroll rollout start --fleet lab --revision B --wait\n")
}

// loopback says whether the listen address hostport serves this machine
// alone: localhost or a loopback IP, not every interface.
func loopback(hostport string) bool {
	host, _, _ := net.SplitHostPort(hostport)
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}
