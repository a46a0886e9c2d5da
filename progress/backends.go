package progress

import (
	"fmt"
	"slices"
	"strings"

	"github.com/dnsroll/dnsroll/workflows"
)

// BackendLines say where each load balancer points, one line each in name
// order: "lb1 → ns1, ns3", with each server's weight when they differ
// ("lb1 → ns1-next 10, ns1 90") and "(staged)" for a server with no
// traffic.
func BackendLines(backends map[string][]workflows.Backend) []string {
	names := make([]string, 0, len(backends))
	for name := range backends {
		names = append(names, name)
	}
	slices.Sort(names)
	var lines []string
	for _, name := range names {
		bs := backends[name]
		weighted := slices.ContainsFunc(bs, func(b workflows.Backend) bool { return b.Weight > 0 && b.Weight != bs[0].Weight })
		var servers []string
		for _, b := range bs {
			switch {
			case b.Weight == 0:
				servers = append(servers, b.Server+" (staged)")
			case weighted:
				servers = append(servers, fmt.Sprintf("%s %d", b.Server, b.Weight))
			default:
				servers = append(servers, b.Server)
			}
		}
		if len(servers) == 0 {
			servers = []string{"no backend"}
		}
		lines = append(lines, name+" → "+strings.Join(servers, ", "))
	}
	return lines
}
