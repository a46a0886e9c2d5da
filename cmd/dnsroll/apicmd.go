package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/dnsroll/dnsroll/api"
	"github.com/dnsroll/dnsroll/config"
	"github.com/dnsroll/dnsroll/workflows"
)

// apiCmd holds what every subcommand that talks to the API shares.
type apiCmd struct {
	client api.Client
	out    io.Writer
	// stderr hears of the API errors that following retries.
	stderr io.Writer
	// retryFor is how long following retries transient API errors.
	retryFor time.Duration
	fleet    string
	id       string
	asJSON   bool
	// warned is the API's warning about the run last printed.
	warned string
}

// warn prints the API's warning about a run (no worker answers for it)
// on stderr, once until it changes: following reads the run every poll.
func (c *apiCmd) warn(warning string) {
	if warning != "" && warning != c.warned {
		fmt.Fprintln(c.stderr, "warning:", warning)
	}
	c.warned = warning
}

// describe is sub's entry in usage, a group's command list ("  sub  what
// it does", continued on lines indented past the names), as one line.
func describe(usage, sub string) string {
	var words []string
	in := false
	for _, line := range strings.Split(usage, "\n") {
		fields := strings.Fields(line)
		switch {
		case len(fields) > 1 && strings.HasPrefix(line, "  ") && !strings.HasPrefix(line, "   ") && fields[0] == sub:
			in, words = true, fields[1:]
		case in && strings.HasPrefix(line, "   ") && len(fields) > 0:
			words = append(words, fields...)
		default:
			if in {
				return strings.Join(words, " ")
			}
		}
	}
	return strings.Join(words, " ")
}

// runAPICommand runs `dnsroll <group> <sub> [flags]`: the flags every API
// command has (--api-url, --token, --fleet), then the ones pick registers
// for sub, which returns nil for a subcommand it does not know.
func runAPICommand(ctx context.Context, std streams, group, usage string, args []string, pick func(c *apiCmd, fs *flag.FlagSet, sub string) func(context.Context) error) error {
	if len(args) == 0 {
		fmt.Fprint(std.err, usage)
		// As dnsroll alone: `dnsroll rollout $CMD` with $CMD empty must
		// not pass in CI.
		return fmt.Errorf("no %s command given", group)
	}
	args = helpAsFlag(args)
	if isHelp(args[0]) || args[0] == "help" {
		fmt.Fprint(std.out, usage)
		return nil
	}
	sub, args := args[0], args[1:]
	fs := newFlags(std, group+" "+sub, describe(usage, sub)+"\n\nTalks to the dnsroll API ($DNSROLL_API_URL, $DNSROLL_API_TOKEN); `dnsroll "+group+" --help` lists the commands.")
	c := &apiCmd{out: std.out, stderr: std.err, retryFor: followRetry}
	// Neither default is the flag's, so --help cannot print a password in
	// the URL, or the token.
	fs.StringVar(&c.client.URL, "api-url", "", "dnsroll API base URL (default $DNSROLL_API_URL, else http://127.0.0.1:8080)")
	fs.StringVar(&c.client.Token, "token", "", "API bearer token (default $DNSROLL_API_TOKEN; prefer the environment)")
	fs.StringVar(&c.fleet, "fleet", "", "fleet name")
	run := pick(c, fs, sub)
	if run == nil {
		fmt.Fprint(std.err, usage)
		return fmt.Errorf("unknown %s command %q", group, sub)
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	// The API would answer a run of rollout-Lab with a bare 404.
	if c.fleet != "" && !config.ValidFleetName(c.fleet) {
		return fmt.Errorf("--fleet %q: must be %s%s", c.fleet, config.FleetNameRule, config.FleetNameHint(c.fleet))
	}
	if c.client.URL == "" {
		c.client.URL = envOr("DNSROLL_API_URL", "http://127.0.0.1:8080")
	}
	if _, err := c.client.BaseURL(); err != nil {
		return fmt.Errorf("--api-url or $DNSROLL_API_URL: %w", err)
	}
	if c.client.Token == "" {
		c.client.Token = os.Getenv("DNSROLL_API_TOKEN")
	}
	// As the API trims its own: a token read from a file or a secret
	// often ends in a newline, which no header may carry.
	c.client.Token = strings.TrimSpace(c.client.Token)
	if err := idArgument(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %v (flags go before them? see --help)", fs.Args())
	}
	return apiUnreachable(tokenRefused(run(ctx), c.client))
}

// unanswered is err from a request that changes something (a start, a
// signal); or, when the request ended before the API answered (Ctrl-C, a
// CI job cancelled, a timeout), an error that says it may have been done
// and how to look at the run id of group, where Go's "context canceled"
// says neither.
func unanswered(ctx context.Context, err error, group, id string) error {
	var ne net.Error
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return fmt.Errorf("interrupted before the API answered, so it may have been done: look with dnsroll %s status --id %s", group, id)
	case errors.As(err, &ne) && ne.Timeout():
		return fmt.Errorf("%w: the API did not answer in time, so it may have been done: look with dnsroll %s status --id %s", err, group, id)
	}
	return err
}

// apiUnreachable is err, or for an API that could not be dialled (nothing
// listens there, its name does not resolve) err with where the URL came
// from.
func apiUnreachable(err error) error {
	var op *net.OpError
	if !errors.As(err, &op) || op.Op != "dial" {
		return err
	}
	return fmt.Errorf("%w (is dnsroll api running there? Its URL is --api-url or $DNSROLL_API_URL)", err)
}

// tokenRefused is err, or for the API's 401 an error that says what to
// check: the API's own message names the header, which the CLI user never
// sets, and not the API that refused it.
func tokenRefused(err error, c api.Client) error {
	var e *api.Error
	if !errors.As(err, &e) || e.Status != http.StatusUnauthorized {
		return err
	}
	where := "the API"
	if base, berr := c.BaseURL(); berr == nil {
		where += " at " + base.Redacted()
	}
	if c.Token == "" {
		return fmt.Errorf("%s wants a token (401: %s): no token was sent: set $DNSROLL_API_TOKEN (or --token)", where, e.Body.Message)
	}
	return fmt.Errorf("%s refused the token (401: %s): check $DNSROLL_API_TOKEN (or --token) against the token the API was started with", where, e.Body.Message)
}

// idArgument takes a first argument as --id, for the commands that have
// one, as in `dnsroll rollout status rollout-lab:…`, and parses the flags
// after it; args are those fs parsed, and a flag given both before and
// after the ID is refused, as one given twice before it is.
func idArgument(fs *flag.FlagSet, args []string) error {
	if fs.Lookup("id") == nil || fs.NArg() == 0 {
		return nil
	}
	arg, rest := fs.Arg(0), fs.Args()[1:]
	before := args[:len(args)-fs.NArg()]
	twice := func() error { return fmt.Errorf("the ID is given twice: --id %s and %s", fs.Lookup("id").Value, arg) }
	if isSet(fs, "id") {
		return twice()
	}
	if err := fs.Set("id", arg); err != nil {
		return err
	}
	if err := parseFlags(fs, rest); err != nil {
		return err
	}
	if fs.Lookup("id").Value.String() != arg {
		return twice()
	}
	return onceEach(fs, append(slices.Clone(before), rest[:len(rest)-fs.NArg()]...))
}

// isSet reports whether the flag name was given.
func isSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// signalFlags registers a signal's flags (--id, --reason, --by, and
// approve's --gate); send sends it and returns the ID of the run it went
// to, or on an error the ID it was sent to.
func (c *apiCmd) signalFlags(fs *flag.FlagSet, group, name string, send func(context.Context, api.SignalRequest) (string, error)) func(context.Context) error {
	var in api.SignalRequest
	fs.StringVar(&c.id, "id", "", "ID, or give it as the argument (default: the fleet's latest)")
	whoFlags(fs, &in.Reason, &in.By)
	if name == workflows.SignalApprove {
		fs.IntVar(&in.Gate, "gate", 0, "the approval gate to approve, as the status numbers it, with --id naming the run (each run numbers its gates from 1): refused if another is open, as when someone approved it since you read the status (default: whichever is open)")
	}
	return func(ctx context.Context) error {
		if err := c.gateOfRun(group, in.Gate); err != nil {
			return err
		}
		id, err := send(ctx, in)
		if err != nil {
			return unanswered(ctx, err, group, id)
		}
		fmt.Fprintf(c.out, "sent %s to %s; follow it with: dnsroll %s status --id %s\n", name, id, group, id)
		return nil
	}
}

// gateOfRun refuses a gate without the run it is of: every run of a
// fleet has the same workflow ID and numbers its gates from 1, so the
// fleet's latest may be a run started since the status was read, at a
// gate of the same number.
func (c *apiCmd) gateOfRun(group string, gate int) error {
	if gate == 0 || strings.Contains(c.id, ":") || (c.id == "" && c.fleet == "") {
		return nil
	}
	k := api.Rollouts
	if group == "lb" {
		k = api.LBReplacements
	}
	return fmt.Errorf("--gate %d is a gate of one run: name the run, --id %s:<run id> as the status prints it (each run numbers its gates from 1, so the fleet's latest may be a run started since, at a gate %d of its own)",
		gate, cmp.Or(c.id, k.ID(c.fleet)), gate)
}

// whoFlags registers --reason and --by, which every change records.
// A reason on several lines (a commit message) is joined into one, which
// the API wants.
func whoFlags(fs *flag.FlagSet, reason, by *string) {
	fs.Func("reason", "why, for the record (shown in the status; lines are joined into one)", func(v string) error {
		*reason = strings.Join(strings.Fields(v), " ")
		return nil
	})
	fs.StringVar(by, "by", envOr("USER", ""), "who asks")
}

// follower follows a run to its end; only success returns nil. An id
// without a run ID names the fleet's latest when it starts, and it follows
// that run (followed) even once another has started.
type follower func(ctx context.Context, id string, poll time.Duration) (followed string, err error)

// followRetry is how long --wait and --follow retry transient API errors
// (a proxy's 502, the API restarting) before they give up on a run, which
// goes on without them.
const followRetry = 5 * time.Minute

// reading is read retrying transient errors for c.retryFor, first after
// poll, and saying so on stderr.
func reading[T any](c *apiCmd, poll time.Duration, read func(context.Context) (T, string, error)) func(context.Context) (T, string, error) {
	return api.Retrying(api.Retry{For: c.retryFor, Wait: poll, OnRetry: c.retrying}, read)
}

// retrying says on stderr that err is retried after wait; an API that
// could not be dialled says where its URL came from at once, not only
// when the retries give up.
func (c *apiCmd) retrying(err error, wait time.Duration) {
	fmt.Fprintf(c.stderr, "dnsroll: %v; retrying in %s\n", apiUnreachable(err), wait.Round(time.Millisecond))
}

// followError is err from following the run id of group. After Ctrl-C or
// an API that stayed unreachable the run goes on: it says so, and how to
// follow it again.
func followError(group, id string, err error) error {
	again := fmt.Sprintf("dnsroll %s status --id %s --follow", group, id)
	switch {
	case errors.Is(err, context.Canceled):
		return fmt.Errorf("stopped following %s; it goes on: %s", id, again)
	case api.Transient(err):
		return fmt.Errorf("gave up following %s: %w; it goes on: %s", id, err, again)
	}
	return err
}

// waitFlags registers --wait and --poll of a command that starts what;
// the function it returns follows the run it started when --wait asks.
func waitFlags(fs *flag.FlagSet, what string) func(context.Context, string, follower) error {
	wait := fs.Bool("wait", false, "follow "+what+", exit non-zero unless it succeeds (API errors such as a proxy's 502 are retried for "+followRetry.String()+")")
	poll := pollFlag(fs, 500*time.Millisecond, "how often --wait reads it")
	return func(ctx context.Context, id string, follow follower) error {
		if !*wait {
			return nil
		}
		_, err := follow(ctx, id, *poll)
		return err
	}
}

// minPoll is the shortest --poll: each read is a Temporal describe and a
// query on the server, and --poll 0 made thousands a second.
const minPoll = 100 * time.Millisecond

// pollFlag registers --poll, which the parse refuses below minPoll.
func pollFlag(fs *flag.FlagSet, def time.Duration, usage string) *time.Duration {
	poll := def
	fs.Var(atLeast[time.Duration]{&poll, minPoll, time.ParseDuration}, "poll", usage+", a `duration` of at least "+minPoll.String())
	return &poll
}

// atLeast is a flag whose parse refuses values below min, so that a bad
// one stops the command before it sends anything.
type atLeast[T int | time.Duration] struct {
	v     *T
	min   T
	parse func(string) (T, error)
}

func (a atLeast[T]) String() string {
	if a.v == nil {
		return ""
	}
	return fmt.Sprint(*a.v)
}

func (a atLeast[T]) Set(s string) error {
	v, err := a.parse(s)
	if err != nil {
		return err
	}
	if v < a.min {
		return fmt.Errorf("must be at least %v", a.min)
	}
	*a.v = v
	return nil
}

// statusFlags registers --id, --json, --follow and --poll of a status
// command: show prints the run that target names and returns its ID,
// follow follows that run (exiting as wait does), not whichever run the
// fleet has started since.
func (c *apiCmd) statusFlags(fs *flag.FlagSet, wait string, target func() (string, error), show func(context.Context, string) (string, error), follow follower) func(context.Context) error {
	fs.StringVar(&c.id, "id", "", "ID, or give it as the argument (default: the fleet's latest)")
	fs.BoolVar(&c.asJSON, "json", false, "print the API's JSON")
	then := fs.Bool("follow", false, "then follow it to its end, printing what changes, with times (exit status as "+wait+"; API errors such as a proxy's 502 are retried for "+followRetry.String()+")")
	poll := pollFlag(fs, 2*time.Second, "how often --follow asks the API")
	return func(ctx context.Context) error {
		id, err := target()
		if err != nil {
			return err
		}
		if c.asJSON && *then {
			// Standard output stays one JSON document, the run as it
			// ended; the progress goes to standard error.
			followed, ferr := follow(ctx, id, *poll)
			if ctx.Err() != nil {
				// Interrupted: the run has not ended, and a read with
				// ctx would only add an error to the one that says how
				// to follow it again.
				return ferr
			}
			if _, err := show(ctx, cmp.Or(followed, id)); err != nil {
				return errors.Join(ferr, err)
			}
			return ferr
		}
		shown, err := show(ctx, id)
		if err != nil || !*then {
			return err
		}
		_, err = follow(ctx, shown, *poll)
		return err
	}
}

// progressOut is where following prints a run's progress: standard
// output, or standard error with --json, whose output stays JSON.
func (c *apiCmd) progressOut() io.Writer {
	if c.asJSON {
		return c.stderr
	}
	return c.out
}

// printJSON prints v as the API's indented JSON, unless err.
func (c *apiCmd) printJSON(v any, err error) error {
	if err != nil {
		return err
	}
	enc := json.NewEncoder(c.out)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// printWebUI prints a run's Temporal Web UI link, when the API knows it.
func (c *apiCmd) printWebUI(link string) {
	if link != "" {
		fmt.Fprintf(c.out, "  Web UI: %s\n", link)
	}
}
