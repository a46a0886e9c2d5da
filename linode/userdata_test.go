package linode_test

import (
	"strings"
	"sync"
	"testing"

	"github.com/dnsroll/dnsroll/lab/linodesim"
)

// User data reaches the VM byte for byte, whatever its length (base64
// padding), where the region and image take it; elsewhere the server is
// created without it and says so, and no metadata is sent.
func TestCreateWithUserData(t *testing.T) {
	var mu sync.Mutex
	booted := map[string][]byte{}
	e := newEnvWith(t, linodesim.Options{NoMetadata: []string{"eu-west"}, OnCreate: func(inst linodesim.Instance, boot linodesim.Boot) (string, error) {
		mu.Lock()
		defer mu.Unlock()
		booted[inst.Label] = boot.UserData
		return "127.0.0.1", nil
	}})
	for n := range 3 {
		label := "ns" + string(rune('1'+n))
		data := []byte("#cloud-config\n" + strings.Repeat("#", 30+n) + "\n")
		s, err := e.cloud.Create(ctx(t), spec(label, tag), data)
		if err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		got := booted[label]
		mu.Unlock()
		if !s.UserData || string(got) != string(data) {
			t.Fatalf("%d bytes: server UserData %v, VM got %q; want %q", len(data), s.UserData, got, data)
		}
	}
	elsewhere := spec("ns9", tag)
	elsewhere.Region = "eu-west"
	s, err := e.cloud.Create(ctx(t), elsewhere, []byte("#cloud-config\n"))
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	got := booted["ns9"]
	mu.Unlock()
	e.mu.Lock()
	_, sent := e.creates[len(e.creates)-1]["metadata"]
	e.mu.Unlock()
	if s.UserData || got != nil || sent {
		t.Fatalf("region without Metadata: server UserData %v, VM got %q, metadata sent %v; want none", s.UserData, got, sent)
	}
}

// A create whose user data cannot be placed, because the region could
// not be looked up, fails rather than creating the server without it: its
// host key would then be trusted on first use without a word.
func TestCreateWithUserDataNeedsTheRegion(t *testing.T) {
	e := newEnv(t)
	e.sim.InjectFault(linodesim.Fault{Method: "GET", PathPrefix: "/v4/regions/", Status: 404})
	if _, err := e.cloud.Create(ctx(t), spec("ns1", tag), []byte("#cloud-config\n")); err == nil {
		t.Fatal("created although the region's capabilities were not known")
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.creates) != 0 {
		t.Fatalf("creates sent: %v", e.creates)
	}
}
