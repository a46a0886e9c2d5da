package machines

import (
	"bytes"
	"errors"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// hostKeyTypes are the host key types cloud-init's cc_ssh module knows
// and generates by default (its GENERATE_KEY_NAMES).
var hostKeyTypes = []string{"rsa", "ecdsa", "ed25519"}

// cloudConfig is the part of a #cloud-config document that cc_ssh reads
// for host keys. Pointers tell a key that is absent from one set empty.
type cloudConfig struct {
	DeleteKeys  *bool              `yaml:"ssh_deletekeys"`
	Keys        *map[string]string `yaml:"ssh_keys"`
	GenKeyTypes *[]string          `yaml:"ssh_genkeytypes"`
}

// cloudInitHostKeys does to the host keys under root what cloud-init's
// cc_ssh module does on a VM's first boot with userData: unless
// ssh_deletekeys is false, it deletes the image's host keys; then it
// writes the keys of ssh_keys (private 0600, public 0644, a missing
// public one derived from its private one) or, when there is no ssh_keys,
// generates those of ssh_genkeytypes (default rsa, ecdsa, ed25519) that
// are missing. As in cloud-init, ssh_keys and ssh_genkeytypes exclude each
// other: given keys, it generates none. What cloud-init would log and go
// past goes to warn, never with key material.
func cloudInitHostKeys(root string, userData []byte, warn func(format string, args ...any)) error {
	cfg := parseCloudConfig(userData, warn)
	dir := filepath.Join(root, "etc", "ssh")
	if cfg.DeleteKeys == nil || *cfg.DeleteKeys {
		old, _ := filepath.Glob(filepath.Join(dir, "ssh_host_*key*"))
		for _, f := range old {
			if err := os.Remove(f); err != nil {
				return err
			}
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if cfg.Keys != nil {
		return writeHostKeys(dir, *cfg.Keys, warn)
	}
	types := hostKeyTypes
	if cfg.GenKeyTypes != nil {
		types = *cfg.GenKeyTypes
	}
	for _, t := range types {
		// A type is part of a path on the lab's host: only a plain word.
		if !keyTypeName.MatchString(t) {
			warn("skipping ssh_genkeytypes entry %q", t)
			continue
		}
		f := hostKeyFile(dir, t)
		if _, err := os.Stat(f); err == nil {
			continue
		}
		if err := run("ssh-keygen", "-q", "-t", t, "-N", "", "-f", f); err != nil {
			warn("generating a %s host key failed: %v", t, err)
		}
	}
	return nil
}

var keyTypeName = regexp.MustCompile(`^[a-z0-9-]+$`)

func hostKeyFile(dir, typ string) string { return filepath.Join(dir, "ssh_host_"+typ+"_key") }

// writeHostKeys writes the ssh_keys entries cc_ssh knows, and derives
// the public key of a private one given alone, as cc_ssh does
// (ssh-keygen -y, commented root@localhost).
func writeHostKeys(dir string, keys map[string]string, warn func(format string, args ...any)) error {
	for _, name := range slices.Sorted(maps.Keys(keys)) {
		typ, part, _ := strings.Cut(name, "_")
		if !slices.Contains(hostKeyTypes, typ) || part != "private" && part != "public" {
			// cloud-init also takes <type>_certificate and configures
			// sshd's HostCertificate; the lab does not simulate that.
			warn("skipping ssh_keys entry %q", name)
			continue
		}
		f, mode := hostKeyFile(dir, typ), fs.FileMode(0o600)
		if part == "public" {
			f, mode = f+".pub", 0o644
		}
		if err := writeMode(f, []byte(keys[name]), mode); err != nil {
			return err
		}
	}
	for _, typ := range hostKeyTypes {
		_, priv := keys[typ+"_private"]
		if _, pub := keys[typ+"_public"]; !priv || pub {
			continue
		}
		f := hostKeyFile(dir, typ)
		// Output, not CombinedOutput: what ssh-keygen says on stderr
		// goes nowhere near the log.
		out, err := exec.Command("ssh-keygen", "-y", "-f", f).Output()
		if err != nil {
			warn("deriving the %s public host key from its private key failed: %v", typ, err)
			continue
		}
		if err := writeMode(f+".pub", append(bytes.TrimSpace(out), " root@localhost\n"...), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// writeMode writes f with mode whatever the umask or an earlier file's.
func writeMode(f string, data []byte, mode fs.FileMode) error {
	if err := os.WriteFile(f, data, mode); err != nil {
		return err
	}
	return os.Chmod(f, mode)
}

// parseCloudConfig reads the cc_ssh keys of a #cloud-config document.
// cloud-init hands user data of other kinds (scripts, #include, MIME
// multi-part) to handlers the lab does not simulate, and skips a
// cloud-config it cannot load, logging it; either way cc_ssh runs with
// its defaults, as it does here with the zero cloudConfig.
func parseCloudConfig(userData []byte, warn func(format string, args ...any)) cloudConfig {
	var cfg cloudConfig
	if !bytes.HasPrefix(userData, []byte("#cloud-config")) {
		return cfg
	}
	if err := yaml.Unmarshal(userData, &cfg); err != nil {
		warn("user data is not a cloud-config the lab can read (%s); skipped, as cloud-init skips it", yamlErrorLines(err))
		return cloudConfig{}
	}
	return cfg
}

// yamlErrorLines says where a YAML error is and not what it found there:
// yaml.v3 quotes the value it could not decode, which may be a key.
func yamlErrorLines(err error) string {
	var te *yaml.TypeError
	msgs := []string{err.Error()}
	if errors.As(err, &te) {
		msgs = te.Errors
	}
	var at []string
	for _, m := range msgs {
		at = append(at, lineRef.FindAllString(m, -1)...)
	}
	if len(at) == 0 {
		return "no line given"
	}
	return strings.Join(at, ", ")
}

var lineRef = regexp.MustCompile(`line \d+`)
