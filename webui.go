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
