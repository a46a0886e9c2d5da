package needlab

import (
	"testing"
)

// fakeTB records how a test ended.
type fakeTB struct {
	testing.TB
	fatal, skip string
}

func (f *fakeTB) Helper()              {}
func (f *fakeTB) Fatal(args ...any)    { f.fatal = args[0].(string) }
func (f *fakeTB) Skip(args ...any)     { f.skip = args[0].(string) }
func (f *fakeTB) Skipf(string, ...any) {}

func TestMissing(t *testing.T) {
	for _, tt := range []struct {
		env         string
		fatal, skip string
	}{
		{"", "", "nginx is missing (run `make deps`)"},
		{"1", "nginx is missing (run `make deps`)", ""},
	} {
		t.Setenv("DNSROLL_REQUIRE_LAB", tt.env)
		f := &fakeTB{}
		Missing(f, "%s is missing (run `make deps`)", "nginx")
		if f.fatal != tt.fatal || f.skip != tt.skip {
			t.Errorf("DNSROLL_REQUIRE_LAB=%q: fatal %q, skip %q; want %q, %q", tt.env, f.fatal, f.skip, tt.fatal, tt.skip)
		}
	}
}

// Programs names every missing program, and passes when all are there.
func TestPrograms(t *testing.T) {
	t.Setenv("DNSROLL_REQUIRE_LAB", "1")
	f := &fakeTB{}
	Programs(f, "sh", "dnsroll-no-such-program", "dnsroll-nor-this")
	if want := "needs dnsroll-no-such-program, dnsroll-nor-this, not found on PATH (run `make deps`)"; f.fatal != want {
		t.Errorf("fatal %q, want %q", f.fatal, want)
	}
	f = &fakeTB{}
	Programs(f, "sh")
	if f.fatal != "" || f.skip != "" {
		t.Errorf("sh is there, but fatal %q, skip %q", f.fatal, f.skip)
	}
}
