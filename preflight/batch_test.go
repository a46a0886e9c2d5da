package preflight

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/config"
	"github.com/dnsroll/dnsroll/internal/testfiles"
)

// bigFleet is a fleet of n small zones in dir, zone i with serial 1000+i;
// broken replaces the text of the zones it names.
func bigFleet(t *testing.T, n int, broken map[int]string) *config.Fleet {
	t.Helper()
	dir := t.TempDir()
	f := &config.Fleet{Dir: dir}
	files := map[string]string{}
	for i := range n {
		name := fmt.Sprintf("z%04d.example", i)
		text := fmt.Sprintf("$TTL 300\n@ SOA ns1 hostmaster %d 3600 600 1209600 300\n NS ns1\nns1 A 192.0.2.53\n", 1000+i)
		if b, ok := broken[i]; ok {
			text = b
		}
		files["zones/"+name+".zone"] = text
		f.Zones = append(f.Zones, config.Zone{Name: name, File: "zones/" + name + ".zone"})
	}
	testfiles.WriteAll(t, dir, files)
	return f
}

// Above batchAbove zones, BIND loads every file in one named-checkconf
// run and miekg/dns reads them: the serials are those of the files, and a
// zone BIND refuses fails with its index, file and line, or BIND's words.
func TestZonesOfALargeFleetInOneBINDRun(t *testing.T) {
	n := batchAbove + 50
	zones, err := Zones(bigFleet(t, n, nil), "")
	if err != nil {
		t.Fatal(err)
	}
	if len(zones) != n || zones[0].Serial != 1000 || zones[n-1].Serial != uint32(1000+n-1) || zones[7].SHA256 == "" {
		t.Fatalf("%d zones, first serial %d, last %d; want %d from 1000", len(zones), zones[0].Serial, zones[n-1].Serial, n)
	}
	for _, tt := range []struct {
		name   string
		broken map[int]string
		want   []string
	}{
		{"an unknown record type", map[int]string{120: "$TTL 300\n@ SOA ns1 h 1 1 1 1 1\n NS ns1\nns1 A 192.0.2.1\nx FOO bar\n", 140: "garbage\n"},
			[]string{"zones[120].file: ", "z0120.example", ":5", "FOO"}},
		{"a zone without NS records", map[int]string{130: "$TTL 300\n@ SOA ns1 h 1 1 1 1 1\nns1 A 192.0.2.1\n"},
			[]string{"zones[130].file: ", "z0130.example", "has no NS records"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := bigFleet(t, n, tt.broken)
			_, err := Zones(f, "")
			if dnsroll.ErrorCode(err) != dnsroll.EINVALID {
				t.Fatalf("err = %v, want invalid input", err)
			}
			for _, w := range append(tt.want, filepath.Join(f.Dir, "zones")) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("err %q lacks %q", err, w)
				}
			}
		})
	}
}

// The root zone is "." to BIND: named "" in the batch's config, BIND
// would refuse the config, and every file would be checked on its own.
func TestBINDRunLoadsTheRootZone(t *testing.T) {
	dir := t.TempDir()
	testfiles.WriteAll(t, dir, map[string]string{
		"root.zone":    "$TTL 300\n@ SOA a.root-servers.net. hostmaster 1 3600 600 1209600 300\n NS a.root-servers.net.\na.root-servers.net. A 198.41.0.4\n",
		"example.zone": "$TTL 300\n@ SOA ns1 hostmaster 1 3600 600 1209600 300\n NS ns1\nns1 A 192.0.2.53\n",
	})
	zones := []config.Zone{{Name: "."}, {Name: "example"}}
	paths := []string{filepath.Join(dir, "root.zone"), filepath.Join(dir, "example.zone")}
	if _, err := exec.LookPath("named-checkconf"); err != nil {
		t.Skip(err)
	}
	// errNoChecker here is BIND refusing the config the batch wrote.
	if err := bindLoads(zones, paths); err != nil {
		t.Fatalf("bindLoads = %v, want both zones loaded in one run", err)
	}
}
