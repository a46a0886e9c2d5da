package dnsroll

import (
	"strings"
	"testing"
)

func TestWebUILink(t *testing.T) {
	tests := []struct {
		name, base, ns, wid, rid, want string
	}{
		{"a run", "http://localhost:8233", "default", "rollout-lab", "r1", "http://localhost:8233/namespaces/default/workflows/rollout-lab/r1/history"},
		{"trailing slash", "https://ui.example/", "prod", "rollout-lab", "r1", "https://ui.example/namespaces/prod/workflows/rollout-lab/r1/history"},
		{"escaped", "http://ui", "a b", "rollout-x/y", "r?1", "http://ui/namespaces/a%20b/workflows/rollout-x%2Fy/r%3F1/history"},
		{"no Web UI", "", "default", "rollout-lab", "r1", ""},
		{"no run", "http://ui", "default", "rollout-lab", "", ""},
	}
	for _, tt := range tests {
		if got := WebUILink(tt.base, tt.ns, tt.wid, tt.rid); got != tt.want {
			t.Errorf("%s: WebUILink = %q, want %q", tt.name, got, tt.want)
		}
	}
}

// The Web UI's base URL goes into every webhook payload and API link: one
// with a user and password is refused, and no error quotes it.
func TestCheckWebUIURL(t *testing.T) {
	for raw, ok := range map[string]bool{
		"": true, "http://localhost:8233": true, "https://temporal.example.net/ui/": true,
		"https://ops:s3cr3t@temporal.example.net": false, "localhost:8233": false, "ftp://ui": false,
		"https://ui.example?token=s3cr3t": false, "https://ops:s3cr3t#x@ui": false,
	} {
		err := CheckWebUIURL(raw)
		if (err == nil) != ok || (err != nil && strings.Contains(err.Error(), "s3cr3t")) {
			t.Errorf("CheckWebUIURL(%q) = %v, want ok %v, never quoting it", raw, err, ok)
		}
	}
}
