package nginx

import (
	"testing"

	"github.com/dnsroll/dnsroll/activities"
)

// Driver is the counter a replacement's drain reads.
var _ activities.QueryCounter = (*Driver)(nil)

// TestParseStatus reads stub_status's page as nginx 1.22 writes it, and
// refuses a page without its counters rather than reading zero.
func TestParseStatus(t *testing.T) {
	page := "Active connections: 2 \nserver accepts handled requests\n 18 17 3 \nReading: 0 Writing: 1 Waiting: 0 \n"
	st, err := parseStatus(page)
	if err != nil || st != (status{accepts: 18, requests: 3}) || st.sessions() != 15 {
		t.Errorf("parseStatus: %+v (%d sessions), %v; want accepts 18, requests 3: 15 sessions", st, st.sessions(), err)
	}
	if n := (status{accepts: 2, requests: 5}).sessions(); n != 0 {
		t.Errorf("more requests than accepts: %d sessions, want 0", n)
	}
	for _, bad := range []string{"", "<html>404</html>", "server accepts handled requests\n 1 2\n", "server accepts handled requests\n 1 x 3\n"} {
		if _, err := parseStatus(bad); err == nil {
			t.Errorf("parseStatus(%q): no error", bad)
		}
	}
}
