// Package provision runs Ansible playbooks through go-ansible and reports
// per-host results parsed from Ansible's JSON output.
package provision

import (
	"context"
	"errors"
)

// Host is one inventory host.
type Host struct {
	// Name is the inventory hostname, e.g. "ns1-next" or "lb1".
	Name string `json:"name"`
	// Address is what Ansible connects to (ansible_host).
	Address string `json:"address"`
	// Vars are host variables. Never put secrets here.
	Vars map[string]any `json:"vars,omitempty"`
}

// Request is one playbook run.
type Request struct {
	// Playbook is the path of the playbook file.
	Playbook string `json:"playbook"`
	// Hosts become the inventory's "all" group.
	Hosts []Host `json:"hosts"`
	// Connection is "ssh" or "local".
	Connection string `json:"connection"`
	// User is the SSH user (ssh connection only).
	User string `json:"user,omitempty"`
	// ExtraVars are passed in a file, not on the command line. Never secrets.
	ExtraVars map[string]any `json:"extra_vars,omitempty"`
}

// Result summarises a run, small enough for workflow history.
type Result struct {
	Hosts    map[string]HostStats `json:"hosts"`
	Failures []Failure            `json:"failures,omitempty"`
}

// HostStats are Ansible's per-host play recap counters.
type HostStats struct {
	OK          int `json:"ok"`
	Changed     int `json:"changed"`
	Failed      int `json:"failed"`
	Unreachable int `json:"unreachable"`
	Skipped     int `json:"skipped"`
}

// Failure is one failed task on one host.
type Failure struct {
	Host    string `json:"host"`
	Task    string `json:"task"`
	Message string `json:"message"`
}

// Runner runs ansible-playbook.
type Runner struct{}

// Run runs req and blocks until ansible-playbook exits. progress, when not
// nil, is called periodically (at least every few seconds) while it runs,
// so callers can heartbeat. Cancelling ctx kills the whole process group.
// A failed playbook returns the parsed Result and an error naming the failed
// hosts and tasks.
func (r *Runner) Run(ctx context.Context, req Request, progress func(msg string)) (Result, error) {
	return Result{}, errors.New("provision: not implemented")
}
