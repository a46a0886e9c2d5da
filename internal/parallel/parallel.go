// Package parallel runs the per-file work of large fleets (hashing,
// copying and parsing 100,000 zone files) on every core of a worker.
package parallel

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// For calls f(i) for every i in [0, n), on as many goroutines as there
// are CPUs. It returns the error of the lowest i that failed, so that a
// message names the same item as a loop in order would; once an item
// fails, items after it are not started.
func For(n int, f func(i int) error) error {
	workers := min(runtime.GOMAXPROCS(0), n)
	if workers <= 1 {
		for i := range n {
			if err := f(i); err != nil {
				return err
			}
		}
		return nil
	}
	var (
		next     atomic.Int64
		failedAt atomic.Int64 // the lowest failed index, n when none
		mu       sync.Mutex
		first    error
		wg       sync.WaitGroup
	)
	failedAt.Store(int64(n))
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(n) || i > failedAt.Load() {
					return
				}
				if err := f(int(i)); err != nil {
					mu.Lock()
					if i < failedAt.Load() {
						failedAt.Store(i)
						first = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	return first
}
