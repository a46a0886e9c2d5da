package provision

import (
	"bytes"
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

// defaultCallbackPath is Ansible's own callback plugin path, which
// ANSIBLE_CALLBACK_PLUGINS replaces unless it is listed there too.
const defaultCallbackPath = "~/.ansible/plugins/callback:/usr/share/ansible/plugins/callback"

// taskLog is where one run's callback writes the tasks it starts.
type taskLog struct{ file string }

// installTaskLog puts the callback in dir and returns the log and the
// environment that makes ansible-playbook load it and write there.
// inherited is the worker's ANSIBLE_CALLBACK_PLUGINS, kept after it.
func installTaskLog(dir, inherited string) (taskLog, []string, error) {
	plugins := filepath.Join(dir, "callback")
	if err := os.MkdirAll(plugins, 0o700); err != nil {
		return taskLog{}, nil, err
	}
	if err := os.WriteFile(filepath.Join(plugins, "dnsroll_progress.py"), progressCallback, 0o600); err != nil {
		return taskLog{}, nil, err
	}
	l := taskLog{file: filepath.Join(dir, "tasks")}
	path := plugins + ":" + defaultCallbackPath
	if inherited != "" {
		path = plugins + ":" + inherited
	}
	return l, []string{"ANSIBLE_CALLBACK_PLUGINS=" + path, "DNSROLL_PROGRESS_FILE=" + l.file}, nil
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
