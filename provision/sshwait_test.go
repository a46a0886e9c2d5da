package provision

import (
	"context"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dnsroll/dnsroll/internal/testnet"
)

// serveBanner accepts on a loopback port and greets each connection with
// banner, after delay; it returns the port.
func serveBanner(t *testing.T, banner string, delay time.Duration) string {
	t.Helper()
	start := time.Now()
	addr := testnet.ServeTCP(t, func(c net.Conn) {
		// Sooner, sshd is not up yet: the connection closes unanswered.
		if time.Since(start) >= delay {
			_, _ = c.Write([]byte(banner))
		}
	})
	_, port, _ := net.SplitHostPort(addr)
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
	var accepted atomic.Int32
	addr := testnet.ServeTCP(t, func(c net.Conn) {
		if accepted.Add(1) == 1 {
			_, _ = io.Copy(io.Discard, c) // held open, silent, until WaitSSH gives up on it
			return
		}
		_, _ = c.Write([]byte("SSH-2.0-OpenSSH_9.2\r\n"))
	})
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- WaitSSH(ctx, addr) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("WaitSSH: %v", err)
		}
	case <-time.After(12 * time.Second):
		t.Fatal("WaitSSH still waits on the silent connection")
	}
}
