package api

import (
	"regexp"
	"strings"
	"testing"

	"github.com/dnsroll/dnsroll/internal/testfiles"
	"github.com/go-chi/chi/v5"
)

// The API requests the README and docs/ name, "POST /rollouts/{id}/cleanup"
// in prose and "curl ... $API/rollouts/rollout-lab/abort" in examples, are
// ones the router serves.
func TestDocsRequestsAreRouted(t *testing.T) {
	routes := New(Config{Backend: newFake()}).Handler().(chi.Routes)
	checked := 0
	for file, text := range testfiles.UserDocs(t, "..") {
		for n, line := range strings.Split(text, "\n") {
			var reqs [][2]string // method, path
			for _, m := range docRequest.FindAllStringSubmatch(line, -1) {
				reqs = append(reqs, [2]string{m[1], m[2]})
			}
			if strings.HasPrefix(line, "curl ") {
				for _, m := range docCurl.FindAllStringSubmatch(line, -1) {
					method := "GET"
					if strings.Contains(line, " -d ") || strings.Contains(line, "-X POST") {
						method = "POST"
					}
					reqs = append(reqs, [2]string{method, m[1]})
				}
			}
			for _, r := range reqs {
				checked++
				if !routes.Match(chi.NewRouteContext(), r[0], r[1]) {
					t.Errorf("%s:%d: the API serves no %s %s", file, n+1, r[0], r[1])
				}
			}
		}
	}
	if checked < 20 {
		t.Errorf("checked %d API requests in the docs; the parsing has gone wrong", checked)
	}
}

var (
	// A method and an API path: Linode's and the simulator's are not ours.
	docRequest = regexp.MustCompile(`\b(GET|POST|PUT|PATCH|DELETE) ` + "`?" + `(/(?:rollouts|plans|load-balancer|healthz|metrics|openapi)[A-Za-z0-9_.{}:-]*(?:/[A-Za-z0-9_.{}:-]+)*)`)
	docCurl    = regexp.MustCompile(`\$API(/[A-Za-z0-9_.{}:-]+(?:/[A-Za-z0-9_.{}:-]+)*)`)
)
