package bundle

import (
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// The configs steps run with are pruned by the snapshots' rule: those
// unused for longer than MaxAge go, except the Keep most recently used,
// a Config read counting as a use; never one used within InUse; and a
// PutConfig that did not finish is debris once InUse old.
func TestPruneConfigs(t *testing.T) {
	s := Store{Dir: filepath.Join(t.TempDir(), "bundles")}
	day := 24 * time.Hour
	var hashes []string
	for i, unused := range []time.Duration{30 * day, 20 * day, 10 * day, day} {
		b := fmt.Appendf(nil, `{"fleet":"f%d"}`, i)
		h := fmt.Sprintf("sha256:%x", sha256.Sum256(b))
		if err := s.PutConfig(h, b); err != nil {
			t.Fatal(err)
		}
		age(t, s.configPath(h), unused)
		hashes = append(hashes, h)
	}
	// The oldest is read by a step now: it is the most recently used.
	if _, ok, err := s.Config(hashes[0]); !ok || err != nil {
		t.Fatalf("Config: ok %v, err %v", ok, err)
	}
	write(t, filepath.Join(s.Dir, configsDir), map[string]string{".manifest-old": "{", ".manifest-new": "{", "NOTES": "mine"})
	age(t, filepath.Join(s.Dir, configsDir, ".manifest-old"), 2*time.Hour)

	s.Retention = Retention{Keep: 1, MaxAge: 7 * day}
	p, err := s.Prune()
	if err != nil {
		t.Fatal(err)
	}
	// Kept: hashes[0] (read now, the one most recently used) and
	// hashes[3] (within the week).
	for i, h := range hashes {
		_, ok, _ := s.Config(h)
		if want := i == 0 || i == 3; ok != want {
			t.Errorf("config %d kept %v, want %v", i, ok, want)
		}
	}
	if p.Configs != 2 || p.Debris != 1 || p.Snapshots != 0 {
		t.Errorf("Prune = %+v, want 2 configs and 1 piece of debris", p)
	}
	for _, name := range []string{".manifest-new", "NOTES"} {
		if _, err := os.Stat(filepath.Join(s.Dir, configsDir, name)); err != nil {
			t.Errorf("%s was removed: a PutConfig at work, or not the store's", name)
		}
	}

	// In use: however tight the retention, one used within InUse stays;
	// the zero Retention removes none.
	age(t, s.configPath(hashes[3]), 10*time.Minute)
	s.Retention = Retention{MaxAge: time.Minute}
	if _, err := s.Prune(); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := s.Config(hashes[3]); !ok {
		t.Error("a config in use was pruned")
	}
	age(t, s.configPath(hashes[3]), 100*day)
	if p, err := (Store{Dir: s.Dir}).Prune(); err != nil || p.Configs != 0 {
		t.Errorf("the zero retention pruned: %+v %v", p, err)
	}
}

// A step's scratch directory is made in the store and goes with its
// removal; one a killed worker left is debris that Prune removes once
// ScratchLife old, never sooner. Without a store it is made in the
// system's temporary directory.
func TestScratch(t *testing.T) {
	s := Store{Dir: filepath.Join(t.TempDir(), "bundles")}
	dir, done, err := s.Scratch()
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Dir(dir) != s.Dir {
		t.Errorf("scratch %s is not in the store %s", dir, s.Dir)
	}
	write(t, dir, map[string]string{"zones.json": "[]"})
	done()
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("scratch %s is still there after its removal: %v", dir, err)
	}

	left, _, err := s.Scratch() // its worker was killed
	if err != nil {
		t.Fatal(err)
	}
	write(t, left, map[string]string{"zones.json": "[]"})
	age(t, left, ScratchLife-time.Hour)
	if p, err := s.Prune(); err != nil || p.Debris != 0 {
		t.Fatalf("Prune = %+v, %v: a scratch younger than ScratchLife may be a step at work", p, err)
	}
	age(t, left, ScratchLife+time.Hour)
	if p, err := s.Prune(); err != nil || p.Debris != 1 || p.Bytes != 2 {
		t.Errorf("Prune = %+v, %v; want the left scratch as 1 piece of debris of 2 bytes", p, err)
	}
	if _, err := os.Stat(left); !os.IsNotExist(err) {
		t.Errorf("the left scratch %s was not removed: %v", left, err)
	}

	tmp, done, err := (Store{}).Scratch()
	if err != nil {
		t.Fatal(err)
	}
	defer done()
	if filepath.Dir(tmp) != filepath.Clean(os.TempDir()) {
		t.Errorf("scratch without a store: %s, want one in %s", tmp, os.TempDir())
	}
}
