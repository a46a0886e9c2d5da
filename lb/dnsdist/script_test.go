package dnsdist

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestBackendsScriptRefusesBeforeTheConsole: the role's console script
// pastes its arguments into Lua, so an argument that could break out of a
// Lua string, and any malformed call, must stop it with usage status 2
// before it runs a single console command.
func TestBackendsScriptRefusesBeforeTheConsole(t *testing.T) {
	script, err := filepath.Abs("../../ansible/roles/dnsdist/files/dnsdist-backends.sh")
	if err != nil {
		t.Fatal(err)
	}
	// The console config's directory, where the script takes its lock.
	conf := filepath.Join(t.TempDir(), "console.conf")
	ok := []string{conf, "example.com.", "SOA", "true", "30"}
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"point backend with a quote", append(append([]string{"point"}, ok...), "1", "192.0.2.1:53'"), "refusing unsafe value"},
		{"stage staged backend with a quote", append(append([]string{"stage"}, ok...), "--", "192.0.2.1:53')os.exit("), "refusing unsafe value"},
		{"stage live backend with a backslash", append(append([]string{"stage"}, ok...), `192.0.2.1:53\`, "--"), "refusing unsafe value"},
		{"check name with a quote", []string{"point", conf, "a.'", "SOA", "true", "30", "1"}, "refusing unsafe value"},
		{"unknown mode", append(append([]string{"flip"}, ok...), "1"), "usage"},
		{"point without drain", append([]string{"point"}, ok...), "usage"},
		{"stage without --", append(append([]string{"stage"}, ok...), "192.0.2.1:53"), "missing --"},
		{"drain not a number", append(append([]string{"point"}, ok...), "1s"), "DRAIN is whole seconds"},
		{"must_resolve not a boolean", []string{"stage", conf, "a.", "SOA", "yes", "30", "--"}, "MUST_RESOLVE"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			// A dnsdist on PATH that records that it ran.
			bin := t.TempDir()
			ran := filepath.Join(bin, "ran")
			if err := os.WriteFile(filepath.Join(bin, "dnsdist"), []byte("#!/bin/sh\ntouch "+ran+"\necho dnsroll-ok\n"), 0o755); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command("sh", append([]string{script}, tt.args...)...)
			cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"))
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 2 || !strings.Contains(string(out), tt.want) {
				t.Errorf("%v: %v, %q; want exit status 2 saying %q", tt.args, err, out, tt.want)
			}
			if _, err := os.Stat(ran); err == nil {
				t.Error("the console ran")
			}
		})
	}
}

// A console that fails when the script lists the backends stops a point
// before it adds any: before, the failure was lost in a pipeline, the list
// read empty, and the script added a second server of a backend that
// already served, which failed every later point.
func TestBackendsScriptStopsWhenTheListFails(t *testing.T) {
	// A dnsdist whose first console call fails and whose others record
	// their Lua.
	out, calls, err := pointWithFake(t, "example.com.", func(bin, calls string) string {
		return "if [ ! -e " + bin + "/failed ]; then touch " + bin + "/failed; echo 'connection refused'; exit 1; fi\n" +
			"printf '%s\\n' \"$5\" >>" + calls + "\necho dnsroll-ok\n"
	})
	if err == nil || !strings.Contains(out, "connection refused") {
		t.Errorf("point: %v, %q; want it to fail with the console's error", err, out)
	}
	if strings.Contains(calls, "newServer") {
		t.Errorf("the script added a backend after the list failed:\n%s", calls)
	}
}

// The health check name is a zone's, which may hold "/" (RFC 2317):
// safe inside a Lua string, so the script passes it to dnsdist.
func TestBackendsScriptTakesAClasslessReverseZone(t *testing.T) {
	// A dnsdist that records its Lua; the backend it adds never comes up,
	// which fails the point after the add.
	out, calls, _ := pointWithFake(t, "0/26.2.0.192.in-addr.arpa.", func(_, calls string) string {
		return "printf '%s\\n' \"$5\" >>" + calls + "\necho dnsroll-ok\n"
	})
	if !strings.Contains(out, "backends not up after 1s") {
		t.Errorf("point: %q, want it to add the backend and wait for it", out)
	}
	if !strings.Contains(calls, "newServer({address = '192.0.2.1:53', name = '192.0.2.1:53', checkName = '0/26.2.0.192.in-addr.arpa.'") {
		t.Errorf("the script added no backend checking the zone's SOA:\n%s", calls)
	}
}

// pointWithFake runs the script's point of backend 192.0.2.1:53, checked
// with checkName, against a dnsdist on PATH whose shell script is fake's
// (given its directory and a file to record calls in). It returns the
// script's output, the calls recorded, and its error.
func pointWithFake(t *testing.T, checkName string, fake func(bin, calls string) string) (string, string, error) {
	t.Helper()
	script, err := filepath.Abs("../../ansible/roles/dnsdist/files/dnsdist-backends.sh")
	if err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	calls := filepath.Join(bin, "calls")
	if err := os.WriteFile(filepath.Join(bin, "dnsdist"), []byte("#!/bin/sh\n"+fake(bin, calls)), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sh", script, "point", filepath.Join(t.TempDir(), "console.conf"), checkName, "SOA", "true", "1", "0", "192.0.2.1:53")
	cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"))
	out, err := cmd.CombinedOutput()
	b, _ := os.ReadFile(calls)
	return string(out), string(b), err
}

// One point or stage runs at a time on a load balancer: a run whose
// caller died (a worker killed mid-switch) may still be draining, and
// would remove backends that the next run has just put back. The next
// waits for its lock, and only then asks the console.
func TestBackendsScriptWaitsForTheRunBefore(t *testing.T) {
	script, err := filepath.Abs("../../ansible/roles/dnsdist/files/dnsdist-backends.sh")
	if err != nil {
		t.Fatal(err)
	}
	bin, dir := t.TempDir(), t.TempDir()
	ran := filepath.Join(bin, "ran")
	if err := os.WriteFile(filepath.Join(bin, "dnsdist"), []byte("#!/bin/sh\ntouch "+ran+"\necho dnsroll-ok\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	// The run before holds the lock.
	lock, err := os.OpenFile(filepath.Join(dir, "dnsroll-backends.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sh", script, "point", filepath.Join(dir, "console.conf"), "example.com.", "SOA", "true", "1", "0")
	cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"))
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	if _, err := os.Stat(ran); err == nil {
		t.Error("the console ran while the run before held the lock")
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_UN); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if _, err := os.Stat(ran); err != nil {
		t.Errorf("the console never ran once the lock was free: %s", out.String())
	}
}
