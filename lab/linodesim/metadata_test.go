package linodesim_test

import (
	"encoding/base64"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/linode/linodego"

	"github.com/dnsroll/dnsroll/lab/linodesim"
)

// withUserData is a create of ns1 in us-east from image, with user data
// as it goes on the wire (base64).
func withUserData(image, region, userData string) linodego.InstanceCreateOptions {
	return linodego.InstanceCreateOptions{Label: "ns1", Region: region, Type: "g6-nanode-1", Image: image,
		RootPass: "Very-Secret-Root-Pass-1", Metadata: &linodego.InstanceMetadataOptions{UserData: userData}}
}

// User data reaches the create hook decoded, the instance says it has
// user data, and no answer of the API carries the user data itself:
// Linode keeps it write-only.
func TestUserDataReachesTheVMAndIsNeverShown(t *testing.T) {
	const doc = "#cloud-config\nssh_keys:\n  ed25519_private: |\n    SECRET-HOST-KEY-MATERIAL\n"
	var mu sync.Mutex
	var got linodesim.Boot
	e := newEnv(t, linodesim.Options{OnCreate: func(in linodesim.Instance, boot linodesim.Boot) (string, error) {
		mu.Lock()
		defer mu.Unlock()
		got = boot
		return "10.0.0.7", nil
	}})
	enc := base64.StdEncoding.EncodeToString([]byte(doc))
	inst, err := e.lc.CreateInstance(ctx(t), withUserData("linode/debian12", "us-east", enc))
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if string(got.UserData) != doc || got.RootPass != "Very-Secret-Root-Pass-1" {
		t.Errorf("the create hook got user data %q and root pass %q", got.UserData, got.RootPass)
	}
	mu.Unlock()
	if !inst.HasUserData {
		t.Error("the create answered has_user_data false")
	}
	if again, err := e.lc.GetInstance(ctx(t), inst.ID); err != nil || !again.HasUserData {
		t.Errorf("GET of the instance: has_user_data %v, %v", again != nil && again.HasUserData, err)
	}
	for _, path := range []string{"/v4/linode/instances", "/v4/linode/instances/1001", "/_sim/instances"} {
		r := e.do(t, "GET", path, "")
		if strings.Contains(r.body, "SECRET-HOST-KEY") || strings.Contains(r.body, enc[:20]) {
			t.Errorf("GET %s shows the user data: %s", path, r.body)
		}
	}
	other := e.create(t, "ns2")
	if other.HasUserData {
		t.Error("an instance created without user data says it has some")
	}
}

// A create without user data hands the hook none: nil, not empty.
func TestNoUserDataIsNil(t *testing.T) {
	var got linodesim.Boot
	got.UserData = []byte("unset")
	e := newEnv(t, linodesim.Options{OnCreate: func(in linodesim.Instance, boot linodesim.Boot) (string, error) {
		got = boot
		return "10.0.0.7", nil
	}})
	e.create(t, "ns1")
	if got.UserData != nil {
		t.Errorf("user data %q, want nil", got.UserData)
	}
}

// User data Linode cannot take is refused with a 400 naming the field,
// and nothing is created: not base64, too long once decoded, for a region
// without Metadata or an image without cloud-init.
func TestUserDataRefused(t *testing.T) {
	e := newEnv(t, linodesim.Options{Images: []string{"private/77", "private/78"}, NoCloudInit: []string{"private/78"},
		NoMetadata: []string{"ap-south"}, CreateLimit: -1})
	ok := base64.StdEncoding.EncodeToString([]byte("#cloud-config\n"))
	cases := []struct {
		name, field string
		opts        linodego.InstanceCreateOptions
	}{
		{"not base64", "metadata.user_data", withUserData("linode/debian12", "us-east", "#cloud-config\nssh_keys: {}")},
		{"a byte over 16 KiB decoded", "metadata.user_data", withUserData("linode/debian12", "us-east",
			base64.StdEncoding.EncodeToString([]byte(strings.Repeat("#", 16385))))},
		{"a region without Metadata", "region", withUserData("linode/debian12", "ap-south", ok)},
		{"an image without cloud-init", "image", withUserData("private/78", "us-east", ok)},
	}
	for _, tc := range cases {
		_, err := e.lc.CreateInstance(ctx(t), tc.opts)
		if apiStatus(err) != 400 || !strings.Contains(err.Error(), "["+tc.field+"]") {
			t.Errorf("%s: %v, want a 400 on %s", tc.name, err, tc.field)
		}
	}
	if n := e.sim.Created(); n != 0 {
		t.Errorf("refused creates made %d instances", n)
	}
	for _, o := range []linodego.InstanceCreateOptions{
		withUserData("private/77", "us-east", base64.StdEncoding.EncodeToString([]byte(strings.Repeat("#", 16384)))),
		withUserData("linode/debian12", "ap-south", ""), // no user data: the region is fine
	} {
		o.Label = "ok" + o.Region
		if _, err := e.lc.CreateInstance(ctx(t), o); err != nil {
			t.Errorf("%s in %s: %v", o.Image, o.Region, err)
		}
	}
}

// Regions list Metadata unless the test says they lack it, and images
// cloud-init unless a private one is listed in NoCloudInit, so a client
// can check before it sends user data.
func TestMetadataCapabilities(t *testing.T) {
	e := newEnv(t, linodesim.Options{Images: []string{"private/77", "private/78"}, NoCloudInit: []string{"private/78"},
		NoMetadata: []string{"ap-south"}})
	for region, want := range map[string]bool{"us-east": true, "ap-south": false} {
		r, err := e.lc.GetRegion(ctx(t), region)
		if err != nil {
			t.Fatal(err)
		}
		if got := slices.Contains(r.Capabilities, linodego.CapabilityMetadata); got != want || !slices.Contains(r.Capabilities, linodego.CapabilityLinodes) {
			t.Errorf("region %s capabilities %v, want Metadata %v", region, r.Capabilities, want)
		}
	}
	for image, want := range map[string]bool{"linode/debian12": true, "private/77": true, "private/78": false} {
		im, err := e.lc.GetImage(ctx(t), image)
		if err != nil {
			t.Fatal(err)
		}
		if im.Capabilities == nil || slices.Contains(im.Capabilities, "cloud-init") != want {
			t.Errorf("image %s capabilities %#v, want cloud-init %v", image, im.Capabilities, want)
		}
	}
}
