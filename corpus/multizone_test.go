package corpus

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/dnsroll/dnsroll/activities"
	"github.com/dnsroll/dnsroll/config"
	"github.com/dnsroll/dnsroll/internal/needlab"
)

// A fleet that serves a zone and a child zone it delegates to: named
// answers the child's names from the child, with the AA flag, where the
// parent alone would refer. Two identical servers pass the rollout's
// analysis (every rollout of such a fleet used to stop at green), and a
// green that serves the child wrong still fails it.
func TestParentAndChildZoneOnOneServer(t *testing.T) {
	needlab.Programs(t, "named")
	fleet, err := config.Parse([]byte(fleetYAML))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name, text string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	parent := write("example.com.zone", `$TTL 300
@        SOA ns1 hostmaster 1 3600 600 86400 300
         NS  ns1
ns1      A   192.0.2.1
www      A   192.0.2.10
sub      NS  ns1.sub
ns1.sub  A   192.0.2.2
`)
	child := `$TTL 300
@        SOA ns1 hostmaster 1 3600 600 86400 300
         NS  ns1
ns1      A   192.0.2.2
www      A   %s
`
	goodChild := write("sub.good.zone", fmt.Sprintf(child, "192.0.2.3"))
	badChild := write("sub.bad.zone", fmt.Sprintf(child, "192.0.2.99"))
	files := func(childFile string) []activities.ZoneFile {
		return []activities.ZoneFile{
			{Name: "example.com.", Path: parent, Serial: 1},
			{Name: "sub.example.com.", Path: childFile, Serial: 1},
		}
	}
	serve := func(name, childFile string) string {
		addr, err := serveZones(t, filepath.Join(dir, name), files(childFile))
		if err != nil {
			t.Fatal(err)
		}
		return addr
	}
	blue := serve("blue", goodChild)
	if err := verifyZones(fleet, files(goodChild), blue, serve("green", goodChild)); err != nil {
		t.Errorf("an identical green failed the analysis: %v", err)
	}
	if err := verifyZones(fleet, files(goodChild), blue, serve("wrong-green", badChild)); err == nil {
		t.Error("a green serving www.sub.example.com. wrong passed the analysis")
	}
}
