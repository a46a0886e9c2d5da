package dnsdist

import (
	"strings"
	"testing"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/lb"
)

func TestSplitRejects(t *testing.T) {
	a := dnsroll.Server{Label: "a", IPv4: "192.0.2.1"}
	b := dnsroll.Server{Label: "b", IPv4: "192.0.2.2"}
	for name, shares := range map[string][]lb.Share{
		"none":            nil,
		"all zero":        {{Server: a}, {Server: b}},
		"negative":        {{Server: a, Weight: 1}, {Server: b, Weight: -1}},
		"twice":           {{Server: a, Weight: 1}, {Server: a, Weight: 2}},
		"no address":      {{Server: dnsroll.Server{Label: "c"}, Weight: 1}},
		"weight too high": {{Server: a, Weight: 2_000_000}},
	} {
		if _, err := split(shares); dnsroll.ErrorCode(err) != dnsroll.EINVALID {
			t.Errorf("%s: split = %v, want EINVALID", name, err)
		}
	}
}

// TestCheckFlip: Flip succeeds only when dnsdist's default pool, read back,
// is exactly the weighted shares, each once and up.
func TestCheckFlip(t *testing.T) {
	want := map[string]int{"192.0.2.1:53": 90, "192.0.2.2:53": 10, "192.0.2.3:53": 0}
	for reply, ok := range map[string]bool{
		"dnsroll-ok 192.0.2.1:53=90=up 192.0.2.2:53=10=up\n":                  true,
		"dnsroll-ok 192.0.2.1:53=90=up\n":                                     false, // green missing
		"dnsroll-ok 192.0.2.1:53=90=up 192.0.2.2:53=10=down":                  false,
		"dnsroll-ok 192.0.2.1:53=90=up 192.0.2.2:53=1=up":                     false,
		"dnsroll-ok 192.0.2.1:53=90=up 192.0.2.2:53=10=up 192.0.2.3:53=1=up":  false, // weight 0 still live
		"dnsroll-ok 192.0.2.1:53=90=up 192.0.2.2:53=10=up 192.0.2.2:53=10=up": false, // twice
		"Error: [string \"...\"]:1: attempt to call a nil value":              false,
		"dnsroll-unstaged 192.0.2.2:53":                                       false,
		"dnsroll-down 192.0.2.2:53":                                           false,
	} {
		err := checkFlip(reply, want)
		if (err == nil) != ok {
			t.Errorf("checkFlip(%q) = %v, want ok=%v", reply, err, ok)
		}
	}
	err := checkFlip("dnsroll-unstaged 192.0.2.2:53", want)
	if dnsroll.ErrorCode(err) != dnsroll.EINVALID || !strings.Contains(err.Error(), "stage them first") {
		t.Errorf("unstaged: %v, want EINVALID saying to stage first", err)
	}
}

// TestParseStats reads a real dnsdist 1.7.3 showServers() table.
func TestParseStats(t *testing.T) {
	table := `#   Name                 Address                       State     Qps    Qlim Ord Wt    Queries   Drops Drate   Lat Outstanding Pools
0   127.0.0.1:15301      127.0.0.1:15301                  up    12.0       0   1 90       3578       2   0.0   0.1           1 
1   [2001:db8::1234:5678]:53 [2001:db8::1234:5678]:53     up     1.0       0   1 10        422       0   0.0   0.1           0 staged
All                                                             13.0                      4000       2                         
`
	lua := "dnsroll-ok 127.0.0.1:15301 up 90 1 2 [2001:db8::1234:5678]:53 down 0 0 0\n"
	st, err := parseStats(lua, table)
	if err != nil {
		t.Fatal(err)
	}
	if len(st) != 2 {
		t.Fatalf("stats = %+v, want two", st)
	}
	a, b := st[0], st[1]
	if a.Addr != "127.0.0.1:15301" || a.Queries != 3578 || a.Drops != 2 || a.Outstanding != 1 || a.Responses != 3575 || !a.Up || a.Weight != 90 {
		t.Errorf("first = %+v", a)
	}
	if b.Addr != "[2001:db8::1234:5678]:53" || b.Queries != 422 || b.Up || b.Weight != 0 {
		t.Errorf("second = %+v", b)
	}
	if _, err := parseStats("Error: boom", table); err == nil {
		t.Error("parseStats accepted an error reply")
	}
}
