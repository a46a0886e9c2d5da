package bundle

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func write(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, text := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// The hash depends on the files' names and bytes, not on the order they
// are listed in; Changed names what differs.
func TestReadHashAndChanged(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, map[string]string{"a.zone": "a", "b.zone": "b"})
	a, b := filepath.Join(dir, "a.zone"), filepath.Join(dir, "b.zone")
	m1, err := Read(dir, []string{a, b})
	if err != nil {
		t.Fatal(err)
	}
	m2, err := Read(dir, []string{b, a, b})
	if err != nil {
		t.Fatal(err)
	}
	if m1.Hash != m2.Hash || len(m2.Files) != 2 {
		t.Fatalf("hash differs with the order: %+v %+v", m1, m2)
	}
	write(t, dir, map[string]string{"b.zone": "B", "c.zone": "c"})
	m3, err := Read(dir, []string{a, b, filepath.Join(dir, "c.zone")})
	if err != nil {
		t.Fatal(err)
	}
	if m3.Hash == m1.Hash {
		t.Fatal("the hash did not change with a file's bytes")
	}
	if got, want := Changed(m1, m3), []string{"b.zone changed", "c.zone added"}; !slices.Equal(got, want) {
		t.Errorf("Changed = %q, want %q", got, want)
	}
	if got, want := Changed(m3, m1), []string{"b.zone changed", "c.zone removed"}; !slices.Equal(got, want) {
		t.Errorf("Changed back = %q, want %q", got, want)
	}
	s := Store{Dir: filepath.Join(t.TempDir(), "bundles")}
	if err := s.Save(m1); err != nil {
		t.Fatal(err)
	}
	if got, ok, err := s.Load(m1.Hash); err != nil || !ok || got.Hash != m1.Hash || len(got.Files) != 2 {
		t.Errorf("Load = %+v %v %v", got, ok, err)
	}
	if _, ok, err := s.Load(m3.Hash); ok || err != nil {
		t.Errorf("Load of an unsaved hash = %v %v, want not found", ok, err)
	}
}

// The Ansible files of a playbook are the playbook, ansible.cfg and the
// roles its plays name, with their dependencies, and no other role.
func TestAnsibleFiles(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, map[string]string{
		"site.yml":                   "- hosts: all\n  roles:\n    - ns\n- hosts: all\n  roles:\n    - {role: extra}\n",
		"ansible.cfg":                "[defaults]\n",
		"roles/ns/tasks/main.yml":    "[]\n",
		"roles/ns/meta/main.yml":     "dependencies:\n  - role: common\n",
		"roles/common/files/x.sh":    "#!/bin/sh\n",
		"roles/extra/tasks/main.yml": "[]\n",
		"roles/lb/tasks/main.yml":    "[]\n",
	})
	got, err := AnsibleFiles(filepath.Join(dir, "site.yml"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range got {
		got[i], _ = filepath.Rel(dir, got[i])
	}
	slices.Sort(got)
	want := []string{"ansible.cfg", "roles/common/files/x.sh", "roles/extra/tasks/main.yml", "roles/ns/meta/main.yml", "roles/ns/tasks/main.yml", "site.yml"}
	if !slices.Equal(got, want) {
		t.Errorf("AnsibleFiles = %q\nwant %q", got, want)
	}
}

// A snapshot holds the bytes it hashed, whatever becomes of the files it
// copied; one whose copies no longer hash to its name is not opened. A
// snapshot taken again is the same one.
func TestSnapshot(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, map[string]string{"zones/a.zone": "a", "ansible/site.yml": "[]"})
	paths := []string{filepath.Join(dir, "zones/a.zone"), filepath.Join(dir, "ansible/site.yml")}
	s := Store{Dir: filepath.Join(t.TempDir(), "bundles")}
	zones := []Zone{{Name: "a", Path: paths[0], Serial: 7}}
	m, err := s.Snapshot(dir, paths, zones)
	if err != nil {
		t.Fatal(err)
	}
	if read, err := Read(dir, paths); err != nil || read.Hash != m.Hash {
		t.Fatalf("snapshot hash %s, files hash %s (%v)", m.Hash, read.Hash, err)
	}
	if kept, ok, err := s.Load(m.Hash); !ok || err != nil || !slices.Equal(kept.Zones, zones) {
		t.Fatalf("the manifest keeps zones %v (%v, %v); want the planned %v", kept.Zones, ok, err, zones)
	}
	write(t, dir, map[string]string{"zones/a.zone": "edited"})
	root, ok := s.Open(m.Hash)
	if !ok {
		t.Fatal("the snapshot does not open")
	}
	if b, err := os.ReadFile(In(root, "zones/a.zone")); err != nil || string(b) != "a" {
		t.Errorf("snapshot holds %q (%v), want the snapshotted a", b, err)
	}
	write(t, dir, map[string]string{"zones/a.zone": "a"})
	if again, err := s.Snapshot(dir, paths, nil); err != nil || again.Hash != m.Hash {
		t.Errorf("snapshot again: %v %v", again.Hash, err)
	}
	write(t, root, map[string]string{"zones/a.zone": "tampered"})
	if _, ok := s.Open(m.Hash); ok {
		t.Error("a damaged snapshot opens")
	}
	// Zone files may be private: the store is the worker's user's alone,
	// even one an older dnsroll made open to all.
	if st, err := os.Stat(s.Dir); err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("the store is %v (%v), want drwx------", st.Mode(), err)
	}
	if err := os.Chmod(s.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	snap(t, s, "b")
	if st, err := os.Stat(s.Dir); err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("a store made open to all is %v after a snapshot (%v), want drwx------", st.Mode(), err)
	}
}

// snap snapshots one zone file holding text into s, returning its hash.
func snap(t *testing.T, s Store, text string) string {
	t.Helper()
	dir := t.TempDir()
	write(t, dir, map[string]string{"a.zone": text})
	m, err := s.Snapshot(dir, []string{filepath.Join(dir, "a.zone")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return m.Hash
}

// age makes the file or directory at path last modified d ago.
func age(t *testing.T, path string, d time.Duration) {
	t.Helper()
	then := time.Now().Add(-d)
	if err := os.Chtimes(path, then, then); err != nil {
		t.Fatal(err)
	}
}

// has reports whether the store holds the snapshot of hash, whole: its
// manifest and its files.
func has(s Store, hash string) bool {
	_, errM := os.Stat(s.path(hash))
	_, errD := os.Stat(s.root(hash))
	return errM == nil && errD == nil
}

// Prune removes the snapshots unused for longer than MaxAge, except the
// Keep most recently used, counting an Open as a use; it never removes
// one used within InUse, whatever the retention, and says what it freed.
func TestPruneSnapshots(t *testing.T) {
	s := Store{Dir: filepath.Join(t.TempDir(), "bundles")}
	day := 24 * time.Hour
	var hashes []string
	for i, unused := range []time.Duration{30 * day, 20 * day, 10 * day, 9 * day, 8 * day, day} {
		h := snap(t, s, strings.Repeat("x", 100*(i+1)))
		age(t, s.path(h), unused)
		hashes = append(hashes, h)
	}
	// The oldest is opened by a step now: it is the most recently used.
	if _, ok := s.Open(hashes[0]); !ok {
		t.Fatal("the snapshot does not open")
	}
	var logged bytes.Buffer
	s.Retention = Retention{Keep: 2, MaxAge: 7 * day}
	s.Log = slog.New(slog.NewTextHandler(&logged, nil))
	before := size(s.Dir)
	p, err := s.Prune()
	if err != nil {
		t.Fatal(err)
	}
	// Kept: hashes[0] (opened now) and hashes[5] (the newest two), and
	// none other is within a week.
	for i, h := range hashes {
		if want := i == 0 || i == 5; has(s, h) != want {
			t.Errorf("snapshot %d (%s) kept %v, want %v", i, Short(h), has(s, h), want)
		}
	}
	if p.Snapshots != 4 || p.Debris != 0 || p.Bytes != before-size(s.Dir) || p.Bytes < 200+300+400+500 {
		t.Errorf("Prune = %+v, want 4 snapshots and the %d bytes freed", p, before-size(s.Dir))
	}
	if !strings.Contains(logged.String(), "snapshots=4") {
		t.Errorf("log %q does not say 4 snapshots were removed", logged.String())
	}
	if entries, _ := os.ReadDir(s.Dir); len(entries) != 4 {
		t.Errorf("store holds %d entries, want the 2 snapshots' 4", len(entries))
	}

	// In use: used 10 minutes ago, it stays however tight the retention.
	age(t, s.path(hashes[5]), 10*time.Minute)
	s.Retention = Retention{Keep: 0, MaxAge: time.Minute}
	if _, err := s.Prune(); err != nil || !has(s, hashes[5]) || !has(s, hashes[0]) {
		t.Errorf("a snapshot in use was pruned (%v)", err)
	}
	// The zero Retention removes no snapshot.
	age(t, s.path(hashes[5]), 100*day)
	if p, err := (Store{Dir: s.Dir}).Prune(); err != nil || p.Snapshots != 0 || !has(s, hashes[5]) {
		t.Errorf("the zero retention pruned: %+v %v", p, err)
	}
	// A Snapshot prunes after itself.
	s.Retention = Retention{Keep: 1, MaxAge: day}
	h := snap(t, s, "new")
	if !has(s, h) || has(s, hashes[5]) {
		t.Errorf("after a Snapshot: new kept %v (want true), the unused one kept %v (want false)", has(s, h), has(s, hashes[5]))
	}
}

// Debris goes once it is over InUse old: temporary directories and
// manifests of a Snapshot that did not finish, a manifest without its
// files, files without a manifest, and what an interrupted Prune left.
// Younger debris may be a Snapshot at work, and other names are not the
// store's: both stay.
func TestPruneDebris(t *testing.T) {
	s := Store{Dir: filepath.Join(t.TempDir(), "bundles"), Retention: DefaultRetention}
	orphanM, orphanD := snap(t, s, "manifest only"), snap(t, s, "files only")
	if err := os.RemoveAll(s.root(orphanM)); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(s.path(orphanD)); err != nil {
		t.Fatal(err)
	}
	young := snap(t, s, "young")
	if err := os.Remove(s.path(young)); err != nil {
		t.Fatal(err)
	}
	hexD := strings.TrimPrefix(orphanD, "sha256:")
	write(t, s.Dir, map[string]string{
		".snapshot-old/zones/a.zone": "a", ".snapshot-new/zones/a.zone": "a",
		".manifest-old": "{", ".pruned-" + hexD + "-1/a.zone": "a", "NOTES": "mine",
		"notes.json": "{}",
	})
	age(t, s.path(orphanM), 2*time.Hour)
	age(t, s.root(orphanD), 2*time.Hour)
	age(t, filepath.Join(s.Dir, ".snapshot-old"), 2*time.Hour)
	age(t, filepath.Join(s.Dir, ".manifest-old"), 2*time.Hour)
	age(t, filepath.Join(s.Dir, "NOTES"), 100*24*time.Hour)
	age(t, filepath.Join(s.Dir, "notes.json"), 100*24*time.Hour)
	p, err := s.Prune()
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	entries, _ := os.ReadDir(s.Dir)
	for _, e := range entries {
		left = append(left, e.Name())
	}
	if want := []string{".snapshot-new", "NOTES", strings.TrimPrefix(young, "sha256:"), "notes.json"}; !slices.Equal(left, want) {
		t.Errorf("left %q, want %q", left, want)
	}
	if p.Debris != 5 || p.Snapshots != 0 || p.Bytes == 0 {
		t.Errorf("Prune = %+v, want 5 pieces of debris", p)
	}
}

// A Snapshot of a hash that Prune is removing at the same moment leaves
// that snapshot whole: Open finds it after the Snapshot returns.
func TestPruneConcurrentSnapshot(t *testing.T) {
	s := Store{Dir: filepath.Join(t.TempDir(), "bundles")}
	dir := t.TempDir()
	write(t, dir, map[string]string{"a.zone": "a"})
	paths := []string{filepath.Join(dir, "a.zone")}
	for i := range 200 {
		m, err := s.Snapshot(dir, paths, nil)
		if err != nil {
			t.Fatal(err)
		}
		age(t, s.path(m.Hash), 30*24*time.Hour)
		pruner := Store{Dir: s.Dir, Retention: Retention{MaxAge: 24 * time.Hour}}
		done := make(chan error)
		go func() { _, err := pruner.Prune(); done <- err }()
		if _, err := s.Snapshot(dir, paths, nil); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if _, ok := s.Open(m.Hash); !ok {
			t.Fatalf("round %d: the snapshot just made does not open", i)
		}
	}
}

// BenchmarkPruneNothing is the cost a Snapshot pays for its prune in a
// store of 1,000 snapshots of which none is due: one listing.
func BenchmarkPruneNothing(b *testing.B) {
	s := Store{Dir: filepath.Join(b.TempDir(), "bundles"), Retention: DefaultRetention}
	for i := range 1000 {
		hex := fmt.Sprintf("%064x", i)
		if err := os.MkdirAll(filepath.Join(s.Dir, hex), 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(s.Dir, hex+".json"), []byte("{}"), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	for b.Loop() {
		if p, err := s.Prune(); err != nil || p != (Pruned{}) {
			b.Fatalf("Prune = %+v, %v; want nothing removed", p, err)
		}
	}
}

// A live bundle comes in a rollout's input, which `temporal workflow
// start` takes as typed: a hash that is not one names no file, inside the
// store or out of it, and is neither read nor touched.
func TestStoreRefusesAHashThatIsNotOne(t *testing.T) {
	top := t.TempDir()
	s := Store{Dir: filepath.Join(top, "bundles")}
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Hour).Truncate(time.Second)
	outside := filepath.Join(top, "secret.json")
	write(t, top, map[string]string{"secret.json": `{"hash":"sha256:../secret"}`})
	if err := os.Chtimes(outside, old, old); err != nil {
		t.Fatal(err)
	}
	for _, hash := range []string{"sha256:../secret", "../secret", "sha256:" + strings.Repeat("A", 64), strings.Repeat("a", 64)} {
		if _, ok, err := s.Load(hash); ok || err == nil || !strings.Contains(err.Error(), "not a bundle's hash") {
			t.Errorf("Load(%q) = %v, %v; want it refused as not a bundle's hash", hash, ok, err)
		}
		if _, ok := s.Open(hash); ok {
			t.Errorf("Open(%q) found a bundle", hash)
		}
	}
	if fi, err := os.Stat(outside); err != nil || !fi.ModTime().Equal(old) {
		t.Errorf("the file outside the store was touched: %v %v", fi.ModTime(), err)
	}
	if _, ok, err := s.Load(""); ok || err != nil {
		t.Errorf(`Load("") = %v, %v; want nothing, no error`, ok, err)
	}
}
