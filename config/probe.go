package config

import (
	"fmt"
	"time"
)

// Probe configures DNS health checks.
type Probe struct {
	// Names are extra owner names to check besides each zone's apex SOA and NS.
	Names     []string `yaml:"names" json:"names"`
	Protocols []string `yaml:"protocols" json:"protocols"`
	Timeout   Duration `yaml:"timeout" json:"timeout"`
	// Attempts is how many times a failing query is retried within one probe.
	Attempts int `yaml:"attempts" json:"attempts"`
}

func (p *Probe) setDefaults() {
	if len(p.Protocols) == 0 {
		p.Protocols = []string{"udp", "tcp"}
	}
	setDur(&p.Timeout, 2*time.Second)
	if p.Attempts == 0 {
		p.Attempts = 3
	}
}

func (p *Probe) validate() error {
	for i, proto := range p.Protocols {
		if proto != "udp" && proto != "tcp" {
			return fieldErr(fmt.Sprintf("probe.protocols[%d]", i), "must be udp or tcp, got %q", proto)
		}
	}
	if p.Attempts < 1 {
		return fieldErr("probe.attempts", "must be at least 1")
	}
	return nil
}
