package activities

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/dnsroll/dnsroll/config"
	"github.com/dnsroll/dnsroll/internal/dnstest"
	"github.com/dnsroll/dnsroll/internal/temporaltest"
	"github.com/dnsroll/dnsroll/zone"
)

const verifyZone = dnstest.Zone + `www   A    192.0.2.10
mail  MX   10 ns1
`

// serveZone answers DNS for text on a loopback UDP port, as an
// authoritative-only server would.
func serveZone(t *testing.T, text string) string {
	t.Helper()
	return serveZoneAfter(t, text, 0)
}

// serveZoneAfter is serveZone, each answer held back for delay.
func serveZoneAfter(t *testing.T, text string, delay time.Duration) string {
	t.Helper()
	z, err := zone.Parse(strings.NewReader(text), "example.com", "test")
	if err != nil {
		t.Fatal(err)
	}
	return serveUDP(t, func(req, m *dns.Msg) {
		time.Sleep(delay)
		a := z.Lookup(req.Question[0].Name, req.Question[0].Qtype)
		m.Rcode = a.Rcode
		for _, rr := range a.RRs {
			m.Answer = append(m.Answer, dns.Copy(rr))
		}
	})
}

// serveUDP serves DNS over UDP on a loopback port until the test ends and
// returns its address. Each reply is authoritative, with EDNS, and answer
// fills it in for the query req.
func serveUDP(t *testing.T, answer func(req, reply *dns.Msg)) string {
	t.Helper()
	return dnstest.ServeUDP(t, func(req, m *dns.Msg) {
		m.Authoritative = true
		m.SetEdns0(1232, false)
		answer(req, m)
	})
}

func verifyInput(t *testing.T, expectChanges bool, text string) VerifyInput {
	t.Helper()
	fleet, err := config.Parse([]byte(testFleetYAML + "probe: {protocols: [udp], timeout: 2s, attempts: 1, rounds: 1}\n"))
	if err != nil {
		t.Fatal(err)
	}
	fleet.Probe.ExpectChanges = &expectChanges
	path := filepath.Join(t.TempDir(), "example.com.zone")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	z, err := zone.ParseFile(path, "example.com")
	if err != nil {
		t.Fatal(err)
	}
	return VerifyInput{
		StepFleet: StepFleet{Fleet: fleet}, Zones: []ZoneFile{{Name: "example.com", Path: path, Serial: z.Serial()}},
		Serials: map[string]uint32{"example.com": z.Serial()},
	}
}

// verify runs Verify as Temporal runs an activity and returns its result.
func verify(t *testing.T, in VerifyInput) VerifyResult {
	t.Helper()
	v, err := runVerify(in)
	return temporaltest.Value[VerifyResult](t, v, err)
}

// runVerify runs Verify as Temporal runs an activity, for a test that
// wants its error.
func runVerify(in VerifyInput) (converter.EncodedValue, error) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(&Activities{})
	return env.ExecuteActivity((&Activities{}).Verify, in)
}

func TestVerifyAgainstBlue(t *testing.T) {
	changed := strings.Replace(strings.Replace(verifyZone, "192.0.2.10", "192.0.2.99", 1), " 7 3600", " 8 3600", 1)
	blue, green := serveZone(t, verifyZone), serveZone(t, changed)

	// A zone change, expected: it passes, and the diff is in the result.
	in := verifyInput(t, true, changed)
	in.Targets, in.Baseline = []ProbeTarget{{Name: "ns1-next", Addr: green}}, []ProbeTarget{{Name: "ns1", Addr: blue}}
	res := verify(t, in)
	if res.Checks != 7 || !strings.HasPrefix(res.Summary, "pass after 1 round(s) [pass]: ns1-next ") || len(res.Notes) != 1 ||
		len(res.Reports) != 1 || res.Reports[0].Diffs[0].Summary != "0 added, 0 removed, 1 changed: www.example.com. A" {
		t.Errorf("result: %+v", res)
	}

	// The same change in an infrastructure-only rollout stops it, naming
	// the RRset, and is not retried; the analysis rides along the error.
	in.Fleet.Probe.ExpectChanges = new(bool)
	_, err := runVerify(in)
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || app.Type() != ErrAnalysis || !app.NonRetryable() {
		t.Fatalf("err = %v, want a non-retryable %s", err, ErrAnalysis)
	}
	want := "green ns1-next differs from blue ns1: changed www.example.com. A: [192.0.2.10] → [192.0.2.99]"
	if !strings.HasPrefix(app.Message(), want) {
		t.Errorf("message %q\nwant it to start with %q", app.Message(), want)
	}
	var n int32
	var failed VerifyResult
	if err := app.Details(&n, &failed); err != nil || n != 1 || failed.Reports[0].Kinds["diff"].Fail != 1 {
		t.Errorf("details: %d %+v %v", n, failed, err)
	}
}

// probe.max_latency fails a green that answers right, but slowly, naming
// it; without the setting its latency is only reported.
func TestVerifyMaxLatency(t *testing.T) {
	in := verifyInput(t, true, verifyZone)
	in.Targets = []ProbeTarget{{Name: "ns1-next", Addr: serveZoneAfter(t, verifyZone, 400*time.Millisecond)}}
	in.Fleet.Probe.Timeout = config.Duration(2 * time.Second)
	res := verify(t, in)
	if l := res.Reports[0].Latency; l == nil || l.P95MS < 400 || !strings.Contains(res.Summary, "ns1-next 16/16 (p95 ") {
		t.Errorf("latency %+v, summary %q; want the 400ms answers reported", l, res.Summary)
	}
	in.Fleet.Probe.MaxLatency = config.Duration(250 * time.Millisecond)
	_, err := runVerify(in)
	if err == nil || !strings.Contains(err.Error(), "ns1-next answers slowly: 95th percentile") || !strings.Contains(err.Error(), "over probe.max_latency 250ms") {
		t.Errorf("err = %v, want ns1-next failed for its latency", err)
	}
}

func TestVerifyZoneChangedSincePlanning(t *testing.T) {
	in := verifyInput(t, true, verifyZone)
	in.Targets = []ProbeTarget{{Name: "lb1", Addr: serveZone(t, verifyZone)}}
	if err := os.WriteFile(in.Zones[0].Path, []byte(strings.Replace(verifyZone, " 7 3600", " 9 3600", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := runVerify(in)
	if err == nil || !strings.Contains(err.Error(), "changed since planning: serial 9, planned 7") {
		t.Errorf("err = %v", err)
	}
}

// Each green is compared with the blue it replaces, by label, whatever
// the order of either list: ns2-next answering as ns2 does is not a
// difference because ns1 answers otherwise. A green with no blue of its
// label (a nameserver the revision adds) is compared with the blue at
// its position.
func TestVerifyComparesEachGreenWithItsOwnBlue(t *testing.T) {
	fleet := &config.Fleet{}
	blue := []ProbeTarget{{Name: "ns2", Addr: "192.0.2.2:53"}, {Name: "ns1", Addr: "192.0.2.1:53"}}
	for _, tc := range []struct {
		name    string
		targets []ProbeTarget
		want    []string // each target's baseline
	}{
		{"by label", []ProbeTarget{{Name: "ns1-next", Addr: "198.51.100.1:53"}, {Name: "ns2-next", Addr: "198.51.100.2:53"}}, []string{"ns1", "ns2"}},
		{"by position, without a blue of its label", []ProbeTarget{{Name: "ns3-next", Addr: "198.51.100.3:53"}, {Name: "ns4-next", Addr: "198.51.100.4:53"}}, []string{"ns2", "ns1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			j := job(VerifyInput{StepFleet: StepFleet{Fleet: fleet}, Targets: tc.targets, Baseline: blue}, nil)
			if len(j.Baseline) != len(tc.targets) {
				t.Fatalf("baselines %+v for %d targets", j.Baseline, len(tc.targets))
			}
			for i, b := range j.Baseline {
				if b.Name != tc.want[i] || j.Targets[i].Name != tc.targets[i].Name {
					t.Errorf("%s is compared with %s (%s), want %s", j.Targets[i].Name, b.Name, b.Addr, tc.want[i])
				}
			}
		})
	}
}

// Green that serves a serial behind blue's is not switched to: resolvers
// and secondaries would keep blue's data. allow_serial_decrease lets a
// deliberate return to an older revision through.
func TestVerifyRefusesGreenBehindBlue(t *testing.T) {
	newer := strings.Replace(verifyZone, " 7 3600", " 8 3600", 1)
	in := verifyInput(t, true, verifyZone)
	in.Targets, in.Baseline = []ProbeTarget{{Name: "ns1-next", Addr: serveZone(t, verifyZone)}}, []ProbeTarget{{Name: "ns1", Addr: serveZone(t, newer)}}
	_, err := runVerify(in)
	if err == nil || !strings.Contains(err.Error(), "serves example.com. serial 7, behind ") || !strings.Contains(err.Error(), "ns1's 8") {
		t.Errorf("err = %v, want green refused for its serial behind blue's", err)
	}
	in.Fleet.Probe.AllowSerialDecrease = true
	if res := verify(t, in); !strings.HasPrefix(res.Summary, "pass") {
		t.Errorf("with allow_serial_decrease: %q, want a pass", res.Summary)
	}
}

// An input without the planned serials, as the workflow sends for a
// large fleet, still holds green, and the load balancers after the
// switch, to the zone files' serials: a server that serves the same
// records at another serial is not the revision. The refusal names the
// target by its role.
func TestVerifyTakesSerialsFromTheZoneFiles(t *testing.T) {
	stale := serveZone(t, strings.Replace(verifyZone, " 7 3600", " 6 3600", 1))
	for _, target := range []struct{ name, role string }{{"ns1-next", "green"}, {"lb1", "load balancer"}} {
		in := verifyInput(t, true, verifyZone)
		in.Serials = nil
		in.Targets = []ProbeTarget{{Name: target.name, Addr: stale}}
		_, err := runVerify(in)
		if want := target.role + " " + target.name + " serves example.com. serial 6, want 7 from the zone file"; err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v, want one saying %q", err, want)
		}
	}
}

// A Verify that asks for fewer rounds than the fleet's (in.Rounds, as
// the check through the load balancers after the switch does) needs no
// more successes in a row than it has rounds: one clean round passes.
func TestVerifyInFewerRoundsThanTheFleets(t *testing.T) {
	in := verifyInput(t, true, verifyZone)
	in.Targets = []ProbeTarget{{Name: "lb1", Addr: serveZone(t, verifyZone)}}
	in.Fleet.Probe.Rounds, in.Fleet.Probe.ConsecutiveSuccesses, in.Rounds = 5, 3, 1
	if res := verify(t, in); !strings.HasPrefix(res.Summary, "pass after 1 round(s)") {
		t.Errorf("summary %q, want a pass after 1 round", res.Summary)
	}
}
