package bundle

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
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
	m, err := s.Snapshot(dir, paths)
	if err != nil {
		t.Fatal(err)
	}
	if read, err := Read(dir, paths); err != nil || read.Hash != m.Hash {
		t.Fatalf("snapshot hash %s, files hash %s (%v)", m.Hash, read.Hash, err)
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
	if again, err := s.Snapshot(dir, paths); err != nil || again.Hash != m.Hash {
		t.Errorf("snapshot again: %v %v", again.Hash, err)
	}
	write(t, root, map[string]string{"zones/a.zone": "tampered"})
	if _, ok := s.Open(m.Hash); ok {
		t.Error("a damaged snapshot opens")
	}
}
