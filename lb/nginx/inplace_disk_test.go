package nginx

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dnsroll/dnsroll/internal/needlab"
)

// stubMaster stands in for an nginx master: its process is named nginx,
// as inplace.sh's checks want; it records each HUP in log and, as -t,
// accepts a config only if it ends with "# end", so a truncated one fails.
// It writes READY once its traps are set: a HUP before that would kill it.
const stubMaster = `#!/bin/sh
if [ "$1" = -t ]; then
	tail -n 1 "$4" | grep -qx '# end'
	exit
fi
trap 'echo HUP >>"$LOG"' HUP
trap 'echo USR2 >>"$LOG"' USR2
echo ready >"$READY"
while :; do sleep 0.05; done
`

// diskRig is inplace.sh's config directory, on a small tmpfs a test fills
// where it gives a size, beside a stub master.
type diskRig struct {
	etc, conf, log, pid string
	master              int
	j                   job
}

func newDiskRig(t *testing.T, size string) *diskRig {
	t.Helper()
	base := t.TempDir()
	r := &diskRig{etc: filepath.Join(base, "etc"), log: filepath.Join(base, "signals")}
	r.conf = filepath.Join(r.etc, "nginx.conf")
	if err := os.Mkdir(r.etc, 0o755); err != nil {
		t.Fatal(err)
	}
	if size != "" {
		needlab.Programs(t, "mount", "umount")
		if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", r.etc).CombinedOutput(); err != nil {
			needlab.Missing(t, "a tmpfs to fill (root): %v: %s", err, out)
		}
		t.Cleanup(func() { _ = exec.Command("umount", r.etc).Run() })
	}
	bin := filepath.Join(base, "nginx")
	if err := os.WriteFile(bin, []byte(stubMaster), 0o755); err != nil {
		t.Fatal(err)
	}
	master := exec.Command(bin)
	ready := filepath.Join(base, "ready")
	master.Env = append(os.Environ(), "LOG="+r.log, "READY="+ready)
	if err := master.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = master.Process.Kill(); _ = master.Wait() })
	pid := filepath.Join(base, "nginx.pid")
	if err := os.WriteFile(pid, []byte(strconv.Itoa(master.Process.Pid)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ready, "ready\n")
	r.j = job{paths: paths{conf: r.conf, pid: pid, nginx: []string{bin}}}
	r.pid, r.master = pid, master.Process.Pid
	return r
}

// run runs op of inplace.sh as the driver would, here.
func (r *diskRig) run(t *testing.T, op string, vars ...[2]string) (string, int) {
	t.Helper()
	out, err := exec.Command("/bin/sh", "-c", command(r.j, 2*time.Second, inplaceScript, append([][2]string{{"op", op}}, vars...))).CombinedOutput()
	return strings.TrimSpace(string(out)), exitCode(err)
}

// fill writes n bytes beside the config, as logs or a download would.
func (r *diskRig) fill(t *testing.T, n int) {
	t.Helper()
	_ = os.WriteFile(filepath.Join(r.etc, "filler"), make([]byte, n), 0o644)
}

// conf is a config of about n bytes that -t accepts.
func conf(name string, n int) string {
	return "# " + name + "\n" + strings.Repeat("# padding padding padding padding padding padding\n", n/50) + "# end\n"
}

// A disk that fills before the restore: the config put back is written
// whole or not at all. Before, cp truncated nginx.conf, the script
// reloaded and said it restored, and the next nginx restart failed.
func TestInPlaceRestoreOnAFullDisk(t *testing.T) {
	r := newDiskRig(t, "24k")
	before := conf("before", 6000)
	if err := os.WriteFile(r.conf, []byte(before), 0o644); err != nil {
		t.Fatal(err)
	}
	update := [][2]string{{"config", conf("update", 3000)}, {"update", "u1"}}
	if out, code := r.run(t, "reload", update...); code != 0 {
		t.Fatalf("reload: exit %d: %s", code, out)
	}
	r.fill(t, 8192)
	out, code := r.run(t, "restore", update...)
	got, _ := os.ReadFile(r.conf)
	if code == 0 || strings.Contains(out, "restored the config") {
		t.Errorf("restore on a full disk: exit %d, %q; want a failure", code, out)
	}
	if s := string(got); s != before && !strings.HasPrefix(s, "# update") {
		t.Errorf("nginx.conf is neither config whole (%d bytes)", len(got))
	}
}

// A disk too full to save the config to restore: the update does not go
// in. Before, it went in anyway, and its restore said it had never
// replaced the config.
func TestInPlaceReloadWithoutARestorePoint(t *testing.T) {
	r := newDiskRig(t, "12k")
	before := conf("before", 3000)
	if err := os.WriteFile(r.conf, []byte(before), 0o644); err != nil {
		t.Fatal(err)
	}
	r.fill(t, 3000)
	out, code := r.run(t, "reload", [2]string{"config", conf("update", 3000)}, [2]string{"update", "u1"})
	got, _ := os.ReadFile(r.conf)
	if code != 5 || string(got) != before {
		t.Errorf("reload with no room to save the config to restore: exit %d, %q, config now %.20q; want exit 5 and the config as it was", code, out, got)
	}
}

// A binary upgrade retried after it finished (the Update's reply lost, a
// worker gone after the QUIT) finds this update's new master serving and
// starts no second upgrade. Before, USR2 went out again: a second full
// upgrade, losing queries again.
func TestBinaryUpgradeRetriedAfterItFinished(t *testing.T) {
	r := newDiskRig(t, "")
	if err := os.WriteFile(r.conf, []byte(conf("live", 100)), 0o644); err != nil {
		t.Fatal(err)
	}
	// What upgrade-finish leaves: this update's new master, the old gone.
	if err := os.WriteFile(r.pid+".upgraded.for", []byte("u1 "+strconv.Itoa(r.master)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, code := r.run(t, "upgrade-start", [2]string{"update", "u1"})
	signals, _ := os.ReadFile(r.log)
	if code != 0 || out != "done "+strconv.Itoa(r.master) || strings.Contains(string(signals), "USR2") {
		t.Errorf("upgrade-start of an upgrade done: exit %d, %q, signals %q; want done and no USR2", code, out, signals)
	}
	// Another update's upgrade of the same master is no retry of this one.
	if out, _ := r.run(t, "upgrade-start", [2]string{"update", "u2"}); strings.HasPrefix(out, "done") {
		t.Errorf("another update's upgrade-start: %q", out)
	}
}

// The restore of a binary upgrade says what became of it, for this
// update: put back already (by the update's own abort when it failed), or
// finished, its new master serving. Before, both read "nothing to
// restore", and a run whose upgrade was put back ended failed, not
// rolled back.
func TestBinaryRestoreSaysWhatBecameOfTheUpgrade(t *testing.T) {
	r := newDiskRig(t, "")
	m := strconv.Itoa(r.master)
	for _, tc := range []struct{ marker, want string }{
		{".restored.for", "restored the old master " + m},
		{".upgraded.for", "nothing restored: this update's upgrade finished"},
	} {
		if err := os.WriteFile(r.pid+tc.marker, []byte("u1 "+m+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		out, code := r.run(t, "upgrade-abort", [2]string{"update", "u1"})
		if code != 0 || !strings.HasPrefix(out, tc.want) {
			t.Errorf("%s: exit %d, %q; want %q", tc.marker, code, out, tc.want)
		}
		if got := restoredBy(out); got.Undone != strings.HasPrefix(tc.want, "restored") {
			t.Errorf("%s: read as undone %v", tc.marker, got.Undone)
		}
		_ = os.Remove(r.pid + tc.marker)
	}
	if out, _ := r.run(t, "upgrade-abort", [2]string{"update", "u2"}); !strings.HasPrefix(out, "nothing to restore") {
		t.Errorf("another update's restore: %q", out)
	}
}

// A restore puts back the config from before its own update, and only
// over the config that update put in: a retry of the update keeps the
// config saved first; another update's restore, or one after the config
// changed since, leaves nginx.conf alone; a config -t refuses never goes
// in.
func TestInPlaceRestoreOnlyUndoesItsOwnUpdate(t *testing.T) {
	before, update, other := conf("before", 200), conf("update", 200), conf("other", 200)
	u1 := func(config string) [][2]string { return [][2]string{{"config", config}, {"update", "u1"}} }
	for _, tt := range []struct {
		name string
		// reloads are applied in turn, as update u1, each a retry of the
		// last; then edit, if set, is written over nginx.conf, and u1's
		// restore runs as restoreAs.
		reloads   []string
		edit      string
		restoreAs string
		wantOut   string
		wantConf  string
	}{
		{"its own update", []string{update}, "", "u1", "restored the config from before this update", before},
		{"a retried update", []string{update, update}, "", "u1", "restored the config from before this update", before},
		{"another update's restore", []string{update}, "", "u2", "nothing to restore", update},
		{"a config changed since", []string{update}, other, "u1", "nothing restored", other},
		{"a config -t refused", []string{strings.TrimSuffix(update, "# end\n")}, "", "u1", "nothing to restore", before},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := newDiskRig(t, "")
			if err := os.WriteFile(r.conf, []byte(before), 0o644); err != nil {
				t.Fatal(err)
			}
			for _, c := range tt.reloads {
				out, code := r.run(t, "reload", u1(c)...)
				if refused := !strings.HasSuffix(c, "# end\n"); refused != (code == 2) {
					t.Fatalf("reload: exit %d, %s", code, out)
				}
			}
			if tt.edit != "" {
				if err := os.WriteFile(r.conf, []byte(tt.edit), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			out, code := r.run(t, "restore", [2]string{"config", tt.reloads[0]}, [2]string{"update", tt.restoreAs})
			got, _ := os.ReadFile(r.conf)
			if code != 0 || !strings.HasPrefix(out, tt.wantOut) || string(got) != tt.wantConf {
				t.Errorf("restore: exit %d, %q, config now %.20q; want exit 0, %q, config %.20q", code, out, got, tt.wantOut, tt.wantConf)
			}
		})
	}
}

// nginx.sh's process readers say nothing of a process that exits between
// being listed and being read, as an old worker does during every reload:
// before, "cannot open /proc/N/cmdline" went to the step's output (the
// shell reports a failed input redirection before a 2>/dev/null written
// after it applies), and a test reading the output flaked on it.
func TestLibIsQuietAboutProcessesThatExit(t *testing.T) {
	gone := "2147483646" // above any pid_max: never a process
	script := "drained " + gone + "; echo drained; echo \"[$(workers " + gone + ")]\"\n"
	out, err := exec.Command("/bin/sh", "-c", command(job{paths: paths{conf: "/nonexistent", pid: "/nonexistent"}}, time.Second, script, nil)).CombinedOutput()
	if err != nil || string(out) != "drained\n[]\n" {
		t.Errorf("output %q (%v); want only \"drained\" and no workers", out, err)
	}
}

// A master that has exited but that its parent has not yet reaped is a
// zombie, which still has its /proc entry and its name: nginx.sh must not
// take it for a running nginx. In the lab the old master of a binary
// upgrade is such a zombie of dnsroll dev, its subreaper, until the lab
// stops; taken for running, every upgrade-finish waited out its timeout
// and failed its first attempt.
func TestLibTakesAZombieForGone(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "nginx")
	if err := exec.Command("cp", "/bin/true", bin).Run(); err != nil {
		t.Fatal(err)
	}
	zombie := exec.Command(bin)
	if err := zombie.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = zombie.Wait() })
	pid := strconv.Itoa(zombie.Process.Pid)
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		stat, _ := os.ReadFile("/proc/" + pid + "/stat")
		if strings.HasPrefix(string(stat), pid+" (nginx) Z") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("process %s did not become a zombie named nginx: %q", pid, stat)
		}
	}
	script := "if running " + pid + "; then echo running; else echo gone; fi\n"
	out, err := exec.Command("/bin/sh", "-c", command(job{paths: paths{conf: "/nonexistent", pid: "/nonexistent"}}, time.Second, script, nil)).CombinedOutput()
	if err != nil || string(out) != "gone\n" {
		t.Errorf("running on a zombie nginx: %q (%v); want \"gone\"", out, err)
	}
}

// Commands on one load balancer run one at a time. One whose caller went
// away (a worker killed mid-flip, a step cancelled by an abort: sshd does
// not stop it) may still run when the next (the abort's flip back to
// blue) starts; interleaved, the earlier could put its config in place
// after the later one's. The later waits for it, and gives up with status
// 4 (retried) if it outlasts the later's own timeout.
func TestLibRunsOneCommandAtATime(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "log")
	j := job{paths: paths{conf: filepath.Join(dir, "nginx.conf"), pid: filepath.Join(dir, "nginx.pid"), stateDir: dir}}
	run := func(timeout time.Duration, script string) *exec.Cmd {
		return exec.Command("/bin/sh", "-c", command(j, timeout, script, nil))
	}

	earlier := run(5*time.Second, "echo earlier starts >>"+log+"; sleep 1; echo earlier ends >>"+log+"\n")
	if err := earlier.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, log, "earlier starts\n")
	if out, err := run(5*time.Second, "echo later >>"+log+"\n").CombinedOutput(); err != nil {
		t.Fatalf("later: %v: %s", err, out)
	}
	if err := earlier.Wait(); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(log); string(got) != "earlier starts\nearlier ends\nlater\n" {
		t.Errorf("log %q; want the later command to run after the earlier one ended", got)
	}

	// One that outlasts the next's timeout: the next fails as not in
	// time, having done nothing. The holder ends when the test has seen
	// that, not after a time a loaded machine might take to start the next.
	release := filepath.Join(dir, "release")
	holder := run(30*time.Second, "echo holds >>"+log+"; while [ ! -e "+release+" ]; do sleep 0.05; done\n")
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = os.WriteFile(release, nil, 0o644); _ = holder.Wait() }()
	waitFor(t, log, "earlier starts\nearlier ends\nlater\nholds\n")
	out, err := run(time.Second, "echo impatient >>"+log+"\n").CombinedOutput()
	if code := exitCode(err); code != 4 || !strings.Contains(string(out), "still runs") {
		t.Errorf("behind a longer command: exit %d, %q; want 4 saying what it waited for", code, out)
	}
	if got, _ := os.ReadFile(log); strings.Contains(string(got), "impatient") {
		t.Errorf("log %q: the command that gave up ran", got)
	}
}

// waitFor waits until file holds want.
func waitFor(t *testing.T, file, want string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if got, _ := os.ReadFile(file); string(got) == want {
			return
		}
	}
	got, _ := os.ReadFile(file)
	t.Fatalf("%s holds %q, want %q", file, got, want)
}
