// Package linode is the production Cloud: Linode instances through linodego.
//
// The lab points the same client at its simulator by setting BaseURL, so the
// code that runs in production is the code the lab exercises.
package linode

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/linode/linodego"

	"github.com/dnsroll/dnsroll"
)

// DefaultBaseURL is the real Linode API.
const DefaultBaseURL = "https://api.linode.com/v4"

// IsReal says whether baseURL, as DNSROLL_LINODE_URL or --linode-url give
// it, is Linode's own API: empty (the default), or on api.linode.com,
// written with its final dot too, which reaches the same API. Any other is
// a simulator, whose fleets are the lab's.
func IsReal(baseURL string) bool {
	if baseURL == "" {
		return true
	}
	u, err := url.Parse(baseURL)
	return err == nil && strings.EqualFold(strings.TrimSuffix(u.Hostname(), "."), "api.linode.com")
}

// Options configures the adapter. The token is read by the worker from its
// environment and never enters workflow inputs, logs or errors.
type Options struct {
	// Token is the Linode personal access token.
	Token string
	// BaseURL is the API root including the version, such as
	// http://127.0.0.1:8080/v4 for the lab's simulator; "" is the real API.
	// linodego's own LINODE_URL and LINODE_API_VERSION are ignored, so a
	// stray environment variable cannot redirect production; the worker
	// takes the URL from --linode-url or DNSROLL_LINODE_URL only.
	BaseURL string
	// AuthorizedKeys are SSH public keys installed for root on new VMs;
	// Ansible logs in with them.
	AuthorizedKeys []string
	// RetryWait, when set, is both the minimum and the maximum wait between
	// retries of 429/503/408 replies (capping Retry-After too); 0 keeps
	// linodego's 3-30 s. Tests shorten it.
	RetryWait time.Duration
	// HTTPClient is the transport; nil uses linodego's default.
	HTTPClient *http.Client
	// Logger receives the HTTP client's notes on failed attempts and
	// retries, at Warn (Error for a request given up on); nil leaves them
	// to linodego, which prints them on standard error.
	Logger *slog.Logger
}

// RetryCount is how often one call retries a 429, a 503, a 408 or a
// "Linode busy." 400 by itself (linodego's default is 1000: hours inside
// one call, with no failed attempt to show). Past it, the error goes to the
// step, whose own retries and the Web UI show it.
const RetryCount = 10

// Cloud implements activities.Cloud over linodego.
type Cloud struct {
	client linodego.Client
	// beta is client on Linode's v4beta API, which alone serves
	// resource locks.
	beta linodego.Client
	keys []string
}

// New returns a Cloud; it does not contact the API.
func New(opts Options) (*Cloud, error) {
	if opts.Token == "" {
		return nil, dnsroll.Errorf(dnsroll.EINVALID, "linode: a token is required")
	}
	base, version, err := splitBaseURL(cmp.Or(opts.BaseURL, DefaultBaseURL))
	if err != nil {
		return nil, err
	}
	return &Cloud{client: newClient(opts, base, version), beta: newClient(opts, base, betaVersion), keys: slices.Clone(opts.AuthorizedKeys)}, nil
}

// betaVersion is Linode's API version for what is still in beta, such
// as resource locks.
const betaVersion = "v4beta"

// newClient is a linodego client on the API version at base.
func newClient(opts Options, base, version string) linodego.Client {
	c := linodego.NewClient(opts.HTTPClient)
	c.SetBaseURL(base).SetAPIVersion(version).SetToken(opts.Token)
	c.SetUserAgent("dnsroll " + linodego.DefaultUserAgent)
	// LINODE_DEBUG=1 would make resty log request bodies, root_pass included.
	c.SetDebug(false)
	if opts.Logger != nil {
		c.SetLogger(restyLogger{opts.Logger})
	}
	c.SetRetryCount(RetryCount)
	if opts.RetryWait > 0 {
		c.SetRetryWaitTime(opts.RetryWait).SetRetryMaxWaitTime(opts.RetryWait).SetPollDelay(opts.RetryWait)
	}
	return c
}

// restyLogger is linodego's logger interface over slog.
type restyLogger struct{ l *slog.Logger }

func (r restyLogger) Errorf(format string, v ...any) { r.l.Error(fmt.Sprintf(format, v...)) }
func (r restyLogger) Warnf(format string, v ...any)  { r.l.Warn(fmt.Sprintf(format, v...)) }
func (r restyLogger) Debugf(format string, v ...any) { r.l.Debug(fmt.Sprintf(format, v...)) }

// CheckBaseURL says whether New would take baseURL, so that a worker can
// refuse a malformed one before it judges fleets by it (IsReal).
func CheckBaseURL(baseURL string) error {
	_, _, err := splitBaseURL(cmp.Or(baseURL, DefaultBaseURL))
	return err
}

// splitBaseURL turns http://host[:port][/prefix]/v4 into the base and version
// linodego wants. linodego's own UseURL would drop any path prefix.
func splitBaseURL(raw string) (base, version string, err error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return "", "", dnsroll.Errorf(dnsroll.EINVALID, "linode: base URL %q must be http(s)://host[:port]/v4, such as %s (the real API) or http://127.0.0.1:8080/v4", raw, DefaultBaseURL)
	}
	prefix := strings.TrimRight(u.Path, "/")
	version = "v4"
	if i := strings.LastIndex(prefix, "/"); i >= 0 && strings.HasPrefix(prefix[i+1:], "v") {
		prefix, version = prefix[:i], prefix[i+1:]
	}
	return u.Scheme + "://" + u.Host + prefix, version, nil
}

// List returns every instance that carries tag. It asks twice, and
// returns the union: once with the API's filter on the tag, and once for
// every instance of the account, 500 to a page, picking the tagged ones
// itself. Linode's filters on list fields have answered nothing at times
// (and one it refuses, with a 400, is passed over),
// and a list of the whole account pages by offset, so an instance deleted
// while it pages can shift another past a page boundary unseen. A list that
// missed green would report its deletion done and leave it running: only
// an instance that both lists missed is missed. The tag is checked on every
// instance: dnsroll never acts on an untagged one.
func (c *Cloud) List(ctx context.Context, tag string) ([]dnsroll.Server, error) {
	if tag == "" {
		return nil, dnsroll.Errorf(dnsroll.EINVALID, "linode: list: a tag is required")
	}
	f := linodego.Filter{}
	f.AddField(linodego.Eq, "tags", tag)
	filter, err := f.MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("linode: list %s: %w", tag, err)
	}
	out := []dnsroll.Server{}
	seen := map[int]bool{}
	for _, opts := range []*linodego.ListOptions{{Filter: string(filter), PageSize: 500}, {PageSize: 500}} {
		insts, err := c.client.ListInstances(ctx, opts)
		if opts.Filter != "" && httpStatus(err) == http.StatusBadRequest {
			// A filter Linode refuses: the account's list follows.
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("linode: list %s: %w", tag, mapErr(ctx, err))
		}
		for i := range insts {
			if s := server(&insts[i]); s.HasTag(tag) && !seen[s.ID] {
				seen[s.ID] = true
				out = append(out, s)
			}
		}
	}
	slices.SortFunc(out, func(a, b dnsroll.Server) int { return a.ID - b.ID })
	return out, nil
}

// Holding returns the instances of the account whose label is one of
// labels, whatever their tags: Linode keeps a label unique in the account,
// letter case aside. A restricted user lists only the instances it has
// grants on, so one it cannot see is found only when its label is taken.
func (c *Cloud) Holding(ctx context.Context, labels []string) ([]dnsroll.Server, error) {
	insts, err := c.client.ListInstances(ctx, &linodego.ListOptions{PageSize: 500})
	if err != nil {
		return nil, fmt.Errorf("linode: list: %w", mapErr(ctx, err))
	}
	var out []dnsroll.Server
	for i := range insts {
		if slices.ContainsFunc(labels, func(l string) bool { return strings.EqualFold(l, insts[i].Label) }) {
			out = append(out, server(&insts[i]))
		}
	}
	return out, nil
}

// Get returns the instance with id, or an error wrapping dnsroll.ErrNotFound.
func (c *Cloud) Get(ctx context.Context, id int) (dnsroll.Server, error) {
	inst, err := c.client.GetInstance(ctx, id)
	if err != nil {
		return dnsroll.Server{}, fmt.Errorf("linode: get %d: %w", id, mapErr(ctx, err))
	}
	return server(inst), nil
}

// Create creates an instance with a random root password that nobody ever
// sees; access is by the configured SSH keys. A duplicate label is an error
// of code dnsroll.ECONFLICT.
//
// userData, when not nil, is cloud-init user data for the instance, given
// through Linode's Metadata service where the region and the image support
// it (the returned server's UserData says whether it was); elsewhere the
// instance is created without it. It may hold secrets, and is never logged.
func (c *Cloud) Create(ctx context.Context, spec dnsroll.ServerSpec, userData []byte) (dnsroll.Server, error) {
	opts := linodego.InstanceCreateOptions{
		Label: spec.Label, Region: spec.Region, Type: spec.Type, Image: spec.Image,
		Tags: slices.Clone(spec.Tags), FirewallID: spec.FirewallID,
	}
	if spec.Image != "" {
		opts.AuthorizedKeys = c.keys
		pass, err := rootPass()
		if err != nil {
			return dnsroll.Server{}, fmt.Errorf("linode: create %s: %w", spec.Label, err)
		}
		opts.RootPass = pass
	}
	if userData != nil {
		why, err := c.WithoutUserData(ctx, spec)
		if err != nil {
			return dnsroll.Server{}, fmt.Errorf("linode: create %s: %w", spec.Label, err)
		}
		if why == "" {
			opts.Metadata = &linodego.InstanceMetadataOptions{UserData: base64.StdEncoding.EncodeToString(userData)}
		}
	}
	inst, err := c.client.CreateInstance(ctx, opts)
	if err != nil {
		return dnsroll.Server{}, fmt.Errorf("linode: create %s: %w", spec.Label, mapErr(ctx, err))
	}
	return server(inst), nil
}

// Missing returns the fields of spec, of region, type, image and
// firewall_id, that name something this account cannot create a Linode
// with: Linode answers 404 for it, its account availability closes the
// region to this account's Linodes, or its region availability lists the
// plan as sold out there. A lookup the token may not make (401, 403)
// proves nothing and is left to the create; other errors are returned,
// retryable as any.
func (c *Cloud) Missing(ctx context.Context, spec dnsroll.ServerSpec) ([]dnsroll.Unoffered, error) {
	lookups := []struct {
		field string
		skip  bool
		// get answers an error for a thing Linode lacks, or why it will
		// not make a Linode with one it has.
		get func() (string, error)
	}{
		{"region", false, func() (string, error) {
			if _, err := c.client.GetRegion(ctx, spec.Region); err != nil {
				return "", err
			}
			return c.regionClosed(ctx, spec.Region)
		}},
		{"type", false, func() (string, error) {
			if _, err := c.client.GetType(ctx, spec.Type); err != nil {
				return "", err
			}
			return c.soldOut(ctx, spec.Region, spec.Type)
		}},
		{"image", spec.Image == "", func() (string, error) { _, err := c.client.GetImage(ctx, spec.Image); return "", err }},
		{"firewall_id", spec.FirewallID == 0, func() (string, error) { _, err := c.client.GetFirewall(ctx, spec.FirewallID); return "", err }},
	}
	var missing []dnsroll.Unoffered
	for _, l := range lookups {
		if l.skip {
			continue
		}
		why, err := l.get()
		switch httpStatus(err) {
		case 0:
			if err != nil {
				return nil, fmt.Errorf("linode: looking up %s: %w", l.field, mapErr(ctx, err))
			}
			if why != "" {
				missing = append(missing, dnsroll.Unoffered{Field: l.field, Why: why})
			}
		case http.StatusNotFound:
			missing = append(missing, dnsroll.Unoffered{Field: l.field})
		case http.StatusUnauthorized, http.StatusForbidden:
		default:
			return nil, fmt.Errorf("linode: looking up %s: %w", l.field, mapErr(ctx, err))
		}
	}
	return missing, nil
}

// WithoutUserData says why an instance of spec cannot be given cloud-init
// user data, or "" when it can: Linode requires a region with the
// Metadata capability and an image with cloud-init's.
func (c *Cloud) WithoutUserData(ctx context.Context, spec dnsroll.ServerSpec) (string, error) {
	if spec.Image == "" {
		return "it is created without an image", nil
	}
	region, err := c.client.GetRegion(ctx, spec.Region)
	if err != nil {
		return "", fmt.Errorf("region %s: %w", spec.Region, mapErr(ctx, err))
	}
	if !slices.Contains(region.Capabilities, linodego.CapabilityMetadata) {
		return fmt.Sprintf("region %s has no Metadata service", spec.Region), nil
	}
	image, err := c.client.GetImage(ctx, spec.Image)
	if err != nil {
		return "", fmt.Errorf("image %s: %w", spec.Image, mapErr(ctx, err))
	}
	if !slices.Contains(image.Capabilities, "cloud-init") {
		return fmt.Sprintf("image %s does not run cloud-init", spec.Image), nil
	}
	return "", nil
}

// regionClosed says why this account may not create Linodes in region,
// or nothing when it may.
func (c *Cloud) regionClosed(ctx context.Context, region string) (string, error) {
	a, err := c.client.GetAccountAvailability(ctx, region)
	if err != nil {
		return "", unlessNotFound(err)
	}
	if slices.Contains(a.Unavailable, "Linodes") {
		return fmt.Sprintf("this account may not create Linodes in region %s (`linode-cli account get-availability %s` lists them unavailable there): "+
			"pick another region, or ask Linode's support to open it", region, region), nil
	}
	return "", nil
}

// unlessNotFound is err, or nil for a 404: an availability lookup of a
// region Linode does not know, which the region's own lookup reports.
func unlessNotFound(err error) error {
	if httpStatus(err) == http.StatusNotFound {
		return nil
	}
	return err
}

// soldOut says why Linode will not make a plan in region now, or nothing
// when it will. Linode's region availability lists select plans (premium,
// GPU); a plan it does not list is available.
func (c *Cloud) soldOut(ctx context.Context, region, plan string) (string, error) {
	avail, err := c.client.GetRegionAvailability(ctx, region)
	if err != nil {
		return "", unlessNotFound(err)
	}
	for _, a := range avail {
		if a.Plan == plan && !a.Available {
			return fmt.Sprintf("Linode has no %s left in region %s for now (`linode-cli regions view-avail %s` lists the plans it lacks there): "+
				"pick another plan or region, or try again later", plan, region, region), nil
		}
	}
	return "", nil
}

// Delete deletes an instance; one that is already gone is not an error, so
// teardown can be retried. A 400 is retryable here: the request has no
// body to be wrong, and Linode answers 400 to a delete while the instance
// is being cloned or restored from a backup, which ends. A refusal for a
// resource lock is not: it is an error of code ECONFLICT that names the
// lock and how to remove it (lockedDelete).
func (c *Cloud) Delete(ctx context.Context, id int) error {
	err := c.client.DeleteInstance(ctx, id)
	if deleteRefusal(httpStatus(err)) {
		if locked := c.lockedDelete(ctx, id, err); locked != nil {
			return locked
		}
	}
	switch httpStatus(err) {
	case http.StatusNotFound:
		return nil
	case http.StatusBadRequest:
		return fmt.Errorf("linode: delete %d refused for now: %w", id, withoutBody(err))
	}
	if err == nil {
		return nil
	}
	return fmt.Errorf("linode: delete %d: %w", id, mapErr(ctx, err))
}

// Rename sets an instance's label.
func (c *Cloud) Rename(ctx context.Context, id int, label string) error {
	if _, err := c.client.RenameInstance(ctx, id, label); err != nil {
		return fmt.Errorf("linode: rename %d to %s: %w", id, label, mapErr(ctx, err))
	}
	return nil
}

// server converts an instance; IPv4 is the first public address, IPv6
// the SLAAC one.
func server(inst *linodego.Instance) dnsroll.Server {
	s := dnsroll.Server{
		ID: inst.ID, Label: inst.Label, Status: string(inst.Status), Region: inst.Region,
		Type: inst.Type, Image: inst.Image, Tags: slices.Clone(inst.Tags), DNSPort: 53,
		IPv6: slaac(inst.IPv6), UserData: inst.HasUserData,
	}
	var first string
	for _, ip := range inst.IPv4 {
		if ip == nil || ip.To4() == nil {
			continue
		}
		if first == "" {
			first = ip.String()
		}
		if !ip.IsPrivate() && !isCGNAT(*ip) {
			s.IPv4 = ip.String()
			return s
		}
	}
	s.IPv4 = first
	return s
}

// slaac is the address of an instance's ipv6, which Linode writes with
// its prefix length ("2600:3c00::f03c:91ff:fe24:3a2f/128"), or "" when
// that is no public IPv6 address (none, null).
func slaac(v6 string) string {
	a, err := netip.ParseAddr(v6)
	if p, perr := netip.ParsePrefix(v6); perr == nil {
		a, err = p.Addr(), nil
	}
	if err != nil || !a.Is6() || a.Is4In6() || !a.IsGlobalUnicast() || a.IsPrivate() {
		return ""
	}
	return a.String()
}

// isCGNAT reports 100.64.0.0/10, which Linode uses for private VPC NAT.
func isCGNAT(ip net.IP) bool {
	ip4 := ip.To4()
	return ip4 != nil && ip4[0] == 100 && ip4[1]&0xc0 == 64
}

// rootPass returns 40 characters from a 72-symbol alphabet (about 246 bits)
// with every character class present, which Linode's strength check accepts.
func rootPass() (string, error) {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.!@#%^*+="
	classes := []string{"ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz", "0123456789", "-_.!@#%^*+="}
	for {
		b := make([]byte, 40)
		for i := range b {
			n, err := rand.Int(rand.Reader, big.NewInt(int64(len(alphabet))))
			if err != nil {
				return "", fmt.Errorf("generating root password: %w", err)
			}
			b[i] = alphabet[n.Int64()]
		}
		pass := string(b)
		if !slices.ContainsFunc(classes, func(c string) bool { return !strings.ContainsAny(pass, c) }) {
			return pass, nil
		}
	}
}

// mapErr gives linodego errors dnsroll codes while keeping the original in
// the chain: 404 wraps dnsroll.ErrNotFound, a duplicate label is ECONFLICT,
// any other 4xx but 408, 429 and "Linode busy." is EINVALID (no retry fixes
// it), and 5xx, 408, 429 and "Linode busy." carry no code, so they stay
// retryable. linodego flattens Go errors into strings, so a
// cancelled or expired ctx is added back for errors.Is.
func mapErr(ctx context.Context, err error) error {
	err = withoutBody(err)
	var code *dnsroll.Error
	switch httpStatus(err) {
	case http.StatusNotFound:
		code = dnsroll.ErrNotFound
	case http.StatusBadRequest:
		code = &dnsroll.Error{Code: dnsroll.EINVALID, Message: err.Error()}
		switch msg := strings.ToLower(err.Error()); {
		case strings.Contains(msg, "must be unique"):
			code.Code = dnsroll.ECONFLICT
		case strings.Contains(msg, "linode busy"):
			// The instance is busy (booting, resizing, being cloned):
			// the same request passes later.
			code = nil
		}
	case http.StatusRequestTimeout, http.StatusTooManyRequests:
		// Retryable: the request may pass later.
	default:
		// Any other 4xx (a bad or expired token, a forbidden call, an
		// unprocessable request) fails the same way every time.
		if s := httpStatus(err); s >= 400 && s < 500 {
			code = &dnsroll.Error{Code: dnsroll.EINVALID, Message: err.Error()}
		}
	}
	chain := &codedError{err: err}
	if code != nil {
		chain.also = append(chain.also, code)
	}
	if ctxErr := ctx.Err(); ctxErr != nil && !errors.Is(err, ctxErr) {
		chain.also = append(chain.also, ctxErr)
	}
	if len(chain.also) == 0 {
		return err
	}
	return chain
}

// withoutBody is err without the response body that linodego quotes in
// full when an error response is not the API's JSON: a proxy's or a
// firewall's page may echo the request, token and root password included,
// and the error goes into workflow history.
func withoutBody(err error) error {
	var e linodego.Error
	switch v := err.(type) {
	case linodego.Error:
		e = v
	case *linodego.Error:
		if v == nil {
			return err
		}
		e = *v
	default:
		return err
	}
	if i := strings.Index(e.Message, "\nResponse body:"); i >= 0 {
		e.Message = e.Message[:i] + " (its body is not shown: it may echo the request)"
		return e
	}
	return err
}

// httpStatus is the API's HTTP status in err, or 0. linodego returns
// *linodego.Error for API errors but a linodego.Error value for a few
// (a 502 page, an unexpected content type), so both are checked.
func httpStatus(err error) int {
	code := 0
	var p *linodego.Error
	var v linodego.Error
	if errors.As(err, &p) {
		code = p.Code
	} else if errors.As(err, &v) {
		code = v.Code
	}
	if code < 100 { // linodego's codes 0-3 say where a Go error came from
		return 0
	}
	return code
}

// codedError reads as the linodego error but also matches, through
// errors.Is and errors.As, a dnsroll code and the context's error.
type codedError struct {
	err  error
	also []error
}

func (e *codedError) Error() string   { return e.err.Error() }
func (e *codedError) Unwrap() []error { return append([]error{e.err}, e.also...) }
