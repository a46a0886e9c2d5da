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
	"github.com/dnsroll/dnsroll/internal/pidfile"
	"github.com/dnsroll/dnsroll/lb"
	"github.com/dnsroll/dnsroll/lb/lbtest"
)

var _ activities.InPlaceUpdater = (*Driver)(nil)

// A worker that stops (a reload's old one, an upgrade's after WINCH, an
// aborted upgrade's new one after QUIT) drops the UDP sessions it has in
// flight: nginx closes them, "disconnected on shutdown" in its info log,
// since their replies would go out on the listening socket it has closed.
// The sockets themselves live on in the other master and workers, so no
// datagram queued on them is lost, and TCP sessions finish. Each stop
// thus loses at most one query per UDP sender of the load; more is not
// nginx's doing (measured: see docs/benchmarks.md, "In-place load
// balancer updates"), save during a stall, when a sender can have two in
// flight: the tests allow one more for each (lbtest.Load.Overlapped). A
// reload or an upgrade stops one worker (the lab runs one a master); an
// aborted upgrade two.
const (
	maxLostPerWorkerStop = lbtest.InPlaceUDPSenders
	maxLostPerReload     = maxLostPerWorkerStop
	maxLostPerUpgrade    = maxLostPerWorkerStop
	maxLostPerAbort      = 2 * maxLostPerWorkerStop
)

// inplaceReloads is how many reloads TestInPlaceNginxConfig does under
// load.
const inplaceReloads = 10

// TestInPlaceNginxConfig reloads a lab nginx in place with new configs
// under UDP and TCP load, then rejects an invalid one and restores the
// config from before the last update.
func TestInPlaceNginxConfig(t *testing.T) {
	s := startStaged(t)
	ctx := context.Background()
	lbtest.WantTXT(t, s.LB.Address, "blue")
	master := mustMaster(t, s.Dir)
	conf0, err := os.ReadFile(filepath.Join(s.Dir, "nginx.conf"))
	if err != nil {
		t.Fatal(err)
	}
	id0, err := configID(string(conf0))
	if err != nil {
		t.Fatal(err)
	}

	load := lbtest.StartInPlaceLoad(t, s.LB.Address)
	ids := []string{id0}
	for i := range inplaceReloads {
		// A new config: the same proxy under a new ID, which the new
		// workers answer on the control socket.
		id := id0 + strings.Repeat("0", i+1)
		conf := strings.ReplaceAll(string(conf0), id0, id)
		note, err := s.d.Update(ctx, s.Fleet, s.LB, lb.Update{Kind: lb.UpdateConfig, Config: conf})
		if err != nil {
			t.Fatalf("reload %d: %v", i, err)
		}
		if got, _ := RunningConfigID(ctx, filepath.Join(s.Dir, "control.sock")); got != id {
			t.Fatalf("after reload %d (%s) the workers serve %q, want %q", i, note, got, id)
		}
		ids = append(ids, id)
		time.Sleep(200 * time.Millisecond)
	}
	sent, lost := load.Report(t, "nginx config reloads")
	t.Logf("BENCH in-place nginx config reload: %d reloads, %d queries, %d lost", inplaceReloads, sent, lost)
	if over := load.Overlapped(); lost > maxLostPerReload*inplaceReloads+over {
		t.Errorf("%d queries lost in %d reloads; the bound is %d a reload, and %d for queries sent over a stall", lost, inplaceReloads, maxLostPerReload, over)
	}
	if got := mustMaster(t, s.Dir); got != master {
		t.Errorf("master pid %d became %d: a config change must reload, not restart", master, got)
	}

	// An invalid config is refused, and the running one keeps serving.
	bad := strings.Replace(string(conf0), "stream {", "stream { bogus_directive on;", 1)
	_, err = s.d.Update(ctx, s.Fleet, s.LB, lb.Update{Kind: lb.UpdateConfig, Config: bad})
	if dnsroll.ErrorCode(err) != dnsroll.EINVALID || !strings.Contains(err.Error(), "nginx -t") {
		t.Errorf("invalid config: error %v (code %q), want EINVALID from nginx -t", err, dnsroll.ErrorCode(err))
	}
	last := ids[len(ids)-1]
	if got, _ := RunningConfigID(ctx, filepath.Join(s.Dir, "control.sock")); got != last {
		t.Errorf("after the refused config the workers serve %q, want %q", got, last)
	}

	// Restoring the refused update changes nothing: it never replaced
	// the config.
	if did, err := s.d.Restore(ctx, s.Fleet, s.LB, lb.Update{Kind: lb.UpdateConfig, Config: bad}); err != nil || did.Undone || !strings.HasPrefix(did.Note, "nothing to restore") {
		t.Fatalf("restoring the refused update: %+v, %v; want nothing to restore", did, err)
	}
	if got, _ := RunningConfigID(ctx, filepath.Join(s.Dir, "control.sock")); got != last {
		t.Errorf("restoring the refused update made the workers serve %q, want %q, the last update's", got, last)
	}

	// Restoring the last update puts back the config from before it.
	lastConf := strings.ReplaceAll(string(conf0), id0, last)
	if did, err := s.d.Restore(ctx, s.Fleet, s.LB, lb.Update{Kind: lb.UpdateConfig, Config: lastConf}); err != nil || !did.Undone || !strings.HasPrefix(did.Note, "restored") {
		t.Fatalf("restoring the last update: %+v, %v; want restored", did, err)
	}
	if got, _ := RunningConfigID(ctx, filepath.Join(s.Dir, "control.sock")); got != ids[len(ids)-2] {
		t.Errorf("after restore the workers serve %q, want %q", got, ids[len(ids)-2])
	}
	lbtest.WantTXT(t, s.LB.Address, "blue")
}

// TestInPlaceNginxRestoreRefused refuses config updates, one nginx -t
// rejects and one without the control server, after a successful update
// and a rollout's flip that rewrote the config: their Restore must
// change nothing, not put back the config from before the earlier update
// (blue's, which the flip had replaced). Each update's Restore puts back
// only what ran just before it.
func TestInPlaceNginxRestoreRefused(t *testing.T) {
	s := startStaged(t)
	ctx := context.Background()
	sock := filepath.Join(s.Dir, "control.sock")
	read := func() string {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(s.Dir, "nginx.conf"))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	restore := func(u lb.Update, want string) {
		t.Helper()
		did, err := s.d.Restore(ctx, s.Fleet, s.LB, u)
		if err != nil {
			t.Fatalf("restore: %v", err)
		}
		if undone := !strings.HasPrefix(want, "nothing"); did.Undone != undone || !strings.HasPrefix(did.Note, want) {
			t.Errorf("restore: %+v, want %q, undone %v", did, want, undone)
		}
	}
	// An update that goes in keeps blue's config, from before it.
	conf0 := read()
	conf1 := strings.Replace(conf0, "return \"dnsroll-", "return \"dnsroll-0", 1)
	if _, err := s.d.Update(ctx, s.Fleet, s.LB, lb.Update{Kind: lb.UpdateConfig, Config: conf1}); err != nil {
		t.Fatal(err)
	}
	// A rollout flips to green: a new nginx.conf, no update of it kept.
	if err := s.flip(ctx, lb.Share{Server: s.green, Weight: 1}, lb.Share{Server: s.blue}); err != nil {
		t.Fatal(err)
	}
	lbtest.WantTXT(t, s.LB.Address, "green")
	flipped := read()
	flippedID, _ := RunningConfigID(ctx, sock)

	for _, tc := range []struct{ name, config string }{
		{"nginx -t rejects it", strings.Replace(strings.Replace(flipped, "stream {", "stream { bogus_directive on;", 1), "return \"dnsroll-", "return \"dnsroll-2", 1)},
		{"no control server", "this is not nginx {\n"},
		// The check after the reload could not tell the new workers
		// from the old ones.
		{"the live config's ID", strings.Replace(flipped, "stream {", "stream {\n    # changed, ID kept", 1)},
	} {
		u := lb.Update{Kind: lb.UpdateConfig, Config: tc.config}
		_, err := s.d.Update(ctx, s.Fleet, s.LB, u)
		if dnsroll.ErrorCode(err) != dnsroll.EINVALID {
			t.Fatalf("%s: update error %v, want EINVALID", tc.name, err)
		}
		// The operator wrote no template: the error shows the block to
		// keep, with this load balancer's socket.
		if tc.name == "no control server" && (strings.Contains(err.Error(), "{{") || !strings.Contains(err.Error(), "server { listen unix:"+sock+";")) {
			t.Errorf("%s: error %q does not show the control server block to keep", tc.name, err)
		}
		if tc.name == "the live config's ID" && (!strings.Contains(err.Error(), flippedID) || !strings.Contains(err.Error(), "an ID of its own")) {
			t.Errorf("%s: error %q does not name the live ID and ask for another", tc.name, err)
		}
		restore(u, "nothing to restore: this update never replaced the config")
		if got := read(); got != flipped {
			t.Errorf("%s: restoring the refused update rewrote nginx.conf:\n%s", tc.name, got)
		}
		if got, _ := RunningConfigID(ctx, sock); got != flippedID {
			t.Errorf("%s: after restoring the refused update nginx serves %q, want the flipped config's %q", tc.name, got, flippedID)
		}
		lbtest.WantTXT(t, s.LB.Address, "green")
	}

	// A plain reload, then the flipped config again as an update: neither
	// changed nginx.conf, so neither's Restore puts an older one back.
	for _, u := range []lb.Update{{Kind: lb.UpdateConfig}, {Kind: lb.UpdateConfig, Config: flipped}} {
		if _, err := s.d.Update(ctx, s.Fleet, s.LB, u); err != nil {
			t.Fatal(err)
		}
		restore(u, "nothing to restore: this update left the config as it was")
		if got := read(); got != flipped {
			t.Errorf("restoring update %.20q that changed nothing rewrote nginx.conf:\n%s", u.Config, got)
		}
		lbtest.WantTXT(t, s.LB.Address, "green")
	}

	// An update after the flip: its Restore puts back the flipped config,
	// and a second Restore (a retry) keeps it.
	conf2 := strings.Replace(flipped, "return \"dnsroll-", "return \"dnsroll-0", 1)
	u := lb.Update{Kind: lb.UpdateConfig, Config: conf2}
	if _, err := s.d.Update(ctx, s.Fleet, s.LB, u); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		restore(u, "restored the config from before this update")
		if got := read(); got != flipped {
			t.Errorf("after restoring the update nginx.conf is not the flipped config:\n%s", got)
		}
		if got, _ := RunningConfigID(ctx, sock); got != flippedID {
			t.Errorf("after restoring the update nginx serves %q, want the flipped config's %q", got, flippedID)
		}
	}
	lbtest.WantTXT(t, s.LB.Address, "green")
}

// TestBinaryUpgradeNginx upgrades a lab nginx to the same binary under
// load: a new master, the old workers drained, the old master gone.
func TestBinaryUpgradeNginx(t *testing.T) {
	s := startStaged(t)
	ctx := context.Background()
	lbtest.WantTXT(t, s.LB.Address, "blue")
	load := lbtest.StartInPlaceLoad(t, s.LB.Address)
	const upgrades = 3
	for i := range upgrades {
		master := mustMaster(t, s.Dir)
		note, err := s.d.Update(ctx, s.Fleet, s.LB, lb.Update{Kind: lb.UpdateBinary})
		if err != nil {
			log, _ := os.ReadFile(filepath.Join(s.Dir, "error.log"))
			t.Fatalf("upgrade %d: %v\nerror.log:\n%s", i, err, log)
		}
		t.Log(note)
		got := mustMaster(t, s.Dir)
		if got == master {
			t.Fatalf("upgrade %d: the master is still %d", i, master)
		}
		if _, err := os.Stat(filepath.Join(s.Dir, "nginx.pid.oldbin")); !os.IsNotExist(err) {
			t.Errorf("upgrade %d: nginx.pid.oldbin is still there (%v): the old master did not exit", i, err)
		}
		time.Sleep(300 * time.Millisecond)
	}
	sent, lost := load.Report(t, "nginx binary upgrades")
	t.Logf("BENCH in-place nginx binary upgrade: %d upgrades, %d queries, %d lost", upgrades, sent, lost)
	if over := load.Overlapped(); lost > maxLostPerUpgrade*upgrades+over {
		t.Errorf("%d queries lost in %d binary upgrades; the bound is %d an upgrade, and %d for queries sent over a stall", lost, upgrades, maxLostPerUpgrade, over)
	}
	lbtest.WantTXT(t, s.LB.Address, "blue")

	// Nothing under way: a restore changes nothing.
	master := mustMaster(t, s.Dir)
	if did, err := s.d.Restore(ctx, s.Fleet, s.LB, lb.Update{Kind: lb.UpdateBinary}); err != nil || did.Undone || !strings.HasPrefix(did.Note, "nothing to restore") {
		t.Fatalf("restore with no upgrade under way: %+v, %v; want nothing to restore", did, err)
	}
	if got := mustMaster(t, s.Dir); got != master {
		t.Errorf("restore with no upgrade under way changed the master %d to %d", master, got)
	}
}

// TestBinaryUpgradeNginxAbort stops an upgrade after USR2 and WINCH, with
// two masters running, as a failure or a worker's death would: Restore
// puts the old master's workers back and stops the new master.
func TestBinaryUpgradeNginxAbort(t *testing.T) {
	s := startStaged(t)
	ctx := context.Background()
	old := mustMaster(t, s.Dir)
	j, ch, err := s.d.inplace(ctx, s.Fleet, s.LB)
	if err != nil {
		t.Fatal(err)
	}
	load := lbtest.StartInPlaceLoad(t, s.LB.Address)
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
	if did, err := s.d.Restore(ctx, s.Fleet, s.LB, lb.Update{Kind: lb.UpdateBinary}); err != nil || !did.Undone || !strings.HasPrefix(did.Note, "restored the old master") {
		log, _ := os.ReadFile(filepath.Join(s.Dir, "error.log"))
		t.Fatalf("restore: %+v, %v\nerror.log:\n%s", did, err, log)
	}
	if got := mustMaster(t, s.Dir); got != old {
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
	if over := load.Overlapped(); lost > maxLostPerAbort+over {
		t.Errorf("%d queries lost in an aborted upgrade; the bound is %d, and %d for queries sent over a stall", lost, maxLostPerAbort, over)
	}
	lbtest.WantTXT(t, s.LB.Address, "blue")
}

// Busy TCP clients (lbtest.Busy) never let their connection go idle, so
// the stream proxy_timeout never ends it: only worker_shutdown_timeout
// makes a stopping worker let go of them. busyExit bounds how long an
// old worker or master may outlive an update under such clients.
const (
	busyClients = 4
	busyExit    = DefaultShutdownTimeout + 10*time.Second
)

// startBusy is a staged lab nginx serving blue, with busy TCP clients
// through it.
func startBusy(t *testing.T) (*stagedLab, *lbtest.Busy) {
	s := startStaged(t)
	lbtest.WantTXT(t, s.LB.Address, "blue")
	busy := lbtest.StartBusy(t, s.LB.Address, busyClients)
	time.Sleep(500 * time.Millisecond)
	return s, busy
}

// TestBinaryUpgradeNginxBusyTCP upgrades nginx's binary while TCP clients
// keep their connections busy: the upgrade must finish, the old master
// gone, and every in-flight query answered or its connection closed.
func TestBinaryUpgradeNginxBusyTCP(t *testing.T) {
	s, busy := startBusy(t)
	old := mustMaster(t, s.Dir)
	start := time.Now()
	note, err := s.d.Update(context.Background(), s.Fleet, s.LB, lb.Update{Kind: lb.UpdateBinary})
	took := time.Since(start)
	if err != nil {
		log, _ := os.ReadFile(filepath.Join(s.Dir, "error.log"))
		t.Fatalf("binary upgrade under busy TCP clients, after %v: %v\nerror.log:\n%s", took.Round(time.Second), err, log)
	}
	t.Logf("%s in %v", note, took.Round(time.Millisecond))
	if took > busyExit {
		t.Errorf("the upgrade took %v; the bound is %v", took, busyExit)
	}
	if pidfile.Alive(old, "nginx") {
		t.Errorf("the old master %d still runs after the upgrade", old)
	}
	wantBusyServed(t, busy, "blue")
	busy.Report(t, "binary upgrade")
}

// TestBinaryUpgradeNginxRestoreAfterQuit interrupts an upgrade's last
// step after QUIT went to the old master, as a timeout or a worker's death
// would, under busy TCP clients. There is no going back then: a quitting
// master starts no workers. Restore must leave the new master serving
// alone.
func TestBinaryUpgradeNginxRestoreAfterQuit(t *testing.T) {
	s, busy := startBusy(t)
	ctx := context.Background()
	j, ch, err := s.d.inplace(ctx, s.Fleet, s.LB)
	if err != nil {
		t.Fatal(err)
	}
	out, err := runInplace(ctx, ch, j, "upgrade-start", "")
	if err != nil {
		t.Fatal(err)
	}
	pids := strings.Fields(string(out))
	if len(pids) != 2 {
		t.Fatalf("upgrade-start printed %q; want the old master and the new one", out)
	}
	if _, err := runInplace(ctx, ch, j, "upgrade-drain", ""); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, time.Second)
	_, err = runInplace(short, ch, j, "upgrade-finish", "")
	cancel()
	t.Logf("upgrade-finish cut off after a second: %v", err)

	if did, err := s.d.Restore(ctx, s.Fleet, s.LB, lb.Update{Kind: lb.UpdateBinary}); err != nil || did.Undone || !strings.HasPrefix(did.Note, "nothing restored") {
		log, _ := os.ReadFile(filepath.Join(s.Dir, "error.log"))
		t.Fatalf("restore after QUIT: %+v, %v\nerror.log:\n%s", did, err, log)
	}
	if got := itoa(mustMaster(t, s.Dir)); got != pids[1] {
		t.Errorf("after the restore the master is %s; want the new one, %s", got, pids[1])
	}
	if old, _ := strconv.Atoi(pids[0]); pidfile.Alive(old, "nginx") {
		t.Errorf("the old master %s still runs after the restore", pids[0])
	}
	wantBusyServed(t, busy, "blue")
	busy.Report(t, "binary upgrade restored after QUIT")
}

// TestInPlaceNginxBusyTCPReload reloads nginx, by a config update and by
// a flip, under busy TCP clients: the old workers must exit within
// busyExit, and the clients then be served by the new config alone (a
// flip to green must not leave them on blue).
func TestInPlaceNginxBusyTCPReload(t *testing.T) {
	for _, tc := range []struct {
		name, want string
		reload     func(context.Context, *stagedLab) error
	}{
		{"config update", "blue", func(ctx context.Context, s *stagedLab) error {
			conf, err := os.ReadFile(filepath.Join(s.Dir, "nginx.conf"))
			if err != nil {
				return err
			}
			// The same proxy under a new ID, which the new workers serve.
			conf = []byte(strings.Replace(string(conf), "return \"dnsroll-", "return \"dnsroll-0", 1))
			_, err = s.d.Update(ctx, s.Fleet, s.LB, lb.Update{Kind: lb.UpdateConfig, Config: string(conf)})
			return err
		}},
		{"flip", "green", func(ctx context.Context, s *stagedLab) error {
			return s.flip(ctx, lb.Share{Server: s.green, Weight: 1}, lb.Share{Server: s.blue})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, busy := startBusy(t)
			old := workerPIDs(t, mustMaster(t, s.Dir))
			start := time.Now()
			if err := tc.reload(context.Background(), s); err != nil {
				t.Fatal(err)
			}
			for _, pid := range old {
				for pidfile.Alive(pid, "nginx") && time.Since(start) < busyExit {
					time.Sleep(50 * time.Millisecond)
				}
				if pidfile.Alive(pid, "nginx") {
					t.Errorf("the old worker %d still runs %v after the reload: busy TCP connections keep it", pid, busyExit)
				}
			}
			t.Logf("waited %v for the old workers %v", time.Since(start).Round(time.Millisecond), old)
			wantBusyServed(t, busy, tc.want)
			busy.Report(t, tc.name)
		})
	}
}

// wantBusyServed fails t unless busy's clients get answers over the next
// half second, all of them want.
func wantBusyServed(t *testing.T, busy *lbtest.Busy, want string) {
	t.Helper()
	before := busy.Answers()
	time.Sleep(500 * time.Millisecond)
	after := busy.Answers()
	if after[want] == before[want] {
		t.Errorf("the busy clients got no answer %q in half a second (answers %v)", want, after)
	}
	for answer, n := range after {
		if answer != want && n > before[answer] {
			t.Errorf("the busy clients got %d answers %q, from the old config; want only %q", n-before[answer], answer, want)
		}
	}
}
