package provision

import (
	"bytes"
	"cmp"
	_ "embed"
	"os"
	"path/filepath"
	"strings"
)

// progressCallback is the Ansible callback plugin that writes each task's
// name, as it starts, to $DNSROLL_PROGRESS_FILE (callback/dnsroll_progress.py).
//
//go:embed callback/dnsroll_progress.py
var progressCallback []byte

// taskLog is where one run's callback writes the tasks it starts.
type taskLog struct{ file string }

// installTaskLog puts the callback in dir and returns the log and the
// environment that makes ansible-playbook load it and write there. The
// callback path that environment sets keeps, after dnsroll's directory,
// the one Ansible would have used (callbackPath), so an operator's
// callbacks still load.
func installTaskLog(dir, workDir string) (taskLog, []string, error) {
	plugins := filepath.Join(dir, "callback")
	if err := os.MkdirAll(plugins, 0o700); err != nil {
		return taskLog{}, nil, err
	}
	if err := os.WriteFile(filepath.Join(plugins, "dnsroll_progress.py"), progressCallback, 0o600); err != nil {
		return taskLog{}, nil, err
	}
	l := taskLog{file: filepath.Join(dir, "tasks")}
	return l, []string{"ANSIBLE_CALLBACK_PLUGINS=" + plugins + ":" + callbackPath(workDir), "DNSROLL_PROGRESS_FILE=" + l.file}, nil
}

// callbackPath is the callback plugin path Ansible would use running in
// workDir: ANSIBLE_CALLBACK_PLUGINS, else callback_plugins in [defaults]
// of the config file Ansible reads (ANSIBLE_CONFIG, ./ansible.cfg,
// ~/.ansible.cfg, /etc/ansible/ansible.cfg: the first that exists), else
// Ansible's default.
func callbackPath(workDir string) string {
	if v := os.Getenv("ANSIBLE_CALLBACK_PLUGINS"); v != "" {
		return v
	}
	home, _ := os.UserHomeDir()
	for _, cfg := range []string{os.Getenv("ANSIBLE_CONFIG"), filepath.Join(workDir, "ansible.cfg"), filepath.Join(home, ".ansible.cfg"), "/etc/ansible/ansible.cfg"} {
		if cfg == "" {
			continue
		}
		b, err := os.ReadFile(cfg)
		if err != nil {
			continue
		}
		if v := iniValue(string(b), "defaults", "callback_plugins"); v != "" {
			// Relative entries are relative to the file, as Ansible reads them.
			parts := strings.Split(v, ":")
			for i, p := range parts {
				if p = strings.TrimSpace(p); p != "" && !filepath.IsAbs(p) && !strings.HasPrefix(p, "~") {
					parts[i] = filepath.Join(filepath.Dir(cfg), p)
				}
			}
			return strings.Join(parts, ":")
		}
		break // Ansible reads one config file only
	}
	ansibleHome := cmp.Or(os.Getenv("ANSIBLE_HOME"), "~/.ansible")
	return ansibleHome + "/plugins/callback:/usr/share/ansible/plugins/callback"
}

// iniValue is key's value in section of an ini file, or "".
func iniValue(text, section, key string) string {
	in := false
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case line[0] == '[':
			in = strings.TrimSpace(strings.Trim(line, "[]")) == section
		case in:
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				k, v, ok = strings.Cut(line, ":")
			}
			if ok && strings.TrimSpace(k) == key {
				return strings.TrimSpace(v)
			}
		}
	}
	return ""
}

// current is the task started last, or "" before the first.
func (l taskLog) current() string {
	if l.file == "" {
		return ""
	}
	b, err := os.ReadFile(l.file)
	if err != nil {
		return ""
	}
	b = bytes.TrimRight(b, "\n")
	return strings.TrimSpace(string(b[bytes.LastIndexByte(b, '\n')+1:]))
}
