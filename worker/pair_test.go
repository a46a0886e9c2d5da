package worker

import (
	"errors"
	"testing"

	sdkworker "go.temporal.io/sdk/worker"
)

// The undo queue's worker runs no workflow, with as many slots as the
// forward steps'.
func TestUndoOptions(t *testing.T) {
	o := Options{MaxConcurrentActivities: 3}
	u := undoOptions(o)
	if !u.DisableWorkflowWorker {
		t.Error("the undo queue's worker polls for workflow tasks")
	}
	if got, want := u.MaxConcurrentActivityExecutionSize, sdkOptions(o).MaxConcurrentActivityExecutionSize; got != want {
		t.Errorf("undo slots = %d, want %d, the forward steps'", got, want)
	}
}

// A pair runs until interrupted, or until one of its workers fails, and
// then both have stopped; activities reach both, workflows only the
// first.
func TestPairRunsAndStopsTogether(t *testing.T) {
	for _, tt := range []struct {
		name    string
		failing bool
	}{
		{"interrupted", false},
		{"one fails", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			fwd, undo := &fakeWorker{}, &fakeWorker{}
			if tt.failing {
				undo.err = errors.New("namespace not found")
			}
			p := &pair{Worker: fwd, undo: undo}
			p.RegisterActivity(struct{}{})
			p.RegisterWorkflow(func() {})
			interrupt := make(chan any)
			if !tt.failing {
				go func() { interrupt <- "SIGTERM" }()
			}
			err := p.Run(interrupt)
			if got, want := err != nil, tt.failing; got != want {
				t.Errorf("Run = %v, want an error: %t", err, want)
			}
			for name, w := range map[string]*fakeWorker{"forward": fwd, "undo": undo} {
				if !w.ran {
					t.Errorf("the %s worker never ran", name)
				}
				if w.activities != 1 {
					t.Errorf("the %s worker has %d activities registered, want 1", name, w.activities)
				}
			}
			if fwd.workflows != 1 || undo.workflows != 0 {
				t.Errorf("workflows registered: %d forward, %d undo; want 1, 0", fwd.workflows, undo.workflows)
			}
		})
	}
}

// fakeWorker runs until stop is closed, or fails at once with err.
type fakeWorker struct {
	sdkworker.Worker
	err, startErr error

	ran, started, stopped bool
	activities, workflows int
}

func (w *fakeWorker) Start() error {
	w.started = true
	return w.startErr
}

func (w *fakeWorker) Stop() { w.stopped = true }

func (w *fakeWorker) RegisterActivity(any) { w.activities++ }
func (w *fakeWorker) RegisterWorkflow(any) { w.workflows++ }

func (w *fakeWorker) Run(stop <-chan any) error {
	w.ran = true
	if w.err != nil {
		return w.err
	}
	<-stop
	return nil
}

// A pair starts both its workers or neither: when the undo queue's fails
// to start, the forward one, already started, is stopped again rather
// than left polling for steps that the caller believes nothing runs.
func TestPairStartsBothOrNeither(t *testing.T) {
	fwd, undo := &fakeWorker{}, &fakeWorker{startErr: errors.New("namespace not found")}
	p := &pair{Worker: fwd, undo: undo}
	if err := p.Start(); err == nil {
		t.Fatal("Start succeeded with the undo worker failing to start")
	}
	if !fwd.started || !fwd.stopped {
		t.Errorf("the forward worker: started %t, stopped %t; want it stopped again", fwd.started, fwd.stopped)
	}
}
