package nginx

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dnsroll/dnsroll/internal/needlab"
	"github.com/dnsroll/dnsroll/lb/lbtest"
)

// needNginx fails or skips t (needlab.Missing) unless the real nginx
// binary and its stream module are installed.
func needNginx(t testing.TB) {
	t.Helper()
	lbtest.NeedTools(t, "nginx")
	if _, err := os.Stat("/usr/lib/nginx/modules/ngx_stream_module.so"); err != nil {
		needlab.Missing(t, "the nginx stream module (libnginx-mod-stream) is not installed (run `make deps`)")
	}
}

// needLab fails or skips t unless a lab nginx can be run by the playbook.
func needLab(t testing.TB) {
	t.Helper()
	needNginx(t)
	lbtest.NeedTools(t, "ansible-playbook")
}

func labData(t *testing.T, dir string, backends ...string) TemplateData {
	t.Helper()
	return TemplateData{
		Name:          "lb1",
		Listen:        "127.0.0.1:" + lbtest.FreePort(t),
		Backends:      backends,
		PIDFile:       filepath.Join(dir, "nginx.pid"),
		ErrorLog:      filepath.Join(dir, "error.log"),
		ControlSocket: filepath.Join(dir, "control.sock"),
		StatusSocket:  filepath.Join(dir, "status.sock"),
		Workers:       1,
	}
}

func TestRender(t *testing.T) {
	dir := t.TempDir()
	data := labData(t, dir, "127.0.0.1:15301", "[::1]:53")
	conf, err := Render(data)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"load_module /usr/lib/nginx/modules/ngx_stream_module.so;",
		"worker_processes 1;",
		"pid " + data.PIDFile + ";",
		"error_log " + data.ErrorLog + " notice;",
		"listen " + data.Listen + " udp reuseport;",
		"listen " + data.Listen + ";",
		"proxy_responses 1;",
		"worker_shutdown_timeout 10s;",
		"listen unix:" + data.StatusSocket + ";",
		"stub_status;",
		"server 127.0.0.1:15301;",
		"server [::1]:53;",
		"managed by dnsroll",
	} {
		if !strings.Contains(strings.ToLower(conf), strings.ToLower(want)) {
			t.Errorf("rendered config lacks %q:\n%s", want, conf)
		}
	}
	if strings.Contains(conf, "127.0.0.1:9 down;") {
		t.Errorf("config with backends has the placeholder upstream:\n%s", conf)
	}
	data.Workers = 0
	if conf, _ := Render(data); !strings.Contains(conf, "worker_processes auto;") {
		t.Errorf("Workers 0 should render worker_processes auto:\n%s", conf)
	}
}

func TestRenderNoBackends(t *testing.T) {
	conf, err := Render(labData(t, t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(conf, "server 127.0.0.1:9 down;") {
		t.Errorf("zero backends should render the down placeholder:\n%s", conf)
	}
}

// TestRenderedConfigPassesNginxT runs the real "nginx -t" on rendered
// configs, the same check the role makes before installing one.
func TestRenderedConfigPassesNginxT(t *testing.T) {
	needNginx(t)
	lbtest.RenderedPass(t, "nginx.conf", func(t *testing.T, dir string, backends []string) string {
		conf, err := Render(labData(t, dir, backends...))
		if err != nil {
			t.Fatal(err)
		}
		return conf
	}, func(path string) *exec.Cmd {
		return exec.Command("nginx", "-e", filepath.Join(filepath.Dir(path), "error.log"), "-t", "-q", "-c", path)
	})
}

func TestRenderRejects(t *testing.T) {
	dir := t.TempDir()
	valid := func() TemplateData { return labData(t, dir, "127.0.0.1:15301") }
	lbtest.RenderRejects(t, valid, Render, map[string]func(*TemplateData){
		"listen without port":   func(d *TemplateData) { d.Listen = "127.0.0.1" },
		"listen port 0":         func(d *TemplateData) { d.Listen = "127.0.0.1:0" },
		"listen port too big":   func(d *TemplateData) { d.Listen = "127.0.0.1:70000" },
		"listen injection":      func(d *TemplateData) { d.Listen = "127.0.0.1:53; include /etc/passwd" },
		"backend injection":     func(d *TemplateData) { d.Backends = []string{"127.0.0.1:53;\n}"} },
		"backend with space":    func(d *TemplateData) { d.Backends = []string{"a b:53"} },
		"name with newline":     func(d *TemplateData) { d.Name = "lb1\nuser root;" },
		"relative pid file":     func(d *TemplateData) { d.PIDFile = "nginx.pid" },
		"error log with ;":      func(d *TemplateData) { d.ErrorLog = "/tmp/x; user root" },
		"unclean path":          func(d *TemplateData) { d.PIDFile = "/tmp/../etc/x.pid" },
		"negative worker count": func(d *TemplateData) { d.Workers = -1 },
		"shutdown timeout 1.5s": func(d *TemplateData) { d.ShutdownTimeout = 1500 * time.Millisecond },
		"shutdown timeout 1h":   func(d *TemplateData) { d.ShutdownTimeout = time.Hour },
		"no status socket":      func(d *TemplateData) { d.StatusSocket = "" },
		"status socket too long": func(d *TemplateData) {
			d.StatusSocket = "/" + strings.Repeat("s", maxSocketPath)
		},
		"empty listen address": func(d *TemplateData) { d.Listen = "" },
		"hostname with _":      func(d *TemplateData) { d.Backends = []string{"under_score:53"} },
	})
}

func TestRenderAcceptsHostname(t *testing.T) {
	data := labData(t, t.TempDir(), "ns1.example.net:53")
	if _, err := Render(data); err != nil {
		t.Fatal(err)
	}
}
