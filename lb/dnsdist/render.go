package dnsdist

import (
	"fmt"
	"net"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/lb"
)

// TemplateData is what the template needs to render one load balancer's
// complete dnsdist.conf.
type TemplateData struct {
	// Name is the load balancer's name; it only appears in a comment.
	Name string
	// Listen is the ip:port dnsdist serves DNS on, UDP and TCP alike.
	Listen string
	// Console is the loopback ip:port of dnsdist's console.
	Console string
	// KeyFile is the absolute path of the file holding the console key.
	KeyFile string
	// SplitFile is the absolute path of the file in which a flip records
	// which backends get traffic, with what weight; a restarted dnsdist
	// applies it over Backends and Staged. Point removes it.
	SplitFile string
	// Backends are the ip:port addresses that receive the traffic. They are
	// also the backends' names, which is how a switch finds them again.
	Backends []string
	// Staged are backends that are health-checked but get no traffic (pool
	// "staged"), so that a flip can give them traffic at once. A backend in
	// Backends too is live, not staged.
	Staged []string
	// Health check of every backend: the apex SOA of a zone the backends
	// serve, which must resolve; see HealthCheck.
	CheckName   string
	CheckType   string
	MustResolve bool
}

// HealthCheck returns the health check for backends that serve zone: its
// SOA must resolve, so a server that is up but lacks the zone is down. With
// no zone it is dnsdist's default check, which any answer but SERVFAIL passes.
func HealthCheck(zone string) (name, qtype string, mustResolve bool) {
	if zone == "" {
		return "a.root-servers.net.", "A", false
	}
	return strings.TrimSuffix(zone, ".") + ".", "SOA", true
}

var (
	// pathRE keeps the key file path inside its Lua string.
	pathRE = regexp.MustCompile(`^/[A-Za-z0-9_./+@:,=-]*$`)
	// checkNameRE is a DNS name with its final dot, "/" allowed inside a
	// label for an RFC 2317 zone's SOA; checkTypeRE a type mnemonic.
	checkNameRE = regexp.MustCompile(`^([A-Za-z0-9_]([A-Za-z0-9_/-]{0,61}[A-Za-z0-9_])?\.)+$`)
	checkTypeRE = regexp.MustCompile(`^[A-Z][A-Z0-9]{0,9}$`)
)

// Render renders the embedded template with data. Every value is checked
// first, because a value that Lua reads as code would change the config
// rather than fail it; errors have code dnsroll.EINVALID.
func Render(data TemplateData) (string, error) {
	clean, err := data.normalize()
	if err != nil {
		return "", err
	}
	return lb.Render("dnsdist", "dnsdist.conf", confTemplate, clean)
}

func (d TemplateData) normalize() (TemplateData, error) {
	bad := func(format string, args ...any) (TemplateData, error) {
		return TemplateData{}, dnsroll.Errorf(dnsroll.EINVALID, "dnsdist: "+format, args...)
	}
	if err := lb.CheckName(d.Name); err != nil {
		return bad("%v", err)
	}
	var err error
	if d.Listen, err = IPPort(d.Listen); err != nil {
		return bad("listen address: %v", err)
	}
	if d.Console, err = IPPort(d.Console); err != nil {
		return bad("console address: %v", err)
	}
	if ip := net.ParseIP(hostOf(d.Console)); !ip.IsLoopback() {
		return bad("console address %s: must be on loopback; the console can reconfigure dnsdist", d.Console)
	}
	if d.Backends, err = lb.Addrs(d.Backends, IPPort); err != nil {
		return bad("backend: %v", err)
	}
	live := map[string]bool{}
	for _, b := range d.Backends {
		live[b] = true
	}
	stagedAddrs, err := lb.Addrs(d.Staged, IPPort)
	if err != nil {
		return bad("staged backend: %v", err)
	}
	staged := make([]string, 0, len(stagedAddrs))
	for _, addr := range stagedAddrs {
		if !live[addr] {
			live[addr] = true
			staged = append(staged, addr)
		}
	}
	d.Staged = staged
	if !pathRE.MatchString(d.KeyFile) || filepath.Clean(d.KeyFile) != d.KeyFile {
		return bad("key file %q: must be a clean absolute path without spaces or quotes", d.KeyFile)
	}
	if !pathRE.MatchString(d.SplitFile) || filepath.Clean(d.SplitFile) != d.SplitFile {
		return bad("split file %q: must be a clean absolute path without spaces or quotes", d.SplitFile)
	}
	if !checkNameRE.MatchString(d.CheckName) || len(d.CheckName) > 254 || !checkTypeRE.MatchString(d.CheckType) {
		return bad("health check %q %q: want a fully qualified name and a type such as SOA", d.CheckName, d.CheckType)
	}
	return d, nil
}

// IPPort checks that addr is an IP address and a port from 1 to 65535 and
// returns it in dnsdist's form (IPv6 in brackets). dnsdist backends must be
// addresses: it resolves no names.
func IPPort(addr string) (string, error) {
	host, port, err := lb.SplitAddr(addr)
	if err != nil {
		return "", err
	}
	ip := net.ParseIP(host)
	if ip == nil || strings.Contains(host, "%") {
		return "", fmt.Errorf("%q: host must be an IP address", addr)
	}
	return net.JoinHostPort(ip.String(), strconv.Itoa(port)), nil
}

func hostOf(addr string) string {
	h, _, _ := net.SplitHostPort(addr)
	return h
}
