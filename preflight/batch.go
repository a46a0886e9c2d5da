package preflight

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/config"
	"github.com/dnsroll/dnsroll/internal/childenv"
	"github.com/dnsroll/dnsroll/zone"
)

// batchAbove is the zone count above which Zones has BIND load every zone
// file in one named-checkconf run and then reads the files BIND loaded
// with miekg/dns (zone.ParseChecked), instead of running
// named-compilezone once per file: about 20 ms each on a small machine,
// which is half an hour for 100,000 zones.
const batchAbove = 100

// errNoChecker is bindLoads' answer where named-checkconf is missing:
// Zones then checks each file with named-compilezone.
var errNoChecker = errors.New("named-checkconf is not installed")

// notLoadedRE finds, in named-checkconf -z's output, a zone BIND refuses.
var notLoadedRE = regexp.MustCompile(`(?m)^zone (\S+)/IN: not loaded due to errors`)

// bindLoads has BIND load every zone file, as named would, in one
// named-checkconf -z run. A zone it refuses fails with the error that
// zone.ParseFile gives for it, which names file and line, or else with
// BIND's own lines about that zone.
func bindLoads(zones []config.Zone, paths []string) error {
	bin, err := exec.LookPath("named-checkconf")
	if err != nil {
		return errNoChecker
	}
	dir, err := os.MkdirTemp("", "dnsroll-checkconf-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	var conf bytes.Buffer
	fmt.Fprintf(&conf, "options { directory %s; };\n", quote(dir))
	for i, z := range zones {
		abs, err := filepath.Abs(paths[i])
		if err != nil {
			return err
		}
		fmt.Fprintf(&conf, "zone %s { type primary; file %s; };\n", quote(zone.Shown(z.Name)), quote(abs))
	}
	confPath := filepath.Join(dir, "named.conf")
	if err := os.WriteFile(confPath, conf.Bytes(), 0o600); err != nil {
		return err
	}
	cmd := exec.Command(bin, "-z", confPath)
	cmd.Env = childenv.Minimal()
	out, runErr := cmd.CombinedOutput()
	if runErr == nil {
		return nil
	}
	index := map[string]int{}
	for i, z := range zones {
		index[zone.NormalName(z.Name)] = i
	}
	first := -1
	for _, m := range notLoadedRE.FindAllStringSubmatch(string(out), -1) {
		if i, ok := index[zone.NormalName(m[1])]; ok && (first < 0 || i < first) {
			first = i
		}
	}
	if first < 0 {
		// Not a zone's fault (the generated config, the binary): each
		// file is checked on its own instead.
		return errNoChecker
	}
	name := zones[first].Name
	if _, err := zone.ParseFile(paths[first], name); err != nil {
		return dnsroll.Errorf(dnsroll.EINVALID, "zones[%d].file: %v", first, err)
	}
	var said []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, paths[first]) || strings.Contains(l, " "+zone.Shown(name)+"/IN:") {
			said = append(said, strings.TrimSpace(l))
		}
	}
	return dnsroll.Errorf(dnsroll.EINVALID, "zones[%d].file: zone %s: BIND refuses %s: %s", first, name, paths[first], strings.Join(said, "; "))
}

// quote is s as a named.conf string.
func quote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}
