package linodesim_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/linode/linodego"

	"github.com/dnsroll/dnsroll/lab/linodesim"
)

func TestLifecycle(t *testing.T) {
	var deleted []linodesim.Instance
	var mu sync.Mutex
	e := newEnv(t, linodesim.Options{BootDelay: time.Hour, OnDelete: func(in linodesim.Instance) {
		mu.Lock()
		deleted = append(deleted, in)
		mu.Unlock()
	}})
	c := ctx(t)
	inst := e.create(t, "ns1-next", "dnsroll-fleet-demo")
	if inst.ID != 1001 || inst.Label != "ns1-next" || inst.Status != linodego.InstanceProvisioning ||
		len(inst.IPv4) != 1 || inst.IPv4[0].String() != "127.0.0.1" || inst.Region != "us-east" ||
		inst.Hypervisor != "kvm" || inst.Specs == nil || inst.Specs.Memory != 1024 ||
		!slices.Equal(inst.Tags, []string{"dnsroll-fleet-demo"}) || inst.Created == nil {
		t.Fatalf("created %+v", inst)
	}
	if age := time.Since(*inst.Created); age < -time.Second || age > 5*time.Second {
		t.Errorf("created %v is not now (timestamps must be UTC without zone)", inst.Created)
	}

	got, err := e.lc.GetInstance(c, inst.ID)
	if err != nil || got.Label != "ns1-next" || got.Image != "linode/debian12" {
		t.Fatalf("get: %+v, %v", got, err)
	}
	if _, err := e.lc.RenameInstance(c, inst.ID, "ns1"); err != nil {
		t.Fatal(err)
	}
	tags := []string{"dnsroll-fleet-demo", "extra"}
	if _, err := e.lc.UpdateInstance(c, inst.ID, linodego.InstanceUpdateOptions{Tags: &tags}); err != nil {
		t.Fatal(err)
	}
	got, _ = e.lc.GetInstance(c, inst.ID)
	if got.Label != "ns1" || !slices.Equal(got.Tags, tags) {
		t.Fatalf("after update: %q %v", got.Label, got.Tags)
	}
	ips, err := e.lc.GetInstanceIPAddresses(c, inst.ID)
	if err != nil || len(ips.IPv4.Public) != 1 || ips.IPv4.Public[0].Address != "127.0.0.1" {
		t.Fatalf("ips: %+v, %v", ips, err)
	}

	list, err := e.lc.ListInstances(c, nil)
	if err != nil || len(list) != 1 || list[0].ID != inst.ID {
		t.Fatalf("list: %v, %v", list, err)
	}
	if err := e.lc.DeleteInstance(c, inst.ID); err != nil {
		t.Fatal(err)
	}
	if len(deleted) != 1 || deleted[0].ID != inst.ID || deleted[0].Label != "ns1" {
		t.Fatalf("OnDelete saw %+v", deleted)
	}
	if _, err := e.lc.GetInstance(c, inst.ID); !linodego.IsNotFound(err) {
		t.Fatalf("get deleted: %v", err)
	}
	if err := e.lc.DeleteInstance(c, inst.ID); !linodego.IsNotFound(err) {
		t.Fatalf("delete twice: %v", err)
	}
	if len(deleted) != 1 {
		t.Fatalf("OnDelete called for a 404: %+v", deleted)
	}
	if next := e.create(t, "ns2"); next.ID != 1002 {
		t.Fatalf("IDs must be sequential and never reused, got %d", next.ID)
	}
}

func TestStatusProgression(t *testing.T) {
	e := newEnv(t, linodesim.Options{BootDelay: time.Minute})
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	linodesim.SetClock(e.sim, func() time.Time { mu.Lock(); defer mu.Unlock(); return now })
	at := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	id := e.create(t, "ns1").ID
	want := func(status linodego.InstanceStatus) {
		t.Helper()
		got, err := e.lc.GetInstance(ctx(t), id)
		if err != nil || got.Status != status {
			t.Fatalf("status %v (%v), want %s", got.Status, err, status)
		}
	}
	want(linodego.InstanceProvisioning)
	at(59 * time.Second)
	want(linodego.InstanceProvisioning)
	at(time.Second)
	want(linodego.InstanceBooting)
	at(time.Minute)
	want(linodego.InstanceRunning)
	if err := e.lc.ShutdownInstance(ctx(t), id); err != nil {
		t.Fatal(err)
	}
	want(linodego.InstanceShuttingDown)
	at(time.Minute)
	want(linodego.InstanceOffline)
	if err := e.lc.BootInstance(ctx(t), id, 0); err != nil {
		t.Fatal(err)
	}
	want(linodego.InstanceBooting)
	at(time.Minute)
	want(linodego.InstanceRunning)
	if err := e.lc.RebootInstance(ctx(t), 4242, 0); !linodego.IsNotFound(err) {
		t.Fatalf("reboot unknown: %v", err)
	}
}

// TestStatusRealClock waits for running with linodego's own poller.
func TestStatusRealClock(t *testing.T) {
	e := newEnv(t, linodesim.Options{BootDelay: 30 * time.Millisecond})
	id := e.create(t, "ns1").ID
	seen := []linodego.InstanceStatus{}
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
		got, err := e.lc.GetInstance(ctx(t), id)
		if err != nil {
			t.Fatal(err)
		}
		if len(seen) == 0 || seen[len(seen)-1] != got.Status {
			seen = append(seen, got.Status)
		}
		if got.Status == linodego.InstanceRunning {
			break
		}
	}
	if want := []linodego.InstanceStatus{"provisioning", "booting", "running"}; !slices.Equal(seen, want) {
		t.Fatalf("statuses %v, want %v", seen, want)
	}
	if _, err := e.lc.WaitForInstanceStatus(ctx(t), id, linodego.InstanceRunning, 5); err != nil {
		t.Fatal(err)
	}
}

func TestPagination(t *testing.T) {
	e := newEnv(t, linodesim.Options{CreateLimit: -1}) // 250 creates at once
	for i := range 250 {
		e.create(t, fmt.Sprintf("vm%03d", i))
	}
	all, err := e.lc.ListInstances(ctx(t), &linodego.ListOptions{PageSize: 100})
	if err != nil || len(all) != 250 {
		t.Fatalf("list: %d, %v", len(all), err)
	}
	for i, in := range all {
		if in.ID != 1001+i {
			t.Fatalf("item %d has id %d: pages overlap or skip", i, in.ID)
		}
	}
	if all, err := e.lc.ListInstances(ctx(t), nil); err != nil || len(all) != 250 {
		t.Fatalf("default page size: %d, %v", len(all), err)
	}
	m := e.do(t, "GET", "/v4/linode/instances?page=3&page_size=100", "").json(t)
	if len(m["data"].([]any)) != 50 || m["page"] != 3.0 || m["pages"] != 3.0 || m["results"] != 250.0 {
		t.Fatalf("page 3: page=%v pages=%v results=%v len=%d", m["page"], m["pages"], m["results"], len(m["data"].([]any)))
	}
	m = e.do(t, "GET", "/v4/linode/instances", "").json(t)
	if len(m["data"].([]any)) != 100 || m["pages"] != 3.0 {
		t.Fatalf("default page: %d items, %v pages", len(m["data"].([]any)), m["pages"])
	}
	for _, q := range []string{"page_size=10", "page_size=501", "page=0", "page=x"} {
		r := e.do(t, "GET", "/v4/linode/instances?"+q, "")
		if _, field := r.reason(t); r.status != 400 || !strings.HasPrefix(q, field) {
			t.Errorf("%s: %d %s", q, r.status, r.body)
		}
	}
}

func TestStateFileSurvivesRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "linodes.json")
	e := newEnv(t, linodesim.Options{StateFile: path})
	e.create(t, "ns1", "fleet")
	e.create(t, "ns2", "fleet")
	if err := e.lc.DeleteInstance(ctx(t), 1001); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil || strings.Contains(string(data), "Very-Secret-Root-Pass-1") {
		t.Fatalf("state file must exist and never hold root_pass: %v", err)
	}

	e2 := newEnv(t, linodesim.Options{StateFile: path})
	got := e2.sim.Instances()
	if len(got) != 1 || got[0].ID != 1002 || got[0].Label != "ns2" || !slices.Equal(got[0].Tags, []string{"fleet"}) ||
		got[0].Status != "running" || got[0].Created.IsZero() {
		t.Fatalf("after restart: %+v", got)
	}
	if _, err := e2.lc.CreateInstance(ctx(t), linodego.InstanceCreateOptions{Label: "ns2", Region: "us-east", Type: "g6-nanode-1"}); apiStatus(err) != 400 {
		t.Fatalf("labels must stay unique across restarts: %v", err)
	}
	if in := e2.create(t, "ns3"); in.ID != 1003 {
		t.Fatalf("next id after restart %d, want 1003", in.ID)
	}

	bad := filepath.Join(t.TempDir(), "bad.json")
	if err := os.WriteFile(bad, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := linodesim.New(linodesim.Options{Token: token, StateFile: bad}); err == nil {
		t.Fatal("a corrupt state file must fail New")
	}
}

func TestConcurrentCreatesOneLabelWins(t *testing.T) {
	e := newEnv(t, linodesim.Options{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for range 20 {
		wg.Go(func() {
			_, err := e.lc.CreateInstance(ctx(t), linodego.InstanceCreateOptions{Label: "ns1", Region: "us-east", Type: "g6-nanode-1"})
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				wins++
			} else if apiStatus(err) != 400 {
				t.Errorf("unexpected error %v", err)
			}
		})
	}
	wg.Wait()
	if wins != 1 || len(e.sim.Instances()) != 1 {
		t.Fatalf("%d creates of one label succeeded, %d instances", wins, len(e.sim.Instances()))
	}
}

// As on Linode, a deleted instance shows status "deleting", keeps its
// label and refuses changes for a while, then is gone.
func TestDeleteGoesThroughDeleting(t *testing.T) {
	var deleted []int
	var mu sync.Mutex
	// Long enough for the checks below to run while it is deleting, on
	// a loaded machine too.
	const delay = 2 * time.Second
	e := newEnv(t, linodesim.Options{DeleteDelay: delay, OnDelete: func(in linodesim.Instance) {
		mu.Lock()
		deleted = append(deleted, in.ID)
		mu.Unlock()
	}})
	c := ctx(t)
	inst := e.create(t, "ns1", "dnsroll-fleet-demo")
	deletedAt := time.Now()
	if err := e.lc.DeleteInstance(c, inst.ID); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if len(deleted) != 1 {
		t.Errorf("OnDelete saw %v, want the instance at once: the VM stops when the delete is accepted", deleted)
	}
	mu.Unlock()
	got, err := e.lc.GetInstance(c, inst.ID)
	if err != nil || got.Status != "deleting" {
		t.Fatalf("right after delete: %+v, %v; want status deleting", got, err)
	}
	if _, err := e.lc.CreateInstance(c, linodego.InstanceCreateOptions{Region: "us-east", Type: "g6-nanode-1", Label: "ns1"}); err == nil || !strings.Contains(err.Error(), "must be unique") {
		t.Errorf("create with a deleting instance's label: %v, want the label still taken", err)
	}
	if err := e.lc.DeleteInstance(c, inst.ID); err != nil {
		t.Errorf("second delete while deleting: %v", err)
	}
	// A power action is refused as busy, and does not bring it back.
	// (Raw HTTP: linodego retries "Linode busy." for minutes.)
	if r := e.do(t, "POST", fmt.Sprintf("/v4/linode/instances/%d/boot", inst.ID), ""); r.status != 400 || !strings.Contains(r.body, "Linode busy.") {
		t.Errorf("boot while deleting: %d %s, want 400 Linode busy.", r.status, r.body)
	}
	// Gone after the delay, and not before.
	for {
		_, err := e.lc.GetInstance(c, inst.ID)
		if linodego.IsNotFound(err) {
			if gone := time.Since(deletedAt); gone < delay {
				t.Fatalf("gone %s after the delete, before the delay %s", gone, delay)
			}
			break
		}
		if err != nil || time.Since(deletedAt) > delay+10*time.Second {
			t.Fatalf("%s after the delete: %v, want 404", time.Since(deletedAt), err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(e.sim.Instances()) != 0 {
		t.Errorf("instances after the delay: %+v", e.sim.Instances())
	}
}

// A create whose OnCreate hook takes longer than provisioning and booting
// together (the machine lab boots a machine there) still answers
// "provisioning", as Linode's create does, and the instance is not shown
// running, at the placeholder address, before the hook has given it its
// own: provisioning starts when the hook returns.
func TestCreateHookDelaysProvisioning(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	at := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	var e *env
	var during linodego.InstanceStatus
	e = newEnv(t, linodesim.Options{BootDelay: time.Minute, OnCreate: func(in linodesim.Instance, _ linodesim.Boot) (string, error) {
		at(3 * time.Minute)
		got, err := e.lc.GetInstance(ctx(t), in.ID)
		if err != nil {
			return "", err
		}
		during = got.Status
		return "10.0.0.7", nil
	}})
	linodesim.SetClock(e.sim, func() time.Time { mu.Lock(); defer mu.Unlock(); return now })
	inst := e.create(t, "ns1")
	if during != linodego.InstanceProvisioning {
		t.Errorf("while the create hook ran the instance was %s, want provisioning", during)
	}
	if inst.Status != linodego.InstanceProvisioning || inst.IPv4[0].String() != "10.0.0.7" {
		t.Errorf("the create answered %s at %v, want provisioning at 10.0.0.7", inst.Status, inst.IPv4)
	}
	at(2 * time.Minute)
	if got, err := e.lc.GetInstance(ctx(t), inst.ID); err != nil || got.Status != linodego.InstanceRunning {
		t.Errorf("after provisioning and booting: %v, %v; want running", got.Status, err)
	}
}
