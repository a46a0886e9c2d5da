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

// vmDriver is the driver the tests without a lab use, around runner.
func vmDriver(runner lb.Runner) lbtest.Driver { return &Driver{Reach: lb.Reach{Runner: runner}} }

func TestPointVMRequest(t *testing.T) {
	h := lbtest.PointVM(t, vmDriver, "nginx", "/srv/dnsroll/ansible/loadbalancer.yml")
	conf, _ := h.Vars["dnsroll_nginx_conf"].(string)
	for _, want := range []string{"server 192.0.2.20:53;", "listen 192.0.2.10:53 udp reuseport;", "pid /run/nginx.pid;", "worker_processes auto;"} {
		if !strings.Contains(conf, want) {
			t.Errorf("config lacks %q:\n%s", want, conf)
		}
	}
}

func TestPointErrorCodes(t *testing.T) {
	bal := config.LoadBalancer{Name: "lb1", Address: "192.0.2.10:53"}
	lbtest.PointErrors(t, "nginx: point ", "loadbalancer : "+applyTask, vmDriver, []lbtest.PointCase{
		{
			// The role's one module also waits for nginx and the backends:
			// its failing is retryable unless nginx -t refused the config.
			Name: "nginx not serving in time is retryable",
			LB:   bal,
			Res: provision.Result{Failures: []provision.Failure{{
				Host: "lb1", Task: "loadbalancer : " + applyTask,
				Message: "staged backend 192.0.2.20:53 does not accept TCP from this load balancer after 30s",
			}}},
			Err:  errors.New("playbook failed"),
			Code: dnsroll.EINTERNAL,
		},
		{
			Name: "unreachable host is retryable",
			LB:   bal,
			Res:  provision.Result{Hosts: map[string]provision.HostStats{"lb1": {Unreachable: 1}}},
			Err:  errors.New("lb1 unreachable"),
			Code: dnsroll.EINTERNAL,
		},
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
