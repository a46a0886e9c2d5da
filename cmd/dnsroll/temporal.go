package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/uber-go/tally/v4"
	tallyprom "github.com/uber-go/tally/v4/prometheus"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/contrib/envconfig"
	sdktally "go.temporal.io/sdk/contrib/tally"
	tlog "go.temporal.io/sdk/log"

	"github.com/dnsroll/dnsroll/workflows"
)

// temporalFlags are the connection settings every Temporal-facing command
// shares.
type temporalFlags struct {
	address   string
	namespace string
	// fromEnv takes the rest of the connection (TLS client certificate and
	// key, server CA, API key, gRPC headers) from the TEMPORAL_* environment
	// and the temporal CLI's config file, as the temporal CLI does, so one
	// binary reaches a self-hosted cluster or Temporal Cloud. The lab's own
	// connection to its dev server leaves it false.
	fromEnv bool
	// metrics receives the SDK's client and worker metrics; nil for none.
	metrics client.MetricsHandler
}

// temporalEnvHelp is, for the --help of every command that takes
// temporalFlags, how it reaches Temporal: the settings fromEnv reads, as
// the README's table lists them.
const temporalEnvHelp = `Temporal: --temporal-address and --namespace, or TEMPORAL_ADDRESS and
TEMPORAL_NAMESPACE. Temporal Cloud or a TLS cluster: TEMPORAL_API_KEY, or
TEMPORAL_TLS_CLIENT_CERT_PATH and TEMPORAL_TLS_CLIENT_KEY_PATH; a private CA
and server name with TEMPORAL_TLS_SERVER_CA_CERT_PATH and
TEMPORAL_TLS_SERVER_NAME; TEMPORAL_TLS=true for TLS without any of those. Or
a profile of the temporal CLI's config file: TEMPORAL_PROFILE,
TEMPORAL_CONFIG_FILE.`

// register adds --temporal-address and --namespace, defaulting to the
// environment.
func (t *temporalFlags) register(fs *flag.FlagSet) {
	t.fromEnv = true
	fs.StringVar(&t.address, "temporal-address", os.Getenv("TEMPORAL_ADDRESS"), "Temporal frontend host:port ($TEMPORAL_ADDRESS; default 127.0.0.1:7233)")
	fs.StringVar(&t.namespace, "namespace", os.Getenv("TEMPORAL_NAMESPACE"), "Temporal namespace ($TEMPORAL_NAMESPACE; default \"default\")")
}

func (t *temporalFlags) options() (client.Options, error) {
	var opts client.Options
	if t.fromEnv {
		var err error
		if opts, err = envconfig.LoadClientOptions(envconfig.LoadClientOptionsRequest{}); err != nil {
			return opts, temporalConfigError(err)
		}
	}
	if t.address != "" {
		opts.HostPort = t.address
	}
	if opts.HostPort == "" {
		opts.HostPort = "127.0.0.1:7233"
	}
	if err := checkHostPort(opts.HostPort); err != nil {
		return opts, err
	}
	if t.namespace != "" {
		opts.Namespace = t.namespace
	}
	if opts.Namespace == "" {
		opts.Namespace = "default"
	}
	t.address, t.namespace = opts.HostPort, opts.Namespace
	opts.Logger = sdkLogger(os.Stderr)
	opts.MetricsHandler = t.metrics
	return opts, nil
}

// checkHostPort refuses a Temporal address that gRPC would only report as
// "no children to pick from" once it dials: an empty port, an IPv6
// address without brackets. It takes what gRPC does: a host alone (gRPC
// dials port 443), an empty host (localhost), a target with a scheme
// (dns:///host:port). An http or https URL, as web consoles show one, is
// refused too: gRPC takes its scheme for part of the host.
func checkHostPort(addr string) error {
	if scheme, rest, ok := strings.Cut(addr, "://"); ok {
		if s := strings.ToLower(scheme); s == "http" || s == "https" {
			// Neither the URL nor its user is quoted: it may hold a password.
			hostPort := strings.TrimRight(rest, "/")
			if i := strings.LastIndex(hostPort, "@"); i >= 0 {
				hostPort = hostPort[i+1:]
			}
			return fmt.Errorf("--temporal-address (or TEMPORAL_ADDRESS): must be host:port, without the scheme, such as %s; TLS is set with TEMPORAL_TLS=true, TEMPORAL_API_KEY or the TEMPORAL_TLS_* files, not by %s://", hostPort, s)
		}
		return nil
	}
	_, port, err := net.SplitHostPort(addr)
	var ae *net.AddrError
	switch {
	case err == nil && port != "":
		return nil
	case errors.As(err, &ae) && ae.Err == "missing port in address" && !strings.Contains(addr, ":"):
		return nil
	}
	return fmt.Errorf("--temporal-address (or TEMPORAL_ADDRESS) %q: must be host:port, such as 127.0.0.1:7233, temporal.example.com:7233 or [2001:db8::7]:7233", addr)
}

// dialHint says, for an address without a port, which port gRPC dialled.
func dialHint(addr string) string {
	if strings.Contains(addr, ":") {
		return ""
	}
	return " (no port given, so gRPC dialled 443; Temporal's frontend listens on 7233 unless a proxy says otherwise)"
}

// tlsHint names, for a dial that failed on TLS, the setting that fixes
// it; gRPC's own words name none. An EOF before the server's first frame
// is what a TLS server answers a client without TLS.
func tlsHint(opts client.Options, err error) string {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "x509:"):
		return " (the server's certificate was refused: for a private CA set TEMPORAL_TLS_SERVER_CA_CERT_PATH; for a certificate issued to another name than the address's host, TEMPORAL_TLS_SERVER_NAME)"
	case strings.Contains(msg, "first record does not look like a TLS handshake"):
		return " (the server does not speak TLS on this port: unset TEMPORAL_TLS and the TEMPORAL_TLS_* settings, or give its TLS port)"
	case opts.ConnectionOptions.TLS == nil && (strings.Contains(msg, "error reading server preface: EOF") ||
		strings.Contains(msg, "error reading server preface:") && strings.Contains(msg, "connection reset by peer")):
		// A TLS server closes on a plaintext preface; with the preface
		// still unread in its buffer, the close is a reset.
		return " (the server closed the connection at once, as one that wants TLS does: set TEMPORAL_TLS=true, or TEMPORAL_TLS_CLIENT_CERT_PATH and TEMPORAL_TLS_CLIENT_KEY_PATH for mTLS)"
	}
	return ""
}

func (t *temporalFlags) dial() (client.Client, error) {
	opts, err := t.options()
	if err != nil {
		return nil, err
	}
	c, err := client.Dial(opts)
	if err != nil {
		return nil, fmt.Errorf("connect to Temporal at %s%s: %w%s", opts.HostPort, dialHint(opts.HostPort), err, tlsHint(opts, err))
	}
	return c, nil
}

// dialReady dials Temporal and checks that the namespace is ready for
// rollouts (checkSearchAttributes), as the worker and the API do at startup.
func (t *temporalFlags) dialReady(ctx context.Context) (client.Client, error) {
	c, err := t.dial()
	if err != nil {
		return nil, err
	}
	if err := checkSearchAttributes(ctx, c, t.namespace); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// checkSearchAttributes fails, saying how to fix it, when the namespace
// lacks one of the Keyword search attributes rollouts set
// (workflows.SearchAttributes). Without them, starts and workflow tasks
// fail, so commands check at startup rather than at the first rollout. A
// server that will not say (Temporal Cloud with a narrow API key) only gets
// a warning.
func checkSearchAttributes(ctx context.Context, c client.Client, namespace string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	resp, err := c.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: namespace})
	var denied *serviceerror.PermissionDenied
	var unimplemented *serviceerror.Unimplemented
	if errors.As(err, &denied) || errors.As(err, &unimplemented) {
		slog.Warn("cannot list search attributes; make sure these exist as Keyword", "names", strings.Join(searchAttributeNames(), ", "), "namespace", namespace, "error", err)
		return nil
	}
	if err != nil {
		return fmt.Errorf("list the search attributes of namespace %s: %w", namespace, err)
	}
	var problems, fixes []string
	for _, name := range searchAttributeNames() {
		typ, ok := resp.GetCustomAttributes()[name]
		switch {
		case !ok:
			problems = append(problems, name+" is missing")
			fixes = append(fixes, fmt.Sprintf("  temporal operator search-attribute create --namespace %s --name %s --type Keyword", namespace, name))
		case typ != enumspb.INDEXED_VALUE_TYPE_KEYWORD:
			problems = append(problems, fmt.Sprintf("%s is %s, not Keyword", name, typ))
			fixes = append(fixes,
				fmt.Sprintf("  temporal operator search-attribute remove --namespace %s --name %s", namespace, name),
				fmt.Sprintf("  temporal operator search-attribute create --namespace %s --name %s --type Keyword", namespace, name))
		}
	}
	if len(problems) == 0 {
		return nil
	}
	msg := fmt.Sprintf("namespace %s is not ready for rollouts: search attribute %s", namespace, strings.Join(problems, ", "))
	msg += "; fix it with:\n" + strings.Join(fixes, "\n") +
		"\n(on Temporal Cloud, add them as Keyword in the namespace's settings or with tcld)"
	return errors.New(msg)
}

func searchAttributeNames() []string {
	names := make([]string, len(workflows.SearchAttributes))
	for i, k := range workflows.SearchAttributes {
		names[i] = k.GetName()
	}
	return names
}

// newMetrics returns a Prometheus registry holding the Go runtime and
// process collectors, and a Temporal SDK metrics handler that reports into
// it, so one /metrics serves both.
func newMetrics() (*prometheus.Registry, client.MetricsHandler, func()) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reporter := tallyprom.NewReporter(tallyprom.Options{
		Registerer:       reg,
		DefaultTimerType: tallyprom.HistogramTimerType,
		// The default panics; a metric the SDK reports with an odd label
		// set is not worth a crash.
		OnRegisterError: func(err error) { slog.Warn("SDK metric not exported", "error", err) },
	})
	scope, closer := tally.NewRootScope(tally.ScopeOptions{
		CachedReporter:  reporter,
		Separator:       tallyprom.DefaultSeparator,
		SanitizeOptions: &sdktally.PrometheusSanitizeOptions,
	}, time.Second)
	return reg, sdktally.NewMetricsHandler(sdktally.NewPrometheusNamingScope(scope)), func() { _ = closer.Close() }
}

// metricsHandler serves reg; /metrics of processes without the API, such
// as `dnsroll worker`.
func metricsHandler(reg *prometheus.Registry) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	return mux
}

// httpTimeouts bound what a client may hold of the API and /metrics: a
// connection idle between requests, and a request's reading and writing
// (the longest request, POST /plans, waits up to 2 minutes). Without them
// a client that never sends, or keeps a connection idle, holds it for
// ever, and enough of them exhaust the server's file descriptors.
var httpTimeouts = struct{ readHeader, read, write, idle time.Duration }{
	readHeader: 10 * time.Second, read: time.Minute, write: 5 * time.Minute, idle: 2 * time.Minute,
}

// serveHTTP serves h on ln until ctx ends, then shuts down gently. The
// caller listens first, so a port in use fails at startup.
func serveHTTP(ctx context.Context, ln net.Listener, h http.Handler) error {
	t := httpTimeouts
	srv := &http.Server{Handler: h, ReadHeaderTimeout: t.readHeader, ReadTimeout: t.read, WriteTimeout: t.write, IdleTimeout: t.idle}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(shutdown)
}

// tomlPlace is where in the file a TOML error is, as the parser says it:
// its line, and the key it was reading.
var tomlPlace = regexp.MustCompile(`line \d+( \(last key "[^"]*"\))?`)

// temporalConfigError names a Temporal connection setting that could not
// be read. A config file that does not parse is named with the line and
// key only: the parser quotes the text it could not read, which may be an
// API key.
func temporalConfigError(err error) error {
	const what = "reading the Temporal connection settings (TEMPORAL_* environment, temporal CLI config file)"
	msg := err.Error()
	if !strings.Contains(msg, "toml:") {
		return fmt.Errorf("%s: %w", what, err)
	}
	file := os.Getenv("TEMPORAL_CONFIG_FILE")
	if file == "" {
		file = envconfig.DefaultConfigFilePath()
	}
	place := cmp.Or(tomlPlace.FindString(msg), "somewhere")
	return fmt.Errorf("%s: %s does not parse at %s (its text is not shown here: it may hold an API key); quote string values, as in api_key = \"...\"", what, file, place)
}

// sdkLogger is the Temporal SDK's log on w: warnings and worse, as JSON,
// less the warning of a heartbeat the SDK still had in flight when a step
// ended, which fails "context canceled" once the step has returned and
// says nothing an operator can act on.
func sdkLogger(w io.Writer) tlog.Logger {
	return tlog.NewStructuredLogger(slog.New(quietHeartbeats{slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn})}))
}

type quietHeartbeats struct{ slog.Handler }

func (h quietHeartbeats) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == "RecordActivityHeartbeat with error" {
		cancelled := false
		r.Attrs(func(a slog.Attr) bool {
			cancelled = a.Key == "Error" && strings.Contains(a.Value.String(), "context canceled")
			return !cancelled
		})
		if cancelled {
			return nil
		}
	}
	return h.Handler.Handle(ctx, r)
}

func (h quietHeartbeats) WithAttrs(as []slog.Attr) slog.Handler {
	return quietHeartbeats{h.Handler.WithAttrs(as)}
}

func (h quietHeartbeats) WithGroup(name string) slog.Handler {
	return quietHeartbeats{h.Handler.WithGroup(name)}
}
