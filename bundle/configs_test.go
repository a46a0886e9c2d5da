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
