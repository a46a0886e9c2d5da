package nginx

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/config"
	"github.com/dnsroll/dnsroll/provision"
)

// fakeRunner records the request and returns a canned result.
type fakeRunner struct {
	req provision.Request
	res provision.Result
	err error
}

func (f *fakeRunner) Run(_ context.Context, req provision.Request, _ func(string)) (provision.Result, error) {
	f.req = req
	return f.res, f.err
}

func vmFleet() *config.Fleet {
	return &config.Fleet{
		Name:    "prod",
		Dir:     "/srv/dnsroll",
		Ansible: config.Ansible{Connection: "ssh", LoadBalancerPlaybook: "ansible/loadbalancer.yml", SSHUser: "deploy"},
	}
}

func TestPointVMRequest(t *testing.T) {
	runner := &fakeRunner{}
	d := &Driver{Runner: runner}
	lb := config.LoadBalancer{Name: "lb1", Address: "192.0.2.10:53"}
	backends := []dnsroll.Server{{Label: "ns1-next", IPv4: "192.0.2.20"}}
	if err := d.Point(context.Background(), vmFleet(), lb, backends); err != nil {
		t.Fatal(err)
	}
	req := runner.req
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
	if err := d.Point(context.Background(), vmFleet(), lb, backends); err != nil {
		t.Fatal(err)
	}
	if got, want := runner.req.Hosts[0].Address, "lb1.mgmt.example.net"; got != want {
		t.Errorf("address with ssh_host = %q, want %q", got, want)
	}
}

func TestPointErrorCodes(t *testing.T) {
	lb := config.LoadBalancer{Name: "lb1", Address: "192.0.2.10:53"}
	for _, tc := range []struct {
		name string
		lb   config.LoadBalancer
		res  provision.Result
		err  error
		code string
	}{
		{
			name: "nginx -t rejects the config",
			lb:   lb,
			res: provision.Result{Failures: []provision.Failure{{
				Host: "lb1", Task: "loadbalancer : " + validateTask, Message: "failed to validate",
			}}},
			err:  errors.New("playbook failed"),
			code: dnsroll.EINVALID,
		},
		{
			name: "unreachable host is retryable",
			lb:   lb,
			res:  provision.Result{Hosts: map[string]provision.HostStats{"lb1": {Unreachable: 1}}},
			err:  errors.New("lb1 unreachable"),
			code: dnsroll.EINTERNAL,
		},
		{name: "address without port", lb: config.LoadBalancer{Name: "lb1", Address: "192.0.2.10"}, code: dnsroll.EINVALID},
		{name: "name escaping the lab dir", lb: config.LoadBalancer{Name: "../lb1", Address: "192.0.2.10:53"}, code: dnsroll.EINVALID},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := &Driver{Runner: &fakeRunner{res: tc.res, err: tc.err}}
			err := d.Point(context.Background(), vmFleet(), tc.lb, nil)
			if got := dnsroll.ErrorCode(err); got != tc.code {
				t.Fatalf("error code = %q (%v), want %q", got, err, tc.code)
			}
			if !strings.HasPrefix(err.Error(), "nginx: point ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
		})
	}
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
