package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/dnsroll/dnsroll/config"
	"github.com/dnsroll/dnsroll/preflight"
)

func runFleet(ctx context.Context, std streams, args []string) error {
	fs := newFlags(std, "fleet validate FILE", `
Checks a fleet file as a rollout would before it creates anything: every field
(Linode's label rule for each nameserver and its -next green, unique load
balancer names, addresses and SSH hosts, port ranges), and, for --revision,
the revision and its zone files (they exist and parse, with the zone's file
and line on an error). Exits 1 on any finding.

The checks that need the live fleet (the new SOA serials against the ones
blue serves) run at the rollout's Plan step, before any server is created;
this command does not reach the cloud or the servers, and says so.

  dnsroll fleet validate fleets/production.yaml --revision 2026-12-01`)
	revision := fs.String("revision", "", "the revision to check the zone files of (needed when they contain {revision})")
	// validate is the only command; the help is its help.
	switch {
	case len(args) == 0:
		fs.Usage()
		return errors.New("no fleet command given")
	case args[0] == "-h" || args[0] == "--help" || args[0] == "help":
		fs.Usage()
		return nil
	case args[0] != "validate":
		fs.Usage()
		return fmt.Errorf("unknown fleet command %q", args[0])
	}
	rest := args[1:]
	var file string
	if len(rest) > 0 && rest[0] != "" && rest[0][0] != '-' {
		file, rest = rest[0], rest[1:]
	}
	if err := parseFlags(fs, rest); err != nil {
		return err
	}
	extra := fs.Args()
	if file == "" && len(extra) > 0 {
		file, extra = extra[0], extra[1:]
	}
	if file == "" {
		fs.Usage()
		return errors.New("no fleet file given")
	}
	if len(extra) > 0 {
		return fmt.Errorf("unexpected arguments %v (one fleet file at a time)", extra)
	}
	if err := preflight.File(file, *revision, preflight.Target{}); err != nil {
		return &exitError{code: 1, err: err}
	}
	f, err := config.Load(file)
	if err != nil {
		return &exitError{code: 1, err: err}
	}
	if err := preflight.Playbooks(f); err != nil {
		return &exitError{code: 1, err: fmt.Errorf("%s: %v", file, err)}
	}
	out := std.out
	fmt.Fprintf(out, "ok: fleet %s: %d nameservers, %d load balancers, %d zones\n", f.Name, len(f.Nameservers), len(f.LoadBalancers), len(f.Zones))
	fmt.Fprintf(out, "ok: playbooks %s, %s\n", f.Path(f.Ansible.NameserverPlaybook), f.Path(f.Ansible.LoadBalancerPlaybook))
	if *revision == "" && f.NeedsRevision() {
		fmt.Fprintln(out, "skipped: the zone files, which depend on the revision (pass --revision)")
	} else if zones, err := preflight.Zones(f, *revision); err == nil {
		for _, z := range zones {
			fmt.Fprintf(out, "ok: zone %s: %s, serial %d\n", z.Name, z.Path, z.Serial)
			for _, w := range z.Warnings {
				fmt.Fprintf(out, "warning: %s\n", w)
			}
		}
	}
	fmt.Fprintln(out, "skipped: live checks (blue's SOA serials, the worker's SSH keys, and that Linode offers each region, plan, image and firewall); the rollout's Plan step runs them before it creates anything")
	return nil
}
