package nginx

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/activities"
	"github.com/dnsroll/dnsroll/lb"
	"github.com/dnsroll/dnsroll/lb/lbtest"
)

var _ activities.InPlaceUpdater = (*Driver)(nil)

// inplaceReloads is how many reloads TestInPlaceNginxConfig does under
// load; maxLostPerReload bounds the queries lost in each (measured: see
// docs/benchmarks.md, "In-place load balancer updates").
// maxLostPerUpgrade bounds them in a binary upgrade: not 0, since a UDP
// datagram queued on an old worker's socket as it closes is dropped.
const (
	inplaceReloads    = 10
	maxLostPerReload  = 5
	maxLostPerUpgrade = 3
)

// TestInPlaceNginxConfig reloads a lab nginx in place with new configs
// under UDP and TCP load, then rejects an invalid one and restores the
// config from before the last update.
func TestInPlaceNginxConfig(t *testing.T) {
	s := startStaged(t)
	ctx := context.Background()
	lbtest.WantTXT(t, s.lb.Address, "blue")
	master := mustMaster(t, s.dir)
	conf0, err := os.ReadFile(filepath.Join(s.dir, "nginx.conf"))
	if err != nil {
		t.Fatal(err)
	}
	id0, err := configID(string(conf0))
	if err != nil {
		t.Fatal(err)
	}

	load := lbtest.StartInPlaceLoad(t, s.lb.Address)
	ids := []string{id0}
	for i := range inplaceReloads {
		// A new config: the same proxy under a new ID, which the new
		// workers answer on the control socket.
		id := id0 + strings.Repeat("0", i+1)
		conf := strings.ReplaceAll(string(conf0), id0, id)
		note, err := s.d.Update(ctx, s.fleet, s.lb, lb.Update{Kind: lb.UpdateConfig, Config: conf})
		if err != nil {
			t.Fatalf("reload %d: %v", i, err)
		}
		if got, _ := RunningConfigID(ctx, filepath.Join(s.dir, "control.sock")); got != id {
			t.Fatalf("after reload %d (%s) the workers serve %q, want %q", i, note, got, id)
		}
		ids = append(ids, id)
		time.Sleep(200 * time.Millisecond)
	}
	sent, lost := load.Report(t, "nginx config reloads")
	t.Logf("BENCH in-place nginx config reload: %d reloads, %d queries, %d lost", inplaceReloads, sent, lost)
	if lost > maxLostPerReload*inplaceReloads {
		t.Errorf("%d queries lost in %d reloads; the bound is %d a reload", lost, inplaceReloads, maxLostPerReload)
	}
	if got := mustMaster(t, s.dir); got != master {
		t.Errorf("master pid %d became %d: a config change must reload, not restart", master, got)
	}

	// An invalid config is refused, and the running one keeps serving.
	bad := strings.Replace(string(conf0), "stream {", "stream { bogus_directive on;", 1)
	_, err = s.d.Update(ctx, s.fleet, s.lb, lb.Update{Kind: lb.UpdateConfig, Config: bad})
	if dnsroll.ErrorCode(err) != dnsroll.EINVALID || !strings.Contains(err.Error(), "nginx -t") {
		t.Errorf("invalid config: error %v (code %q), want EINVALID from nginx -t", err, dnsroll.ErrorCode(err))
	}
	last := ids[len(ids)-1]
	if got, _ := RunningConfigID(ctx, filepath.Join(s.dir, "control.sock")); got != last {
		t.Errorf("after the refused config the workers serve %q, want %q", got, last)
	}

	// Restore puts back the config from before the last update.
	if err := s.d.Restore(ctx, s.fleet, s.lb, lb.Update{Kind: lb.UpdateConfig}); err != nil {
		t.Fatal(err)
	}
	if got, _ := RunningConfigID(ctx, filepath.Join(s.dir, "control.sock")); got != ids[len(ids)-2] {
		t.Errorf("after restore the workers serve %q, want %q", got, ids[len(ids)-2])
	}
	lbtest.WantTXT(t, s.lb.Address, "blue")
}

// TestBinaryUpgradeNginx upgrades a lab nginx to the same binary under
// load: a new master, the old workers drained, the old master gone.
func TestBinaryUpgradeNginx(t *testing.T) {
	s := startStaged(t)
	ctx := context.Background()
	lbtest.WantTXT(t, s.lb.Address, "blue")
	load := lbtest.StartInPlaceLoad(t, s.lb.Address)
	const upgrades = 3
	for i := range upgrades {
		master := mustMaster(t, s.dir)
		note, err := s.d.Update(ctx, s.fleet, s.lb, lb.Update{Kind: lb.UpdateBinary})
		if err != nil {
			log, _ := os.ReadFile(filepath.Join(s.dir, "error.log"))
			t.Fatalf("upgrade %d: %v\nerror.log:\n%s", i, err, log)
		}
		t.Log(note)
		got := mustMaster(t, s.dir)
		if got == master {
			t.Fatalf("upgrade %d: the master is still %d", i, master)
		}
		if _, err := os.Stat(filepath.Join(s.dir, "nginx.pid.oldbin")); !os.IsNotExist(err) {
			t.Errorf("upgrade %d: nginx.pid.oldbin is still there (%v): the old master did not exit", i, err)
		}
		time.Sleep(300 * time.Millisecond)
	}
	sent, lost := load.Report(t, "nginx binary upgrades")
	t.Logf("BENCH in-place nginx binary upgrade: %d upgrades, %d queries, %d lost", upgrades, sent, lost)
	if lost > maxLostPerUpgrade*upgrades {
		t.Errorf("%d queries lost in %d binary upgrades; the bound is %d an upgrade", lost, upgrades, maxLostPerUpgrade)
	}
	lbtest.WantTXT(t, s.lb.Address, "blue")

	// Nothing under way: a restore changes nothing.
	master := mustMaster(t, s.dir)
	if err := s.d.Restore(ctx, s.fleet, s.lb, lb.Update{Kind: lb.UpdateBinary}); err != nil {
		t.Fatal(err)
	}
	if got := mustMaster(t, s.dir); got != master {
		t.Errorf("restore with no upgrade under way changed the master %d to %d", master, got)
	}
}

// TestBinaryUpgradeNginxAbort stops an upgrade after USR2, with two
// masters running, as a failure or a worker's death would: Restore puts
// the old master's workers back and stops the new master.
func TestBinaryUpgradeNginxAbort(t *testing.T) {
	s := startStaged(t)
	ctx := context.Background()
	old := mustMaster(t, s.dir)
	j, ch, err := s.d.inplace(ctx, s.fleet, s.lb)
	if err != nil {
		t.Fatal(err)
	}
	load := lbtest.StartInPlaceLoad(t, s.lb.Address)
	out, err := runInplace(ctx, ch, j, "upgrade-start", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := runInplace(ctx, ch, j, "upgrade-drain", ""); err != nil {
		t.Fatal(err)
	}
	pids := strings.Fields(string(out))
	if len(pids) != 2 || pids[0] != strconv.Itoa(old) {
		t.Fatalf("upgrade-start printed %q; want the old master %d and the new one", out, old)
	}
	if err := s.d.Restore(ctx, s.fleet, s.lb, lb.Update{Kind: lb.UpdateBinary}); err != nil {
		log, _ := os.ReadFile(filepath.Join(s.dir, "error.log"))
		t.Fatalf("restore: %v\nerror.log:\n%s", err, log)
	}
	if got := mustMaster(t, s.dir); got != old {
		t.Errorf("after the abort the master is %d; want the old one, %d", got, old)
	}
	if len(workerPIDs(t, old)) == 0 {
		t.Errorf("the old master %d has no workers after the abort", old)
	}
	if _, err := os.Stat("/proc/" + pids[1]); !os.IsNotExist(err) {
		t.Errorf("the new master %s still runs after the abort (%v)", pids[1], err)
	}
	sent, lost := load.Report(t, "nginx binary upgrade aborted")
	t.Logf("BENCH in-place nginx binary upgrade aborted: %d queries, %d lost", sent, lost)
	if lost > maxLostPerUpgrade {
		t.Errorf("%d queries lost in an aborted upgrade; the bound is %d", lost, maxLostPerUpgrade)
	}
	lbtest.WantTXT(t, s.lb.Address, "blue")
}
