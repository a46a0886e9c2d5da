package lbtest

import (
	"context"
	"errors"
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
// code and an error starting with prefix (the driver's package). Besides
// cases it runs those every driver shares: the playbook's validateTask
// (the role's task that checks the rendered config) failing, an address
// without a port and a name escaping the lab directory are all EINVALID,
// since no retry fixes them.
func PointErrors(t *testing.T, prefix, validateTask string, newDriver func(lb.Runner) Driver, cases []PointCase) {
	t.Helper()
	cases = append([]PointCase{
		{
			Name: "the config fails validation",
			LB:   config.LoadBalancer{Name: "lb1", Address: "192.0.2.10:53"},
			Res: provision.Result{Failures: []provision.Failure{{
				Host: "lb1", Task: validateTask, Message: "failed to validate",
			}}},
			Err:  errors.New("playbook failed"),
			Code: dnsroll.EINVALID,
		},
		{Name: "address without port", LB: config.LoadBalancer{Name: "lb1", Address: "192.0.2.10"}, Code: dnsroll.EINVALID},
		{Name: "name escaping the lab dir", LB: config.LoadBalancer{Name: "../lb1", Address: "192.0.2.10:53"}, Code: dnsroll.EINVALID},
	}, cases...)
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

// PointVM points a driver made by newDriver around a FakeRunner at
// backend ns1-next (192.0.2.20) for load balancer lb1 (192.0.2.10:53,
// driver) on VMFleet, and checks what every driver asks the playbook for:
// playbook over SSH as deploy, on the one host lb1 at its address (its
// ssh_host when it has one), not in a lab, listening on port 53. It
// returns the host, for the driver's own variables.
func PointVM(t *testing.T, newDriver func(lb.Runner) Driver, driver, playbook string) provision.Host {
	t.Helper()
	runner := &FakeRunner{}
	d := newDriver(runner)
	bal := config.LoadBalancer{Name: "lb1", Address: "192.0.2.10:53", Driver: driver}
	backends := []dnsroll.Server{{Label: "ns1-next", IPv4: "192.0.2.20"}}
	if err := d.Point(context.Background(), VMFleet(), bal, backends); err != nil {
		t.Fatal(err)
	}
	req := runner.Req
	if got, want := req.Playbook, playbook; got != want {
		t.Errorf("playbook = %q, want %q", got, want)
	}
	if got, want := req.Connection+" "+req.User, "ssh deploy"; got != want {
		t.Errorf("connection and user = %q, want %q", got, want)
	}
	if len(req.Hosts) != 1 {
		t.Fatalf("hosts = %+v, want one", req.Hosts)
	}
	h := req.Hosts[0]
	if got, want := h.Name+" "+h.Address, "lb1 192.0.2.10"; got != want {
		t.Errorf("host = %q, want %q", got, want)
	}
	if got := h.Vars["dnsroll_lab_dir"]; got != "" {
		t.Errorf("dnsroll_lab_dir = %q on a VM, want empty", got)
	}
	if got, want := h.Vars["dnsroll_lb_listen_port"], 53; got != want {
		t.Errorf("listen port = %v, want %v", got, want)
	}

	bal.SSHHost = "lb1.mgmt.example.net"
	if err := d.Point(context.Background(), VMFleet(), bal, backends); err != nil {
		t.Fatal(err)
	}
	if got, want := runner.Req.Hosts[0].Address, "lb1.mgmt.example.net"; got != want {
		t.Errorf("address with ssh_host = %q, want %q", got, want)
	}
	return h
}
