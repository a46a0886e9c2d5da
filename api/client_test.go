package api

import (
	"context"
	"net"
	"strings"
	"testing"
)

// A password or token in the base URL is never in an error: CI logs keep
// them. A query or fragment is refused, since it would end up in the
// middle of every request's path.
func TestClientBaseURLSecrets(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()
	for _, tc := range []struct {
		name, url, want string
	}{
		{"password, connection refused", "http://ci:hunter2@" + closed, "http://ci:xxxxx@" + closed},
		{"query", "http://ci:hunter2@" + closed + "/?token=hunter2", "query or fragment"},
		{"empty query", "http://" + closed + "/?", "query or fragment"},
		{"fragment", "http://" + closed + "/#hunter2", "query or fragment"},
		{"unparsable", "http://ci:hunter2@[::1", "base URL"},
		{"no scheme", "ci:hunter2@" + closed, "http:// or https://"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &Client{URL: tc.url}
			_, err := c.Get(context.Background(), "rollout-lab")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want one saying %q", err, tc.want)
			}
			if err != nil && strings.Contains(err.Error(), "hunter2") {
				t.Errorf("the error shows the secret: %v", err)
			}
		})
	}
}
