package bundle

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/dnsroll/dnsroll/internal/testfiles"
)

// A file's name enters the hash with its bytes: a zone file renamed, or
// two files swapped for one another's names, is another revision.
func TestHashNamesTheFiles(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, map[string]string{"a.zone": "x", "b.zone": "x"})
	a, err := Read(dir, []string{filepath.Join(dir, "a.zone")})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Read(dir, []string{filepath.Join(dir, "b.zone")})
	if err != nil {
		t.Fatal(err)
	}
	if a.Hash == b.Hash {
		t.Errorf("a.zone and b.zone with the same bytes hash alike: %s", a.Hash)
	}
}

// A file outside the fleet's directory is named by its absolute path, so
// its copy stays inside the snapshot and two outside files do not meet
// under one "../" name.
func TestSnapshotOfAFileOutsideBase(t *testing.T) {
	top := t.TempDir()
	base := filepath.Join(top, "fleet")
	write(t, top, map[string]string{"fleet/a.zone": "a", "elsewhere/b.zone": "b"})
	outside := filepath.Join(top, "elsewhere", "b.zone")
	s := Store{Dir: filepath.Join(top, "store", "bundles")}
	m, err := s.Snapshot(base, []string{filepath.Join(base, "a.zone"), outside}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := Name(base, outside); got != filepath.ToSlash(outside) {
		t.Errorf("Name of a file outside base = %q, want its path %q", got, outside)
	}
	root, ok := s.Open(m.Hash)
	if !ok {
		t.Fatal("the snapshot does not open")
	}
	for _, f := range m.Files {
		p := In(root, f.Name)
		if rel, err := filepath.Rel(root, p); err != nil || strings.HasPrefix(rel, "..") {
			t.Errorf("%s is copied to %s, outside the snapshot %s", f.Name, p, root)
		}
	}
}

// The manifest hashes the bytes the snapshot holds: a file that changes
// while it is copied (here a FIFO that gives other bytes to each reader)
// still yields a snapshot that opens, holding what was hashed.
func TestSnapshotHashesWhatItCopied(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "a.zone")
	testfiles.Changing(t, fifo, "first", "second")
	s := Store{Dir: filepath.Join(t.TempDir(), "bundles")}
	m, err := s.Snapshot(dir, []string{fifo}, nil)
	if err != nil {
		t.Fatal(err)
	}
	root, ok := s.Open(m.Hash)
	if !ok {
		t.Fatal("the snapshot's files do not hash to its manifest")
	}
	if b, err := os.ReadFile(In(root, "a.zone")); err != nil || string(b) != "first" {
		t.Errorf("snapshot holds %q (%v), want the first reader's bytes", b, err)
	}
}

// A manifest stored under one hash that records another (a store edited
// by hand, or damaged) is not that bundle's.
func TestLoadRefusesAManifestOfAnotherHash(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, map[string]string{"a.zone": "a", "b.zone": "b"})
	s := Store{Dir: filepath.Join(t.TempDir(), "bundles")}
	a, err := s.Snapshot(dir, []string{filepath.Join(dir, "a.zone")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Read(dir, []string{filepath.Join(dir, "b.zone")})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(s.path(a.Hash))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.path(b.Hash), raw, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := s.Load(b.Hash); ok || err != nil {
		t.Errorf("Load of a manifest recording %s under %s = %v, %v; want not found", Short(a.Hash), Short(b.Hash), ok, err)
	}
}

// A snapshot made again over one whose files were damaged since (edited
// or removed on the worker's disk) replaces them: otherwise the new
// rollout of that revision would plan, then fail at its first step
// because the snapshot no longer opens.
func TestSnapshotAgainRepairsADamagedSnapshot(t *testing.T) {
	for name, damage := range map[string]func(path string) error{
		"edited":  func(p string) error { return os.WriteFile(p, []byte("edited"), 0o644) },
		"removed": os.Remove,
	} {
		t.Run(name, func(t *testing.T) {
			top := t.TempDir()
			write(t, top, map[string]string{"fleet/a.zone": "a", "fleet/b.zone": "b"})
			base := filepath.Join(top, "fleet")
			paths := []string{filepath.Join(base, "a.zone"), filepath.Join(base, "b.zone")}
			s := Store{Dir: filepath.Join(top, "bundles")}
			m, err := s.Snapshot(base, paths, nil)
			if err != nil {
				t.Fatal(err)
			}
			root, _ := s.Open(m.Hash)
			if err := damage(In(root, "a.zone")); err != nil {
				t.Fatal(err)
			}
			if _, ok := s.Open(m.Hash); ok {
				t.Fatal("a damaged snapshot opens")
			}
			again, err := s.Snapshot(base, paths, nil)
			if err != nil || again.Hash != m.Hash {
				t.Fatalf("snapshot again: %v, hash %s, want %s", err, again.Hash, m.Hash)
			}
			root, ok := s.Open(m.Hash)
			if !ok {
				t.Fatal("the snapshot made again over a damaged one does not open")
			}
			if b, err := os.ReadFile(In(root, "a.zone")); err != nil || string(b) != "a" {
				t.Errorf("a.zone in the snapshot: %q, %v; want %q", b, err, "a")
			}
		})
	}
}

// A file Snapshot cannot read is no fault of the store: a caller that
// works around a store it cannot write (ErrStore) must not take it for
// one, and learns which file it was.
func TestSnapshotTellsStoreErrorsFromUnreadableFiles(t *testing.T) {
	top := t.TempDir()
	write(t, top, map[string]string{"fleet/a.zone": "a", "not-a-dir": "x"})
	base := filepath.Join(top, "fleet")
	a, unreadable := filepath.Join(base, "a.zone"), filepath.Join(base, "b.zone")
	// A directory opens, and fails to be read (EISDIR), as root too.
	if err := os.Mkdir(unreadable, 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := Store{Dir: filepath.Join(top, "bundles")}.Snapshot(base, []string{a, unreadable}, nil)
	if err == nil || errors.Is(err, ErrStore) || !strings.Contains(err.Error(), unreadable) {
		t.Errorf("Snapshot of an unreadable %s: %v; want an error naming it, not ErrStore", unreadable, err)
	}
	_, err = Store{Dir: filepath.Join(top, "not-a-dir")}.Snapshot(base, []string{a}, nil)
	if !errors.Is(err, ErrStore) {
		t.Errorf("Snapshot into a store that is a file: %v; want ErrStore", err)
	}
}

// A copy the store has no room for (/dev/full) is the store's error.
func TestCopyIntoAFullStoreIsTheStoresError(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, map[string]string{"a.zone": "a"})
	full, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
	if err != nil {
		t.Skip("no /dev/full here:", err)
	}
	_, err = copyTo(filepath.Join(dir, "a.zone"), full)
	if !errors.Is(err, ErrStore) || !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("copy into a full store: %v; want ErrStore and ENOSPC", err)
	}
}
