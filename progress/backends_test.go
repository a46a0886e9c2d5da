package progress

import (
	"slices"
	"testing"

	"github.com/dnsroll/dnsroll/workflows"
)

func TestBackendLines(t *testing.T) {
	got := BackendLines(map[string][]workflows.Backend{
		"lb2": {{Server: "ns2-next", Weight: 10}, {Server: "ns2", Weight: 90}},
		"lb1": {{Server: "ns1", Weight: 100}, {Server: "ns3", Weight: 100}},
		"lb3": {{Server: "ns4", Weight: 100}, {Server: "ns4-next", Weight: 0}},
		"lb4": {},
	})
	want := []string{"lb1 → ns1, ns3", "lb2 → ns2-next 10, ns2 90", "lb3 → ns4, ns4-next (staged)", "lb4 → no backend"}
	if !slices.Equal(got, want) {
		t.Fatalf("BackendLines = %q, want %q", got, want)
	}
}
