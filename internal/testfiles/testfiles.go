// Package testfiles writes the files that tests start from, making the
// directories they need, and reads the docs that tests hold to the code;
// any failure fails the test.
package testfiles

import (
	"os"
	"path/filepath"
	"testing"
)

// Write writes text to path, making path's directory.
func Write(t testing.TB, path, text string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// WriteAll writes files, text by slash-separated path relative to dir,
// into dir.
func WriteAll(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	for name, text := range files {
		Write(t, filepath.Join(dir, filepath.FromSlash(name)), text)
	}
}
