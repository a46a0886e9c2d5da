package provision

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"
)

// serve accepts on a loopback port and greets each connection with
// banner, after delay; it returns the port.
func serveBanner(t *testing.T, banner string, delay time.Duration) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	start := time.Now()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if time.Since(start) < delay {
				c.Close() // sshd not up yet: connection reset
				continue
			}
			_, _ = c.Write([]byte(banner))
			c.Close()
		}
	}()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}

func TestBannerWaitsForSSH(t *testing.T) {
	port := serveBanner(t, "SSH-2.0-OpenSSH_9.2\r\n", 1200*time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	addr := net.JoinHostPort("127.0.0.1", port)
	deadline := time.Now().Add(10 * time.Second)
	for banner(ctx, addr) != nil {
		if time.Now().After(deadline) {
			t.Fatal("never saw the banner")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestBannerRefusesOtherProtocols(t *testing.T) {
	port := serveBanner(t, "HTTP/1.1 400 Bad Request\r\n", 0)
	err := banner(context.Background(), net.JoinHostPort("127.0.0.1", port))
	if err == nil || !strings.Contains(err.Error(), "does not speak SSH") {
		t.Fatalf("err = %v, want a refusal", err)
	}
}

func TestWaitGivesUpAtTheDeadline(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	ctx, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
	defer cancel()
	if err := WaitSSH(ctx, addr); err == nil || !strings.Contains(err.Error(), "no SSH banner") {
		t.Fatalf("err = %v", err)
	}
}

// A port that accepts but says nothing (sshd still starting, a firewall's
// tarpit) costs one attempt of a few seconds, not the whole wait: the
// next connection's banner is seen.
func TestWaitRetriesASilentConnection(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for n := 0; ; n++ {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if n == 0 {
				t.Cleanup(func() { c.Close() }) // held open, silent
				continue
			}
			_, _ = c.Write([]byte("SSH-2.0-OpenSSH_9.2\r\n"))
			c.Close()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- WaitSSH(ctx, ln.Addr().String()) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("WaitSSH: %v", err)
		}
	case <-time.After(12 * time.Second):
		t.Fatal("WaitSSH still waits on the silent connection")
	}
}
