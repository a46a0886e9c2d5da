package activities

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/dnsroll/dnsroll/preflight"
)

// zoneFilesHere checks that this worker holds the zone files Plan read,
// byte for byte. Zone files are read from paths on whichever worker runs a
// step; one that lacks them, or holds another revision's, fails the step
// with an error that a retry may fix, so the attempt can go to another
// worker (or to this one, once the files arrive) within the step's
// deadline, rather than provisioning or verifying the wrong zone.
func zoneFilesHere(zones []ZoneFile) error {
	host, _ := os.Hostname()
	for _, z := range zones {
		if z.SHA256 == "" {
			continue // planned before hashes were recorded
		}
		sum, err := preflight.FileSHA256(z.Path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return fmt.Errorf("zone %s: %s is not on worker %s; every worker needs the zone files of the revision (README: zone files), and another worker may take this step", z.Name, z.Path, host)
		case err != nil:
			return fmt.Errorf("zone %s: worker %s cannot read %s: %v", z.Name, host, z.Path, err)
		case sum != z.SHA256:
			return fmt.Errorf("zone %s: %s on worker %s is not the file the rollout planned with (sha256 %.12s…, planned %.12s…); deploy the same revision's files to every worker", z.Name, z.Path, host, sum, z.SHA256)
		}
	}
	return nil
}
