package activities

import (
	"context"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/config"
	"github.com/dnsroll/dnsroll/lb"
	"github.com/dnsroll/dnsroll/provision"
)

// Cloud is the slice of a cloud provider's API that rollouts need. The
// linode package implements it with linodego; the lab points that same
// client at its Linode API simulator.
type Cloud interface {
	// List returns every instance that carries tag.
	List(ctx context.Context, tag string) ([]dnsroll.Server, error)
	// Holding returns the instances whose label is one of labels (letter
	// case aside), whatever their tags: labels are unique in the account.
	Holding(ctx context.Context, labels []string) ([]dnsroll.Server, error)
	// Get returns the instance with id, or an error wrapping dnsroll.ErrNotFound.
	Get(ctx context.Context, id int) (dnsroll.Server, error)
	// Create creates an instance. Callers look the label up first: Linode
	// rejects a duplicate label with an error of code dnsroll.ECONFLICT.
	// userData, when not nil, is cloud-init user data, which it gives the
	// instance where the cloud can (the server's UserData says so).
	Create(ctx context.Context, spec dnsroll.ServerSpec, userData []byte) (dnsroll.Server, error)
	// Delete deletes an instance; an instance that is already gone is not an error.
	Delete(ctx context.Context, id int) error
	// Rename sets an instance's label.
	Rename(ctx context.Context, id int, label string) error
}

// PlaybookRunner runs Ansible playbooks; provision.Runner implements it.
type PlaybookRunner interface {
	Run(ctx context.Context, req provision.Request, progress func(msg string)) (provision.Result, error)
}

// HostKeys records and forgets the SSH host keys of the nameservers a
// rollout creates and deletes, and checks those of the load balancers;
// *hostkeys.Keeper implements it.
type HostKeys interface {
	// Verify checks the key that the machine name at addr offers, as
	// Ansible will: a refused one is a *hostkeys.Error (code EINVALID),
	// a machine whose sshd does not answer, a plain error.
	Verify(ctx context.Context, name, addr string) error
	// TrustNew records the keys of a server this rollout created, replacing
	// those of an earlier instance at its address, or checks them if they
	// are already recorded for it. A refused key is a *hostkeys.Error
	// (code EINVALID); a server that cannot be reached, a plain error.
	// It drops the keys given to fleet's server name.
	TrustNew(ctx context.Context, fleet, name, addr, instance string) error
	// Give makes a host key for fleet's server about to be created as
	// name, records its public half, and returns the cloud-init user data
	// that installs it (nil when keys are not checked). The user data
	// holds the private key: it goes to the cloud's create and nowhere
	// else. Keys are kept by fleet: labels are unique only in an account.
	Give(fleet, name string) ([]byte, error)
	// TrustGiven is TrustNew for a server created with Give's user data:
	// it must offer a key given to fleet's server name.
	TrustGiven(ctx context.Context, fleet, name, addr, instance string) error
	// Forget removes a deleted instance's keys, and those given to
	// fleet's server named name that it never offered.
	Forget(addr, instance, fleet, name string) error
}

// LoadBalancer switches one load balancer's upstream. Drivers are chosen per
// load balancer by config.LoadBalancer.Driver.
type LoadBalancer interface {
	// Point sends all of lb's DNS traffic to backends (normally one server;
	// none leaves the load balancer up with no upstream) and returns once the
	// new configuration is live. It is idempotent. The fleet supplies the
	// Ansible settings and, in the lab, the lab layout. Errors with code
	// dnsroll.EINVALID (a config that fails validation) are not retryable.
	Point(ctx context.Context, fleet *config.Fleet, lb config.LoadBalancer, backends []dnsroll.Server) error
}

// LoginChecker is a load balancer driver that can log into a load
// balancer as its switch will, and do nothing there (lb.Reach.CheckLogin):
// Plan asks it before a rollout creates anything.
type LoginChecker interface {
	CheckLogin(ctx context.Context, fleet *config.Fleet, balancer config.LoadBalancer) error
}

// QueryCounter is a load balancer driver that counts the queries a load
// balancer receives, in total: what a replacement's drain watches fall
// quiet on the old load balancers (nginx's stub_status). A driver without
// it is counted by its Stager's per-backend Stats (dnsdist), if any.
type QueryCounter interface {
	// Queries is the load balancer's query count so far. It may start
	// again from zero when the load balancer's process is replaced.
	Queries(ctx context.Context, fleet *config.Fleet, balancer config.LoadBalancer) (uint64, error)
}

// Stager is a load balancer driver that switches in two phases: Stage, off
// the critical path, and Flip, fast, over a channel the worker keeps open
// (see lb.Share). A rollout stages green before the promote decision, so
// the promote is a flip, and keeps blue staged through the bake, so a
// rollback is a flip too. Point, afterwards, removes what is no longer
// needed, once its outstanding queries have drained.
type Stager interface {
	// Stage makes balancer know every server in live and staged, each
	// health-checked and up, with live getting the traffic as it does now
	// and staged none. It returns once all are up, and records them so that
	// a restarted load balancer comes back the same way. Idempotent.
	Stage(ctx context.Context, fleet *config.Fleet, balancer config.LoadBalancer, live, staged []dnsroll.Server) error
	// Flip sets which staged backends get the traffic, and how much, and
	// returns once the load balancer serves exactly that split. Every
	// server in shares must have been staged. Idempotent.
	Flip(ctx context.Context, fleet *config.Fleet, balancer config.LoadBalancer, shares []lb.Share) error
	// Stats reads the load balancer's own counters for each backend.
	Stats(ctx context.Context, fleet *config.Fleet, balancer config.LoadBalancer) ([]lb.BackendStats, error)
}
