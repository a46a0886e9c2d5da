package nginx

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/lb"
	"github.com/dnsroll/dnsroll/nginx"
)

// TemplateData is what the stream template needs to render one load
// balancer's complete nginx.conf.
type TemplateData struct {
	// Name is the load balancer's name; it only appears in the header comment.
	Name string
	// Listen is the host:port nginx listens on, for UDP and TCP alike: the
	// public ip:53 on a real load balancer, 127.0.0.1:PORT in the lab.
	Listen string
	// Backends are the host:port addresses that receive the traffic. None
	// renders a valid config whose only upstream is marked down.
	Backends []string
	// Weights, when set, are the backends' relative shares of the traffic,
	// in Backends' order (a flip's split); zero or missing is nginx's
	// default, 1.
	Weights []int
	// Servers is what the template renders: Backends with their weights.
	// Render fills it.
	Servers []UpstreamServer
	// PIDFile and ErrorLog are absolute paths.
	PIDFile  string
	ErrorLog string
	// Workers is worker_processes; 0 means one per core ("auto").
	Workers int
	// ShutdownTimeout is worker_shutdown_timeout: how long a worker told
	// to stop (a reload, a flip, a binary upgrade) may keep serving the
	// TCP connections it has before nginx closes them. Whole seconds, at
	// most maxShutdownTimeout; 0 means DefaultShutdownTimeout.
	ShutdownTimeout time.Duration
	// ControlSocket is the absolute path of the unix socket on which the
	// running workers answer with ConfigID.
	ControlSocket string
	// StatusSocket is the absolute path of the unix socket on which nginx
	// serves stub_status, the counters behind Driver.Queries.
	StatusSocket string
	// ConfigID identifies the rendered config; Render sets it to a hash of
	// the config rendered without it.
	ConfigID string
}

// UpstreamServer is one server line of the upstream.
type UpstreamServer struct {
	Addr string
	// Weight is rendered as weight=N when above 1.
	Weight int
}

// DefaultShutdownTimeout is a stopping worker's time to finish its TCP
// connections: DNS-over-TCP clients that keep theirs busy (dnsperf,
// busy resolvers) never let proxy_timeout, which counts idle time, end
// them, and without a bound the old workers of every reload, and in a
// binary upgrade the old master, would run for as long as they do. Once it
// passes the clients ask again on a new connection, which the new workers
// serve; the same 10 s as the TCP proxy_timeout, so an idle client fares
// no worse.
const DefaultShutdownTimeout = 10 * time.Second

// maxShutdownTimeout bounds ShutdownTimeout: longer keeps an update's
// old workers for nothing.
const maxShutdownTimeout = 10 * time.Minute

// shutdownTimeout is d.ShutdownTimeout, or the default for 0.
func (d TemplateData) shutdownTimeout() time.Duration {
	if d.ShutdownTimeout == 0 {
		return DefaultShutdownTimeout
	}
	return d.ShutdownTimeout
}

// maxWeight bounds a backend's weight, far above any useful split.
const maxWeight = 1_000_000

// maxSocketPath is the longest unix socket path Linux accepts (sun_path
// holds 108 bytes, with a terminating NUL).
const maxSocketPath = 107

var (
	// hostRE is a DNS hostname; nginx resolves one at startup.
	hostRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$`)
	// pathRE rejects what nginx would read as syntax: whitespace, ";",
	// braces, quotes, "$" variables and "#" comments.
	pathRE = regexp.MustCompile(`^/[A-Za-z0-9_./+@:,=-]*$`)
)

// Render renders the embedded stream template (nginx/stream.conf.tmpl) with
// data. Every value is checked first, because a value that nginx reads as
// syntax would change the config rather than fail it; errors have code
// dnsroll.EINVALID.
func Render(data TemplateData) (string, error) {
	return renderText(nginx.StreamConf, data)
}

// renderText renders tmpl, the source of a stream template, with data.
// The config's ID is a hash of the config rendered with an empty ID, so
// two renders of the same data have the same ID and any change of backend,
// address or setting changes it.
func renderText(tmpl string, data TemplateData) (string, error) {
	clean, err := data.normalize()
	if err != nil {
		return "", err
	}
	clean.ConfigID = ""
	unsealed, err := lb.Render("nginx", "stream.conf", tmpl, clean)
	if err != nil {
		return "", err
	}
	clean.ConfigID = ConfigID(unsealed)
	return lb.Render("nginx", "stream.conf", tmpl, clean)
}

// ConfigID is the ID of a config rendered with an empty ID.
func ConfigID(unsealed string) string {
	sum := sha256.Sum256([]byte(unsealed))
	return "dnsroll-" + hex.EncodeToString(sum[:12])
}

// normalize validates d and returns a copy whose addresses are in the form
// nginx expects (IPv6 in brackets).
func (d TemplateData) normalize() (TemplateData, error) {
	bad := func(format string, args ...any) (TemplateData, error) {
		return TemplateData{}, dnsroll.Errorf(dnsroll.EINVALID, "nginx: "+format, args...)
	}
	if err := lb.CheckName(d.Name); err != nil {
		return bad("%v", err)
	}
	listen, err := normalizeAddr(d.Listen)
	if err != nil {
		return bad("listen address: %v", err)
	}
	if len(d.Weights) > len(d.Backends) {
		return bad("%d weights for %d backends", len(d.Weights), len(d.Backends))
	}
	backends, err := lb.Addrs(d.Backends, normalizeAddr)
	if err != nil {
		return bad("backend: %v", err)
	}
	servers := make([]UpstreamServer, 0, len(backends))
	for i, addr := range backends {
		s := UpstreamServer{Addr: addr, Weight: 1}
		if i < len(d.Weights) {
			if d.Weights[i] < 0 || d.Weights[i] > maxWeight {
				return bad("backend %s: weight %d must be 0 to %d", addr, d.Weights[i], maxWeight)
			}
			s.Weight = max(d.Weights[i], 1)
		}
		servers = append(servers, s)
	}
	for field, p := range map[string]string{"pid file": d.PIDFile, "error log": d.ErrorLog, "control socket": d.ControlSocket, "status socket": d.StatusSocket} {
		if !pathRE.MatchString(p) || filepath.Clean(p) != p {
			return bad("%s %q: must be a clean absolute path without spaces or nginx syntax", field, p)
		}
		if strings.HasSuffix(field, "socket") && len(p) > maxSocketPath {
			return bad("%s %q: longer than the %d bytes a unix socket path may have; use a shorter lab directory", field, p, maxSocketPath)
		}
	}
	if d.Workers < 0 || d.Workers > 1024 {
		return bad("worker count %d: must be 0 (one per core) to 1024", d.Workers)
	}
	if s := d.shutdownTimeout(); s < time.Second || s > maxShutdownTimeout || s%time.Second != 0 {
		return bad("shutdown timeout %v: must be whole seconds from 1s to %v, or 0 for %v", d.ShutdownTimeout, maxShutdownTimeout, DefaultShutdownTimeout)
	}
	d.Listen, d.Backends, d.Servers, d.ShutdownTimeout = listen, backends, servers, d.shutdownTimeout()
	return d, nil
}

// normalizeAddr checks that addr is host:port with an IP or hostname and a
// port from 1 to 65535, and rejoins it.
func normalizeAddr(addr string) (string, error) {
	host, port, err := lb.SplitAddr(addr)
	if err != nil {
		return "", err
	}
	if ip := net.ParseIP(host); ip != nil {
		host = ip.String()
	} else if !hostRE.MatchString(host) {
		return "", fmt.Errorf("%q: host must be an IP address or a hostname", addr)
	}
	return net.JoinHostPort(host, strconv.Itoa(port)), nil
}
