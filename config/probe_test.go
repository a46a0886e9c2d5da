package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestProbeDefaults(t *testing.T) {
	f, err := Parse([]byte(valid))
	if err != nil {
		t.Fatal(err)
	}
	p := f.Probe
	if !p.CheckAllNames() || !p.ChangesExpected() || p.Errors() != 1 {
		t.Errorf("all names %v, expect changes %v, error limit %d", p.CheckAllNames(), p.ChangesExpected(), p.Errors())
	}
	if p.EDNSBufferSize != 1232 || p.Concurrency != 32 || p.Rounds != 3 || p.ConsecutiveSuccesses != 1 ||
		p.FailureLimit != 0 || p.Samples != 5 || p.Attempts != 3 || p.Timeout.D() != 2*time.Second || p.Interval.D() != 2*time.Second ||
		p.Coverage.FullUpTo != 1000 || p.Coverage.Sample != 100 || p.Coverage.Seed != nil {
		t.Errorf("defaults: %+v", p)
	}
	// A config from before the analysis settings (nil pointers) means the same.
	var old Probe
	if !old.CheckAllNames() || !old.ChangesExpected() || old.Errors() != 1 {
		t.Errorf("zero Probe: %+v", old)
	}
}

func TestProbeSettings(t *testing.T) {
	text := strings.Replace(valid, "zones:", `probe:
  all_names: false
  names: ["@", www, gone]
  types: [a, AAAA, MX, a6, TYPE65534]
  protocols: [udp]
  edns_buffer_size: 4096
  concurrency: 8
  rounds: 5
  interval: 500ms
  consecutive_successes: 2
  failure_limit: 1
  error_limit: 0
  expect_changes: false
  samples: 3
  coverage: {full_up_to: 50, sample: 7, seed: 0}
zones:`, 1)
	f, err := Parse([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	p := f.Probe
	if p.CheckAllNames() || p.ChangesExpected() || p.Errors() != 0 || p.FailureLimit != 1 || p.ConsecutiveSuccesses != 2 ||
		p.Rounds != 5 || p.Interval.D() != 500*time.Millisecond || p.EDNSBufferSize != 4096 || len(p.Types) != 5 || p.Samples != 3 ||
		p.Coverage.FullUpTo != 50 || p.Coverage.Sample != 7 || p.Coverage.Seed == nil || *p.Coverage.Seed != 0 {
		t.Errorf("settings: %+v", p)
	}
}

func TestProbeSignatureMargin(t *testing.T) {
	for text, want := range map[string]time.Duration{"": 24 * time.Hour, "probe: {signature_margin: 2h}\n": 2 * time.Hour, "probe: {signature_margin: 0s}\n": 0} {
		f, err := Parse([]byte(strings.Replace(valid, "zones:", text+"zones:", 1)))
		if err != nil {
			t.Fatal(err)
		}
		if got := f.Probe.Signatures(); got != want {
			t.Errorf("%q: margin %s, want %s", text, got, want)
		}
	}
}

func TestProbeInvalidNamesField(t *testing.T) {
	cases := []struct{ probe, field string }{
		{"{types: [BOGUS]}", "probe.types[0]"},
		{"{types: [AXFR]}", "probe.types[0]"},
		{"{types: [A, OPT]}", "probe.types[1]"},
		{"{types: [TYPE0]}", "probe.types[0]"},
		{"{names: [www, ' ']}", "probe.names[1]"},
		{"{edns_buffer_size: 100}", "probe.edns_buffer_size"},
		{"{rounds: 2, consecutive_successes: 3}", "probe.consecutive_successes"},
		{"{failure_limit: -1}", "probe.failure_limit"},
		{"{error_limit: 9}", "probe.error_limit"},
		{"{concurrency: -2}", "probe.concurrency"},
		{"{interval: -1s}", "probe.interval"},
		{"{attempts: 11}", "probe.attempts"},
		{"{signature_margin: -1h}", "probe.signature_margin"},
		{"{coverage: {full_up_to: -1}}", "probe.coverage.full_up_to"},
		{"{coverage: {sample: -5}}", "probe.coverage.sample"},
	}
	for _, c := range cases {
		t.Run(c.field, func(t *testing.T) {
			_, err := Parse([]byte(strings.Replace(valid, "zones:", "probe: "+c.probe+"\nzones:", 1)))
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != c.field {
				t.Errorf("probe %s: err = %v, want a FieldError for %s", c.probe, err, c.field)
			}
		})
	}
}
