package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/dnsroll/dnsroll/api"
	"github.com/dnsroll/dnsroll/config"
	"github.com/dnsroll/dnsroll/lb"
	"github.com/dnsroll/dnsroll/workflows"
)

const lbUsage = `Usage: dnsroll lb <command> [flags]   (dnsroll lb <command> --help for its flags)

  update        update the fleet's load balancers where they stand, one at a time, checking
                DNS through each before and after, then baking each but the last (checks
                every lb_update.bake_interval for lb_update.bake, default 1m) before the next:
                --kind config (a validated nginx reload), binary (nginx's binary upgrade) or
                console (a dnsdist console change); a failure or an abort restores the one
                being updated or baking
  replace       replace them blue-green through the glue records: <lb>-next created and
                checked, the glue moved at the registrar (manual: you set it, then send
                glue-updated), the parent checked, the old ones drained, deleted, renamed
  list          list the replacements (or with --update the updates), newest first
  status        print a replacement's (or with --update an update's) phase, steps, glue and
                drain; --follow follows it to its end
  glue-updated  tell a replacement the glue was changed at the registrar (manual registrar);
                the workflow checks the parent itself before it believes it
  force-drain   end a replacement's drain now, before the old load balancers are quiet
                (--reason is required, and recorded)
  zone-revision name the --revision whose zone gives its name servers the new load balancers'
                addresses, when the zone names the old ones itself (phase awaiting-zone-revision);
                the replacement rolls it out through the old and new load balancers
  abort         stop an update (the one being updated or baking gets its old config
                back) or a replacement (the glue goes back, the new load balancers are
                deleted; with the manual registrar, once glue-updated confirms the old glue)
  rollback      stop a replacement, as abort, recorded as a rollback
  approve       let a replacement waiting at its approval gate (rollout.approval: manual or each)
                move the glue

--id names a run (lbupdate-<fleet>:<run id> or lbreplace-<fleet>:<run id>); without it,
--fleet names the fleet's latest replacement, or its latest update with --update.
A fleet runs one rollout, update or replacement at a time. --wait and --follow exit 0
when the run succeeds, 2 when the old load balancers serve (an update's: the one it
was updating is back on its old config; those updated before it keep the update), and
3 when a person must act (cleanup-failed, failed past the point of no return: the
old ones being deleted, or the zone naming the new ones; or terminated mid-way).

These talk to the dnsroll API: --api-url or $DNSROLL_API_URL (default
http://127.0.0.1:8080), and the token in $DNSROLL_API_TOKEN (or --token, which
other users of the machine can see in ps).
`

// lbCmd is a `dnsroll lb` subcommand.
type lbCmd struct {
	*apiCmd
	// update picks the fleet's update rather than its replacement.
	update bool
}

func runLB(ctx context.Context, std streams, args []string) error {
	return runAPICommand(ctx, std, "lb", lbUsage, args, func(ac *apiCmd, fs *flag.FlagSet, sub string) func(context.Context) error {
		c := &lbCmd{apiCmd: ac}
		pickKind := func() {
			fs.BoolVar(&c.update, "update", false, "with --fleet: the fleet's latest in-place update, not its latest replacement")
		}
		switch sub {
		case "update":
			return c.updateFlags(fs)
		case "replace":
			return c.replaceFlags(fs)
		case "list":
			return c.listFlags(fs)
		case "status":
			pickKind()
			return c.statusFlags(fs, "lb update --wait", c.target, c.status, c.follow)
		case "abort":
			pickKind()
			return c.signal(fs, sub)
		case workflows.SignalRollback, workflows.SignalApprove, workflows.SignalGlueUpdated, workflows.SignalForceDrain, workflows.SignalZoneRevision:
			return c.signal(fs, sub)
		}
		return nil
	})
}

func (c *lbCmd) listFlags(fs *flag.FlagSet) func(context.Context) error {
	fs.BoolVar(&c.update, "update", false, "list in-place updates, not replacements")
	q := c.filterFlags(fs, "runs")
	return func(ctx context.Context) error {
		k := api.LBReplacements
		if c.update {
			k = api.LBUpdates
		}
		q.Fleet = c.fleet
		page, err := c.client.ListRuns(ctx, k, *q)
		return c.printPage(page, err, page.NextPageToken, "ID\tFLEET\tSTATE\tSTARTED\tENDED", func(tw io.Writer) {
			for _, r := range page.Runs {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.ID, r.Fleet, r.State, listTime(r.StartedAt), listTime(r.EndedAt))
			}
		})
	}
}

// target is the run --id names, or the fleet's latest of the kind
// --update picks.
func (c *lbCmd) target() (string, error) {
	switch {
	case c.id != "" && c.update:
		return c.id, idOfFleet(api.LBUpdates, c.id, c.fleet)
	case c.id != "" && c.fleet != "":
		return c.id, idOfFleet(kindOf(c.id), c.id, c.fleet)
	case c.id != "":
		return c.id, nil
	case c.fleet == "":
		return "", errors.New("--fleet or --id is required")
	case c.update:
		return api.LBUpdates.ID(c.fleet), nil
	}
	return api.LBReplacements.ID(c.fleet), nil
}

// kindOf is the kind of workflow the ID id names.
func kindOf(id string) api.Kind {
	if strings.HasPrefix(id, api.LBUpdates.ID("")) {
		return api.LBUpdates
	}
	return api.LBReplacements
}

func (c *lbCmd) signal(fs *flag.FlagSet, name string) func(context.Context) error {
	var revision string
	if name == workflows.SignalZoneRevision {
		fs.StringVar(&revision, "revision", "", "the revision whose zone gives its name servers the new load balancers' addresses (empty: the zone files as they are on the worker, for a fleet whose paths have no {revision})")
	}
	return c.signalFlags(fs, "lb", name, func(ctx context.Context, in api.SignalRequest) (string, error) {
		in.Revision = revision
		if name == workflows.SignalForceDrain && strings.TrimSpace(in.Reason) == "" {
			return "", errors.New("force-drain needs --reason: say why the old load balancers may go before they are quiet (it is recorded)")
		}
		id, err := c.target()
		if err != nil {
			return "", err
		}
		k := kindOf(id)
		if !slices.Contains(k.Signals, name) {
			return "", fmt.Errorf("a %s takes only %s, not %s", k.Noun, strings.Join(k.Signals, ", "), name)
		}
		acc, err := c.client.SignalRun(ctx, k, id, name, in)
		if acc.Warning != "" {
			fmt.Fprintln(c.stderr, "warning:", acc.Warning)
		}
		return cmp.Or(acc.ID, id), err
	})
}

// startFlags registers what every start has (--reason, --by, --wait,
// --poll); start starts the run.
func (c *lbCmd) startFlags(fs *flag.FlagSet, k api.Kind, reason, by *string, start func(context.Context) (api.LBStarted, error)) func(context.Context) error {
	whoFlags(fs, reason, by)
	what := "it, printing each step"
	if k.Path == api.LBReplacements.Path {
		what += " (and the glue and drain)"
	}
	then := waitFlags(fs, what)
	return func(ctx context.Context) error {
		if c.fleet == "" {
			return errors.New("--fleet is required")
		}
		started, err := start(ctx)
		if err != nil {
			return unanswered(ctx, err, "lb", k.ID(c.fleet))
		}
		fmt.Fprintf(c.out, "started %s %s\n", k.Noun, started.ID)
		c.printWebUI(started.Links.WebUI)
		return then(ctx, started.ID, c.follow)
	}
}

func (c *lbCmd) updateFlags(fs *flag.FlagSet) func(context.Context) error {
	var req api.LBUpdateRequest
	lbs := fs.String("lb", "", "comma-separated load balancers to update, in order (default: all of the fleet's)")
	fs.StringVar(&req.Update.Kind, "kind", "", "config (a validated nginx reload), binary (nginx's binary upgrade; install the package first) or console (dnsdist)")
	configFile := fs.String("config-file", "", "--kind config: the new nginx.conf (default: reload the config as it stands)")
	fs.StringVar(&req.Update.Lua, "lua", "", "--kind console: the Lua chunk to run on dnsdist's console, such as \"addACL('198.51.100.0/24')\"")
	fs.StringVar(&req.Update.UndoLua, "undo-lua", "", "--kind console, required: the chunk that puts back what --lua changed, run once if the update fails, is aborted or the check after it fails, and only on a load balancer that --lua reached")
	return c.startFlags(fs, api.LBUpdates, &req.Reason, &req.RequestedBy, func(ctx context.Context) (api.LBStarted, error) {
		req.Fleet = c.fleet
		if *lbs != "" {
			req.LoadBalancers = commaList(*lbs)
		}
		if req.Update.Kind != lb.UpdateConfig && *configFile != "" {
			return api.LBStarted{}, errors.New("--config-file is only for --kind config")
		}
		if *configFile != "" {
			b, err := os.ReadFile(*configFile)
			if err != nil {
				return api.LBStarted{}, fmt.Errorf("--config-file: %w", err)
			}
			if strings.TrimSpace(string(b)) == "" {
				return api.LBStarted{}, fmt.Errorf("--config-file: %s is empty; to reload the config in place, leave --config-file out", *configFile)
			}
			req.Update.Config = string(b)
		}
		return c.client.StartRun(ctx, api.LBUpdates, req)
	})
}

func (c *lbCmd) replaceFlags(fs *flag.FlagSet) func(context.Context) error {
	var req api.LBReplaceRequest
	fs.StringVar(&req.Domain, "domain", "", "the delegated domain whose glue names the load balancers, such as example.com")
	parent := fs.String("parent", "", "comma-separated address:port (such as 192.0.2.53:53) of the parent zone's servers, where the delegation is checked")
	fs.StringVar(&req.Registrar, "registrar", "", "manual (the default: the status says what to set, then send glue-updated) or route53domains (Amazon Route 53 Domains, with the worker's AWS credentials)")
	// The workflow's defaults apply to what is not set here.
	fs.Func("glue-wait", "how long to wait for the parent to serve the new glue before aborting (default 72h)", durationFlag(&req.GlueWait))
	fs.Func("quiet", "how long every old load balancer must stay quiet before it is deleted (default 1m)", durationFlag(&req.Drain.Quiet))
	fs.Func("max-wait", "end a drain that never falls quiet after this, once the TTLs have passed (default 24h)", durationFlag(&req.Drain.MaxWait))
	fs.Func("quiet-qps", "below this many queries per second a load balancer is quiet (default 1)", rateFlag(&req.Drain.QuietQPS))
	return c.startFlags(fs, api.LBReplacements, &req.Reason, &req.RequestedBy, func(ctx context.Context) (api.LBStarted, error) {
		req.Fleet = c.fleet
		if *parent != "" {
			req.Parent = commaList(*parent)
		}
		return c.client.StartRun(ctx, api.LBReplacements, req)
	})
}

// commaList splits a comma-separated flag, without the spaces around its
// commas: "lb1, lb2" names lb1 and lb2, not lb1 and " lb2". An empty item
// ("lb1,") stays, for the API to refuse.
func commaList(v string) []string {
	items := strings.Split(v, ",")
	for i := range items {
		items[i] = strings.TrimSpace(items[i])
	}
	return items
}

// rateFlag parses a rate in queries per second into r: a finite number
// above 0 (ParseFloat also takes NaN and Inf, which JSON cannot carry, and
// the workflow reads 0 as the default).
func rateFlag(r *float64) func(string) error {
	return func(v string) error {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f <= 0 {
			return errors.New("must be a rate in queries per second above 0, such as 0.5 (leave it out for the default, 1)")
		}
		*r = f
		return nil
	}
}

// durationFlag parses a flag such as 30s or 72h into d.
func durationFlag(d *config.Duration) func(string) error {
	return func(v string) error { return d.UnmarshalText([]byte(v)) }
}
