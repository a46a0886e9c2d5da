package provision

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
)

// badNameChars are characters that Ansible treats as pattern syntax in
// --limit and hosts: lines, plus whitespace: a host named with them could
// select other hosts than the one meant.
const badNameChars = ",:!&*?[]~ \t\r\n"

// check validates req and returns its connection, defaulting to ssh.
func (req Request) check() (string, error) {
	if req.Playbook == "" {
		return "", errors.New("no playbook")
	}
	conn := req.Connection
	switch conn {
	case "":
		conn = "ssh"
	case "ssh", "local":
	default:
		return "", fmt.Errorf("connection must be ssh or local, got %q", conn)
	}
	if len(req.Hosts) == 0 {
		return "", errors.New("no hosts")
	}
	seen := map[string]bool{}
	for _, h := range req.Hosts {
		switch {
		case h.Name == "" || strings.ContainsAny(h.Name, badNameChars):
			return "", fmt.Errorf("host name %q is empty or contains one of %q", h.Name, badNameChars)
		case seen[h.Name]:
			return "", fmt.Errorf("host %q is listed twice", h.Name)
		case conn == "ssh" && h.Address == "":
			return "", fmt.Errorf("host %q has no address", h.Name)
		}
		seen[h.Name] = true
	}
	return conn, nil
}

// writeInputs writes the inventory and the extra vars as JSON files into
// dir and returns their paths. Ansible's yaml inventory plugin reads .json.
func writeInputs(dir string, req Request, conn string) (inventory, extraVars string, err error) {
	group := map[string]any{"ansible_connection": conn}
	switch {
	case conn == "local":
		// The Python that runs ansible-playbook has everything its modules
		// need; discovery could pick another one.
		group["ansible_python_interpreter"] = "{{ ansible_playbook_python }}"
	case req.User != "":
		group["ansible_user"] = req.User
	}
	hosts := make(map[string]map[string]any, len(req.Hosts))
	for _, h := range req.Hosts {
		// Host vars may override the group's connection settings.
		vars := maps.Clone(h.Vars)
		if vars == nil {
			vars = map[string]any{}
		}
		if h.Address != "" {
			vars["ansible_host"] = h.Address
		}
		hosts[h.Name] = vars
	}
	inv := map[string]any{"all": map[string]any{"vars": group, "hosts": hosts}}
	inventory = filepath.Join(dir, "inventory.json")
	if err := writeJSON(inventory, inv); err != nil {
		return "", "", fmt.Errorf("inventory: %w", err)
	}
	ev := req.ExtraVars
	if ev == nil {
		ev = map[string]any{}
	}
	extraVars = filepath.Join(dir, "extra-vars.json")
	if err := writeJSON(extraVars, ev); err != nil {
		return "", "", fmt.Errorf("extra vars: %w", err)
	}
	return inventory, extraVars, nil
}

// writeJSON writes v to a new file that only the worker's user can read.
func writeJSON(path string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o600)
}
