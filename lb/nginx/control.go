package nginx

import (
	"bufio"
	"context"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/lb"
)

// configIDRE finds the ID in a rendered config's control server.
var configIDRE = regexp.MustCompile(`(?m)^\s*return "(dnsroll-[0-9a-f]+)\\n";$`)

// configID reads the ID out of a rendered config. A template without the
// control server cannot prove that a switch is live, so it is refused.
func configID(conf string) (string, error) {
	m := configIDRE.FindStringSubmatch(conf)
	if m == nil {
		return "", dnsroll.Errorf(dnsroll.EINVALID, "nginx: the template has no control server (listen unix:{{ .ControlSocket }}; return \"{{ .ConfigID }}\\n\";), so a switch could not be checked")
	}
	return m[1], nil
}

// RunningConfigID asks the nginx workers listening on socket which config
// they run.
func RunningConfigID(ctx context.Context, socket string) (string, error) {
	return askConfigID(ctx, lb.Local{}, socket)
}

// askConfigID asks through ch, which reaches the load balancer's unix
// sockets.
func askConfigID(ctx context.Context, ch lb.Channel, socket string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	conn, err := ch.Dial(ctx, "unix", socket)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("read %s: %w", socket, err)
	}
	return strings.TrimSpace(line), nil
}

// verifyServing checks, through the control socket, that the running
// workers serve config id: a few connections, since each worker has its
// own listening sockets and the kernel spreads connections over them.
func verifyServing(ctx context.Context, socket, id string) error {
	return verifyThrough(ctx, lb.Local{}, socket, id)
}

func verifyThrough(ctx context.Context, ch lb.Channel, socket, id string) error {
	for range 4 {
		got, err := askConfigID(ctx, ch, socket)
		if err != nil {
			return fmt.Errorf("verify: ask the running nginx for its config: %w", err)
		}
		if got != id {
			return fmt.Errorf("verify: the running nginx serves config %s, not %s just applied", got, id)
		}
	}
	return nil
}
