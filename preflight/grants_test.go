package preflight

import (
	"context"
	"errors"
	"testing"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/config"
)

// unanswering is a cloud that cannot say what its token may do, nor who
// holds a label: a 5xx, a timeout.
type unanswering struct{}

var errUnanswered = errors.New("GET /profile/grants: 503 Service Unavailable")

func (unanswering) Denied(context.Context, []dnsroll.Server) (dnsroll.Denied, error) {
	return dnsroll.Denied{}, errUnanswered
}

func (unanswering) Holding(context.Context, []string) ([]dnsroll.Server, error) {
	return nil, errUnanswered
}

// A check the cloud cannot answer fails, for Plan to retry: passing it
// would let a rollout create servers that a read-only blue, or a label
// held outside the fleet, keeps it from finishing.
func TestChecksTheCloudCannotAnswerFail(t *testing.T) {
	fleet := &config.Fleet{Name: "prod", Nameservers: []config.Nameserver{{Label: "ns1"}}}
	blue := []dnsroll.Server{{ID: 1, Label: "ns1", Tags: []string{fleet.Tag()}}}
	if err := Grants(context.Background(), unanswering{}, fleet, blue, true); !errors.Is(err, errUnanswered) {
		t.Errorf("Grants: %v, want %v", err, errUnanswered)
	}
	if err := Labels(context.Background(), unanswering{}, fleet); !errors.Is(err, errUnanswered) {
		t.Errorf("Labels: %v, want %v", err, errUnanswered)
	}
}
