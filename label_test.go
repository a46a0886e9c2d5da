package dnsroll

import (
	"strings"
	"testing"
)

// CheckLabel is Linode's label rule, which every server name the fleet
// file gives must pass for itself and its -next form.
func TestCheckLabel(t *testing.T) {
	for _, tt := range []struct{ label, want string }{
		{"ns1", ""},
		{"ns1-next", ""},
		{"a.b_c-d", ""},
		{"n1", "must be 3-64 characters, has 2"},
		{strings.Repeat("n", 65), "must be 3-64 characters, has 65"},
		{"1ns", "must start with a letter"},
		{"ns-", "must end with a letter or digit"},
		{"ns--1", "two dashes, underscores or dots in a row"},
		{"ns 1", `' ' is not allowed`},
		// A character outside ASCII is named as written, not as the first
		// byte of its UTF-8, and counts once towards the length.
		{"nsé1", `'é' is not allowed`},
		{"éé", "must be 3-64 characters, has 2"},
		// A label left out is named as missing, not as too short.
		{"", "is required"},
	} {
		err := CheckLabel(tt.label)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%q: %v, want it accepted", tt.label, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%q: err = %v, want one saying %s", tt.label, err, tt.want)
		}
	}
}
