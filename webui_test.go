package dnsroll

import "testing"

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
