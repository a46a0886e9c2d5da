package preflight

import (
	"context"
	"strings"
	"testing"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/config"
)

// noMetadataIn is a cloud whose region eu-west cannot take user data.
type noMetadataIn struct{}

func (noMetadataIn) WithoutUserData(_ context.Context, spec dnsroll.ServerSpec) (string, error) {
	if spec.Region == "eu-west" {
		return "region eu-west has no Metadata service", nil
	}
	return "", nil
}

// Only a fleet that asks for given keys over SSH hears of the nameservers
// that cannot be given theirs: first use, and a local connection (the
// process lab, no SSH at all), expect none.
func TestUngivenKeys(t *testing.T) {
	for _, tt := range []struct {
		connection, hostKeys string
		want                 []string
	}{
		{"ssh", config.HostKeysGiven, []string{"ns2-next cannot be given its SSH host key (region eu-west has no Metadata service)"}},
		{"ssh", config.HostKeysFirstUse, nil},
		{"local", config.HostKeysGiven, nil},
	} {
		f := &config.Fleet{
			Ansible:     config.Ansible{Connection: tt.connection, HostKeys: tt.hostKeys},
			Nameservers: []config.Nameserver{{Label: "ns1", Region: "us-east"}, {Label: "ns2", Region: "eu-west"}},
		}
		got, err := UngivenKeys(t.Context(), noMetadataIn{}, f)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(tt.want) || len(got) == 1 && !strings.HasPrefix(got[0], tt.want[0]) {
			t.Errorf("%s, %s: warnings %q, want ones starting %q", tt.connection, tt.hostKeys, got, tt.want)
		}
	}
}
