package activities

import "context"

// The Web UI lists activities by type name, so each verification step gets
// its own name, though all three run the same checks.

// VerifyGreen checks the green servers directly, before the switch.
func (a *Activities) VerifyGreen(ctx context.Context, in VerifyInput) (VerifyResult, error) {
	return a.Verify(ctx, in)
}

// VerifyLoadBalancers checks DNS through the load balancers after a switch.
func (a *Activities) VerifyLoadBalancers(ctx context.Context, in VerifyInput) (VerifyResult, error) {
	return a.Verify(ctx, in)
}

// BakeCheck is one analysis round through the load balancers during the bake.
func (a *Activities) BakeCheck(ctx context.Context, in VerifyInput) (VerifyResult, error) {
	return a.Verify(ctx, in)
}
