package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rtkit/rtkit/realtime"
)

// maxSteps bounds a job, so one message cannot start an endless one, and
// so bounds a job's step log.
const maxSteps = 1000

var (
	// errUnknownJob: the registry keeps no job with that id (it never
	// existed, or nobody watched it for the grace period).
	errUnknownJob = errors.New("progress: no such job")
	// The causes a job's context is cancelled with.
	errAbandoned = errors.New("progress: abandoned: nobody watched the job for the grace period")
	errShutdown  = errors.New("progress: server shutting down")
)

// jobs is the server's registry of jobs. A job belongs to the registry, not
// to the connection that started it: it runs while at least one connection
// watches it, through reloads and reconnects, and it ends when its last
// step is done, when nobody has watched it for the grace period, or when
// the registry closes. Each job is one goroutine of the registry's, which
// close waits for. The goroutines that send a job's steps to a connection
// are that connection's (see follow), so the job never waits for a slow
// client and no goroutine outlives its owner.
//
// A job keeps the log of its steps (at most maxSteps) until the registry
// forgets it: a connection that comes to watch it, after a reload or on a
// new connection, walks the log from the last step it saw and then follows
// the job live, so it gets every step once, in order. The registry forgets
// a job once nobody has watched it for the grace period: a running job is
// cancelled then, and an ended one dropped (so a page that comes back
// within the grace period still sees how its job ended).
type jobs struct {
	step  time.Duration  // how long one step takes
	grace time.Duration  // how long a job nobody watches is kept
	clock realtime.Clock // times the steps and the grace period; tests set a fake one
	log   *slog.Logger
	// hold, when set, is called before step i is recorded; tests use it to
	// keep a job mid-way. It must return when ctx ends, with its cause.
	hold func(ctx context.Context, i int) error
	// ended, when set, is called after each job has ended (tests watch it).
	ended func(jobReport)
	// started counts the jobs started (tests read it).
	started atomic.Int64

	ctx    context.Context // the registry's lifetime; close cancels it
	cancel context.CancelCauseFunc
	wg     sync.WaitGroup // the job goroutines

	mu     sync.Mutex
	jobs   map[string]*job // those watched, and those unwatched for less than the grace period
	closed bool
}

// job is one job and its step log.
type job struct {
	id     string
	of     int // steps
	cancel context.CancelCauseFunc

	// Guarded by jobs.mu.
	watchers int
	idle     realtime.Timer // armed while nobody watches

	mu      sync.Mutex
	steps   []stepReport  // the log: step i is steps[i-1]
	ended   bool          // no step follows
	cause   error         // why it ended early; nil when it finished
	changed chan struct{} // closed and replaced when steps or ended change
}

// jobReport says how a job ended.
type jobReport struct {
	ID    string
	Of    int
	Steps int // steps done
	// Cause is nil when the job finished, else why it was cancelled
	// (errAbandoned, errShutdown).
	Cause error
}

// newJobs returns a registry whose job steps take step each and whose
// jobs are forgotten, and cancelled, once nobody has watched them for
// grace.
func newJobs(step, grace time.Duration) *jobs {
	ctx, cancel := context.WithCancelCause(context.Background())
	return &jobs{
		step:   step,
		grace:  grace,
		clock:  wallClock{},
		log:    slog.Default(),
		ctx:    ctx,
		cancel: cancel,
		jobs:   make(map[string]*job),
	}
}

// start starts a job of n steps, watched by the caller until unwatch is
// called, and returns without waiting for it; errShutdown once the
// registry is closed.
func (js *jobs) start(n int) (j *job, unwatch func(), err error) {
	js.mu.Lock()
	defer js.mu.Unlock()
	if js.closed {
		return nil, nil, errShutdown
	}
	ctx, cancel := context.WithCancelCause(js.ctx)
	j = &job{id: newJobID(), of: n, cancel: cancel, changed: make(chan struct{})}
	js.jobs[j.id] = j
	js.started.Add(1)
	// The first step's timer starts here, before the goroutine, so that
	// a fake clock advanced after start has something to fire.
	tick, timer := js.after(js.step)
	js.wg.Add(1)
	go js.execute(ctx, j, tick, timer)
	return j, js.watchLocked(j), nil
}

// watch counts one more watcher of job id until unwatch is called (once;
// later calls do nothing). A watcher that comes within the grace period
// keeps the job. It returns errUnknownJob when the registry does not keep
// the job, errShutdown once it is closed.
func (js *jobs) watch(id string) (j *job, unwatch func(), err error) {
	js.mu.Lock()
	defer js.mu.Unlock()
	if js.closed {
		return nil, nil, errShutdown
	}
	j = js.jobs[id]
	if j == nil {
		return nil, nil, errUnknownJob
	}
	return j, js.watchLocked(j), nil
}

func (js *jobs) watchLocked(j *job) (unwatch func()) {
	j.watchers++
	if j.idle != nil {
		j.idle.Stop()
		j.idle = nil
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			js.mu.Lock()
			defer js.mu.Unlock()
			j.watchers--
			js.settleLocked(j)
		})
	}
}

// settleLocked is called with mu held when j has lost a watcher: once
// nobody has watched it for the grace period, the registry forgets it and
// cancels it if it still runs.
func (js *jobs) settleLocked(j *job) {
	if j.watchers > 0 || j.idle != nil || js.closed {
		return
	}
	var t realtime.Timer
	t = js.clock.AfterFunc(js.grace, func() {
		js.mu.Lock() // t is set: it was assigned under this lock
		defer js.mu.Unlock()
		if j.idle != t { // a watcher came, or the registry closed
			return
		}
		j.idle = nil
		delete(js.jobs, j.id)
		j.cancel(errAbandoned) // nothing to do if it has ended
	})
	j.idle = t
}

// close cancels every job still running and waits for their goroutines;
// the registry starts and watches no job afterwards. Call it after the
// realtime server has shut down.
func (js *jobs) close() {
	js.mu.Lock()
	js.closed = true
	for _, j := range js.jobs {
		if j.idle != nil {
			j.idle.Stop()
			j.idle = nil
		}
	}
	js.mu.Unlock()
	js.cancel(errShutdown)
	js.wg.Wait()
}

// execute is a job's goroutine: its steps, then its end.
func (js *jobs) execute(ctx context.Context, j *job, tick <-chan struct{}, timer realtime.Timer) {
	defer js.wg.Done()
	err := js.run(ctx, j, tick, timer)
	j.end(err)
	j.cancel(nil)
	rep := jobReport{ID: j.id, Of: j.of, Steps: j.done(), Cause: err}
	// The id is the key to the job: log only its start.
	js.log.Info("progress: job ended", "job", j.id[:8], "steps", rep.Steps, "of", rep.Of, "err", err)
	if js.ended != nil {
		js.ended(rep)
	}
}

// run is the work of a job: its steps, each recorded when it is done. It
// stops early, with the cause, when ctx ends.
func (js *jobs) run(ctx context.Context, j *job, tick <-chan struct{}, timer realtime.Timer) error {
	for i := 1; i <= j.of; i++ {
		select {
		case <-ctx.Done():
			timer.Stop()
			return context.Cause(ctx)
		case <-tick: // the real work of a step would be here
		}
		if js.hold != nil {
			if err := js.hold(ctx, i); err != nil {
				return err
			}
		}
		if ctx.Err() != nil { // cancelled as the step ended: not one more
			return context.Cause(ctx)
		}
		if i < j.of {
			// The next step starts before this one is recorded: a
			// client that saw step i knows step i+1 is under way.
			tick, timer = js.after(js.step)
		}
		j.record(stepReport{Step: i, Of: j.of, Percent: i * 100 / j.of})
	}
	return nil
}

// after returns a channel closed when d has passed on the clock.
func (js *jobs) after(d time.Duration) (<-chan struct{}, realtime.Timer) {
	ch := make(chan struct{})
	return ch, js.clock.AfterFunc(d, func() { close(ch) })
}

func (j *job) record(s stepReport) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.steps = append(j.steps, s)
	j.notifyLocked()
}

func (j *job) end(cause error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.ended, j.cause = true, cause
	j.notifyLocked()
}

func (j *job) notifyLocked() {
	close(j.changed)
	j.changed = make(chan struct{})
}

// done returns how many steps are done.
func (j *job) done() int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return len(j.steps)
}

// running reports whether the job has not ended.
func (j *job) running() bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	return !j.ended
}

// follow is a cursor on the job's step log: it calls step with each step
// after the first after, in order, waiting for those still to come, and
// once the job has ended and every step was passed on, calls end with the
// number of steps done and why it ended early (nil when it finished), and
// returns end's error. It returns early with ctx's error when ctx ends, or
// with the error of step. It paces itself by its callbacks: the job never
// waits for it.
func (j *job) follow(ctx context.Context, after int, step func(stepReport) error, end func(steps int, cause error) error) error {
	next := after // the index of the next step to pass on
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		j.mu.Lock()
		if next < len(j.steps) {
			s := j.steps[next]
			j.mu.Unlock()
			if err := step(s); err != nil {
				return err
			}
			next++
			continue
		}
		if j.ended {
			n, cause := len(j.steps), j.cause
			j.mu.Unlock()
			return end(n, cause)
		}
		changed := j.changed
		j.mu.Unlock()
		select {
		case <-ctx.Done():
		case <-changed:
		}
	}
}

// newJobID returns a new job id: 128 random bits in hex. Knowing it is
// what lets a page watch the job.
func newJobID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// validJobID reports whether s has the form newJobID makes.
func validJobID(s string) bool {
	if len(s) != 32 {
		return false
	}
	for _, r := range s {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f') {
			return false
		}
	}
	return true
}

// wallClock is the real clock.
type wallClock struct{}

func (wallClock) Now() time.Time { return time.Now() }
func (wallClock) AfterFunc(d time.Duration, f func()) realtime.Timer {
	return time.AfterFunc(d, f)
}
