package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/dnsroll/dnsroll/rollouts"
	"github.com/dnsroll/dnsroll/workflows"
)

func runRollout(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(os.Stderr, `Usage: dnsroll rollout <start|status|abort|rollback> [flags]

  start     start a rollout of a fleet; --wait follows it and exits non-zero unless it succeeds
  status    print a rollout's status as JSON
  abort     stop a rollout: before the switch green is deleted and blue is untouched
  rollback  point the load balancers back at blue and delete green (rejected once blue is deleted)
`)
		return nil
	}
	sub, args := args[0], args[1:]
	fs := newFlags("rollout "+sub, "Talks to Temporal directly ($TEMPORAL_ADDRESS, $TEMPORAL_NAMESPACE).")
	var tf temporalFlags
	fs.StringVar(&tf.address, "temporal-address", envOr("TEMPORAL_ADDRESS", "127.0.0.1:7233"), "Temporal frontend host:port")
	fs.StringVar(&tf.namespace, "namespace", envOr("TEMPORAL_NAMESPACE", "default"), "Temporal namespace")
	fleet := fs.String("fleet", "", "fleet name (required)")
	runID := fs.String("run-id", "", "run ID (default: the fleet's latest run)")
	var in workflows.RolloutInput
	var sig workflows.SignalInput
	wait := false
	switch sub {
	case "start":
		fs.StringVar(&in.Revision, "revision", "", "revision to roll out (selects {revision} zone files)")
		fs.StringVar(&in.Reason, "reason", "", "why, for the record")
		fs.StringVar(&in.RequestedBy, "by", envOr("USER", ""), "who asks")
		fs.BoolVar(&wait, "wait", false, "follow the rollout, print each step, exit non-zero unless it succeeds")
	case "abort", "rollback":
		fs.StringVar(&sig.Reason, "reason", "", "why, shown in the status and the failure")
		fs.StringVar(&sig.By, "by", envOr("USER", ""), "who asks")
	case "status":
	default:
		return fmt.Errorf("unknown rollout command %q (start, status, abort, rollback)", sub)
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *fleet == "" {
		return fmt.Errorf("--fleet is required")
	}
	c, err := tf.dial()
	if err != nil {
		return err
	}
	defer c.Close()
	run := rollouts.Run{WorkflowID: workflows.WorkflowID(*fleet), RunID: *runID}

	switch sub {
	case "start":
		in.Fleet = *fleet
		if run, err = rollouts.Start(ctx, c, in); err != nil {
			return err
		}
		fmt.Printf("started %s run %s\n", run.WorkflowID, run.RunID)
		if !wait {
			return nil
		}
		p := &rollouts.Printer{W: os.Stdout}
		st, err := rollouts.Wait(ctx, c, run, 500*time.Millisecond, p.Update)
		if err != nil {
			return &exitError{code: 2, err: fmt.Errorf("rollout %s: %w", st.Phase, err)}
		}
		fmt.Printf("rollout succeeded in %s\n", st.EndedAt.Sub(st.StartedAt).Round(100*time.Millisecond))
		return nil
	case "status":
		st, err := rollouts.Status(ctx, c, run)
		if err != nil {
			return err
		}
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	default:
		name := workflows.SignalAbort
		if sub == "rollback" {
			name = workflows.SignalRollback
		}
		if err := rollouts.Signal(ctx, c, run, name, sig); err != nil {
			return err
		}
		fmt.Printf("sent %s to %s\n", name, run.WorkflowID)
		return nil
	}
}
