// Package dnsroll holds the domain types shared by every part of dnsroll:
// servers, endpoints, and typed error codes. Subpackages wrap one external
// system each (Linode, Ansible, BIND probes, load balancers, Temporal).
package dnsroll

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
)

// NextSuffix marks a green server before the rename step gives it its final label.
const NextSuffix = "-next"

// Server is one cloud VM that runs a nameserver.
type Server struct {
	ID     int      `json:"id"`
	Label  string   `json:"label"`
	Status string   `json:"status"` // provisioning, booting, running, ...
	IPv4   string   `json:"ipv4"`
	Region string   `json:"region,omitempty"`
	Tags   []string `json:"tags,omitempty"`
	// DNSPort is where the server answers DNS: 53 on real VMs, a distinct
	// loopback port per VM in the lab.
	DNSPort int `json:"dns_port"`
}

// DNSAddr is the host:port that answers DNS queries for the server.
func (s Server) DNSAddr() string {
	port := s.DNSPort
	if port == 0 {
		port = 53
	}
	return net.JoinHostPort(s.IPv4, strconv.Itoa(port))
}

// HasTag reports whether the server carries tag.
func (s Server) HasTag(tag string) bool {
	for _, t := range s.Tags {
		if t == tag {
			return true
		}
	}
	return false
}

// String is for logs and status output.
func (s Server) String() string {
	return fmt.Sprintf("%s (id %d, %s)", s.Label, s.ID, s.DNSAddr())
}

// ServerSpec is what the cloud needs to create a server.
type ServerSpec struct {
	Label  string   `json:"label"`
	Region string   `json:"region"`
	Type   string   `json:"type"`
	Image  string   `json:"image"`
	Tags   []string `json:"tags"`
}

// NextLabel is the label of the green server that replaces label.
func NextLabel(label string) string { return label + NextSuffix }

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
