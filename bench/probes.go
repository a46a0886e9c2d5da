package main

import (
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// probeName is the record whose answer names the zone revision a load
// balancer serves ("revision A").
const probeName = "release.example.com."

// probeEvery is how often each load balancer is asked which revision it
// serves; it bounds the precision of the switch and rollback times.
const probeEvery = 20 * time.Millisecond

// sample is one probe answer: the revision ("A"), or "" for no answer.
type sample struct {
	At       time.Time
	Revision string
}

// prober asks every load balancer for probeName until stopped.
type prober struct {
	mu      sync.Mutex
	samples map[string][]sample
	stopc   chan struct{}
	wg      sync.WaitGroup
}

func startProber(addrs map[string]string) *prober {
	p := &prober{samples: map[string][]sample{}, stopc: make(chan struct{})}
	for name, addr := range addrs {
		p.wg.Add(1)
		go p.run(name, addr)
	}
	return p
}

func (p *prober) run(name, addr string) {
	defer p.wg.Done()
	c := &dns.Client{Timeout: 500 * time.Millisecond}
	every(p.stopc, probeEvery, func() {
		at := time.Now()
		rev := revisionAt(c, addr)
		p.mu.Lock()
		p.samples[name] = append(p.samples[name], sample{At: at, Revision: rev})
		p.mu.Unlock()
	})
}

// revisionAt asks addr for probeName and returns the revision its answer
// names, or "" for no answer.
func revisionAt(c *dns.Client, addr string) string {
	m := new(dns.Msg)
	m.SetQuestion(probeName, dns.TypeTXT)
	r, _, err := c.Exchange(m, addr)
	if err != nil || len(r.Answer) == 0 {
		return ""
	}
	if txt, ok := r.Answer[0].(*dns.TXT); ok {
		return strings.TrimPrefix(strings.Join(txt.Txt, ""), "revision ")
	}
	return ""
}

// every calls f now and then every d until stop is closed: the probes'
// and the priority raiser's polling.
func every(stop <-chan struct{}, d time.Duration, f func()) {
	tick := time.NewTicker(d)
	defer tick.Stop()
	for {
		f()
		select {
		case <-stop:
			return
		case <-tick.C:
		}
	}
}

func (p *prober) stop() map[string][]sample {
	close(p.stopc)
	p.wg.Wait()
	return p.samples
}

// settled returns when samples began to show want for good within
// [from, to): the first sample from which every later one in the window
// answers want. It returns false when the last sample in the window does not.
func settled(samples []sample, from, to time.Time, want string) (time.Time, bool) {
	var at time.Time
	ok := false
	for _, s := range samples {
		if s.At.Before(from) || !s.At.Before(to) {
			continue
		}
		switch {
		case s.Revision != want:
			ok = false
		case !ok:
			at, ok = s.At, true
		}
	}
	return at, ok
}
