package activities

import (
	"context"
	"net"
	"testing"
	"time"

	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/worker"

	"github.com/dnsroll/dnsroll/config"
	"github.com/dnsroll/dnsroll/internal/leaktest"
)

// A worker verifies thousands of times over weeks, some runs against a
// server that never answers and some cancelled midway (the rollout was
// stopped): each must give back its heartbeat loop, probes and sockets.
func TestVerifyRunsLeaveNothingBehind(t *testing.T) {
	green := serveZone(t, verifyZone)
	silent, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	in := verifyInput(t, true, verifyZone)
	in.Fleet.Probe.Timeout = config.Duration(200 * time.Millisecond) // the silent server's runs wait it out
	var s testsuite.WorkflowTestSuite
	run := func(target string, cancelAfter time.Duration) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		if cancelAfter > 0 {
			time.AfterFunc(cancelAfter, cancel)
		}
		env := s.NewTestActivityEnvironment()
		env.SetWorkerOptions(worker.Options{BackgroundActivityContext: ctx})
		env.RegisterActivity(&Activities{})
		in := in
		in.Targets = []ProbeTarget{{Name: "ns1-next", Addr: target}}
		_, _ = env.ExecuteActivity((&Activities{}).Verify, in)
	}
	round := func(i int) {
		run(green, 0)
		run(silent.LocalAddr().String(), 0)
		run(silent.LocalAddr().String(), time.Duration(10+i%5*10)*time.Millisecond)
	}
	round(0)
	base := leaktest.Take(t)
	for i := range 20 {
		round(i)
	}
	leaktest.Check(t, base, 2, 5*time.Second)
}
