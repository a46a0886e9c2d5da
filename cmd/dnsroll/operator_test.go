package main

import (
	"strings"
	"testing"
)

// `dnsroll help CMD [SUB]` and `dnsroll GROUP help SUB` print that
// command's help, as CMD [SUB] --help does, on stdout with exit 0; help
// for a command that does not exist is a usage error naming it.
func TestCLIHelpNamesACommand(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"help", "rollout"}, 0, "Usage: dnsroll rollout <command>"},
		{[]string{"help", "rollout", "start"}, 0, "Usage: dnsroll rollout start [flags]"},
		{[]string{"rollout", "help", "start"}, 0, "Usage: dnsroll rollout start [flags]"},
		{[]string{"lb", "help", "status"}, 0, "Usage: dnsroll lb status [flags]"},
		{[]string{"help", "fleet"}, 0, "Usage: dnsroll fleet validate FILE|DIR"},
		{[]string{"help", "worker"}, 0, "Usage: dnsroll worker [flags]"},
		{[]string{"help", "nosuch"}, 1, `unknown command "nosuch"`},
		{[]string{"rollout", "help", "nosuch"}, 1, `unknown rollout command "nosuch"`},
	} {
		out, errOut, code := cli(t, tc.args...)
		printed, other := out, errOut
		if tc.code != 0 {
			printed, other = errOut, out
		}
		if code != tc.code || other != "" || !strings.Contains(printed, tc.want) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit %d and %q", tc.args, code, out, errOut, tc.code, tc.want)
		}
	}
}
