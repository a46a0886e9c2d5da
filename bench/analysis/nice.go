package main

import (
	"fmt"
	"os"
	"strconv"
	"syscall"
)

// renice sets the nice value of every thread of this process (Linux keeps
// one per thread). Threads started later, and the named and dnsperf
// processes started after, inherit it, so both sides of the comparison
// run at the same priority, above the other work of a shared machine.
func renice(nice int) error {
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return err
	}
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		if err := syscall.Setpriority(syscall.PRIO_PROCESS, tid, nice); err != nil {
			return fmt.Errorf("-nice %d: %w (raising the priority needs root or CAP_SYS_NICE; -nice 0 leaves it)", nice, err)
		}
	}
	return nil
}
