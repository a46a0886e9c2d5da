package hostkeys

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// Store is a known_hosts file in OpenSSH's format, which ssh reads as it is
// (UserKnownHostsFile) and operators edit with ssh-keygen -R. Goroutines of
// one worker and workers sharing the file may update it at once: every
// update holds an flock on <file>.lock and replaces the file by rename, so
// a reader (ssh, or a check) never sees half a file.
type Store struct {
	path string
	mu   sync.Mutex
}

// OpenStore opens the known_hosts file at path, creating it (0600) and its
// directory (0700) when missing.
func OpenStore(path string) (*Store, error) {
	if strings.ContainsAny(path, " \t\r\n\"'\\") {
		// The path goes into ssh's options through Ansible, which splits
		// them on whitespace and quotes.
		return nil, fmt.Errorf("known_hosts path %q: use a path without spaces, quotes or backslashes", path)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("known_hosts %s: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o700); err != nil {
		return nil, fmt.Errorf("known_hosts: %w", err)
	}
	f, err := os.OpenFile(abs, os.O_CREATE|os.O_RDONLY, 0o600)
	if err != nil {
		return nil, fmt.Errorf("known_hosts: %w", err)
	}
	f.Close()
	return &Store{path: abs}, nil
}

// Path is the file's absolute path.
func (s *Store) Path() string { return s.path }

// Entry is one key recorded for a host.
type Entry struct {
	Key ssh.PublicKey
	// Comment is the rest of the line after the key; dnsroll writes
	// "dnsroll:<instance>" for machines a rollout created.
	Comment string
}

// Entries returns the keys recorded for host (a known_hosts host name, as
// Normalize gives it), in file order. Lines with a marker (@revoked,
// @cert-authority) and wildcard patterns are not entries of one host.
func (s *Store) Entries(host string) ([]Entry, error) {
	data, err := os.ReadFile(s.path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("known_hosts: %w", err)
	}
	var out []Entry
	for _, line := range strings.Split(string(data), "\n") {
		if e, ok := entryFor(line, host); ok {
			out = append(out, e)
		}
	}
	return out, nil
}

// Add appends keys for host unless the file already holds an entry for it
// (another goroutine or worker may have recorded it first); it reports
// whether it wrote them.
func (s *Store) Add(host string, keys []ssh.PublicKey, comment string) (bool, error) {
	added := false
	err := s.update(func(lines []string) []string {
		for _, l := range lines {
			if _, ok := entryFor(l, host); ok {
				return lines
			}
		}
		added = true
		return append(lines, keyLines(host, keys, comment)...)
	})
	return added, err
}

// Append adds keys for host after whatever the file holds for it.
func (s *Store) Append(host string, keys []ssh.PublicKey, comment string) error {
	return s.update(func(lines []string) []string { return append(lines, keyLines(host, keys, comment)...) })
}

// Replace makes keys the only entries for host and returns how many old
// entries it removed.
func (s *Store) Replace(host string, keys []ssh.PublicKey, comment string) (int, error) {
	removed := 0
	err := s.update(func(lines []string) []string {
		var out []string
		out, removed = without(lines, host, nil)
		return append(out, keyLines(host, keys, comment)...)
	})
	return removed, err
}

// Remove deletes the entries for host that match (all when match is nil)
// and returns how many it removed.
func (s *Store) Remove(host string, match func(Entry) bool) (int, error) {
	removed := 0
	err := s.update(func(lines []string) []string {
		var out []string
		out, removed = without(lines, host, match)
		return out
	})
	return removed, err
}

// without returns lines less host's entries that match (all when match is
// nil), and how many it dropped.
func without(lines []string, host string, match func(Entry) bool) ([]string, int) {
	out := lines[:0:0]
	n := 0
	for _, l := range lines {
		if e, ok := entryFor(l, host); ok && (match == nil || match(e)) {
			n++
			continue
		}
		out = append(out, l)
	}
	return out, n
}

func keyLines(host string, keys []ssh.PublicKey, comment string) []string {
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		l := knownhosts.Line([]string{host}, k)
		if comment != "" {
			l += " " + comment
		}
		out = append(out, l)
	}
	return out
}

// update rewrites the file with fn's lines under both locks.
func (s *Store) update(fn func(lines []string) []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	lock, err := os.OpenFile(s.path+".lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("known_hosts: %w", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("known_hosts: lock %s: %w", lock.Name(), err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)

	data, err := os.ReadFile(s.path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("known_hosts: %w", err)
	}
	var lines []string
	if text := strings.TrimRight(string(data), "\n"); text != "" {
		lines = strings.Split(text, "\n")
	}
	lines = fn(lines)
	var b bytes.Buffer
	for _, l := range lines {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	tmp, err := os.CreateTemp(filepath.Dir(s.path), ".known_hosts-*")
	if err != nil {
		return fmt.Errorf("known_hosts: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err = io.Copy(tmp, &b); err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), s.path)
	}
	if err != nil {
		return fmt.Errorf("known_hosts: write %s: %w", s.path, err)
	}
	return nil
}

// entryFor parses line and returns its key when the line is an entry for
// host: one of its host names is host, in plain text or hashed (ssh-keygen
// -H). Comments, blank and malformed lines, markers and patterns never are.
func entryFor(line, host string) (Entry, bool) {
	marker, hosts, key, comment, _, err := ssh.ParseKnownHosts([]byte(line))
	if err != nil || marker != "" {
		return Entry{}, false
	}
	for _, h := range hosts {
		if h == host || hashMatches(h, host) {
			return Entry{Key: key, Comment: comment}, true
		}
	}
	return Entry{}, false
}

// hashMatches reports whether pattern is OpenSSH's "|1|salt|hash" of host.
func hashMatches(pattern, host string) bool {
	parts := strings.Split(pattern, "|")
	if len(parts) != 4 || parts[0] != "" || parts[1] != "1" {
		return false
	}
	salt, err1 := base64.StdEncoding.DecodeString(parts[2])
	want, err2 := base64.StdEncoding.DecodeString(parts[3])
	if err1 != nil || err2 != nil {
		return false
	}
	m := hmac.New(sha1.New, salt)
	m.Write([]byte(host))
	return hmac.Equal(m.Sum(nil), want)
}
