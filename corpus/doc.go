// Package corpus holds no code, only the corpus test: zone files written by
// other DNS projects (BIND, NSD, Knot DNS, PowerDNS, Unbound, CoreDNS; testdata/zones, with
// their sources in testdata/zones/SOURCES.md), each served by two real
// named as blue and green and put through the rollout's own analysis
// (activities.Verify). Identical servers must pass, and a green that serves
// a changed record, TTL, glue, delegation, DS, DNAME, wildcard or an
// expired signature must fail, naming the RRset. The current state, zone
// by zone, is in testdata/zones/STATUS.md. TestCorpusEveryRRset (make
// corpus-every) changes every RRset rather than one per class. TestShapes
// does the same for zone shapes written here that the corpus lacks.
package corpus
