package lab

import (
	"testing"
	"time"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/linode"
)

// A deleted lab instance shows "deleting", its label taken, for
// Options.DeleteDelay, and for 2 s, as Linode does for a while, when that
// is zero: the e2e tests, which delete servers in every rollout, give less.
func TestSimulatorDeleteDelay(t *testing.T) {
	for _, tt := range []struct {
		name  string
		delay time.Duration
		gone  bool // at 300 ms
	}{
		{"default", 0, false},
		{"given", 50 * time.Millisecond, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			l := &Lab{opts: Options{Dir: t.TempDir(), DeleteDelay: tt.delay}}
			if err := l.startSim(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = l.simSrv.Close() })
			cloud, err := linode.New(linode.Options{Token: Token, BaseURL: l.simURL, RetryWait: 10 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			s, err := cloud.Create(t.Context(), dnsroll.ServerSpec{Label: "ns1-next", Region: "us-east", Type: "g6-nanode-1", Image: "linode/debian12", Tags: []string{"dnsroll-fleet-t"}}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := cloud.Delete(t.Context(), s.ID); err != nil {
				t.Fatal(err)
			}
			time.Sleep(300 * time.Millisecond)
			_, err = cloud.Get(t.Context(), s.ID)
			if gone := dnsroll.ErrorCode(err) == dnsroll.ENOTFOUND; gone != tt.gone {
				t.Errorf("300 ms after the delete: gone %v (%v), want %v", gone, err, tt.gone)
			}
		})
	}
}
