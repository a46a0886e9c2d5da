package dnsdist

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/config"
	"github.com/dnsroll/dnsroll/lb"
	"github.com/dnsroll/dnsroll/lb/lbtest"
	"github.com/dnsroll/dnsroll/provision"
)

// vmDriver is the driver the tests without a lab use, around runner.
func vmDriver(runner lb.Runner) lbtest.Driver { return &Driver{Reach: lb.Reach{Runner: runner}} }

func TestPointVMRequest(t *testing.T) {
	// The playbook sits beside the fleet's loadbalancer playbook.
	h := lbtest.PointVM(t, vmDriver, "dnsdist", "/srv/dnsroll/ansible/dnsdist.yml")
	for name, want := range map[string]any{
		"dnsroll_dnsdist_console":      "127.0.0.1:5199",
		"dnsroll_dnsdist_key_file":     "/etc/dnsdist/dnsroll-console.key",
		"dnsroll_dnsdist_check_name":   "example.com.",
		"dnsroll_dnsdist_check_type":   "SOA",
		"dnsroll_dnsdist_must_resolve": true,
	} {
		if got := h.Vars[name]; got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	if got, _ := h.Vars["dnsroll_dnsdist_backends"].([]string); len(got) != 1 || got[0] != "192.0.2.20:53" {
		t.Errorf("backends = %v, want [192.0.2.20:53]", h.Vars["dnsroll_dnsdist_backends"])
	}
	conf, _ := h.Vars["dnsroll_dnsdist_conf"].(string)
	settings, _ := h.Vars["dnsroll_dnsdist_settings"].(string)
	if !strings.Contains(conf, "newServer({address = '192.0.2.20:53'") || !strings.Contains(conf, "setLocal('192.0.2.10:53')") {
		t.Errorf("config:\n%s", conf)
	}
	if strings.Contains(settings, "newServer") || !strings.Contains(settings, "setLocal('192.0.2.10:53')") {
		t.Errorf("settings must be the config without backends:\n%s", settings)
	}
	for _, v := range h.Vars {
		if s, ok := v.(string); ok && strings.Contains(s, "setKey('") {
			t.Errorf("a variable carries a console key: %q", s)
		}
	}

	lbtest.PointVM(t, func(r lb.Runner) lbtest.Driver {
		return &Driver{Reach: lb.Reach{Runner: r}, Playbook: "/opt/dnsroll/dnsdist.yml"}
	}, "dnsdist", "/opt/dnsroll/dnsdist.yml")
}

func TestPointErrorCodes(t *testing.T) {
	bal := config.LoadBalancer{Name: "lb1", Address: "192.0.2.10:53"}
	lbtest.PointErrors(t, "dnsdist: point ", "dnsdist : "+installTask, vmDriver, []lbtest.PointCase{
		{
			// The role's module also waits for dnsdist: its failing is
			// retryable unless the check refused the config.
			Name: "dnsdist not listening in time is retryable",
			LB:   bal,
			Res: provision.Result{Failures: []provision.Failure{{
				Host: "lb1", Task: "dnsdist : " + installTask, Message: "dnsdist does not accept TCP on 192.0.2.10:53 after 30s",
			}}},
			Err:  errors.New("playbook failed"),
			Code: dnsroll.EINTERNAL,
		},
		{
			Name: "a backend that never comes up is retryable",
			LB:   bal,
			Res: provision.Result{Failures: []provision.Failure{{
				Host: "lb1", Task: "dnsdist : Point the running dnsdist at the backends through its console", Message: "backends not up after 30s",
			}}},
			Err:  errors.New("playbook failed"),
			Code: dnsroll.EINTERNAL,
		},
		{Name: "hostname address", LB: config.LoadBalancer{Name: "lb1", Address: "lb1.example.net:53"}, Code: dnsroll.EINVALID},
	})
}

// TestStageVMRequest: Stage runs the same playbook in stage mode, with the
// staged backends beside the live ones and both in the config.
func TestStageVMRequest(t *testing.T) {
	runner := &lbtest.FakeRunner{}
	d := &Driver{Reach: lb.Reach{Runner: runner}}
	lb := config.LoadBalancer{Name: "lb1", Address: "192.0.2.10:53", Driver: "dnsdist"}
	live := []dnsroll.Server{{Label: "ns1", IPv4: "192.0.2.20"}}
	staged := []dnsroll.Server{{Label: "ns1-next", IPv4: "192.0.2.30"}}
	if err := d.Stage(context.Background(), lbtest.VMFleet(), lb, live, staged); err != nil {
		t.Fatal(err)
	}
	h := runner.Req.Hosts[0]
	if got := h.Vars["dnsroll_dnsdist_mode"]; got != "stage" {
		t.Errorf("mode = %v, want stage", got)
	}
	if got, _ := h.Vars["dnsroll_dnsdist_staged"].([]string); len(got) != 1 || got[0] != "192.0.2.30:53" {
		t.Errorf("staged = %v, want [192.0.2.30:53]", h.Vars["dnsroll_dnsdist_staged"])
	}
	conf, _ := h.Vars["dnsroll_dnsdist_conf"].(string)
	if !strings.Contains(conf, "address = '192.0.2.20:53', name = '192.0.2.20:53', checkName") ||
		!strings.Contains(conf, "address = '192.0.2.30:53', name = '192.0.2.30:53', pool = 'staged'") {
		t.Errorf("config does not record blue live and green staged:\n%s", conf)
	}
}

// TestFlipNeedsChannel: a fleet reached over SSH needs an Opener; the error
// says which field to set rather than failing to connect.
func TestFlipNeedsChannel(t *testing.T) {
	d := &Driver{Reach: lb.Reach{Runner: &lbtest.FakeRunner{}}}
	lb := config.LoadBalancer{Name: "lb1", Address: "192.0.2.10:53", Driver: "dnsdist"}
	err := d.Flip(context.Background(), lbtest.VMFleet(), lb, nil)
	if dnsroll.ErrorCode(err) != dnsroll.EINVALID {
		t.Errorf("Flip with no shares: %v, want EINVALID", err)
	}
	_, err = d.Stats(context.Background(), lbtest.VMFleet(), lb)
	if dnsroll.ErrorCode(err) != dnsroll.EINVALID || !strings.Contains(err.Error(), "Channels") {
		t.Errorf("Stats over ssh without Channels: %v, want EINVALID naming Channels", err)
	}
}

// TestLabConsoles: a lab load balancer on 127.0.0.1 keeps its console on
// 127.0.0.2 at its own port, one on ::1 on 127.0.0.3; two on port 53 of addresses of their own (the
// delegation lab's, as glue needs) keep theirs apart, on those addresses.
func TestLabConsoles(t *testing.T) {
	d := &Driver{Reach: lb.Reach{Place: config.PlaceIn(t.TempDir())}}
	fleet := &config.Fleet{Name: "lab", Lab: &config.Lab{DNSPortBase: 15300}}
	for addr, want := range map[string]string{
		"127.0.0.1:15401": "127.0.0.2:15401",
		"127.53.7.10:53":  "127.53.7.10:5199",
		"127.53.7.11:53":  "127.53.7.11:5199",
		// ::1 is one address: two there are told apart by port too.
		"[::1]:15402": "127.0.0.3:15402",
		"[::1]:15403": "127.0.0.3:15403",
	} {
		s, err := d.console(fleet, config.LoadBalancer{Name: "lb1", Address: addr})
		if err != nil || s.addr != want {
			t.Errorf("console of a load balancer on %s: %q, %v; want %s", addr, s.addr, err, want)
		}
	}
}
