package benchdoc

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestThousands(t *testing.T) {
	for n, want := range map[int]string{0: "0", 999: "999", 1000: "1,000", 100000: "100,000", 1234567: "1,234,567", -10000: "-10,000"} {
		if got := Thousands(n); got != want {
			t.Errorf("Thousands(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestReplace(t *testing.T) {
	const begin, end = "<!-- begin -->", "<!-- end -->"
	out, err := Replace([]byte("# T\nbefore\n"+begin+"\nold\n"+end+"\nafter\n"), begin, end, "new\n")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(out), "# T\nbefore\n"+begin+"\nnew\n"+end+"\nafter\n"; got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	for _, text := range []string{"# no markers\n", end + "\n" + begin + "\n"} {
		if _, err := Replace([]byte(text), begin, end, "new\n"); err == nil || !strings.Contains(err.Error(), begin) {
			t.Errorf("%q: %v, want an error naming the begin marker", text, err)
		}
	}
}

func TestWriteJSON(t *testing.T) {
	path := filepath.Join(t.TempDir(), "new", "results.json")
	if err := WriteJSON(path, map[string]any{"runs": 3, "rows": []int{1}}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b), "{\n  \"rows\": [\n    1\n  ],\n  \"runs\": 3\n}\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
