package linodesim

import "time"

// SetClock replaces the simulator's clock so status tests need not sleep.
func SetClock(s *Sim, now func() time.Time) { s.now = now }
