package bundle

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// Retention says which snapshots Prune removes: those unused for longer
// than MaxAge, except the Keep most recently used. A snapshot's last use
// is its manifest's modification time, which Snapshot and Open set. The
// zero Retention removes no snapshot, only debris (see Prune).
type Retention struct {
	// Keep is how many of the most recently used snapshots are kept
	// whatever their age.
	Keep int
	// MaxAge is how long a snapshot may go unused before it is removed;
	// zero or less keeps every snapshot.
	MaxAge time.Duration
}

// DefaultRetention suits a production worker: a week covers a rollout
// paused at its approval gate over a weekend, and twenty snapshots the
// revisions an operator may want to roll back to on a quiet fleet.
var DefaultRetention = Retention{Keep: 20, MaxAge: 7 * 24 * time.Hour}

// removes reports whether r removes what was used unused ago and ranks
// rank among its kind, the most recently used first (rank 0).
func (r Retention) removes(rank int, unused time.Duration) bool {
	return rank >= r.Keep && r.MaxAge > 0 && unused >= r.MaxAge && unused >= InUse
}

// InUse is how long after its last use a snapshot counts as in use: a
// step may still be reading what it opened, so Prune never removes it,
// whatever the Retention. Leftovers of a Snapshot or Save that did not
// finish (temporary names, a manifest without its files or files without
// a manifest) are removed once this old too: one that is younger may
// still be being written.
const InUse = time.Hour

// Pruned is what one Prune removed.
type Pruned struct {
	// Snapshots counts snapshots removed, manifest and files.
	Snapshots int
	// Configs counts configs removed (PutConfig's).
	Configs int
	// Debris counts leftovers removed: temporary files and directories,
	// manifests without files, files without a manifest.
	Debris int
	// Bytes is the size of the files removed.
	Bytes int64
}

// Temporary names in a store: a Snapshot's or a Save's work in progress,
// and a snapshot Prune has taken out of use and is removing.
const (
	snapshotTemp = ".snapshot-"
	manifestTemp = ".manifest-"
	scratchTemp  = ".scratch-"
	prunedTemp   = ".pruned-"
)

// entry is what Prune sees of one hash in the store.
type entry struct {
	hex      string
	manifest fs.FileInfo // nil without one
	dir      fs.FileInfo // nil without one
}

// Prune removes from the store the snapshots its Retention does not keep
// and the debris of interrupted work, and logs what it removed (to Log,
// when set). It lists one directory. It holds the store's lock while it
// decides and takes what it removes out of use (a rename or an unlink),
// so a concurrent Snapshot or Open of the same hash in any process sees a
// whole snapshot or none; the files are deleted after.
func (s Store) Prune() (Pruned, error) {
	var p Pruned
	if s.Dir == "" {
		return p, nil
	}
	unlock, err := s.lock(syscall.LOCK_EX)
	if errors.Is(err, fs.ErrNotExist) {
		return p, nil
	}
	if err != nil {
		return p, err
	}
	doomed, err := s.takeOut(time.Now(), &p)
	unlock()
	for _, dir := range doomed {
		p.Bytes += size(dir)
		if rerr := os.RemoveAll(dir); rerr != nil && err == nil {
			err = storeErr(rerr)
		}
	}
	if s.Log != nil && p != (Pruned{}) {
		s.Log.Info("bundle store pruned", "dir", s.Dir, "snapshots", p.Snapshots, "configs", p.Configs, "debris", p.Debris, "bytes", p.Bytes)
	}
	return p, err
}

// takeOut lists the store and takes out of use what Prune removes:
// manifests and temporary files are removed, directories renamed to
// temporary names, which it returns for deletion. The caller holds the
// lock.
func (s Store) takeOut(now time.Time, p *Pruned) (doomed []string, err error) {
	des, err := os.ReadDir(s.Dir)
	if err != nil {
		return nil, storeErr(err)
	}
	byHex := map[string]*entry{}
	at := func(hex string) *entry {
		if byHex[hex] == nil {
			byHex[hex] = &entry{hex: hex}
		}
		return byHex[hex]
	}
	idle := func(fi fs.FileInfo) bool { return now.Sub(fi.ModTime()) >= InUse }
	for _, de := range des {
		name := de.Name()
		fi, err := de.Info()
		if err != nil {
			continue // removed meanwhile
		}
		switch hex, isManifest := strings.CutSuffix(name, ".json"); {
		case strings.HasPrefix(name, prunedTemp):
			doomed = append(doomed, filepath.Join(s.Dir, name)) // an interrupted Prune's
			p.Debris++
		case strings.HasPrefix(name, scratchTemp):
			if now.Sub(fi.ModTime()) >= ScratchLife {
				doomed = append(doomed, filepath.Join(s.Dir, name))
				p.Debris++
			}
		case strings.HasPrefix(name, snapshotTemp) || strings.HasPrefix(name, manifestTemp):
			if idle(fi) {
				doomed = append(doomed, filepath.Join(s.Dir, name))
				p.Debris++
			}
		case !isHex(hex):
			// not the store's: left alone
		case isManifest && fi.Mode().IsRegular():
			at(hex).manifest = fi
		case !isManifest && fi.IsDir():
			at(hex).dir = fi
		}
	}
	// Taken out: debris, then the snapshots the retention does not keep.
	var whole, out []*entry
	for _, e := range byHex {
		switch {
		case e.manifest != nil && e.dir != nil:
			whole = append(whole, e)
		case e.manifest != nil && idle(e.manifest), e.dir != nil && idle(e.dir):
			out = append(out, e)
		}
	}
	// Most recently used first; a tie in name order, so the choice is
	// the same every time.
	slices.SortFunc(whole, func(a, b *entry) int {
		if c := b.manifest.ModTime().Compare(a.manifest.ModTime()); c != 0 {
			return c
		}
		return strings.Compare(a.hex, b.hex)
	})
	for i, e := range whole {
		if s.Retention.removes(i, now.Sub(e.manifest.ModTime())) {
			out = append(out, e)
		}
	}
	for _, e := range out {
		n, gone, err := s.remove(e)
		if err != nil {
			return doomed, err
		}
		if e.manifest != nil && e.dir != nil {
			p.Snapshots++
		} else {
			p.Debris++
		}
		p.Bytes += n
		doomed = append(doomed, gone...)
	}
	return doomed, s.removeConfigs(now, p)
}

// removeConfigs removes the configs the Retention does not keep, by the
// snapshots' rule (a config's last use is its file's modification time,
// which PutConfig and Config set), and the temporary files of a PutConfig
// that did not finish, once InUse old. The caller holds the lock.
func (s Store) removeConfigs(now time.Time, p *Pruned) error {
	dir := filepath.Join(s.Dir, configsDir)
	des, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return storeErr(err)
	}
	remove := func(fi fs.FileInfo, count *int) error {
		if err := os.Remove(filepath.Join(dir, fi.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return storeErr(err)
		}
		*count++
		p.Bytes += fi.Size()
		return nil
	}
	var configs []fs.FileInfo
	for _, de := range des {
		fi, err := de.Info()
		if err != nil || !fi.Mode().IsRegular() {
			continue
		}
		hex, isJSON := strings.CutSuffix(fi.Name(), ".json")
		switch {
		case strings.HasPrefix(fi.Name(), manifestTemp) && now.Sub(fi.ModTime()) >= InUse:
			if err := remove(fi, &p.Debris); err != nil {
				return err
			}
		case isJSON && isHex(hex):
			configs = append(configs, fi)
		}
	}
	slices.SortFunc(configs, func(a, b fs.FileInfo) int {
		if c := b.ModTime().Compare(a.ModTime()); c != 0 {
			return c
		}
		return strings.Compare(a.Name(), b.Name())
	})
	for i, fi := range configs {
		if s.Retention.removes(i, now.Sub(fi.ModTime())) {
			if err := remove(fi, &p.Configs); err != nil {
				return err
			}
		}
	}
	return nil
}

// remove takes e out of the store: its manifest first, so that Open,
// which needs it, stops finding the snapshot, then its directory, renamed
// to a temporary name that Prune deletes. It returns the manifest's size
// and the directory to delete.
func (s Store) remove(e *entry) (int64, []string, error) {
	var n int64
	if e.manifest != nil {
		if err := os.Remove(filepath.Join(s.Dir, e.hex+".json")); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return 0, nil, storeErr(err)
		}
		n = e.manifest.Size()
	}
	if e.dir == nil {
		return n, nil, nil
	}
	// Unique: an earlier Prune, interrupted, may have left this hash's.
	gone := filepath.Join(s.Dir, fmt.Sprintf("%s%s-%d", prunedTemp, e.hex, time.Now().UnixNano()))
	if err := os.Rename(filepath.Join(s.Dir, e.hex), gone); err != nil {
		return n, nil, storeErr(err)
	}
	return n, []string{gone}, nil
}

// lock takes the store's lock, how being syscall.LOCK_SH or LOCK_EX (an
// flock of the store's directory, which every process sharing the store
// sees), and returns its release. It fails with fs.ErrNotExist when the
// store has no directory yet.
func (s Store) lock(how int) (unlock func(), err error) {
	d, err := os.Open(s.Dir)
	if err != nil {
		return nil, storeErr(err)
	}
	if err := syscall.Flock(int(d.Fd()), how); err != nil {
		d.Close()
		return nil, fmt.Errorf("%w: locking %s: %w", ErrStore, s.Dir, err)
	}
	return func() { d.Close() }, nil // closing releases the flock
}

// touch marks the snapshot of hash used now, so that Prune, which keeps
// the most recently used, does not remove it under a step using it. It
// reports whether the snapshot's manifest is there.
func (s Store) touch(hash string) bool {
	if _, valid := hexOf(hash); !valid {
		return false
	}
	return s.touchPath(s.path(hash))
}

// touchPath marks the store's file at path used now, under the store's
// shared lock, and reports whether it is there.
func (s Store) touchPath(path string) bool {
	unlock, err := s.lock(syscall.LOCK_SH)
	if err != nil {
		return false
	}
	defer unlock()
	now := time.Now()
	err = os.Chtimes(path, now, now)
	// A store this worker may read but not write still serves.
	return err == nil || !errors.Is(err, fs.ErrNotExist)
}

// isHex reports whether name is a SHA-256 in hex, as snapshots are named.
func isHex(name string) bool {
	return len(name) == 64 && strings.Trim(name, "0123456789abcdef") == ""
}

// size is the total size of the regular files under path.
func size(path string) int64 {
	var n int64
	_ = filepath.WalkDir(path, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}
