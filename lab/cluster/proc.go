package cluster

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"syscall"

	"github.com/dnsroll/dnsroll/internal/child"
)

// startProc starts bin as cred's user (ours when nil), with its output
// appended to logFile.
func startProc(bin, logFile string, cred *syscall.Credential, args ...string) (*child.Proc, error) {
	cmd := exec.Command(bin, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	return child.Start(cmd, logFile)
}

// logTail is the end of a process's log, for errors: Stop removes the
// directory the log is in.
func logTail(logFile string) string {
	return fmt.Sprintf("last lines of %s:\n%s", filepath.Base(logFile), child.Tail(logFile, 3000))
}
