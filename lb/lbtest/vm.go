package lbtest

import (
	"context"
	"strings"
	"testing"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/config"
	"github.com/dnsroll/dnsroll/lb"
	"github.com/dnsroll/dnsroll/provision"
)

// FakeRunner is an lb.Runner that records the last request and returns a
// canned result, for testing what a driver asks its playbook for.
type FakeRunner struct {
	Req provision.Request
	Res provision.Result
	Err error
}

// Run records req and returns the canned result.
func (f *FakeRunner) Run(_ context.Context, req provision.Request, _ func(string)) (provision.Result, error) {
	f.Req = req
	return f.Res, f.Err
}

// VMFleet is a fleet of machines reached over SSH as deploy, with one
// zone for dnsdist's health checks.
func VMFleet() *config.Fleet {
	return &config.Fleet{
		Name:    "prod",
		Dir:     "/srv/dnsroll",
		Ansible: config.Ansible{Connection: "ssh", LoadBalancerPlaybook: "ansible/loadbalancer.yml", SSHUser: "deploy"},
		Zones:   []config.Zone{{Name: "example.com", File: "zones/example.com.zone"}},
	}
}

// PointCase is a Point that must fail with Code: on LB, with the playbook
// returning Res and Err.
type PointCase struct {
	Name string
	LB   config.LoadBalancer
	Res  provision.Result
	Err  error
	Code string
}

// PointErrors runs each case's Point on VMFleet through a driver made by
// newDriver around a FakeRunner, and fails unless it fails with the case's
// code and an error starting with prefix (the driver's package).
func PointErrors(t *testing.T, prefix string, newDriver func(lb.Runner) Driver, cases []PointCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			d := newDriver(&FakeRunner{Res: tc.Res, Err: tc.Err})
			err := d.Point(context.Background(), VMFleet(), tc.LB, nil)
			if got := dnsroll.ErrorCode(err); got != tc.Code {
				t.Fatalf("error code = %q (%v), want %q", got, err, tc.Code)
			}
			if !strings.HasPrefix(err.Error(), prefix) {
				t.Errorf("error %q lacks the package prefix %q", err, prefix)
			}
		})
	}
}
