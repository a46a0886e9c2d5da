package nginx

import (
	"context"
	"net"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/config"
	"github.com/dnsroll/dnsroll/internal/testnet"
	"github.com/dnsroll/dnsroll/lb"
	"github.com/dnsroll/dnsroll/lb/lbtest"
)

// reloadedChannel is a load balancer whose flip command succeeds and
// whose control socket, which every Dial reaches, answers as control
// says.
type reloadedChannel struct{ control string }

func (reloadedChannel) Run(context.Context, string) ([]byte, error) { return nil, nil }

func (c reloadedChannel) Dial(ctx context.Context, _, _ string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, "unix", c.control)
}

type channelOpener struct{ ch lb.Channel }

func (o channelOpener) Open(context.Context, *config.Fleet, config.LoadBalancer) (lb.Channel, error) {
	return o.ch, nil
}

// A flip whose command reported success is done only once the control
// socket answers the new config's ID: workers still on the old config (a
// reload nginx did not do) fail it, rather than pass as flipped.
func TestFlipWaitsForTheNewConfigID(t *testing.T) {
	sock := testnet.ServeUnix(t, filepath.Join(t.TempDir(), "control.sock"), func(c net.Conn) {
		_, _ = c.Write([]byte("dnsroll-0ld\n"))
	})
	d := &Driver{Reach: lb.Reach{Channels: channelOpener{reloadedChannel{control: sock}}}}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	green := dnsroll.Server{Label: "green", IPv4: "192.0.2.30"}
	err := d.Flip(ctx, lbtest.VMFleet(), config.LoadBalancer{Name: "lb1", Address: "192.0.2.10:53"}, []lb.Share{{Server: green, Weight: 1}})
	// Its last ask may be cut short by the deadline: the error says the
	// verification failed.
	if err == nil || !strings.Contains(err.Error(), "flip lb1: verify:") {
		t.Errorf("flip with the workers on the old config: %v, want its verification to fail", err)
	}
}

// Each nginx worker listens on the control socket itself, and one
// connection reaches one of them: a worker left on the old config (the
// second to answer here) fails the check though the first serves the new.
func TestVerifyServingAsksMoreThanOneWorker(t *testing.T) {
	var n atomic.Int32
	sock := testnet.ServeUnix(t, filepath.Join(t.TempDir(), "control.sock"), func(c net.Conn) {
		id := "dnsroll-ne1\n"
		if n.Add(1) > 1 {
			id = "dnsroll-0ld\n"
		}
		_, _ = c.Write([]byte(id))
	})
	if err := verifyServing(context.Background(), sock, "dnsroll-ne1"); err == nil || !strings.Contains(err.Error(), "serves config dnsroll-0ld") {
		t.Errorf("one worker on the old config: %v, want the check to fail naming it", err)
	}
}
