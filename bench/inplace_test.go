package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dnsroll/dnsroll/lb"
)

// Each config change installs a config that differs from the one running,
// and only by its one comment: changes do not pile up.
func TestNginxConfigChange(t *testing.T) {
	dir := t.TempDir()
	live := "stream {\n    server { listen 127.0.0.1:5353 udp reuseport; }\n}\n"
	for i := range 3 {
		if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(live), 0o644); err != nil {
			t.Fatal(err)
		}
		u, err := nginxConfigChange(dir, i)
		if err != nil {
			t.Fatal(err)
		}
		if u.Kind != lb.UpdateConfig || u.Config == live {
			t.Fatalf("change %d: %+v, want a config other than the live one", i, u)
		}
		if got := strings.Count(u.Config, benchConfComment); got != 1 {
			t.Errorf("change %d has %d bench comments, want 1:\n%s", i, got, u.Config)
		}
		if !strings.HasPrefix(u.Config, "stream {") || !strings.Contains(u.Config, "listen 127.0.0.1:5353 udp reuseport;") {
			t.Errorf("change %d lost the live config:\n%s", i, u.Config)
		}
		live = u.Config
	}
	if _, err := nginxConfigChange(t.TempDir(), 0); err == nil {
		t.Error("a load balancer directory without nginx.conf gave an update")
	}
}

// An even number of dnsdist changes ends with the role's settings, and
// each change's undo is the state before it.
func TestDnsdistConsoleChange(t *testing.T) {
	var state []string
	for i := range 10 {
		u, err := dnsdistConsoleChange("", i)
		if err != nil || u.Kind != lb.UpdateConsole {
			t.Fatalf("change %d: %+v, %v", i, u, err)
		}
		if i > 0 && u.UndoLua != state[i-1] {
			t.Errorf("change %d undoes to %q, want the state before it, %q", i, u.UndoLua, state[i-1])
		}
		state = append(state, u.Lua)
	}
	if last := state[len(state)-1]; !strings.Contains(last, "wrandom") || !strings.Contains(last, "'0.0.0.0/0'") {
		t.Errorf("after 10 changes dnsdist runs %q, want the role's wrandom and open ACL", last)
	}
}

func TestPasses(t *testing.T) {
	for sc, want := range map[string]int{"rollout": switchPass, "steady": switchPass, "inplace-nginx-binary": inplacePass, "canary-rollback": canaryPass} {
		if got := passOf(sc); got != want {
			t.Errorf("passOf(%q) = %d, want %d", sc, got, want)
		}
	}
	if got := plotName([]string{"inplace-nginx-config", "inplace-dnsdist-config"}); got != "inplace.png" {
		t.Errorf("a run of in-place scenarios only draws %s, want inplace.png beside the rollouts' plot", got)
	}
	if got := plotName([]string{"inplace-nginx-config", "rollout"}); got != "results.png" {
		t.Errorf("a run with a rollout draws %s, want results.png", got)
	}
}
