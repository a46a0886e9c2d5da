package hostkeys

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/dnsroll/dnsroll/internal/needlab"
)

// A write that fails (here: the disk is full) is reported, and the file
// keeps what it held. The error of the copy into the new file was lost to
// a shadowed variable, so a partial file replaced known_hosts and the
// update reported success: every recorded key but the ones in the
// partial file was forgotten, and the next contact with those machines
// was a first contact again.
func TestFailedWriteKeepsTheFile(t *testing.T) {
	if os.Geteuid() != 0 {
		needlab.Missing(t, "needs root to mount a small tmpfs to fill")
	}
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=64k"); err != nil {
		t.Fatalf("mounting a tmpfs: %v", err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(dir, syscall.MNT_DETACH) })
	s, err := OpenStore(filepath.Join(dir, "known_hosts"))
	if err != nil {
		t.Fatal(err)
	}
	key := ed25519Key(t).PublicKey()
	if _, err := s.Add("[10.0.0.1]:22", []ssh.PublicKey{key}, "dnsroll:linode-1"); err != nil {
		t.Fatal(err)
	}
	before := readFile(t, s.Path())
	// Leave less room than the next version of the file needs.
	filler := make([]byte, 60*1024)
	if err := os.WriteFile(filepath.Join(dir, "filler"), filler, 0o600); err != nil && !strings.Contains(err.Error(), "no space") {
		t.Fatal(err)
	}
	_, err = s.Add("[10.0.0.2]:22", []ssh.PublicKey{key}, "dnsroll:"+strings.Repeat("x", 16*1024))
	if err == nil {
		t.Error("an update that could not be written reported success")
	}
	if got := readFile(t, s.Path()); got != before {
		t.Errorf("the file changed after a failed write:\n%.300s\nwant\n%s", got, before)
	}
}
