package corpus

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/dnsroll/dnsroll/config"
	"github.com/dnsroll/dnsroll/internal/needlab"
)

// everyLimit bounds the RRsets changed per zone, so that the largest
// zones do not dominate the run.
const everyLimit = 120

// TestCorpusEveryRRset is TestCorpus's mutation classes taken to every
// authoritative RRset of every corpus zone rather than one per class:
// each one's data changed (for the types changeRdata knows), removed, and
// its TTL changed, on a green of its own; the analysis must fail each
// time. About 2,900 greens, five minutes, so it runs on demand:
// make corpus-every (DNSROLL_CORPUS_EVERY=1).
func TestCorpusEveryRRset(t *testing.T) {
	if os.Getenv("DNSROLL_CORPUS_EVERY") == "" {
		t.Skip("on demand: make corpus-every")
	}
	needlab.Programs(t, "named", "named-checkzone", "named-compilezone", "dnssec-keygen", "dnssec-signzone")
	fleet, err := config.Parse([]byte(fleetYAML))
	if err != nil {
		t.Fatal(err)
	}
	var changed, unloadable int
	for _, cz := range readCorpus(t) {
		t.Run(strings.ReplaceAll(cz.file, "/", "_"), func(t *testing.T) {
			c, u := everyRRset(t, fleet, cz)
			changed, unloadable = changed+c, unloadable+u
		})
	}
	t.Logf("%d greens, each with one RRset changed, removed or re-timed; %d more that named would not load were skipped", changed, unloadable)
}

// everyRRset serves cz as blue and each change of it as green, and
// returns how many greens it analysed and how many named refused.
func everyRRset(t *testing.T, fleet *config.Fleet, cz corpusZone) (changed, unloadable int) {
	dir := t.TempDir()
	origin := dns.Fqdn(strings.ToLower(cz.origin))
	src := filepath.Join(zonesDir, cz.file)
	if cz.sign != "" {
		src, _ = signZone(t, dir, origin, src, cz.sign)
	}
	recs := canonical(t, origin, src)
	serial := soaSerial(t, recs)
	m := newModel(origin, recs)
	blue, err := startNamed(t, filepath.Join(dir, "blue"), origin, src, serial)
	if err != nil {
		t.Fatal(err)
	}
	defer blue.Terminate()
	if err := verify(fleet, origin, src, serial, blue.Addr, blue.Addr); err != nil {
		t.Fatalf("identical servers fail: %v", clip(err.Error(), 600))
	}
	n := 0
	for _, s := range m.rrsets() {
		owner, typ := s[0], s[1]
		if typ == "SOA" || !m.authoritative(owner, typ) { // DNSSEC types are not authoritative(): TestCorpus signs and expires them
			continue
		}
		if n++; n > everyLimit {
			break
		}
		for _, change := range []string{classRecord, classRemoved, classTTL} {
			text, _, ok := changeRRset(m, owner, typ, change)
			if !ok {
				continue
			}
			file := filepath.Join(dir, fmt.Sprintf("green-%d.db", changed+unloadable))
			if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
			green, err := startNamed(t, file+".d", origin, file, serial)
			if err != nil {
				unloadable++ // such as glue removed from an in-zone NS target
				continue
			}
			changed++
			err = verify(fleet, origin, src, serial, blue.Addr, green.Addr)
			green.Terminate()
			if err == nil {
				t.Errorf("MISSED: %s of %s %s: the analysis passed", change, owner, typ)
			}
		}
	}
	return changed, unloadable
}
