package worker

import (
	"errors"
	"sync"

	"go.temporal.io/sdk/activity"
	sdkworker "go.temporal.io/sdk/worker"
)

// pair is the worker of the task queue, with dnsroll's workflows, and
// undo, the worker of its undo queue, which runs the same activities and
// no workflow. They start, run and stop together.
type pair struct {
	sdkworker.Worker
	undo sdkworker.Worker
}

// RegisterActivity registers a on both workers.
func (p *pair) RegisterActivity(a any) {
	p.Worker.RegisterActivity(a)
	p.undo.RegisterActivity(a)
}

// RegisterActivityWithOptions registers a on both workers.
func (p *pair) RegisterActivityWithOptions(a any, o activity.RegisterOptions) {
	p.Worker.RegisterActivityWithOptions(a, o)
	p.undo.RegisterActivityWithOptions(a, o)
}

// RegisterDynamicActivity registers a on both workers.
func (p *pair) RegisterDynamicActivity(a any, o activity.DynamicRegisterOptions) {
	p.Worker.RegisterDynamicActivity(a, o)
	p.undo.RegisterDynamicActivity(a, o)
}

// Start starts both workers, or neither.
func (p *pair) Start() error {
	if err := p.Worker.Start(); err != nil {
		return err
	}
	if err := p.undo.Start(); err != nil {
		p.Worker.Stop()
		return err
	}
	return nil
}

// Stop stops both workers at once, so that their running steps share
// one stop grace rather than wait out one each.
func (p *pair) Stop() {
	var wg sync.WaitGroup
	wg.Go(p.Worker.Stop)
	p.undo.Stop()
	wg.Wait()
}

// Run runs both workers until interruptCh receives or one of them fails,
// then stops both, at once.
func (p *pair) Run(interruptCh <-chan any) error {
	stop := make(chan any)
	var once sync.Once
	halt := func() { once.Do(func() { close(stop) }) }
	go func() {
		select {
		case <-interruptCh:
		case <-stop:
		}
		halt()
	}()
	errs := make(chan error, 2)
	for _, w := range []sdkworker.Worker{p.Worker, p.undo} {
		go func() {
			err := w.Run(stop)
			halt()
			errs <- err
		}()
	}
	return errors.Join(<-errs, <-errs)
}
