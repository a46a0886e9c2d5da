package dnsdist

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dnsroll/dnsroll/internal/needlab"
	"github.com/dnsroll/dnsroll/lb/lbtest"
)

func testData(dir string, backends ...string) TemplateData {
	name, qtype, must := HealthCheck("example.com")
	return TemplateData{
		Name: "lb1", Listen: "127.0.0.1:15401", Console: "127.0.0.2:15401",
		KeyFile: filepath.Join(dir, "console.key"), SplitFile: filepath.Join(dir, "split"), Backends: backends,
		CheckName: name, CheckType: qtype, MustResolve: must,
	}
}

// mustRender renders data and fails t unless the config holds every want.
func mustRender(t *testing.T, data TemplateData, want ...string) string {
	t.Helper()
	conf, err := Render(data)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range want {
		if !strings.Contains(conf, w) {
			t.Errorf("rendered config lacks %q:\n%s", w, conf)
		}
	}
	return conf
}

// checkConfig runs the real "dnsdist --check-config" on conf in dir, with
// the console key it reads.
func checkConfig(t *testing.T, dir, conf string) {
	t.Helper()
	writeKey(t, dir)
	lbtest.CheckConfig(t, filepath.Join(dir, "dnsdist.conf"), conf, checkCommand)
}

// checkCommand is the check the role makes before installing a config.
func checkCommand(path string) *exec.Cmd {
	return exec.Command("dnsdist", "--check-config", "-C", path)
}

func TestRender(t *testing.T) {
	conf := mustRender(t, testData("/srv/lb1", "127.0.0.1:15301", "[::1]:53"),
		"setLocal('127.0.0.1:15401')",
		"controlSocket('127.0.0.2:15401')",
		"io.open('/srv/lb1/console.key')",
		"setServFailWhenNoServer(true)",
		"setACL({'0.0.0.0/0', '::/0'})",
		"newServer({address = '127.0.0.1:15301', name = '127.0.0.1:15301', checkName = 'example.com.', checkType = 'SOA', mustResolve = true, checkInterval = 1, maxCheckFailures = 3})",
		"newServer({address = '[::1]:53', name = '[::1]:53',",
		"Managed by dnsroll",
	)
	if strings.Contains(conf, "setKey('") {
		t.Errorf("the config must read the key from its file, not hold it:\n%s", conf)
	}
	none, err := Render(testData("/srv/lb1"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(none, "newServer") || !strings.Contains(none, "none: every query gets SERVFAIL") {
		t.Errorf("config without backends:\n%s", none)
	}
}

// TestRenderStaged: staged backends are recorded in pool "staged" only, so
// a restarted dnsdist knows them without sending them traffic; one that is
// live too is live; and dnsdist accepts the result.
func TestRenderStaged(t *testing.T) {
	dir := t.TempDir()
	data := testData(dir, "127.0.0.1:15301")
	data.Staged = []string{"127.0.0.1:15302", "127.0.0.1:15301"}
	conf := mustRender(t, data,
		"setServerPolicy(wrandom)",
		"newServer({address = '127.0.0.1:15301', name = '127.0.0.1:15301', checkName",
		"newServer({address = '127.0.0.1:15302', name = '127.0.0.1:15302', pool = 'staged', checkName",
	)
	if n := strings.Count(conf, "'127.0.0.1:15301', name"); n != 1 {
		t.Errorf("backend both live and staged appears %d times, want once (live):\n%s", n, conf)
	}
	needlab.Programs(t, "dnsdist") // to check the config it rendered
	checkConfig(t, dir, conf)
}

func TestHealthCheck(t *testing.T) {
	if n, q, m := HealthCheck("example.com."); n != "example.com." || q != "SOA" || !m {
		t.Errorf("HealthCheck(example.com.) = %s %s %v", n, q, m)
	}
	if n, q, m := HealthCheck(""); n != "a.root-servers.net." || q != "A" || m {
		t.Errorf("HealthCheck() = %s %s %v, want dnsdist's default", n, q, m)
	}
}

// A fleet whose first zone is an RFC 2317 classless reverse zone, which
// the nameserver role serves, has its SOA as the backends' health check:
// "/" stays inside the Lua string, and dnsdist takes the name.
func TestHealthCheckOfAClasslessReverseZone(t *testing.T) {
	dir := t.TempDir()
	data := testData(dir, "127.0.0.1:15301")
	data.CheckName, data.CheckType, data.MustResolve = HealthCheck("0/26.2.0.192.in-addr.arpa")
	conf := mustRender(t, data, "checkName = '0/26.2.0.192.in-addr.arpa.', checkType = 'SOA', mustResolve = true")
	needlab.Programs(t, "dnsdist")
	checkConfig(t, dir, conf)
}

// TestRenderedConfigPassesCheckConfig runs the real "dnsdist --check-config"
// on rendered configs, the same check the role makes before installing one.
func TestRenderedConfigPassesCheckConfig(t *testing.T) {
	lbtest.NeedTools(t, "dnsdist")
	lbtest.RenderedPass(t, "dnsdist.conf", func(t *testing.T, dir string, backends []string) string {
		writeKey(t, dir)
		return mustRender(t, testData(dir, backends...))
	}, checkCommand)
}

func TestRenderRejects(t *testing.T) {
	valid := func() TemplateData { return testData("/srv/lb1", "127.0.0.1:15301") }
	lbtest.RenderRejects(t, valid, Render, map[string]func(*TemplateData){
		"listen hostname":        func(d *TemplateData) { d.Listen = "lb1.example.net:53" },
		"listen without port":    func(d *TemplateData) { d.Listen = "127.0.0.1" },
		"listen port 0":          func(d *TemplateData) { d.Listen = "127.0.0.1:0" },
		"backend lua injection":  func(d *TemplateData) { d.Backends = []string{"127.0.0.1:53') os.execute('id"} },
		"backend hostname":       func(d *TemplateData) { d.Backends = []string{"ns1.example.net:53"} },
		"staged lua injection":   func(d *TemplateData) { d.Staged = []string{"127.0.0.1:53') os.execute('id"} },
		"console off loopback":   func(d *TemplateData) { d.Console = "192.0.2.1:5199" },
		"name with newline":      func(d *TemplateData) { d.Name = "lb1\nos.execute('id')" },
		"relative key file":      func(d *TemplateData) { d.KeyFile = "console.key" },
		"split file with quote":  func(d *TemplateData) { d.SplitFile = "/var/lib/x'y" },
		"key file with quote":    func(d *TemplateData) { d.KeyFile = "/tmp/a'b" },
		"check name with quote":  func(d *TemplateData) { d.CheckName = "example.com.'" },
		"check name not fqdn":    func(d *TemplateData) { d.CheckName = "example.com" },
		"check name / at start":  func(d *TemplateData) { d.CheckName = "/26.2.0.192.in-addr.arpa." },
		"check type lower case":  func(d *TemplateData) { d.CheckType = "soa" },
		"ipv6 zone in backend":   func(d *TemplateData) { d.Backends = []string{"[fe80::1%eth0]:53"} },
		"backend port too large": func(d *TemplateData) { d.Backends = []string{"127.0.0.1:70000"} },
	})
}

func writeKey(t *testing.T, dir string) {
	t.Helper()
	// A fixed test key: 32 bytes, base64.
	if err := os.WriteFile(filepath.Join(dir, "console.key"), []byte("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

// needLab fails or skips t (lbtest.NeedTools) unless the programs a lab
// dnsdist needs are installed.
func needLab(t testing.TB) {
	t.Helper()
	lbtest.NeedTools(t, "dnsdist", "ansible-playbook", "start-stop-daemon")
}
