package lb

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/config"
	"github.com/dnsroll/dnsroll/provision"
)

// TestDir: every driver finds a load balancer's directory here. A lab
// fleet without a lab directory is EINVALID (not treated as real
// machines), a real fleet's load balancer has none, and a name cannot
// leave the lab directory.
func TestDir(t *testing.T) {
	lab := &config.Fleet{Name: "lab", Lab: &config.Lab{DNSPortBase: 15300}}
	real := &config.Fleet{Name: "prod"}
	var none config.Placer
	if _, err := Dir(none.Place(lab), "lb1"); dnsroll.ErrorCode(err) != dnsroll.EINVALID {
		t.Errorf("lab fleet, no lab directory: %v, want EINVALID", err)
	}
	if dir, err := Dir(none.Place(real), "lb1"); dir != "" || err != nil {
		t.Errorf("real fleet: %q, %v; want no directory", dir, err)
	}
	labDir := t.TempDir()
	if dir, err := Dir(config.PlaceIn(labDir).Place(lab), "lb1"); dir != filepath.Join(labDir, "lb", "lb1") || err != nil {
		t.Errorf("lab fleet: %q, %v; want %s/lb/lb1", dir, err, labDir)
	}
	if _, err := Dir(config.PlaceIn(labDir).Place(lab), "../lb1"); dnsroll.ErrorCode(err) != dnsroll.EINVALID {
		t.Errorf("name ../lb1: %v, want EINVALID", err)
	}
}

func TestSplitAddr(t *testing.T) {
	for addr, want := range map[string]string{
		"192.0.2.1:53":     "192.0.2.1 53",
		"[2001:db8::1]:53": "2001:db8::1 53",
		"ns1.example:5353": "ns1.example 5353",
		"192.0.2.1":        "error",
		"192.0.2.1:0":      "error",
		"192.0.2.1:65536":  "error",
		"192.0.2.1:dns":    "error",
	} {
		host, port, err := SplitAddr(addr)
		got := fmt.Sprint(host, " ", port)
		if err != nil {
			got = "error"
		}
		if got != want {
			t.Errorf("SplitAddr(%q) = %s (%v), want %s", addr, got, err, want)
		}
	}
}

// failingChannel's commands fail with err; it dials nothing.
type failingChannel struct{ err error }

func (c failingChannel) Run(context.Context, string) ([]byte, error) { return nil, c.err }
func (c failingChannel) Dial(context.Context, string, string) (net.Conn, error) {
	return nil, errors.New("no dialling here")
}

type openerOf struct{ ch Channel }

func (o openerOf) Open(context.Context, *config.Fleet, config.LoadBalancer) (Channel, error) {
	return o.ch, nil
}

// CheckLogin tells a login the user must fix (no sudo without a
// password, no sudo at all), which fails at once with the fix, from one
// that may pass later, which stays retryable.
func TestCheckLoginSortsFailures(t *testing.T) {
	fleet := &config.Fleet{Name: "prod", Ansible: config.Ansible{Connection: "ssh", SSHUser: "deploy"}}
	balancer := config.LoadBalancer{Name: "lb1", Address: "203.0.113.12:53"}
	for _, tc := range []struct {
		stderr, want string
	}{
		{"sudo: a password is required", "deploy may not run commands as root with sudo -n there"},
		{"deploy is not in the sudoers file.", "deploy may not run commands as root with sudo -n there"},
		{"sh: 1: exec: sudo: not found", "the load balancer has no sudo"},
		{"sudo: PAM account management error: Authentication service cannot retrieve authentication info", ""},
	} {
		err := Reach{Channels: openerOf{failingChannel{fmt.Errorf("load balancer lb1: Process exited with status 1: %s", tc.stderr)}}}.CheckAccess(context.Background(), fleet, balancer)
		switch {
		case tc.want == "" && dnsroll.ErrorCode(err) == dnsroll.EINVALID:
			t.Errorf("%q: %v; want an error a retry may pass", tc.stderr, err)
		case tc.want != "" && (dnsroll.ErrorCode(err) != dnsroll.EINVALID || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%q: %v; want EINVALID containing %q", tc.stderr, err, tc.want)
		}
	}
}

// failedRun is a Runner whose playbook fails with these failures.
type failedRun []provision.Failure

func (r failedRun) Run(context.Context, provision.Request, func(string)) (provision.Result, error) {
	return provision.Result{Failures: r}, errors.New("ansible: playbook failed")
}

// Playbook.Run fails at once only for a config the program rejected
// (EINVALID: the validate task's failure, or a message saying so), or for
// a module that did nothing because a newer command ran first (ECONFLICT).
// A host that cannot be reached, or a package that did not install, stays
// retryable, for both drivers, which name no validate task.
func TestPlaybookRunSortsFailures(t *testing.T) {
	for _, tc := range []struct {
		name, validateTask string
		failure            provision.Failure
		code               string // "": retryable
	}{
		{"unreachable, no validate task", "", provision.Failure{Host: "lb1", Task: "Gathering Facts", Message: "Failed to connect to the host via ssh"}, ""},
		{"a package, no validate task", "", provision.Failure{Host: "lb1", Task: "nginx : Install nginx", Message: "E: Unable to locate package"}, ""},
		{"config refused, no validate task", "", provision.Failure{Host: "lb1", Task: "nginx : Install the config", Message: "failed to validate: nginx: [emerg] unknown directive"}, dnsroll.EINVALID},
		{"the validate task", "Validate the config", provision.Failure{Host: "lb1", Task: "nginx : Validate the config", Message: "non-zero return code"}, dnsroll.EINVALID},
		{"another task than the validate task", "Validate the config", provision.Failure{Host: "lb1", Task: "nginx : Install nginx", Message: "E: Unable to locate package"}, ""},
		{"overtaken", "", provision.Failure{Host: "lb1", Task: "loadbalancer : Apply the nginx config", Message: Overtaken + " (ticket 7, this one's 6), which reached ..."}, dnsroll.ECONFLICT},
	} {
		err := Playbook{Runner: failedRun{tc.failure}, ValidateTask: tc.validateTask, Validator: "nginx -t"}.Run(context.Background())
		got := dnsroll.ErrorCode(err)
		if err == nil || (tc.code != "" && got != tc.code) || (tc.code == "" && (got == dnsroll.EINVALID || got == dnsroll.ECONFLICT)) {
			t.Errorf("%s: %v (code %q), want code %q (\"\": retryable)", tc.name, err, got, tc.code)
		}
	}
}
