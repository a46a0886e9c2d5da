package main

import (
	"fmt"
	"path/filepath"
	"testing"

	"go.temporal.io/sdk/client"

	"github.com/dnsroll/dnsroll/lab"
)

// Every size's lab uses the one Temporal dev server that run starts:
// stopping a size's lab leaves that server up for the next size.
func TestSizesShareOneTemporal(t *testing.T) {
	o := labOptions(t, "two labs on one Temporal dev server")
	root := t.TempDir()
	srv, err := lab.StartDevServer(t.Context(), filepath.Join(root, "temporal"), o.temporalBin)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	o.temporal = srv.Address()
	for i := range 2 {
		sz, err := startSize(t.Context(), o, filepath.Join(root, fmt.Sprint(i)), 1)
		if err != nil {
			t.Fatal(err)
		}
		if got := sz.lab.TemporalAddress(); got != srv.Address() {
			t.Errorf("lab %d uses Temporal at %s, want the shared %s", i, got, srv.Address())
		}
		sz.stop()
		c, err := client.Dial(client.Options{HostPort: srv.Address(), Logger: lab.QuietLogger()})
		if err != nil {
			t.Fatalf("after lab %d stopped: %v", i, err)
		}
		_, err = c.CheckHealth(t.Context(), &client.CheckHealthRequest{})
		c.Close()
		if err != nil {
			t.Fatalf("the shared Temporal after lab %d stopped: %v", i, err)
		}
	}
}
