package lbtest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dnsroll/dnsroll"
)

// Checker is a load balancer program's own check of the config file at
// path, such as nginx -t: the check its role makes before installing one.
type Checker func(path string) *exec.Cmd

// CheckConfig writes conf to path and fails t unless check accepts it.
func CheckConfig(t testing.TB, path, conf string, check Checker) {
	t.Helper()
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := check(path)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s\n%s", strings.Join(cmd.Args, " "), err, out, conf)
	}
}

// RenderedPass runs CheckConfig, in a new directory, on the config file
// render returns for each backend list a config must take: one backend,
// none, and an IPv6 one.
func RenderedPass(t *testing.T, file string, render func(t *testing.T, dir string, backends []string) string, check Checker) {
	t.Helper()
	for name, backends := range map[string][]string{
		"one backend": {"127.0.0.1:15301"},
		"no backends": nil,
		"ipv6":        {"[::1]:15302"},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			CheckConfig(t, filepath.Join(dir, file), render(t, dir, backends), check)
		})
	}
}

// RenderRejects fails t unless render refuses, with EINVALID, each of
// mutations applied to the data valid returns.
func RenderRejects[D any](t *testing.T, valid func() D, render func(D) (string, error), mutations map[string]func(*D)) {
	t.Helper()
	for name, mutate := range mutations {
		t.Run(name, func(t *testing.T) {
			data := valid()
			mutate(&data)
			_, err := render(data)
			if got, want := dnsroll.ErrorCode(err), dnsroll.EINVALID; got != want {
				t.Fatalf("Render error code = %q (%v), want %q", got, err, want)
			}
		})
	}
}
