package nginx

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/config"
	"github.com/dnsroll/dnsroll/lb"
	"github.com/dnsroll/dnsroll/lb/lbtest"
	"github.com/dnsroll/dnsroll/provision"
)

func TestPointVMRequest(t *testing.T) {
	runner := &lbtest.FakeRunner{}
	d := &Driver{Runner: runner}
	lb := config.LoadBalancer{Name: "lb1", Address: "192.0.2.10:53"}
	backends := []dnsroll.Server{{Label: "ns1-next", IPv4: "192.0.2.20"}}
	if err := d.Point(context.Background(), lbtest.VMFleet(), lb, backends); err != nil {
		t.Fatal(err)
	}
	req := runner.Req
	if got, want := req.Playbook, "/srv/dnsroll/ansible/loadbalancer.yml"; got != want {
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
	conf, _ := h.Vars["dnsroll_nginx_conf"].(string)
	for _, want := range []string{"server 192.0.2.20:53;", "listen 192.0.2.10:53 udp reuseport;", "pid /run/nginx.pid;", "worker_processes auto;"} {
		if !strings.Contains(conf, want) {
			t.Errorf("config lacks %q:\n%s", want, conf)
		}
	}

	lb.SSHHost = "lb1.mgmt.example.net"
	if err := d.Point(context.Background(), lbtest.VMFleet(), lb, backends); err != nil {
		t.Fatal(err)
	}
	if got, want := runner.Req.Hosts[0].Address, "lb1.mgmt.example.net"; got != want {
		t.Errorf("address with ssh_host = %q, want %q", got, want)
	}
}

func TestPointErrorCodes(t *testing.T) {
	bal := config.LoadBalancer{Name: "lb1", Address: "192.0.2.10:53"}
	lbtest.PointErrors(t, "nginx: point ", func(r lb.Runner) lbtest.Driver { return &Driver{Runner: r} }, []lbtest.PointCase{
		{
			Name: "nginx -t rejects the config",
			LB:   bal,
			Res: provision.Result{Failures: []provision.Failure{{
				Host: "lb1", Task: "loadbalancer : " + validateTask, Message: "failed to validate",
			}}},
			Err:  errors.New("playbook failed"),
			Code: dnsroll.EINVALID,
		},
		{
			Name: "unreachable host is retryable",
			LB:   bal,
			Res:  provision.Result{Hosts: map[string]provision.HostStats{"lb1": {Unreachable: 1}}},
			Err:  errors.New("lb1 unreachable"),
			Code: dnsroll.EINTERNAL,
		},
		{Name: "address without port", LB: config.LoadBalancer{Name: "lb1", Address: "192.0.2.10"}, Code: dnsroll.EINVALID},
		{Name: "name escaping the lab dir", LB: config.LoadBalancer{Name: "../lb1", Address: "192.0.2.10:53"}, Code: dnsroll.EINVALID},
	})
}

func TestStopWithoutNginx(t *testing.T) {
	dir := t.TempDir()
	if err := Stop(context.Background(), dir); err != nil {
		t.Fatalf("Stop on an empty dir: %v", err)
	}
	// A pid file naming a live process that is not nginx (this test) must
	// not be signalled.
	if err := os.WriteFile(dir+"/nginx.pid", []byte(itoa(os.Getpid())+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := MasterPID(dir); err == nil {
		t.Fatal("MasterPID accepted a pid that is not nginx")
	}
	if err := Stop(context.Background(), dir); err != nil {
		t.Fatalf("Stop with a foreign pid: %v", err)
	}
}
