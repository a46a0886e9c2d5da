package hostkeys

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"golang.org/x/crypto/ssh"
)

// scanTimeout bounds one handshake when the context has no nearer deadline.
const scanTimeout = 15 * time.Second

// keyTypes are the host key algorithms asked for, one handshake each, when
// recording a machine: every type its sshd offers is recorded, so later
// connections match whichever type ssh negotiates.
var keyTypes = [][]string{
	{ssh.KeyAlgoED25519},
	{ssh.KeyAlgoECDSA256, ssh.KeyAlgoECDSA384, ssh.KeyAlgoECDSA521},
	{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256},
}

// algorithmsFor are the host key algorithms that make sshd present a key of
// key's type.
func algorithmsFor(keyType string) []string {
	if keyType == ssh.KeyAlgoRSA {
		return []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
	}
	return []string{keyType}
}

// errGotKey ends a handshake once the host key is in: nothing here logs in.
var errGotKey = errors.New("host key received")

// offered returns the host key that addr presents for algorithms (nil: the
// client's defaults). It never authenticates.
func offered(ctx context.Context, addr string, algorithms []string) (ssh.PublicKey, error) {
	ctx, cancel := context.WithTimeout(ctx, scanTimeout)
	defer cancel()
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	dl, _ := ctx.Deadline()
	_ = conn.SetDeadline(dl)
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	var key ssh.PublicKey
	cfg := &ssh.ClientConfig{
		User:              "dnsroll-hostkey",
		HostKeyAlgorithms: algorithms,
		HostKeyCallback: func(_ string, _ net.Addr, k ssh.PublicKey) error {
			key = k
			return errGotKey
		},
	}
	c, _, _, err := ssh.NewClientConn(conn, addr, cfg)
	if c != nil {
		c.Close()
	}
	if key != nil {
		return key, nil
	}
	if ctx.Err() != nil {
		return nil, fmt.Errorf("SSH handshake with %s: %w", addr, ctx.Err())
	}
	return nil, fmt.Errorf("SSH handshake with %s: %w", addr, err)
}

// scan returns every host key addr offers among keyTypes. A type the server
// lacks fails its handshake and is skipped; no key at all is an error.
func scan(ctx context.Context, addr string) ([]ssh.PublicKey, error) {
	var keys []ssh.PublicKey
	var firstErr error
	for _, algs := range keyTypes {
		k, err := offered(ctx, addr, algs)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			var op *net.OpError
			if ctx.Err() != nil || errors.As(err, &op) && op.Op == "dial" {
				break // nothing listens: the other types will not do better
			}
			continue
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, firstErr
	}
	return keys, nil
}
