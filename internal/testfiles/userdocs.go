package testfiles

import (
	"os"
	"path/filepath"
	"testing"
)

// UserDocs are the operator's docs, README.md and docs/*.md of the
// repository at root, by their path in it: the one list that the tests
// holding the docs to the code read.
func UserDocs(t testing.TB, root string) map[string]string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	docs := map[string]string{}
	for _, f := range append(files, filepath.Join(root, "README.md")) {
		text, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		name, _ := filepath.Rel(root, f)
		docs[name] = string(text)
	}
	if len(docs) < 5 {
		t.Fatalf("found %d docs under %s", len(docs), root)
	}
	return docs
}
