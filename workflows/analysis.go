package workflows

import (
	"errors"

	"go.temporal.io/sdk/temporal"

	"github.com/dnsroll/dnsroll/activities"
)

// failedAnalysis reads the analysis that a failed Verify attaches to its
// error (after the attempt number), so the status shows the per-server
// counts, sample failures and diff of the analysis that stopped the
// rollout, not only its message.
func failedAnalysis(err error) (activities.VerifyResult, bool) {
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || app.Type() != activities.ErrAnalysis || !app.HasDetails() {
		return activities.VerifyResult{}, false
	}
	var attempt int32
	var res activities.VerifyResult
	if app.Details(&attempt, &res) != nil {
		return activities.VerifyResult{}, false
	}
	return res, true
}
