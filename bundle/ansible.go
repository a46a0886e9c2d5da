package bundle

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"gopkg.in/yaml.v3"
)

// AnsibleFiles lists the files a playbook run ships: the playbook, the
// ansible.cfg beside it, and every file of the roles its plays name (and
// the roles those depend on, per meta/main.yml) under roles/ beside it.
// Roles found elsewhere (a roles_path, collections) are not included.
func AnsibleFiles(playbook string) ([]string, error) {
	dir := filepath.Dir(playbook)
	files := []string{playbook}
	if _, err := os.Stat(filepath.Join(dir, "ansible.cfg")); err == nil {
		files = append(files, filepath.Join(dir, "ansible.cfg"))
	}
	var plays []struct {
		Roles []roleRef `yaml:"roles"`
	}
	if err := readYAML(playbook, &plays); err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var queue []string
	for _, p := range plays {
		for _, r := range p.Roles {
			queue = append(queue, r.Name)
		}
	}
	for len(queue) > 0 {
		role := queue[0]
		queue = queue[1:]
		root := filepath.Join(dir, "roles", role)
		if role == "" || seen[role] {
			continue
		}
		seen[role] = true
		if _, err := os.Stat(root); errors.Is(err, fs.ErrNotExist) {
			continue
		}
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				files = append(files, p)
			}
			return err
		})
		if err != nil {
			return nil, err
		}
		var meta struct {
			Dependencies []roleRef `yaml:"dependencies"`
		}
		if err := readYAML(filepath.Join(root, "meta", "main.yml"), &meta); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		for _, r := range meta.Dependencies {
			queue = append(queue, r.Name)
		}
	}
	return files, nil
}

func readYAML(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// roleRef is a role as a play or a dependency names it: "nameserver",
// or {role: nameserver, ...} (or name: in older playbooks).
type roleRef struct{ Name string }

func (r *roleRef) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		r.Name = n.Value
		return nil
	}
	var m struct {
		Role string `yaml:"role"`
		Name string `yaml:"name"`
	}
	if err := n.Decode(&m); err != nil {
		return err
	}
	r.Name = m.Role
	if r.Name == "" {
		r.Name = m.Name
	}
	return nil
}
