package dnsdist

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"testing"

	"golang.org/x/crypto/nacl/secretbox"

	"github.com/dnsroll/dnsroll/internal/testnet"
)

// fakeConsole is the server side of dnsdist's console, written out byte by
// byte as dnsdist-console.cc does it, so that the client's framing is
// checked against the protocol rather than against itself. It answers each
// command with reply(command) and records the commands.
type fakeConsole struct {
	key      [32]byte
	reply    func(cmd string) string
	commands chan string
}

func (f *fakeConsole) serve(t *testing.T, conn net.Conn) {
	theirs := make([]byte, 24)
	if _, err := io.ReadFull(conn, theirs); err != nil {
		return
	}
	ours := make([]byte, 24)
	_, _ = rand.Read(ours)
	_, _ = conn.Write(ours)
	var reading, writing [24]byte
	// readingNonce.merge(ours, theirs); writingNonce.merge(theirs, ours).
	copy(reading[:12], ours[:12])
	copy(reading[12:], theirs[12:])
	copy(writing[:12], theirs[:12])
	copy(writing[12:], ours[12:])
	for i := uint32(0); ; i++ {
		var hdr [4]byte
		if _, err := io.ReadFull(conn, hdr[:]); err != nil {
			return
		}
		box := make([]byte, binary.BigEndian.Uint32(hdr[:]))
		if _, err := io.ReadFull(conn, box); err != nil {
			return
		}
		n := reading
		binary.BigEndian.PutUint32(n[:4], binary.BigEndian.Uint32(reading[:4])+i)
		cmd, ok := secretbox.Open(nil, box, &n, &f.key)
		if !ok {
			return // as dnsdist does: a message it cannot decrypt closes the connection
		}
		f.commands <- string(cmd)
		w := writing
		binary.BigEndian.PutUint32(w[:4], binary.BigEndian.Uint32(writing[:4])+i)
		out := secretbox.Seal(nil, []byte(f.reply(string(cmd))), &w, &f.key)
		_ = binary.Write(conn, binary.BigEndian, uint32(len(out)))
		_, _ = conn.Write(out)
	}
}

func startFakeConsole(t *testing.T, key *[32]byte, reply func(string) string) (addr string, commands chan string) {
	t.Helper()
	f := &fakeConsole{key: *key, reply: reply, commands: make(chan string, 100)}
	return testnet.ServeTCP(t, func(conn net.Conn) { f.serve(t, conn) }), f.commands
}

func testKey(t *testing.T) *[32]byte {
	t.Helper()
	var k [32]byte
	_, _ = rand.Read(k[:])
	return &k
}

func openTo(t *testing.T, addr string, key *[32]byte) *Console {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c, err := OpenConsole(context.Background(), conn, key)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestConsoleFraming sends several commands over one session: every one
// must arrive intact and every reply decrypt, which holds only if both
// nonces are merged and counted as dnsdist does.
func TestConsoleFraming(t *testing.T) {
	key := testKey(t)
	addr, commands := startFakeConsole(t, key, func(cmd string) string { return "echo:" + cmd })
	c := openTo(t, addr, key)
	big := strings.Repeat("x", 70000) // over 16 bits: the length is 32 bits
	for _, cmd := range []string{"", "showServers()", "return 'é'", big, "last"} {
		got, err := c.Exec(context.Background(), cmd)
		if err != nil {
			t.Fatalf("Exec(%.20q): %v", cmd, err)
		}
		if got != "echo:"+cmd {
			t.Errorf("Exec(%.20q) = %.30q, want the echo", cmd, got)
		}
		if sent := <-commands; sent != cmd {
			t.Errorf("server got %.20q, want %.20q", sent, cmd)
		}
	}
}

// TestConsoleWrongKey: dnsdist closes the connection on a message it
// cannot decrypt; the client says the key is probably wrong, and never
// prints a key.
func TestConsoleWrongKey(t *testing.T) {
	key, wrong := testKey(t), testKey(t)
	addr, _ := startFakeConsole(t, key, func(string) string { return "" })
	c := openTo(t, addr, wrong)
	_, err := c.Exec(context.Background(), "showServers()")
	if !errors.Is(err, ErrConsoleClosed) {
		t.Fatalf("Exec with the wrong key: %v, want ErrConsoleClosed", err)
	}
	for _, k := range []*[32]byte{key, wrong} {
		if strings.Contains(err.Error(), base64.StdEncoding.EncodeToString(k[:])) {
			t.Errorf("error contains a key: %v", err)
		}
	}
}

func TestParseKey(t *testing.T) {
	raw := bytes.Repeat([]byte{7}, 32)
	k, err := ParseKey([]byte(base64.StdEncoding.EncodeToString(raw) + "\n"))
	if err != nil || !bytes.Equal(k[:], raw) {
		t.Fatalf("ParseKey(valid) = %v, %v", k, err)
	}
	short := base64.StdEncoding.EncodeToString(raw[:16])
	if _, err := ParseKey([]byte(short)); err == nil || strings.Contains(err.Error(), short) {
		t.Errorf("ParseKey(16 bytes) = %v, want an error without the key", err)
	}
}

// A reply whose length is over maxReply is refused from its header: no
// buffer of that size is made for what may be a stray byte stream.
func TestConsoleRefusesAnOversizedReply(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		nonce := make([]byte, nonceSize)
		if _, err := io.ReadFull(conn, nonce); err != nil {
			return
		}
		_, _ = conn.Write(nonce)
		var hdr [4]byte
		if _, err := io.ReadFull(conn, hdr[:]); err != nil {
			return
		}
		if _, err := io.ReadFull(conn, make([]byte, binary.BigEndian.Uint32(hdr[:]))); err != nil {
			return
		}
		_ = binary.Write(conn, binary.BigEndian, uint32(maxReply+1))
	}()
	c := openTo(t, ln.Addr().String(), testKey(t))
	if _, err := c.Exec(context.Background(), "showServers()"); err == nil || !strings.Contains(err.Error(), "over the 10485760 byte limit") {
		t.Errorf("a reply over the limit: %v, want it refused by its length", err)
	}
}
