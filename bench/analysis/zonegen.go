package main

import (
	"fmt"
	"os"
	"strings"
)

// writeZone writes a zone of n owner names besides the apex, in BIND
// syntax with relative names, in the mix a real zone has: mostly A, some
// AAAA, CNAMEs (answered with the chain), MX and TXT.
func writeZone(path, origin string, n int, serial uint32) error {
	var b strings.Builder
	fmt.Fprintf(&b, "$ORIGIN %s.\n$TTL 300\n", origin)
	fmt.Fprintf(&b, "@ IN SOA ns1 hostmaster ( %d 3600 600 1209600 300 )\n", serial)
	b.WriteString("  IN NS ns1\n  IN NS ns2\nns1 IN A 192.0.2.53\nns2 IN A 198.51.100.53\n")
	for i := 2; i < n; i++ {
		h := fmt.Sprintf("host-%05d", i)
		ip := fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255)
		switch i % 10 {
		case 6:
			fmt.Fprintf(&b, "%s IN A %s\n    IN AAAA 2001:db8::%x\n", h, ip, i)
		case 7:
			fmt.Fprintf(&b, "%s IN CNAME host-%05d\n", h, i-1)
		case 8:
			fmt.Fprintf(&b, "%s IN A %s\n    IN MX 10 %s\n", h, ip, h)
		case 9:
			fmt.Fprintf(&b, "%s IN TXT \"v=spf1 ip4:%s -all\"\n", h, ip)
		default:
			fmt.Fprintf(&b, "%s IN A %s\n", h, ip)
		}
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

// writeQueries writes the checks' queries in dnsperf's "name type" format.
func writeQueries(path string, queries []string) error {
	return os.WriteFile(path, []byte(strings.Join(queries, "\n")+"\n"), 0o644)
}
