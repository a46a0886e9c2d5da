// Command dnsroll performs zero-downtime blue-green rollouts of authoritative
// DNS servers as durable Temporal workflows.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"slices"
	"sort"
	"strings"
	"syscall"
	"unicode"
	"unicode/utf8"

	"github.com/dnsroll/dnsroll/internal/pid1"
)

// command is one subcommand.
type command struct {
	summary string
	run     func(ctx context.Context, std streams, args []string) error
	// subUsage, for a command with subcommands, is its usage, whose list
	// of them the summary ends with.
	subUsage string
}

// streams are where a command writes: out for what it was asked for
// (results, progress, the lab's addresses), err for usage and diagnostics.
// main passes the process's; tests pass buffers.
type streams struct{ out, err io.Writer }

var commands = map[string]command{
	"worker":  {"run a Temporal worker that executes rollouts", runWorker, ""},
	"dev":     {"run the local lab (Temporal, Linode simulator, BIND, nginx) and a worker until Ctrl-C", runDev, ""},
	"cluster": {"run the cluster lab (self-hosted Temporal on PostgreSQL, the lab, worker processes) until Ctrl-C", runCluster, ""},
	"demo":    {"run a complete blue-green rollout in a fresh local lab, then stop it", runDemo, ""},
	"api":     {"serve the HTTP API (rollouts, plans, load balancer updates and replacements)", runAPI, ""},
	"fleet":   {"check a fleet file before any rollout: fields, labels, addresses, the revision's zone files (fleet validate FILE|DIR [--revision R] [--live])", runFleet, ""},
	"lb":      {"update load balancers in place, or replace them blue-green through the glue records, through the API", runLB, lbUsage},
	"rollout": {"plan, start, follow, list, abort, roll back, approve, retry or clean up rollouts through the API", runRollout, rolloutUsage},
}

func main() {
	// As a container's first process (no init): reap for the container.
	if code, ok := pid1.Supervise(); ok {
		os.Exit(code)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// The first signal starts a graceful stop (the worker's --stop-grace);
	// for the long-running servers a second one ends the process at once.
	// A lab's own stop (demo, lab) finishes: it removes what it started.
	if len(os.Args) > 1 && (os.Args[1] == "worker" || os.Args[1] == "api") {
		context.AfterFunc(ctx, stop)
	}
	if err := run(ctx, streams{out: os.Stdout, err: os.Stderr}, os.Args[1:]); err != nil {
		os.Exit(report(os.Stderr, err))
	}
}

// report prints err to w, unless it was asked-for help, and returns the
// exit status it calls for.
func report(w io.Writer, err error) int {
	w = printable{w} // the error may quote a reason or a step's error
	var printed parseError
	if !errors.Is(err, flag.ErrHelp) && !errors.As(err, &printed) {
		fmt.Fprintln(w, "dnsroll:", err)
	}
	return exitCode(err)
}

// run runs the command args name, writing to std.
func run(ctx context.Context, std streams, args []string) error {
	std = streams{out: printable{std.out}, err: printable{std.err}}
	if len(args) > 0 && (args[0] == "--version" || args[0] == "version") {
		fmt.Fprintln(std.out, version())
		return nil
	}
	if len(args) == 0 {
		usage(std.err)
		return errors.New("no command given")
	}
	args = helpAsFlag(args)
	if isHelp(args[0]) || args[0] == "help" {
		// Asked for: to stdout, so that `dnsroll --help | less` works.
		usage(std.out)
		return nil
	}
	cmd, ok := commands[args[0]]
	if !ok {
		usage(std.err)
		return fmt.Errorf("unknown command %q", args[0])
	}
	return cmd.run(ctx, std, args[1:])
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "dnsroll: zero-downtime blue-green rollouts of authoritative DNS servers.")
	fmt.Fprintln(w, "\nUsage: dnsroll <command> [flags]   (dnsroll help <command>, or dnsroll <command> --help, for its flags; dnsroll --version)\n\nCommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		c := commands[n]
		if subs := subcommands(c.subUsage); len(subs) > 0 {
			c.summary += " (" + strings.Join(subs, "|") + ")"
		}
		fmt.Fprintf(w, "  %-8s %s\n", n, c.summary)
	}
	fmt.Fprintf(w, `
Exit status:
  0 success
  1 an error: a usage mistake, a refusal (a 4xx), the API or Temporal out of reach,
    or --wait/--follow interrupted (Ctrl-C) or giving up (the run goes on)
  %d a followed run (--wait, --follow) ended without succeeding, with blue, or the
    old load balancers, serving and nothing to undo
  %d a followed run needs a person: cleanup-failed, failed past its point of no
    return, or its workflow ended mid-way (terminated)
`, exitStopped, exitNeedsHands)
	fmt.Fprintln(w, "\nEnvironment: TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TEMPORAL_TLS_CLIENT_CERT_PATH,\nTEMPORAL_TLS_CLIENT_KEY_PATH, LINODE_TOKEN, DNSROLL_LINODE_URL, DNSROLL_API_URL, DNSROLL_API_TOKEN (docs/configuration.md has every one).")
}

// subcommands are the names a command's usage lists: the first word of
// each line indented by two spaces.
func subcommands(usage string) []string {
	var names []string
	for _, line := range strings.Split(usage, "\n") {
		if rest, ok := strings.CutPrefix(line, "  "); ok && rest != "" && rest[0] >= 'a' && rest[0] <= 'z' {
			names = append(names, strings.Fields(rest)[0])
		}
	}
	return names
}

// printable writes to w with every control character but newline and tab
// shown escaped, as \x1b: much of what the CLI prints comes from others
// (a signal's reason, a step's error, a webhook's answer), and must not
// drive the terminal it is read on.
type printable struct{ w io.Writer }

func (p printable) Write(b []byte) (int, error) {
	if !bytes.ContainsFunc(b, control) {
		return p.w.Write(b)
	}
	var out bytes.Buffer
	for rest := b; len(rest) > 0; {
		r, n := utf8.DecodeRune(rest)
		if control(r) {
			fmt.Fprintf(&out, "\\x%02x", r)
		} else {
			out.Write(rest[:n])
		}
		rest = rest[n:]
	}
	if _, err := p.w.Write(out.Bytes()); err != nil {
		return 0, err
	}
	return len(b), nil
}

// control says whether r is a control character other than newline and
// tab, which the CLI's own output uses.
func control(r rune) bool {
	return r != '\n' && r != '\t' && unicode.IsControl(r)
}

// exitError carries a specific exit status.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func exitCode(err error) int {
	var e *exitError
	if errors.As(err, &e) {
		return e.code
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	return 1
}

// newFlags makes a flag set whose --help prints a description and the flags;
// "{search attributes}" in description stands for the names rollouts set,
// and "{temporal environment}" for temporalEnvHelp.
func newFlags(std streams, name, description string) *flag.FlagSet {
	description = strings.ReplaceAll(description, "{search attributes}", strings.Join(searchAttributeNames(), ", "))
	description = strings.ReplaceAll(description, "{temporal environment}", temporalEnvHelp)
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(&flagOutput{std: std})
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: dnsroll %s [flags]\n\n%s\n\nFlags:\n", name, strings.TrimSpace(description))
		fs.PrintDefaults()
	}
	return fs
}

// parseError is an error of parseFlags, which the flag package has
// already printed, with the usage.
type parseError struct{ error }

func (e parseError) Unwrap() error { return e.error }

// parseFlags parses args into fs; report does not print its errors again.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if o, ok := fs.Output().(*flagOutput); ok {
		o.help = asksHelp(args)
	}
	if err := malformedSecret(args); err != nil {
		return err
	}
	err := fs.Parse(args)
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		return parseError{err}
	}
	if err == nil {
		err = onceEach(fs, args[:len(args)-fs.NArg()])
	}
	return err
}

// onceEach refuses a flag that parsed given twice: the flag package
// keeps the last value, so --lb lb1 --lb lb2 would update lb2 alone, and
// a --revision appended to a CI job's shared flags would quietly win.
func onceEach(fs *flag.FlagSet, parsed []string) error {
	seen := map[string]string{}
	for i := 0; i < len(parsed); i++ {
		name, value, hasValue := strings.Cut(strings.TrimLeft(parsed[i], "-"), "=")
		f := fs.Lookup(name)
		if parsed[i] == "--" || f == nil {
			continue
		}
		if b, ok := f.Value.(interface{ IsBoolFlag() bool }); !hasValue && (!ok || !b.IsBoolFlag()) && i+1 < len(parsed) {
			i++
			value = parsed[i]
		}
		if first, dup := seen[name]; dup {
			several := ""
			if strings.Contains(f.Usage, "comma-separated") {
				several = "; several go in one, comma-separated"
			}
			if secretFlag(name) {
				return fmt.Errorf("--%s is given twice: give it once%s", name, several)
			}
			return fmt.Errorf("--%s is given twice (%q and %q): give it once%s", name, first, value, several)
		}
		seen[name] = value
	}
	return nil
}

// malformedSecret refuses a secret flag the flag package would reject
// quoting it whole, value and all: ---token=….
func malformedSecret(args []string) error {
	for _, a := range args {
		if a == "--" {
			return nil
		}
		name, _, valued := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if dashes := len(a) - len(strings.TrimLeft(a, "-")); dashes > 2 && secretFlag(name) {
			shown := a
			if valued {
				shown = a[:dashes+len(name)] + "=… (value not shown)"
			}
			return fmt.Errorf("bad flag syntax: %s: give it as --%s", shown, name)
		}
	}
	return nil
}

// secretFlag says whether the flag name's value may be a secret that an
// error must not quote: a token, or a URL, which may hold a password.
func secretFlag(name string) bool {
	return name == "token" || strings.HasSuffix(name, "-url")
}

// parseFlagsOnly is parseFlags for a command that takes flags alone: a
// word left over (a path meant for --fleets, say) is refused before the
// command starts anything.
func parseFlagsOnly(fs *flag.FlagSet, args []string) error {
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q: dnsroll %s takes flags only (dnsroll %s --help)", fs.Arg(0), fs.Name(), fs.Name())
	}
	return nil
}

// flagOutput is where a flag set prints: its usage to stdout when asked
// for it (--help), and errors, with the usage, to stderr.
type flagOutput struct {
	std  streams
	help bool
}

func (o *flagOutput) Write(p []byte) (int, error) {
	if o.help {
		return o.std.out.Write(p)
	}
	return o.std.err.Write(p)
}

// helpAsFlag turns `help CMD...` into `CMD... --help`, as in `dnsroll help
// rollout start` or `dnsroll rollout help start`; other args are returned
// as they are, `help` alone too.
func helpAsFlag(args []string) []string {
	if len(args) > 1 && args[0] == "help" {
		return append(slices.Clone(args[1:]), "--help")
	}
	return args
}

// isHelp says whether arg asks for help, as the flag package reads it.
func isHelp(arg string) bool {
	switch arg {
	case "-h", "--h", "-help", "--help":
		return true
	}
	return false
}

// asksHelp says whether args ask for help before a "--" (a flag's value
// that reads -h is taken as asking too).
func asksHelp(args []string) bool {
	for _, a := range args {
		if a == "--" {
			return false
		}
		if isHelp(a) {
			return true
		}
	}
	return false
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// commit is set by `make build` (-ldflags -X main.commit=...), for builds
// without VCS stamping.
var commit string

// version says which build this is: the module version, or the commit it
// was built from (and whether the tree had changes), and the Go version.
func version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "dnsroll (no build information)"
	}
	v := bi.Main.Version
	if commit != "" {
		v = commit
	}
	var rev, modified string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				modified = "+changes"
			}
		}
	}
	if (v == "" || v == "(devel)") && rev != "" {
		v = rev[:min(12, len(rev))] + modified
	}
	return fmt.Sprintf("dnsroll %s (%s)", v, bi.GoVersion)
}
