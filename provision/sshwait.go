package provision

import (
	"context"
	"fmt"
	"io"
	"net"
	"time"
)

// WaitSSH waits until addr (host:port) sends an SSH banner. A new VM's API
// status says running well before its sshd answers, and Ansible's first
// contact would fail (and count an attempt) in between.
func WaitSSH(ctx context.Context, addr string) error {
	var last error
	for {
		if last = banner(ctx, addr); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("no SSH banner from %s: %v", addr, last)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func banner(ctx context.Context, addr string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	c, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	b := make([]byte, 4)
	if _, err := io.ReadFull(c, b); err != nil {
		return fmt.Errorf("read banner: %w", err)
	}
	if string(b) != "SSH-" {
		return fmt.Errorf("%s does not speak SSH (banner %q)", addr, b)
	}
	return nil
}
