// Package dnsroll holds the domain types shared by every part of dnsroll:
// servers, endpoints, and typed error codes. Subpackages wrap one external
// system each (Linode, Ansible, BIND probes, load balancers, Temporal).
package dnsroll

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// StateDir is where a worker keeps what it learns (known_hosts, the file
// lists of planned revisions): $DNSROLL_STATE_DIR, else
// $XDG_STATE_HOME/dnsroll, else ~/.local/state/dnsroll.
func StateDir() (string, error) {
	if d := os.Getenv("DNSROLL_STATE_DIR"); d != "" {
		return d, nil
	}
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "dnsroll"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("no home directory for the state directory; set DNSROLL_STATE_DIR: %w", err)
	}
	return filepath.Join(home, ".local", "state", "dnsroll"), nil
}

// NextSuffix marks a green server before the rename step gives it its final label.
const NextSuffix = "-next"

// StatusDeleting is Linode's status of an instance between its delete and
// its disappearance; it keeps its label meanwhile.
const StatusDeleting = "deleting"

// Server is one cloud VM that runs a nameserver.
type Server struct {
	ID     int    `json:"id"`
	Label  string `json:"label"`
	Status string `json:"status"` // provisioning, booting, running, ...
	IPv4   string `json:"ipv4"`
	// IPv6 is the server's own public IPv6 address (Linode's SLAAC
	// address, without its /128), "" where the cloud gives none. dnsroll
	// reaches servers over IPv4; IPv6 is what a load balancer replacing
	// one at an IPv6 address listens on.
	IPv6   string `json:"ipv6,omitempty"`
	Region string `json:"region,omitempty"`
	// Type and Image are the plan and the image it was created with, as
	// the cloud reports them ("" where it does not).
	Type  string   `json:"type,omitempty"`
	Image string   `json:"image,omitempty"`
	Tags  []string `json:"tags,omitempty"`
	// DNSPort is where the server answers DNS: 53 on real VMs, a distinct
	// loopback port per VM in the lab.
	DNSPort int `json:"dns_port"`
	// UserData is set for a server created with cloud-init user data:
	// dnsroll's gives the server its SSH host key (hostkeys.Keeper.Give),
	// which its first contact then expects instead of trusting on first use.
	UserData bool `json:"user_data,omitempty"`
}

// DNSAddr is the host:port that answers DNS queries for the server.
func (s Server) DNSAddr() string {
	port := s.DNSPort
	if port == 0 {
		port = 53
	}
	return net.JoinHostPort(s.IPv4, strconv.Itoa(port))
}

// HasTag reports whether the server carries tag. Linode's tags ignore
// letter case: a tag the account already has keeps its spelling, whatever
// a create asked for.
func (s Server) HasTag(tag string) bool {
	return slices.ContainsFunc(s.Tags, func(t string) bool { return strings.EqualFold(t, tag) })
}

// String is for logs and status output.
func (s Server) String() string {
	return fmt.Sprintf("%s (id %d, %s)", s.Label, s.ID, s.DNSAddr())
}

// Labels names servers as steps and notes do: their labels, comma
// separated, or none when there are none.
func Labels(servers []Server, none string) string {
	if len(servers) == 0 {
		return none
	}
	names := make([]string, len(servers))
	for i, s := range servers {
		names[i] = s.Label
	}
	return strings.Join(names, ",")
}

// ServerSpec is what the cloud needs to create a server.
type ServerSpec struct {
	Label  string   `json:"label"`
	Region string   `json:"region"`
	Type   string   `json:"type"`
	Image  string   `json:"image"`
	Tags   []string `json:"tags"`
	// FirewallID, when not zero, is the Cloud Firewall the server is
	// created behind, so it is never reachable unfiltered.
	FirewallID int `json:"firewall_id,omitempty"`
}

// Unlike says how s differs from what spec asks for in region, plan and
// image, or "" where it is alike. A field the cloud did not report counts
// as alike: an image deleted since, say.
func (spec ServerSpec) Unlike(s Server) string {
	var out []string
	for _, f := range []struct{ name, has, want string }{{"region", s.Region, spec.Region}, {"type", s.Type, spec.Type}, {"image", s.Image, spec.Image}} {
		if f.has != "" && f.want != "" && f.has != f.want {
			out = append(out, fmt.Sprintf("%s %s, not %s", f.name, f.has, f.want))
		}
	}
	return strings.Join(out, "; ")
}

// Unoffered is a field of a ServerSpec that names something the cloud
// will not create a server with.
type Unoffered struct {
	// Field is region, type, image or firewall_id.
	Field string
	// Why says why, where the cloud has the thing but not for this
	// server (a plan sold out in the region); empty, it has no such thing.
	Why string
}

// Denied is what a cloud's token may not do of what a rollout does.
type Denied struct {
	// User is who the token acts as.
	User string
	// Create is set when the token may not create servers.
	Create bool
	// Tag is set when the token may not tag the servers it creates,
	// which every create does with the fleet's tag.
	Tag bool
	// ReadOnly are servers the token may read but not change or delete.
	ReadOnly []Server
}

// Lock is a lock on a server that stops its deletion until someone
// removes it: one of Linode's resource locks.
type Lock struct {
	// ID is the lock's own ID, which removing it names.
	ID int
	// Type is Linode's lock type: cannot_delete or
	// cannot_delete_with_subresources.
	Type string
	// ServerID and Label are the locked server's.
	ServerID int
	Label    string
}

// Removal says how to remove the lock: Linode lets an unrestricted user
// of the account alone see or remove locks.
func (l Lock) Removal() string {
	return fmt.Sprintf("an unrestricted user of the account removes it with `linode-cli resource-locks delete %d` (API: DELETE /v4beta/locks/%d) "+
		"or in Cloud Manager, on the Linode's menu", l.ID, l.ID)
}

// NextLabel is the label of the green server that replaces label.
func NextLabel(label string) string { return label + NextSuffix }

// CheckLabel applies Linode's rule for instance labels: 3 to 64
// characters, starting with a letter and ending with a letter or digit,
// made of letters, digits, dashes, underscores and dots, with no two
// dashes, underscores or dots in a row. The error says which part fails.
// The simulator enforces the same rule, so a label that passes here is
// one that Linode takes.
func CheckLabel(l string) error {
	isLetter := func(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
	isAlnum := func(c byte) bool { return isLetter(c) || c >= '0' && c <= '9' }
	// Characters, not bytes: a label may only hold ASCII, but an error
	// about one that does not must name what the operator wrote.
	if l == "" {
		return errors.New("label is required: 3-64 characters, starting with a letter, of letters, digits, dashes, underscores and dots")
	}
	if n := utf8.RuneCountInString(l); n < 3 || n > 64 {
		return fmt.Errorf("label %q: must be 3-64 characters, has %d", l, n)
	}
	for _, r := range l {
		if r >= utf8.RuneSelf || !isAlnum(byte(r)) && !strings.ContainsRune("-_.", r) {
			return fmt.Errorf("label %q: %q is not allowed; use letters, digits, dashes, underscores and dots", l, r)
		}
	}
	switch {
	case !isLetter(l[0]):
		return fmt.Errorf("label %q: must start with a letter", l)
	case !isAlnum(l[len(l)-1]):
		return fmt.Errorf("label %q: must end with a letter or digit", l)
	case strings.Contains(l, "--") || strings.Contains(l, "__") || strings.Contains(l, ".."):
		return fmt.Errorf("label %q: must not have two dashes, underscores or dots in a row", l)
	}
	return nil
}

// FinalLabel strips exactly one trailing "-next". It is not a character-set
// strip: "ns1-next" becomes "ns1", and "next-next" becomes "next".
func FinalLabel(label string) (string, bool) {
	if !strings.HasSuffix(label, NextSuffix) || len(label) == len(NextSuffix) {
		return label, false
	}
	return strings.TrimSuffix(label, NextSuffix), true
}

// Error codes, in the style of wtf: one code per kind of failure, mapped to
// HTTP statuses by the API and to retryability by the activities.
const (
	EINVALID  = "invalid"   // bad input; retrying will not help
	ENOTFOUND = "not_found" // the thing does not exist
	ECONFLICT = "conflict"  // the thing exists in a state that forbids the request
	EINTERNAL = "internal"  // anything else
)

// Error is a dnsroll error with a code and a message fit for an operator.
type Error struct {
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Message }

// Errorf returns an *Error with code.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of err, EINTERNAL if it carries none.
func ErrorCode(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	if err == nil {
		return ""
	}
	return EINTERNAL
}

// ErrNotFound is returned by lookups that find nothing.
var ErrNotFound = &Error{Code: ENOTFOUND, Message: "not found"}
