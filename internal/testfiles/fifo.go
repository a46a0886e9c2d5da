package testfiles

import (
	"os"
	"syscall"
	"testing"
	"time"
)

// Changing makes path a FIFO whose i-th reader gets texts[i] and every
// later reader the last text: a file edited between two reads, at the
// read a test names. It skips the test where FIFOs cannot be made.
func Changing(t testing.TB, path string, texts ...string) {
	t.Helper()
	fifo(t, path, texts, false)
}

// Vanishing is Changing for a file removed once its last text is read:
// later readers find no file.
func Vanishing(t testing.TB, path string, texts ...string) {
	t.Helper()
	fifo(t, path, texts, true)
}

func fifo(t testing.TB, path string, texts []string, vanish bool) {
	t.Helper()
	_ = os.Remove(path)
	if err := syscall.Mkfifo(path, 0o644); err != nil {
		t.Skip("no FIFOs here:", err)
	}
	done := make(chan struct{})
	go func() {
		for i := 0; ; i++ {
			f, err := os.OpenFile(path, os.O_WRONLY, 0)
			if err != nil {
				return
			}
			select {
			case <-done:
				f.Close()
				return
			default:
			}
			_, _ = f.WriteString(texts[min(i, len(texts)-1)])
			f.Close()
			if vanish && i == len(texts)-1 {
				// Its reader has it open: the removal is for the next.
				_ = os.Remove(path)
				return
			}
			// Let the reader see the end of its text before the next
			// reader's open meets this writer: a reader still open then
			// would get the next text too. Generous, for loaded CI runs.
			time.Sleep(300 * time.Millisecond)
		}
	}()
	t.Cleanup(func() {
		close(done)
		// Release the writer waiting for a reader.
		if f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0); err == nil {
			f.Close()
		}
	})
}
