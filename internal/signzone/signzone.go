// Package signzone signs zone files for tests with BIND's own tools
// (dnssec-keygen and dnssec-signzone, from bind9-utils), so that tests of
// the DNSSEC checks serve zones signed as operators sign them.
package signzone

import (
	"cmp"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// Tools are the programs Sign runs, for tests to ask for
// (needlab.Programs).
var Tools = []string{"dnssec-keygen", "dnssec-signzone"}

// Options say how to sign.
type Options struct {
	// Start and End bound the signatures' validity, in dnssec-signzone's
	// -s and -e forms: "now-3600", "+2592000", "20261101000000". Empty,
	// they are those two: from an hour ago for thirty days, as a zone
	// kept well is signed.
	Start, End string
	// NSEC3 denies names with NSEC3 instead of NSEC, with Salt (hex;
	// empty is none) and Iterations extra hash iterations.
	NSEC3      bool
	Salt       string
	Iterations int
	// OptOut sets the NSEC3 Opt-Out flag (dnssec-signzone -A): unsigned
	// delegations get no NSEC3 of their own, as large TLD-like zones do.
	OptOut bool
	// Algorithm is dnssec-keygen's -a; empty is ECDSAP256SHA256.
	Algorithm string
}

// Sign signs text, a zone file for origin, with a fresh KSK and ZSK
// (ECDSA P-256 unless o.Algorithm says otherwise) made in dir, and returns the signed zone file's text. The
// signed zone is not verified, so that expired signatures can be made.
func Sign(dir, origin, text string, o Options) (string, error) {
	run := func(args ...string) error {
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("%s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
		}
		return nil
	}
	alg := cmp.Or(o.Algorithm, "ECDSAP256SHA256")
	if err := run("dnssec-keygen", "-q", "-K", dir, "-a", alg, "-f", "KSK", origin); err != nil {
		return "", err
	}
	if err := run("dnssec-keygen", "-q", "-K", dir, "-a", alg, origin); err != nil {
		return "", err
	}
	src := filepath.Join(dir, "unsigned.zone")
	if err := os.WriteFile(src, []byte(text), 0o644); err != nil {
		return "", err
	}
	args := []string{"dnssec-signzone", "-q", "-P", "-S", "-K", dir, "-o", origin, "-s", cmp.Or(o.Start, "now-3600"), "-e", cmp.Or(o.End, "+2592000"), "-f", src + ".signed"}
	if o.NSEC3 {
		args = append(args, "-3", cmp.Or(o.Salt, "-"), "-H", strconv.Itoa(o.Iterations))
		if o.OptOut {
			args = append(args, "-A")
		}
	}
	if err := run(append(args, src)...); err != nil {
		return "", err
	}
	b, err := os.ReadFile(src + ".signed")
	return string(b), err
}

// SignDS signs as Sign does and also returns the DS records that
// dnssec-signzone made for origin's parent (its dsset- file in dir).
func SignDS(dir, origin, text string, o Options) (signed, ds string, err error) {
	if signed, err = Sign(dir, origin, text, o); err != nil {
		return "", "", err
	}
	b, err := os.ReadFile(filepath.Join(dir, "dsset-"+strings.TrimSuffix(origin, ".")+"."))
	return signed, string(b), err
}
