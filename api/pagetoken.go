package api

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
)

// pageTokens seal the visibility store's page tokens before they leave the
// API and check them when they come back. Temporal does not answer a
// forged or mangled token with an error a client can act on (the dev
// server lets the call run into its deadline), so a token the API did not
// issue for the same filter is refused as a 400 instead. The key derives
// from the API's bearer token, so every replica behind one load balancer
// accepts the others' tokens, across restarts.
type pageTokens struct{ key []byte }

// macSize is the length of the tag in front of a sealed token.
const macSize = 16

func newPageTokens(apiToken string) pageTokens {
	k := sha256.Sum256([]byte("dnsroll page token\x00" + apiToken))
	return pageTokens{key: k[:]}
}

func (p pageTokens) tag(raw []byte, f Filter) []byte {
	m := hmac.New(sha256.New, p.key)
	for _, s := range []string{f.kind().Type, f.Fleet, f.State, string(f.Phase)} {
		m.Write([]byte(s))
		m.Write([]byte{0})
	}
	m.Write(raw)
	return m.Sum(nil)[:macSize]
}

// seal is what the API hands out as next_page_token.
func (p pageTokens) seal(raw []byte, f Filter) string {
	return base64.RawURLEncoding.EncodeToString(append(p.tag(raw, f), raw...))
}

// open returns the visibility store's token, or false for a token this API
// did not issue for f's filter.
func (p pageTokens) open(tok string, f Filter) ([]byte, bool) {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || len(b) <= macSize {
		return nil, false
	}
	raw := b[macSize:]
	return raw, hmac.Equal(b[:macSize], p.tag(raw, f))
}
