package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/config"
	"github.com/dnsroll/dnsroll/linode"
	"github.com/dnsroll/dnsroll/preflight"
)

func runFleet(ctx context.Context, std streams, args []string) error {
	fs := newFlags(std, "fleet validate FILE|DIR", `
Checks a fleet file as a rollout would before it creates anything: every field
(Linode's label rule for each nameserver and its -next green, unique load
balancer names, addresses and SSH hosts, port ranges), that no fleet file
beside it gives a Linode label it gives or names one of its load balancers
(an address or SSH host), that each fleet file beside it loads as a worker
started on the directory needs (one that does not is named, with its
error), and, for --revision, the revision and
its zone files (they exist and parse, with the zone's file and line on an
error). Given a directory, it checks every fleet file in it, as a worker
started with --fleets DIR reads them. Exits 1 on any finding.

It checks the fleet for the cloud a worker here would run it on: the real
Linode API (create and provision timeouts of at least 2m; Ansible over
SSH), unless the fleet has a lab section or DNSROLL_LINODE_URL names a
simulator. The worker's own setup (SSH keys) is checked where it runs.

With --live it also asks Linode (LINODE_TOKEN, read only) which servers
carry the fleet's tag, whether it offers each nameserver's region, plan,
image and firewall, whether a Linode without the fleet's tag (made by
hand, or another fleet's) holds a nameserver's label or its -next, whether
the token's user may create Linodes and delete and rename the servers a
rollout replaces, and whether a resource lock keeps one of those from
deletion, as the Plan step does.
The checks of the running fleet (the new SOA serials against the ones blue
serves, the worker's SSH keys) run at the rollout's Plan step, before any
server is created; this command says which checks it skipped.

  dnsroll fleet validate fleets/production.yaml --revision 2026-12-01
  dnsroll fleet validate /etc/dnsroll/fleets
  LINODE_TOKEN=... dnsroll fleet validate fleets/production.yaml --live`)
	revision := fs.String("revision", "", "the revision to check the zone files of (needed when they contain {revision})")
	live := fs.Bool("live", false, "also ask Linode (LINODE_TOKEN; DNSROLL_LINODE_URL for another API) for the fleet's servers, whether it offers what the fleet names, and whether a Linode outside the fleet holds one of its labels")
	// validate is the only command; the help is its help.
	switch {
	case len(args) == 0:
		fs.Usage()
		return errors.New("no fleet command given")
	case isHelp(args[0]) || args[0] == "help":
		fs.SetOutput(std.out)
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
		return fmt.Errorf("unexpected arguments %v (one fleet file or directory at a time)", extra)
	}
	// As a worker does, before judging a fleet by it: a URL without a
	// scheme would pass for a simulator's.
	if err := linode.CheckBaseURL(os.Getenv("DNSROLL_LINODE_URL")); err != nil {
		return &exitError{code: 1, err: fmt.Errorf("DNSROLL_LINODE_URL: %w", err)}
	}
	st, err := os.Stat(file)
	if err != nil || !st.IsDir() {
		return validateFleet(ctx, std.out, file, *revision, *live, true)
	}
	files, err := fleetFiles(file)
	if err != nil {
		return &exitError{code: 1, err: err}
	}
	// Every file is checked, so that one run names every finding.
	failed := 0
	for _, p := range files {
		fmt.Fprintf(std.out, "== %s\n", p)
		// A .yml file is refused there, with the name to give it.
		if err := validateFleet(ctx, std.out, p, *revision, *live, false); err != nil {
			failed++
			fmt.Fprintf(std.err, "dnsroll: %v\n", err)
		}
	}
	if failed > 0 {
		return &exitError{code: 1, err: fmt.Errorf("%d of %d fleet files failed", failed, len(files))}
	}
	return nil
}

// fleetFiles lists the fleet files in dir as a worker started with
// --fleets dir reads them (*.yaml), and the *.yml files it would pass
// over, which validation refuses.
func fleetFiles(dir string) ([]string, error) {
	yaml, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
	yml, _ := filepath.Glob(filepath.Join(dir, "*.yml"))
	files := append(yaml, yml...)
	if len(files) == 0 {
		return nil, fmt.Errorf("no fleet files (*.yaml) in %s", dir)
	}
	sort.Strings(files)
	return files, nil
}

// validateFleet checks one fleet file and prints what it found. Alone, it
// refuses a fleet file beside it that it cannot read (preflight.Neighbours);
// in a run over the whole directory, that file's own check names it.
func validateFleet(ctx context.Context, out io.Writer, file, revision string, live, alone bool) error {
	f, err := config.Load(file)
	if err != nil {
		return &exitError{code: 1, err: err}
	}
	// The cloud is the one a worker in this environment would use for this
	// fleet: the real Linode API unless the fleet is a lab fleet or
	// DNSROLL_LINODE_URL names another, so that CI refuses what a worker
	// would (short create timeouts, say).
	target := preflight.Target{Known: true, AwayFromWorker: true, RealLinode: f.Lab == nil && linode.IsReal(os.Getenv("DNSROLL_LINODE_URL"))}
	if err := preflight.File(file, revision, target); err != nil {
		return &exitError{code: 1, err: err}
	}
	if err := preflight.Playbooks(f); err != nil {
		return &exitError{code: 1, err: fmt.Errorf("%s: %v", file, err)}
	}
	unread, err := preflight.Neighbours(file, f, target)
	if !alone {
		unread = nil
	}
	if err != nil {
		unread = append(unread, err.Error())
	}
	if len(unread) > 0 {
		return &exitError{code: 1, err: errors.New(strings.Join(unread, "; "))}
	}
	fmt.Fprintf(out, "ok: fleet %s: %s, %s, %s\n", f.Name, count(len(f.Nameservers), "nameserver"), count(len(f.LoadBalancers), "load balancer"), count(len(f.Zones), "zone"))
	fmt.Fprintf(out, "ok: playbooks %s, %s\n", f.Path(f.Ansible.NameserverPlaybook), f.Path(f.Ansible.LoadBalancerPlaybook))
	if revision == "" && f.NeedsRevision() {
		fmt.Fprintln(out, "skipped: the zone files, which depend on the revision (pass --revision)")
	} else if zones, err := preflight.Zones(f, revision); err == nil {
		for _, z := range zones {
			fmt.Fprintf(out, "ok: zone %s: %s, serial %d\n", z.Name, z.Path, z.Serial)
			for _, w := range z.Warnings {
				fmt.Fprintf(out, "warning: %s\n", w)
			}
		}
	}
	if revision != "" && len(f.Zones) > 0 && !f.NeedsRevision() {
		// The revision is then only a label: going back to an earlier
		// one deploys today's files. The example is the first zone's own
		// file in a directory per revision: a zone's name may hold "/"
		// (RFC 2317), which in a path is a directory.
		file := f.Zones[0].File
		fmt.Fprintf(out, "warning: --revision %s: no zone file path holds %s, so every revision deploys the same files, and `rollout start --revision <previous>` does not bring back the previous ones; keep each revision's files apart, as file: %q\n",
			revision, config.RevisionPlaceholder, filepath.Join(filepath.Dir(file), config.RevisionPlaceholder, filepath.Base(file)))
	}
	if !live {
		fmt.Fprintln(out, "skipped: live checks (that Linode offers each region, plan, image and firewall, and that no Linode outside the fleet holds its labels: --live asks it; blue's SOA serials and the worker's SSH keys: the rollout's Plan step checks them before it creates anything)")
		return nil
	}
	// A worker refuses a lab fleet on the real API (preflight.Target.Fits):
	// asking it would send the token there and check the account's servers.
	if f.Lab != nil && linode.IsReal(os.Getenv("DNSROLL_LINODE_URL")) {
		return &exitError{code: 1, err: fmt.Errorf("%s: --live: fleet %s is a lab fleet, whose servers are the lab's Linode API simulator's, not the real Linode API's: "+
			"set DNSROLL_LINODE_URL to the lab's simulator (the lab prints \"lab: Linode API simulator on URL\"), or leave out --live", file, f.Name)}
	}
	if err := askLinode(ctx, out, f); err != nil {
		return &exitError{code: 1, err: fmt.Errorf("%s: %w", file, err)}
	}
	fmt.Fprintln(out, "skipped: live checks of the running fleet (blue's SOA serials, the worker's SSH keys); the rollout's Plan step runs them before it creates anything")
	return nil
}

// liveTimeout bounds fleet validate --live's questions to Linode, 429s
// and their retries included.
const liveTimeout = 2 * time.Minute

// askLinode lists the servers that carry f's tag and checks, as the Plan
// step does, that Linode offers each nameserver's region, plan, image and
// firewall. It only reads.
func askLinode(ctx context.Context, out io.Writer, f *config.Fleet) error {
	token := os.Getenv("LINODE_TOKEN")
	if token == "" {
		return errors.New("--live asks Linode: set LINODE_TOKEN to a personal access token that can read Linodes, images and firewalls")
	}
	cloud, err := linode.New(linode.Options{Token: token, BaseURL: os.Getenv("DNSROLL_LINODE_URL"),
		// The error that matters is returned; the retries' notes are noise here.
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, liveTimeout)
	defer cancel()
	servers, err := cloud.List(ctx, f.Tag())
	if err != nil {
		if dnsroll.ErrorCode(err) == dnsroll.EINVALID {
			return fmt.Errorf("the token in LINODE_TOKEN was refused by Linode (check it and its scopes): %w", err)
		}
		return err
	}
	census := preflight.TakeCensus(f, servers)
	printCensus(out, f, census)
	replacements, err := preflight.LoadBalancerOffers(f)
	if err != nil {
		return err
	}
	if err := preflight.Offers(ctx, cloud, f, append(preflight.NameserverOffers(f), replacements...)); err != nil {
		return err
	}
	fmt.Fprintln(out, "ok: Linode offers each nameserver's region, plan and image, and the firewall_id of nameservers and load balancers where set")
	ungiven, err := preflight.UngivenKeys(ctx, cloud, f)
	if err != nil {
		return err
	}
	for _, w := range ungiven {
		fmt.Fprintln(out, "warning: Linode: "+w)
	}
	if len(ungiven) == 0 && f.Ansible.HostKeys == config.HostKeysGiven && f.Ansible.Connection == "ssh" {
		fmt.Fprintln(out, "ok: Linode gives each new nameserver the SSH host key dnsroll makes for it (cloud-init user data)")
	}
	if err := preflight.Labels(ctx, cloud, f); err != nil {
		return err
	}
	fmt.Fprintln(out, "ok: no Linode outside the fleet holds a nameserver's label or its -next")
	creates := census.Creates(f)
	if err := preflight.Grants(ctx, cloud, f, append(census.Blue, census.Left...), creates); err != nil {
		return err
	}
	if creates {
		fmt.Fprintln(out, "ok: the token may create and tag Linodes, and delete and rename the servers a rollout replaces")
	} else {
		fmt.Fprintln(out, "ok: the token may delete and rename the servers a rollout replaces; it creates no Linode, as it reuses the greens left")
	}
	if err := preflight.Locks(ctx, cloud, f, append(census.Blue, census.Left...)); err != nil {
		return err
	}
	fmt.Fprintln(out, "ok: no resource lock that the token can read keeps a server a rollout replaces")
	return nil
}

// printCensus says how a rollout would read the servers tagged with f's
// tag (preflight.TakeCensus), as its Plan step does.
func printCensus(out io.Writer, f *config.Fleet, c preflight.Census) {
	// Not Server.String: the DNS port is the lab's to say, not Linode's.
	server := func(s dnsroll.Server) string { return fmt.Sprintf("%s (id %d, %s)", s.Label, s.ID, s.IPv4) }
	servers := func(list []dnsroll.Server) string {
		names := make([]string, len(list))
		for i, s := range list {
			names[i] = server(s)
		}
		return strings.Join(names, ", ")
	}
	missing := c.Missing(f)
	switch {
	case len(c.Blue) == 0:
		fmt.Fprintf(out, "ok: Linode: no blue servers (tagged %s) yet; the first rollout creates %s\n", f.Tag(), strings.Join(missing, ", "))
	default:
		fmt.Fprintf(out, "ok: Linode: blue, serving now: %s\n", servers(c.Blue))
		if len(missing) > 0 {
			fmt.Fprintf(out, "warning: Linode: no blue server for %s; the next rollout creates it as a first rollout does, "+
				"and a load balancer that fronts only new servers cannot be rolled back once it switches\n", strings.Join(missing, ", "))
		}
	}
	for _, s := range c.Left {
		next := "the next rollout provisions it again"
		if unlike := preflight.Stale(f, s); unlike != "" {
			next = "it has " + unlike + ", so the next rollout deletes it and creates it anew"
		}
		fmt.Fprintf(out, "warning: Linode: %s is a green an earlier rollout left; %s, "+
			"but refuses to start while a load balancer answers from it (`dnsroll rollout plan` checks)\n", server(s), next)
	}
	for _, s := range c.Strangers {
		fmt.Fprintf(out, "warning: Linode: %s is tagged %s but is no nameserver of this fleet; rollouts ignore it\n", server(s), f.Tag())
	}
	for _, s := range c.Deleting {
		fmt.Fprintf(out, "ok: Linode: %s is being deleted; rollouts ignore it\n", server(s))
	}
}

// count is n noun, with the plural's s unless n is one.
func count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
