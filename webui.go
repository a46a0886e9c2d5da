package dnsroll

import (
	"fmt"
	"net/url"
	"strings"
)

// WebUILink is a workflow run's history page in the Temporal Web UI at
// base, or "" when there is no Web UI (base empty) or no run. It is the one
// place that knows the Web UI's URL scheme: the API's links, notifications
// and the CLI all print it.
func WebUILink(base, namespace, workflowID, runID string) string {
	if base == "" || runID == "" {
		return ""
	}
	return fmt.Sprintf("%s/namespaces/%s/workflows/%s/%s/history", strings.TrimSuffix(base, "/"),
		url.PathEscape(namespace), url.PathEscape(workflowID), url.PathEscape(runID))
}

// CheckWebUIURL checks the Web UI's base URL (DNSROLL_WEB_UI_URL): http
// or https and a host, with no user, query or fragment. Links built on it
// go into every webhook payload and API response, so a password in it
// would go to third parties; errors do not quote it.
func CheckWebUIURL(raw string) error {
	if raw == "" {
		return nil
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return fmt.Errorf("must be an http or https URL such as http://localhost:8233")
	case u.User != nil:
		return fmt.Errorf("must not carry a user or password: links built on it go into webhook payloads and API responses")
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return fmt.Errorf("must not have a query or fragment: links are built by adding a path")
	}
	return nil
}
