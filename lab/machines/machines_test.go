package machines

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dnsroll/dnsroll/internal/needlab"
	"github.com/dnsroll/dnsroll/provision"
)

func TestValidName(t *testing.T) {
	for name, want := range map[string]bool{"lb1": true, "linode1001": true, "": false, "a/b": false, "../x": false, strings.Repeat("a", 64): false} {
		if got := validName(name); got != want {
			t.Errorf("validName(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestInSubnet(t *testing.T) {
	for addr, want := range map[string]bool{"10.231.0.2": true, "10.231.0.250": true, HostAddr: false, "10.231.0.0": false, "10.231.0.255": false, "10.231.1.2": false, "192.0.2.1": false} {
		if got := inSubnet(netip.MustParseAddr(addr)); got != want {
			t.Errorf("inSubnet(%s) = %v, want %v", addr, got, want)
		}
	}
}

// An image built before the local repository has BIND, nginx and dnsdist
// installed, so the roles' apt tasks would never run on its machines:
// Check refuses it and says how to rebuild it; a built image passes.
func TestCheckRefusesAnImageWithoutItsRepository(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("Check needs root first")
	}
	needlab.Programs(t, "systemd-nspawn", "ip", "ssh-keygen", "chroot")
	base := t.TempDir()
	if err := os.MkdirAll(filepath.Join(base, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(base, "etc", "dnsroll-base"), []byte("dnsroll-base v1 2026-11-01T00:00:00Z\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := Check(base)
	if err == nil || !strings.Contains(err.Error(), "predates its package repository") || !strings.Contains(err.Error(), "make lab-image") {
		t.Fatalf("Check of an image without %s: %v", RepoDir, err)
	}
	if err := os.MkdirAll(filepath.Join(base, RepoDir), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(base, RepoDir, "Packages"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Check(base); err != nil {
		t.Fatalf("Check of an image with its repository: %v", err)
	}
}

// Close waits for a machine that is being destroyed, not only for those
// still in its table. The lab destroys a deleted VM in the background; a
// Close that returned first left that machine's container writing into
// its directory, and the lab's removal failed with "directory not empty"
// (e2e TestMachineWorkerKilledDuringProvisioning, CI of stop 29).
func TestCloseWaitsForMachinesBeingDestroyed(t *testing.T) {
	base := needBase(t)
	dir := t.TempDir()
	h, err := Open(Options{Dir: dir, Base: base})
	if err != nil {
		t.Fatal(err)
	}
	addr := netip.MustParseAddr("10.231.0.99")
	if err := h.Boot(Spec{Name: "closing", Addr: addr}); err != nil {
		h.Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := provision.WaitSSH(ctx, net.JoinHostPort(addr.String(), "22")); err != nil {
		h.Close()
		t.Fatal(err)
	}
	go h.Destroy("closing")
	for h.running("closing") {
		time.Sleep(time.Millisecond)
	}
	h.Close()
	if _, err := os.Stat(filepath.Join(dir, "closing")); !os.IsNotExist(err) {
		t.Errorf("the machine's directory is still there after Close (stat: %v): Close returned before the machine being destroyed had stopped", err)
	}
}

// Reboot boots the same machine again, as a cloud reboots a VM: a new
// container on the same disk and address, whose sshd answers again. A
// machine that is not there, or was destroyed, cannot be rebooted.
func TestReboot(t *testing.T) {
	h := openHost(t)
	addr := netip.MustParseAddr("10.231.0.98")
	bootWaitSSH(t, h, Spec{Name: "rebooting", Addr: addr})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ssh := net.JoinHostPort(addr.String(), "22")
	m := h.machines["rebooting"]
	kept := filepath.Join(m.dir, "root", "var", "lib", "dnsroll-kept")
	if err := os.WriteFile(kept, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	before := m.cmd.Process.Pid
	if err := h.Reboot("rebooting"); err != nil {
		t.Fatal(err)
	}
	if m.cmd.Process.Pid == before {
		t.Errorf("Reboot left systemd-nspawn %d running", before)
	}
	if err := provision.WaitSSH(ctx, ssh); err != nil {
		t.Fatalf("after Reboot: %v", err)
	}
	if _, err := os.Stat(kept); err != nil {
		t.Errorf("a file on the machine's disk did not survive the reboot: %v", err)
	}
	if err := h.Reboot("nosuch"); err == nil {
		t.Error("Reboot of a machine that does not exist: no error")
	}
	h.Destroy("rebooting")
	if err := h.Reboot("rebooting"); err == nil {
		t.Error("Reboot of a destroyed machine: no error")
	}
}

// openHost opens a machine host in a temporary directory, closed when
// t ends, or skips or fails t as needBase does.
func openHost(t *testing.T) *Host {
	t.Helper()
	h, err := Open(Options{Dir: t.TempDir(), Base: needBase(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return h
}

// bootWaitSSH boots spec on h and waits up to a minute for its sshd.
func bootWaitSSH(t *testing.T, h *Host, spec Spec) {
	t.Helper()
	if err := h.Boot(spec); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := provision.WaitSSH(ctx, net.JoinHostPort(spec.Addr.String(), "22")); err != nil {
		t.Fatal(err)
	}
}

// needBase returns the base image that DNSROLL_LAB_IMAGE names (else
// DefaultBase), or skips or fails t, as needlab says, where machines
// cannot boot here.
func needBase(t *testing.T) string {
	t.Helper()
	needlab.Slow(t, "booting a machine")
	base := os.Getenv("DNSROLL_LAB_IMAGE")
	if base == "" {
		base = DefaultBase
	}
	if err := Check(base); err != nil {
		needlab.Missing(t, "%v", err)
	}
	return base
}

// running reports whether name is in the table of machines: Destroy has
// not yet taken it out.
func (h *Host) running(name string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	_, ok := h.machines[name]
	return ok
}

// BenchmarkBootToSSH measures how long a machine takes from Boot until its
// sshd answers, and its shutdown. It needs root and the base image
// (make lab-image); docs/machine-lab.md quotes it:
//
//	go test -run '^$' -bench BootToSSH -benchtime 5x ./lab/machines
func BenchmarkBootToSSH(b *testing.B) {
	base := os.Getenv("DNSROLL_LAB_IMAGE")
	if base == "" {
		base = DefaultBase
	}
	if err := Check(base); err != nil {
		b.Skip(err)
	}
	h, err := Open(Options{Dir: b.TempDir(), Base: base})
	if err != nil {
		b.Fatal(err)
	}
	defer h.Close()
	var boot, stop time.Duration
	for i := 0; i < b.N; i++ {
		name := fmt.Sprintf("bench%d", i)
		addr := netip.MustParseAddr(fmt.Sprintf("10.231.0.%d", 100+i%100))
		start := time.Now()
		if err := h.Boot(Spec{Name: name, Addr: addr}); err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		err := provision.WaitSSH(ctx, net.JoinHostPort(addr.String(), "22"))
		cancel()
		if err != nil {
			out, _ := os.ReadFile(filepath.Join(h.opts.Dir, name, "console.log"))
			b.Fatalf("%v\n%s", err, out)
		}
		boot += time.Since(start)
		start = time.Now()
		h.Destroy(name)
		stop += time.Since(start)
	}
	b.ReportMetric(boot.Seconds()/float64(b.N), "s-to-ssh")
	b.ReportMetric(stop.Seconds()/float64(b.N), "s-to-destroy")
}
