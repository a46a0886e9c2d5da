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
	fifo(t, path, texts, nil)
}

// Vanishing is Changing for a file removed once its last text is read:
// later readers find no file.
func Vanishing(t testing.TB, path string, texts ...string) {
	t.Helper()
	fifo(t, path, texts, func() { _ = os.Remove(path) })
}

// Unreadable is Vanishing for a file that a directory takes the place
// of: later readers open it, and fail to read it (EISDIR), as root too.
func Unreadable(t testing.TB, path string, texts ...string) {
	t.Helper()
	fifo(t, path, texts, func() {
		_ = os.Remove(path)
		_ = os.Mkdir(path, 0o755)
	})
}

// fifo is Changing, then, when then is set, calls it as the last text
// is read.
func fifo(t testing.TB, path string, texts []string, then func()) {
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
			if then != nil && i == len(texts)-1 {
				// Its reader has it open: the change is for the next,
				// made before the close so that it finds it made.
				then()
				f.Close()
				return
			}
			f.Close()
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
