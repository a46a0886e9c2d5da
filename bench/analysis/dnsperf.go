package main

import (
	"fmt"
	"os/exec"
	"regexp"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/dnsroll/dnsroll/internal/localnamed"
)

// perfWindow is the queries each dnsperf keeps outstanding (-q), one
// dnsperf per server; the analysis gets as many per server by default.
const perfWindow = 64

var qpsRE = regexp.MustCompile(`Queries per second:\s+([0-9.]+)`)

// dnsperf runs one dnsperf per server at once, for seconds, and returns
// the sum of their rates: BIND's raw capacity for the same queries on the
// same machine.
func dnsperf(servers []*localnamed.Server, queries, mode string, seconds int) (float64, error) {
	rates := make([]float64, len(servers))
	errs := make([]error, len(servers))
	var wg sync.WaitGroup
	for i, s := range servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := exec.Command("dnsperf", "-m", mode, "-s", "127.0.0.1", "-p", strconv.Itoa(s.Port),
				"-d", queries, "-l", strconv.Itoa(seconds), "-c", "2", "-q", strconv.Itoa(perfWindow), "-e").CombinedOutput()
			m := qpsRE.FindSubmatch(out)
			if err != nil || m == nil {
				errs[i] = fmt.Errorf("dnsperf -m %s against %s: %v: %s", mode, s.Addr, err, out)
				return
			}
			rates[i], _ = strconv.ParseFloat(string(m[1]), 64)
		}()
	}
	wg.Wait()
	sum := 0.0
	for i := range servers {
		if errs[i] != nil {
			return 0, errs[i]
		}
		sum += rates[i]
	}
	return sum, nil
}

func numCPU() int { return runtime.NumCPU() }

// cpuTime is the CPU time (user and system) this process has used.
func cpuTime() time.Duration { return rusage(syscall.RUSAGE_SELF) }

// childrenCPU is the CPU time its children that ended (dnsperf) used.
func childrenCPU() time.Duration { return rusage(syscall.RUSAGE_CHILDREN) }

func rusage(who int) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(who, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
