package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// dev, demo and cluster start a lab (Temporal, the simulator, named, nginx)
// in seconds: a mistyped flag is refused, naming it, before anything
// starts or the lab directory is touched. The temporal binaries are
// missing, so a refusal that came only after starting would say so instead.
func TestLabCommandsCheckFlagsBeforeStarting(t *testing.T) {
	const kept = "kept-from-before"
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"dev", "--api-addr", "nohost"}, `--api-addr "nohost": must be host:port, such as 127.0.0.1:8080 or :8080`},
		{[]string{"dev", "--sim-addr", "127.0.0.1:99999"}, `--sim-addr "127.0.0.1:99999": must be host:port`},
		{[]string{"dev", "--ui-port", "70000"}, "--ui-port 70000: must be a port from 0 (any free port) to 65535"},
		{[]string{"dev", "--temporal-port", "-1"}, "--temporal-port -1: must be a port from 0 (any free port) to 65535"},
		// The demo removes its directory first: a typo must not cost a
		// lab kept with --keep.
		{[]string{"demo", "--mode", "machine"}, `--mode "machine": use machines, processes or auto`},
		{[]string{"demo", "--sim-addr", "nohost"}, `--sim-addr "nohost": must be host:port`},
		{[]string{"cluster", "--sim-addr", "nohost"}, `--sim-addr "nohost": must be host:port`},
		{[]string{"cluster", "--temporal-port", "65536"}, "--temporal-port 65536: must be a port from 0 (any free port) to 65535"},
		// With no worker, no rollout of the lab would ever run.
		{[]string{"cluster", "--workers", "0"}, "--workers 0: must be at least 1"},
		{[]string{"cluster", "--workers", "-2"}, "--workers -2: must be at least 1"},
	} {
		dir := filepath.Join(t.TempDir(), "lab")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, kept), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		missing := filepath.Join(t.TempDir(), "none")
		args := append(tc.args, "--dir", dir, "--fleets", "../../fleets")
		if tc.args[0] == "cluster" {
			args = append(args, "--bin", missing)
		} else {
			args = append(args, "--temporal-bin", filepath.Join(missing, "temporal"))
		}
		_, errOut, code := cli(t, args...)
		if code != 1 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want a refusal with %q", tc.args, code, errOut, tc.want)
		}
		if entries, err := os.ReadDir(dir); err != nil || len(entries) != 1 || entries[0].Name() != kept {
			t.Errorf("%v: the lab directory holds %v (%v); want it untouched", tc.args, entries, err)
		}
	}
}
