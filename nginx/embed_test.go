package nginx

import (
	"strings"
	"testing"
	"text/template"
)

// TestStreamConfParses catches a template syntax error at build time of the
// tests rather than at the first rollout; lb/nginx tests render it for real.
func TestStreamConfParses(t *testing.T) {
	if _, err := template.New("stream.conf").Parse(StreamConf); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"load_module", "stream {", "udp reuseport", "proxy_responses 1;"} {
		if !strings.Contains(StreamConf, want) {
			t.Errorf("template lacks %q", want)
		}
	}
}
