package nginx

import (
	"context"
	"net"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dnsroll/dnsroll/internal/testnet"
)

// A switch is done only when the workers answer the new config's ID on
// the control socket: workers that answer another ID (a reload nginx
// never did) fail the check, naming both IDs.
func TestVerifyServingWantsTheNewID(t *testing.T) {
	sock := testnet.ServeUnix(t, filepath.Join(t.TempDir(), "control.sock"), func(c net.Conn) {
		_, _ = c.Write([]byte("dnsroll-0ld\n"))
	})
	ctx := context.Background()
	if err := verifyServing(ctx, sock, "dnsroll-0ld"); err != nil {
		t.Errorf("workers that serve the config: %v", err)
	}
	err := verifyServing(ctx, sock, "dnsroll-ne1")
	if err == nil || !strings.Contains(err.Error(), "serves config dnsroll-0ld, not dnsroll-ne1") {
		t.Errorf("workers that serve another config: %v, want the check to fail naming both", err)
	}
}
