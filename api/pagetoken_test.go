package api

import "testing"

// A token is bound to its filter field by field: one that a fleet named
// "labrunning" was given does not list fleet lab's running runs, whose
// fields, run together, read the same.
func TestPageTokenFieldsDoNotRunTogether(t *testing.T) {
	p := newPageTokens(token)
	tok := p.seal([]byte("raw"), Filter{Fleet: "labrunning"})
	if _, ok := p.open(tok, Filter{Fleet: "lab", State: "running"}); ok {
		t.Error("a token for fleet labrunning opened for fleet lab, state running")
	}
	if raw, ok := p.open(tok, Filter{Fleet: "labrunning"}); !ok || string(raw) != "raw" {
		t.Errorf("open = %q, %v; want its own filter's token back", raw, ok)
	}
}
