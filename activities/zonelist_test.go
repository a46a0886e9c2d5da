package activities

import (
	"encoding/json"
	"os"
	"testing"
)

// A zone written with its final dot, as the fleet file may name it, goes
// to the nameserver role without it: the role takes names without the
// dot only, and would refuse the whole set once the VMs exist.
func TestZoneListNamesZonesWithoutTheFinalDot(t *testing.T) {
	path, err := writeZoneList(t.TempDir(), []ZoneFile{{Name: "example.com.", Path: "/z/example.com.zone"}, {Name: "example.net", Path: "/z/example.net.zone"}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var list []map[string]string
	if err := json.Unmarshal(b, &list); err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0]["name"] != "example.com" || list[1]["name"] != "example.net" || list[0]["src"] != "/z/example.com.zone" {
		t.Errorf("zone list %v, want example.com and example.net, without final dots", list)
	}
}
