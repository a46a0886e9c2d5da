package route53domains_test

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	r53d "github.com/aws/aws-sdk-go-v2/service/route53domains"
	"github.com/aws/aws-sdk-go-v2/service/route53domains/types"

	"github.com/dnsroll/dnsroll/registrar"
	"github.com/dnsroll/dnsroll/registrar/route53domains"
)

// fakeAPI answers as Route 53 Domains does in cases the simulator does
// not produce: operations that are SUBMITTED or end FAILED, and pending
// operations listed over several pages.
type fakeAPI struct {
	mu       sync.Mutex
	ns       []types.Nameserver
	statuses map[string][]types.OperationStatus // by operation; the last one stays
	pages    [][]types.OperationSummary
	asked    []string // operations asked about, in order
	updates  int
	markers  []string
}

func (f *fakeAPI) GetDomainDetail(context.Context, *r53d.GetDomainDetailInput, ...func(*r53d.Options)) (*r53d.GetDomainDetailOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return &r53d.GetDomainDetailOutput{Nameservers: f.ns}, nil
}

func (f *fakeAPI) UpdateDomainNameservers(_ context.Context, in *r53d.UpdateDomainNameserversInput, _ ...func(*r53d.Options)) (*r53d.UpdateDomainNameserversOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.updates++
	f.asked = append(f.asked, "update")
	return &r53d.UpdateDomainNameserversOutput{OperationId: aws.String("new")}, nil
}

func (f *fakeAPI) GetOperationDetail(_ context.Context, in *r53d.GetOperationDetailInput, _ ...func(*r53d.Options)) (*r53d.GetOperationDetailOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	id := aws.ToString(in.OperationId)
	f.asked = append(f.asked, id)
	st := f.statuses[id]
	s := st[0]
	if len(st) > 1 {
		f.statuses[id] = st[1:]
	}
	return &r53d.GetOperationDetailOutput{OperationId: in.OperationId, Status: s, Message: aws.String("registry says " + string(s))}, nil
}

func (f *fakeAPI) ListOperations(_ context.Context, in *r53d.ListOperationsInput, _ ...func(*r53d.Options)) (*r53d.ListOperationsOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.markers = append(f.markers, aws.ToString(in.Marker))
	i := 0
	if m := aws.ToString(in.Marker); m != "" {
		i = int(m[0] - '0')
	}
	out := &r53d.ListOperationsOutput{}
	if i < len(f.pages) {
		out.Operations = f.pages[i]
	}
	if i+1 < len(f.pages) {
		out.NextPageMarker = aws.String(string(rune('0' + i + 1)))
	}
	return out, nil
}

var (
	oldNS  = []types.Nameserver{{Name: aws.String("ns1.example.com"), GlueIps: []string{"192.0.2.1"}}}
	wantNS = []registrar.NameServer{{Name: "ns1.example.com.", Addrs: []netip.Addr{netip.MustParseAddr("192.0.2.2")}}}
)

func setGlue(t *testing.T, f *fakeAPI) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	r := &route53domains.Registrar{API: f, Poll: time.Millisecond}
	return r.SetGlue(ctx, "example.com", wantNS)
}

// An operation is SUBMITTED before it is IN_PROGRESS: neither is done,
// and one that ends FAILED is SetGlue's error, named, at once.
func TestSetGlueWaitsThroughSubmittedAndReportsFailed(t *testing.T) {
	f := &fakeAPI{ns: oldNS, statuses: map[string][]types.OperationStatus{
		"new": {types.OperationStatusSubmitted, types.OperationStatusInProgress, types.OperationStatusFailed},
	}}
	err := setGlue(t, f)
	if err == nil || !strings.Contains(err.Error(), "FAILED") || strings.Contains(err.Error(), "deadline") {
		t.Fatalf("SetGlue whose operation was SUBMITTED, then FAILED: %v, want the FAILED status at once", err)
	}
	if n := strings.Count(strings.Join(f.asked, " "), "new"); n != 3 {
		t.Errorf("asked about the operation %d times (%v), want until it ended (3)", n, f.asked)
	}
}

// A pending change of the domain on a later page of ListOperations is
// waited out before the glue is read and the change is made; its own
// failure is not this change's.
func TestSetGlueWaitsOutAPendingChangeOnALaterPage(t *testing.T) {
	f := &fakeAPI{
		ns: oldNS,
		statuses: map[string][]types.OperationStatus{
			"other":   {types.OperationStatusInProgress, types.OperationStatusSuccessful},
			"pending": {types.OperationStatusSubmitted, types.OperationStatusError},
			"new":     {types.OperationStatusSuccessful},
		},
		pages: [][]types.OperationSummary{
			{{OperationId: aws.String("other"), DomainName: aws.String("example.org")}},
			{{OperationId: aws.String("pending"), DomainName: aws.String("Example.com")}},
		},
	}
	if err := setGlue(t, f); err != nil {
		t.Fatalf("SetGlue after a pending change that failed: %v, want nil", err)
	}
	if !slices.Equal(f.markers, []string{"", "1"}) {
		t.Errorf("ListOperations markers %q, want both pages read", f.markers)
	}
	if want := []string{"pending", "pending", "update", "new"}; !slices.Equal(f.asked, want) {
		t.Errorf("calls %v, want %v: the pending change waited out, then this one", f.asked, want)
	}
}
