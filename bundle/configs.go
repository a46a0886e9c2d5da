package bundle

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// configsDir holds the configs steps run with, by hash, beside the
// snapshots. They are a few kilobytes each; Prune removes them by the
// snapshots' Retention.
const configsDir = "configs"

// PutConfig keeps b, the config a rollout's steps run with, under hash:
// the caller's content address of it, "sha256:<hex>". Later steps on this
// worker read it back with Config, so that an edit of the config since
// the plan does not reach them. Keeping it again is harmless; a Store
// with no Dir keeps nothing.
func (s Store) PutConfig(hash string, b []byte) error {
	if s.Dir == "" {
		return nil
	}
	if !isHex(strings.TrimPrefix(hash, "sha256:")) {
		return fmt.Errorf("bundle store: config hash %q is not sha256:<hex>", hash)
	}
	dir := filepath.Join(s.Dir, configsDir)
	return writeAtomic(dir, s.configPath(hash), b, manifestTemp)
}

// Config is what PutConfig kept under hash; ok is false when this worker
// has none. The caller checks that it still hashes to hash. Reading it
// marks it used, as Open marks a snapshot, so that Prune keeps the
// configs of the rollouts under way.
func (s Store) Config(hash string) (b []byte, ok bool, err error) {
	if s.Dir == "" || !isHex(strings.TrimPrefix(hash, "sha256:")) {
		return nil, false, nil
	}
	if !s.touchPath(s.configPath(hash)) {
		return nil, false, nil
	}
	b, err = os.ReadFile(s.configPath(hash))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, storeErr(err)
	}
	return b, true, nil
}

func (s Store) configPath(hash string) string {
	return filepath.Join(s.Dir, configsDir, strings.TrimPrefix(hash, "sha256:")+".json")
}

// ScratchLife is how old a scratch directory must be before Prune takes
// it for what a killed worker left: far longer than any step runs.
const ScratchLife = 24 * time.Hour

// Scratch makes a directory for one step's working files, such as the
// zone list it hands to Ansible, and returns it with its removal. In a
// store it is made there, so that one a killed worker leaves behind goes
// at a later Prune, once ScratchLife old; a Store with no Dir makes it in
// the system's temporary directory.
func (s Store) Scratch() (dir string, remove func(), err error) {
	parent, pattern := s.Dir, scratchTemp+"*"
	if parent == "" {
		parent, pattern = os.TempDir(), "dnsroll-scratch-*"
	} else if err := os.MkdirAll(parent, 0o755); err != nil {
		return "", nil, storeErr(err)
	}
	dir, err = os.MkdirTemp(parent, pattern)
	if err != nil {
		return "", nil, storeErr(err)
	}
	return dir, func() { _ = os.RemoveAll(dir) }, nil
}
