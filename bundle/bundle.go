// Package bundle content-addresses a rollout's revision: the zone files it
// deploys and the Ansible files that deploy them. Plan records the hash;
// every later step hashes what it is about to use and refuses a
// difference, so a file edited mid-rollout, or a worker with another
// checkout, can never give green a mix of two revisions.
package bundle

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"

	"github.com/dnsroll/dnsroll/internal/parallel"
)

// ErrStore marks an error of the store itself (it cannot be made,
// locked or written: full, read-only), which a caller may work around
// without it, from one reading the files it copies, which it may not.
var ErrStore = errors.New("bundle store")

// storeErr marks err as the store's: "bundle store: " and err.
func storeErr(err error) error {
	return fmt.Errorf("%w: %w", ErrStore, err)
}

// File is one file of a bundle: its name, relative to the fleet's
// directory when it is inside it, and the SHA-256 of its bytes.
type File struct {
	Name   string `json:"name"`
	SHA256 string `json:"sha256"`
}

// Manifest is a bundle's files, sorted by name, and their hash.
type Manifest struct {
	Hash  string `json:"hash"`
	Files []File `json:"files"`
	// Zones, when Plan recorded them, are the revision's zones as planned
	// (zones.go). They are not part of Hash: their files are.
	Zones []Zone `json:"zones,omitempty"`
	// Base is the directory that Snapshot named the files relative to
	// (Name): the planning worker's fleet directory, to which Zones'
	// paths belong. A worker whose fleet directory is another finds the
	// snapshot's files by it. Empty in manifests from before it was kept.
	Base string `json:"base,omitempty"`
}

// Read hashes the files at paths, naming each relative to base. A path
// that does not exist fails with an error wrapping fs.ErrNotExist.
func Read(base string, paths []string) (Manifest, error) {
	return collect(base, paths, func(_, p string) (string, error) { return FileSHA256(p) })
}

// collect builds the manifest of paths, hashing each with sum, which gets
// the file's name in the bundle and its path.
// The files are hashed side by side: a bundle of 100,000 zone files is
// read on every core.
func collect(base string, paths []string, sum func(name, path string) (string, error)) (Manifest, error) {
	var m Manifest
	var unique []string
	seen := map[string]bool{}
	for _, p := range paths {
		name := Name(base, p)
		if seen[name] {
			continue
		}
		seen[name] = true
		m.Files = append(m.Files, File{Name: name})
		unique = append(unique, p)
	}
	err := parallel.For(len(unique), func(i int) (err error) {
		m.Files[i].SHA256, err = sum(m.Files[i].Name, unique[i])
		return err
	})
	if err != nil {
		return Manifest{}, err
	}
	slices.SortFunc(m.Files, func(a, b File) int { return strings.Compare(a.Name, b.Name) })
	m.Hash = hashOf(m.Files)
	return m, nil
}

// Name is path's name in a bundle: relative to base when inside it, else
// the path itself.
func Name(base, path string) string {
	if rel, err := filepath.Rel(base, path); err == nil && base != "" && !strings.HasPrefix(rel, "..") {
		return filepath.ToSlash(rel)
	}
	return filepath.ToSlash(path)
}

// hashOf is "sha256:" and the SHA-256 of each file's name and hash, one
// line each in name order: file contents enter through their own hashes.
func hashOf(files []File) string {
	h := sha256.New()
	for _, f := range files {
		fmt.Fprintf(h, "%s\x00%s\n", f.Name, f.SHA256)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// FileSHA256 is the hex SHA-256 of the file at path.
func FileSHA256(path string) (string, error) {
	return copySHA256(path, io.Discard)
}

// copyBufs are copySHA256's buffers: io.Copy would allocate 32 KiB for
// each file, which for 100,000 small zone files cost more than reading
// them.
var copyBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// copySHA256 copies the file at path to w and returns its hex SHA-256.
func copySHA256(path string, w io.Writer) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	buf := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(buf)
	// struct{ io.Reader } hides File.WriteTo, which would not use buf.
	if _, err := io.CopyBuffer(io.MultiWriter(h, w), struct{ io.Reader }{f}, *buf); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Changed names the files that differ between two manifests: changed,
// added or removed, in name order.
func Changed(planned, found Manifest) []string {
	was := map[string]string{}
	for _, f := range planned.Files {
		was[f.Name] = f.SHA256
	}
	var out []string
	for _, f := range found.Files {
		switch sum, ok := was[f.Name]; {
		case !ok:
			out = append(out, f.Name+" added")
		case sum != f.SHA256:
			out = append(out, f.Name+" changed")
		}
		delete(was, f.Name)
	}
	for name := range was {
		out = append(out, name+" removed")
	}
	slices.Sort(out)
	return out
}

// Short is a hash cut to 12 hex digits and an ellipsis, for messages.
func Short(hash string) string {
	if len(hash) > len("sha256:")+12 {
		return hash[:len("sha256:")+12] + "…"
	}
	return hash
}

// Store keeps bundles on a worker's disk, by hash: the manifest, so that
// workflow history carries only the hash and a refusal can still name
// the files that changed, and a snapshot of the files, which later steps
// on this worker use instead of files that may have been edited since. A
// Store with no Dir keeps nothing. Snapshots it no longer needs go as
// Retention says (see Prune).
type Store struct {
	Dir       string
	Retention Retention
	// Log, when set, is told what Prune removed and why a prune after a
	// Snapshot failed.
	Log *slog.Logger
}

// Snapshot copies the files at paths into the store and returns the
// manifest of the copies, which is what was snapshotted even if a file
// changes meanwhile; with no Dir it only reads them. Files are named as
// by Read, and copied to <Dir>/<hex>/<name>; the manifest records zones,
// the revision's zones as planned. Then it prunes the store: a failed
// prune is logged, not returned, since the snapshot is made.
func (s Store) Snapshot(base string, paths []string, zones []Zone) (Manifest, error) {
	m, err := s.snapshot(base, paths, zones)
	if err != nil || s.Dir == "" {
		return m, err
	}
	if _, perr := s.Prune(); perr != nil && s.Log != nil {
		s.Log.Warn("bundle store not pruned", "dir", s.Dir, "error", perr)
	}
	return m, nil
}

// snapshot is Snapshot without the prune.
func (s Store) snapshot(base string, paths []string, zones []Zone) (Manifest, error) {
	if s.Dir == "" {
		m, err := Read(base, paths)
		m.Zones = zones
		return m, err
	}
	// Zone files may be private: the store is this user's alone, even one
	// an older dnsroll made open to all (a store this user does not own
	// keeps its mode).
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return Manifest{}, storeErr(err)
	}
	_ = os.Chmod(s.Dir, 0o700)
	tmp, err := os.MkdirTemp(s.Dir, ".snapshot-*")
	if err != nil {
		return Manifest{}, storeErr(err)
	}
	defer os.RemoveAll(tmp)
	m, err := collect(base, paths, func(name, p string) (string, error) {
		return copyFile(p, filepath.Join(tmp, filepath.FromSlash(name)))
	})
	if err != nil {
		return Manifest{}, err
	}
	m.Zones, m.Base = zones, base
	// The directory and its manifest appear together, under the lock,
	// which Prune takes to remove them.
	unlock, err := s.lock(syscall.LOCK_SH)
	if err != nil {
		return Manifest{}, err
	}
	defer unlock()
	// A snapshot already there is this one, made before, unless its
	// files were damaged since: then this copy takes its place (the
	// damaged one goes by a temporary name, debris to Prune if this
	// stops half way).
	root := s.root(m.Hash)
	err = os.Rename(tmp, root)
	if (errors.Is(err, fs.ErrExist) || errors.Is(err, syscall.ENOTEMPTY)) && !intact(root, m.Files, m.Hash) {
		damaged := tmp + "-damaged"
		if err = os.Rename(root, damaged); err == nil {
			defer os.RemoveAll(damaged)
			err = os.Rename(tmp, root)
		}
	}
	if err != nil && !errors.Is(err, fs.ErrExist) && !errors.Is(err, syscall.ENOTEMPTY) {
		return Manifest{}, storeErr(err)
	}
	return m, s.Save(m)
}

// intact reports whether the files at root, named as in files, still
// hash to hash.
func intact(root string, files []File, hash string) bool {
	found := make([]File, len(files))
	err := parallel.For(len(files), func(i int) error {
		sum, err := FileSHA256(In(root, files[i].Name))
		found[i] = File{Name: files[i].Name, SHA256: sum}
		return err
	})
	return err == nil && hashOf(found) == hash
}

// copyFile copies from to to, with from's permissions, and returns the
// hex SHA-256 of what it copied.
func copyFile(from, to string) (string, error) {
	fi, err := os.Stat(from)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		return "", storeErr(err)
	}
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, fi.Mode().Perm())
	if err != nil {
		return "", storeErr(err)
	}
	return copyTo(from, out)
}

// copyTo copies the file at from to out, a file in the store, which it
// closes, and returns the hex SHA-256 of what it copied. Errors writing
// out are the store's (ErrStore); those reading from are not.
func copyTo(from string, out *os.File) (string, error) {
	sum, err := copySHA256(from, storeWriter{out})
	if cerr := out.Close(); err == nil && cerr != nil {
		err = storeErr(cerr)
	}
	return sum, err
}

// storeWriter is a writer into the store, whose errors are ErrStore.
type storeWriter struct{ w io.Writer }

func (s storeWriter) Write(p []byte) (int, error) {
	n, err := s.w.Write(p)
	if err != nil {
		err = storeErr(err)
	}
	return n, err
}

// Open returns the root of this worker's snapshot of hash, with the path
// of a file named name at filepath.Join(root, name); ok is false when
// there is none, or its files no longer hash to hash. It marks the
// snapshot used now, so that Prune leaves it to the step using it.
func (s Store) Open(hash string) (root string, ok bool) {
	root, _, ok = s.OpenManifest(hash)
	return root, ok
}

// OpenManifest is Open that also returns the snapshot's manifest, read
// once for both.
func (s Store) OpenManifest(hash string) (root string, m Manifest, ok bool) {
	if s.Dir == "" || !s.touch(hash) {
		return "", Manifest{}, false
	}
	m, ok, err := s.Load(hash)
	if !ok || err != nil {
		return "", Manifest{}, false
	}
	root = s.root(hash)
	if !intact(root, m.Files, hash) {
		return "", Manifest{}, false
	}
	return root, m, true
}

// In is the path of the file named name in the snapshot at root.
func In(root, name string) string {
	return filepath.Join(root, filepath.FromSlash(name))
}

func (s Store) root(hash string) string {
	return filepath.Join(s.Dir, strings.TrimPrefix(hash, "sha256:"))
}

// Save writes m as <Dir>/<hex>.json; writing it again is harmless.
func (s Store) Save(m Manifest) error {
	if s.Dir == "" {
		return nil
	}
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return writeAtomic(s.Dir, s.path(m.Hash), b, manifestTemp)
}

// writeAtomic writes b to path, a file in dir, through a temporary file
// named with prefix, so that a reader sees all of b or nothing.
func writeAtomic(dir, path string, b []byte, prefix string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return storeErr(err)
	}
	tmp, err := os.CreateTemp(dir, prefix+"*")
	if err != nil {
		return storeErr(err)
	}
	_, err = tmp.Write(b)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		_ = os.Remove(tmp.Name())
		return storeErr(err)
	}
	return nil
}

// Load reads the manifest of hash; ok is false when this worker has none.
func (s Store) Load(hash string) (m Manifest, ok bool, err error) {
	if s.Dir == "" || hash == "" {
		return Manifest{}, false, nil
	}
	if _, valid := hexOf(hash); !valid {
		return Manifest{}, false, fmt.Errorf("bundle store: %q is not a bundle's hash (sha256: and 64 lowercase hex digits)", hash)
	}
	b, err := os.ReadFile(s.path(hash))
	if errors.Is(err, fs.ErrNotExist) {
		return Manifest{}, false, nil
	}
	if err != nil {
		return Manifest{}, false, storeErr(err)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return Manifest{}, false, fmt.Errorf("%w: %s: %w", ErrStore, s.path(hash), err)
	}
	return m, m.Hash == hash, nil
}

// hexOf is hash's hex digits, and whether hash is a bundle's hash at all
// ("sha256:" and 64 lowercase hex digits). A hash names a file in the
// store, and one typed into a workflow's input must not name another.
func hexOf(hash string) (string, bool) {
	h, ok := strings.CutPrefix(hash, "sha256:")
	return h, ok && isHex(h)
}

func (s Store) path(hash string) string {
	return filepath.Join(s.Dir, strings.TrimPrefix(hash, "sha256:")+".json")
}
