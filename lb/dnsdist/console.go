package dnsdist

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"golang.org/x/crypto/nacl/secretbox"
)

// The console is reached over an lb.Channel: on a real load balancer that is
// SSH to the load balancer itself, which then connects to the console on
// its own loopback (127.0.0.1:5199), so neither the console port nor its
// key ever crosses the network in the clear; in the lab it is a direct
// connection to 127.0.0.2:<port> on this machine.

// nonceSize is a secretbox nonce: 24 bytes, as dnsdist's SodiumNonce.
const nonceSize = 24

// maxReply bounds one console reply; dnsdist's own client allows 10 MB.
const maxReply = 10 << 20

// consoleTimeout bounds one exchange when the caller's context has no
// deadline, so a console that hangs cannot hang a flip.
const consoleTimeout = 30 * time.Second

// Console is one open session with dnsdist's console, speaking its protocol
// as dnsdist 1.7 built with libsodium does (dnsdist-console.cc and
// sodcrypto.hh): each side sends a random 24-byte nonce; we read with our
// first 12 bytes and their last 12, and write with theirs and ours the other
// way round; every message is a 4-byte big-endian length then a secretbox
// sealed with the console key; the first 4 bytes of a nonce are a
// big-endian counter, incremented after every message. A Console is not
// safe for concurrent use.
type Console struct {
	conn           net.Conn
	key            [32]byte
	reading, write [nonceSize]byte
}

// ParseKey decodes a console key as setKey() takes it: base64 of 32 bytes,
// surrounding whitespace ignored. The error never contains the key.
func ParseKey(text []byte) (*[32]byte, error) {
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(text)))
	if err != nil || len(raw) != 32 {
		return nil, errors.New("console key: want base64 of 32 bytes, as makeKey() prints")
	}
	var k [32]byte
	copy(k[:], raw)
	return &k, nil
}

// OpenConsole exchanges nonces over conn, a connection to dnsdist's
// console, and returns the session. It takes ownership of conn.
func OpenConsole(ctx context.Context, conn net.Conn, key *[32]byte) (*Console, error) {
	c := &Console{conn: conn, key: *key}
	c.deadline(ctx)
	var ours, theirs [nonceSize]byte
	if _, err := rand.Read(ours[:]); err != nil {
		conn.Close()
		return nil, err
	}
	if _, err := conn.Write(ours[:]); err != nil {
		conn.Close()
		return nil, fmt.Errorf("console: send nonce: %w", err)
	}
	if _, err := io.ReadFull(conn, theirs[:]); err != nil {
		conn.Close()
		return nil, fmt.Errorf("console: read nonce: %w (is the console ACL open to this address?)", err)
	}
	c.reading = mergeNonces(ours, theirs)
	c.write = mergeNonces(theirs, ours)
	return c, nil
}

// mergeNonces is SodiumNonce::merge: the first half of lower, the second
// half of higher.
func mergeNonces(lower, higher [nonceSize]byte) [nonceSize]byte {
	var n [nonceSize]byte
	copy(n[:nonceSize/2], lower[:nonceSize/2])
	copy(n[nonceSize/2:], higher[nonceSize/2:])
	return n
}

func incrementNonce(n *[nonceSize]byte) {
	binary.BigEndian.PutUint32(n[:4], binary.BigEndian.Uint32(n[:4])+1)
}

func (c *Console) deadline(ctx context.Context) {
	d, ok := ctx.Deadline()
	if !ok {
		d = time.Now().Add(consoleTimeout)
	}
	_ = c.conn.SetDeadline(d)
}

// ErrConsoleClosed means dnsdist closed the console connection instead of
// answering: it does that when it cannot decrypt a message, so the key is
// most likely wrong.
var ErrConsoleClosed = errors.New("dnsdist closed the console connection without a reply; is the console key right?")

// Exec runs one Lua chunk in dnsdist and returns its reply as dnsdist
// renders it: a returned string, or what the chunk printed through
// dnsdist's own output functions (showServers()), or "Error: ..." when the
// chunk failed. Callers that must know it succeeded make the chunk return a
// marker.
func (c *Console) Exec(ctx context.Context, lua string) (string, error) {
	c.deadline(ctx)
	msg := make([]byte, 4, 4+len(lua)+secretbox.Overhead)
	msg = secretbox.Seal(msg, []byte(lua), &c.write, &c.key)
	binary.BigEndian.PutUint32(msg[:4], uint32(len(msg)-4))
	incrementNonce(&c.write)
	if _, err := c.conn.Write(msg); err != nil {
		return "", fmt.Errorf("console: send: %w", err)
	}
	var hdr [4]byte
	if _, err := io.ReadFull(c.conn, hdr[:]); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return "", ErrConsoleClosed
		}
		return "", fmt.Errorf("console: read reply: %w", err)
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n == 0 {
		// dnsdist acknowledges an empty message with an empty, unsealed reply.
		return "", nil
	}
	if n > maxReply {
		return "", fmt.Errorf("console: reply of %d bytes is over the %d byte limit", n, maxReply)
	}
	box := make([]byte, n)
	if _, err := io.ReadFull(c.conn, box); err != nil {
		return "", fmt.Errorf("console: read reply: %w", err)
	}
	out, ok := secretbox.Open(nil, box, &c.reading, &c.key)
	if !ok {
		return "", errors.New("console: cannot decrypt dnsdist's reply; is the console key right?")
	}
	incrementNonce(&c.reading)
	return string(out), nil
}

// Close closes the connection.
func (c *Console) Close() error { return c.conn.Close() }
