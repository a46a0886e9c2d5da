package activities

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/preflight"
)

// A worker without the planned zone files, or with other bytes at their
// path, fails the step with an error a retry may fix (another worker may
// hold them), naming the zone, the path and this worker.
func TestZoneFilesHere(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "example.com.zone")
	if err := os.WriteFile(path, []byte("revision B\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	sum, err := preflight.FileSHA256(path)
	if err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	for _, tt := range []struct {
		name string
		zf   ZoneFile
		want []string // "" for no error
	}{
		{"the planned file", ZoneFile{Name: "example.com", Path: path, SHA256: sum}, nil},
		{"planned before hashes", ZoneFile{Name: "example.com", Path: filepath.Join(dir, "gone"), SHA256: ""}, nil},
		{"missing here", ZoneFile{Name: "example.com", Path: filepath.Join(dir, "gone"), SHA256: sum}, []string{"zone example.com: ", "gone is not on worker " + host, "another worker may take this step"}},
		{"another revision's bytes", ZoneFile{Name: "example.com", Path: path, SHA256: strings.Repeat("0", 64)}, []string{"on worker " + host + " is not the file the rollout planned with", "deploy the same revision"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := zoneFilesHere([]ZoneFile{tt.zf})
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("err = %v, want none", err)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			if dnsroll.ErrorCode(err) == dnsroll.EINVALID {
				t.Errorf("err %v is invalid input, which is not retried: another worker could not take the step", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("err %q lacks %q", err, w)
				}
			}
		})
	}
}
