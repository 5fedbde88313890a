package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/rtkit/rtkit/testing/browsertest"
	"github.com/rtkit/rtkit/testing/realtimetest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	browsertest.Shutdown()
	if code == 0 {
		// Every job, follower, timer and server of the tests has stopped.
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// wait bounds every wait of these tests; nothing takes nearly as long
// unless it is broken.
const wait = 20 * time.Second

const (
	step  = time.Second
	grace = 2 * time.Second
)

// registry is a jobs registry on a fake clock that tests advance by hand.
type registry struct {
	t     *testing.T
	js    *jobs
	clock *realtimetest.Clock
	ended chan jobReport
}

func newRegistry(t *testing.T) *registry {
	t.Helper()
	r := &registry{t: t, js: newJobs(step, grace), clock: realtimetest.NewClock(time.Now()), ended: make(chan jobReport, 16)}
	r.js.clock = r.clock
	r.js.log = slog.New(slog.DiscardHandler)
	r.js.ended = func(rep jobReport) { r.ended <- rep }
	t.Cleanup(r.js.close)
	return r
}

// steps advances the clock by n steps of j, one at a time: the job's
// goroutine sets the next step's timer after the clock fired this one's,
// so each step must be recorded before the clock moves on.
func (r *registry) steps(j *job, n int) {
	r.t.Helper()
	for range n {
		done := j.done()
		r.clock.Advance(step)
		waitSteps(r.t, j, done+1)
	}
}

// report waits for the next job to end.
func (r *registry) report() jobReport {
	r.t.Helper()
	select {
	case rep := <-r.ended:
		return rep
	case <-time.After(wait):
		r.t.Fatal("no job ended")
		return jobReport{}
	}
}

// noReport checks that no job has ended.
func (r *registry) noReport() {
	r.t.Helper()
	select {
	case rep := <-r.ended:
		r.t.Fatalf("a job ended: %+v", rep)
	default:
	}
}

// waitSteps waits until j has done n steps. (The fake clock's Advance
// returns once the step timer has fired; the job records the step on its
// own goroutine just after.)
func waitSteps(t *testing.T, j *job, n int) {
	t.Helper()
	deadline := time.After(wait)
	for {
		j.mu.Lock()
		done, changed := len(j.steps), j.changed
		j.mu.Unlock()
		if done >= n {
			return
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("%d steps done, want %d", done, n)
		}
	}
}

// followed is what a follower passed on.
type followed struct {
	steps []int
	ended bool
	total int
	cause error
	err   error // follow's own
}

// follow runs j.follow from after in a goroutine until the job ends or
// ctx does; the result comes on the channel.
func follow(ctx context.Context, j *job, after int) <-chan followed {
	ch := make(chan followed, 1)
	go func() {
		var f followed
		f.err = j.follow(ctx, after,
			func(s stepReport) error {
				if s != (stepReport{s.Step, j.of, s.Step * 100 / j.of}) {
					return fmt.Errorf("report %+v", s)
				}
				f.steps = append(f.steps, s.Step)
				return nil
			},
			func(n int, cause error) error { f.ended, f.total, f.cause = true, n, cause; return nil })
		ch <- f
	}()
	return ch
}

func result(t *testing.T, ch <-chan followed) followed {
	t.Helper()
	select {
	case f := <-ch:
		if f.err != nil {
			t.Fatalf("follow: %v", f.err)
		}
		return f
	case <-time.After(wait):
		t.Fatal("the follower did not return")
		return followed{}
	}
}

// from returns the step numbers from a to b.
func from(a, b int) []int {
	var s []int
	for i := a; i <= b; i++ {
		s = append(s, i)
	}
	return s
}

func equal(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// A job watched to its end: a follower that was there from the start and
// one that comes mid-way each get every step once, in order, then done.
func TestJobRuns(t *testing.T) {
	r := newRegistry(t)
	j, unwatch, err := r.js.start(10)
	if err != nil {
		t.Fatal(err)
	}
	defer unwatch()
	if !validJobID(j.id) {
		t.Fatalf("job id %q", j.id)
	}
	first := follow(context.Background(), j, 0)
	r.steps(j, 4)
	late := follow(context.Background(), j, 0) // replays 1 to 4, then follows
	resumed := follow(context.Background(), j, 3)
	r.steps(j, 6)
	rep := r.report()
	if rep.Steps != 10 || rep.Of != 10 || rep.Cause != nil || rep.ID != j.id {
		t.Fatalf("report %+v", rep)
	}
	for name, want := range map[string][]int{"first": from(1, 10), "late": from(1, 10), "resumed": from(4, 10)} {
		ch := map[string]<-chan followed{"first": first, "late": late, "resumed": resumed}[name]
		if f := result(t, ch); !equal(f.steps, want) || !f.ended || f.total != 10 || f.cause != nil {
			t.Errorf("%s follower got %+v, want steps %v then done", name, f, want)
		}
	}
	if n := r.clock.Pending(); n != 0 {
		t.Errorf("%d timers pending", n)
	}
}

// A reload: the job's last watcher goes, a new one comes within the grace
// period, and the job runs on; its new follower replays the log and
// follows the rest, every step once.
func TestJobReattached(t *testing.T) {
	r := newRegistry(t)
	j, unwatch, err := r.js.start(8)
	if err != nil {
		t.Fatal(err)
	}
	r.steps(j, 3)
	unwatch()
	unwatch()                                 // only the first call counts
	r.clock.Advance(grace - time.Millisecond) // step 4 is done meanwhile
	waitSteps(t, j, 4)
	j2, unwatch, err := r.js.watch(j.id)
	if err != nil || j2 != j {
		t.Fatalf("watch: %v", err)
	}
	defer unwatch()
	if n := r.clock.Pending(); n != 1 {
		t.Fatalf("%d timers pending, want 1: the next step's, not the grace period's", n)
	}
	r.steps(j, 4) // well past the grace period
	f := result(t, follow(context.Background(), j, 0))
	if !equal(f.steps, from(1, 8)) || !f.ended || f.cause != nil {
		t.Fatalf("follower got %+v", f)
	}
	if rep := r.report(); rep.Steps != 8 || rep.Cause != nil {
		t.Fatalf("report %+v", rep)
	}
}

// A closed page: nobody watches the job for the grace period, so the
// registry cancels it and forgets it; its follower sees it stopped.
func TestJobAbandoned(t *testing.T) {
	r := newRegistry(t)
	j, unwatch, err := r.js.start(maxSteps)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r.steps(j, 2)
	unwatch()
	r.clock.Advance(grace - time.Millisecond) // step 3 is done meanwhile
	waitSteps(t, j, 3)
	r.noReport()
	tail := follow(ctx, j, 3) // a follower with no watch, as in a handler's last moment
	r.clock.Advance(time.Millisecond)
	rep := r.report()
	if rep.Steps != 3 || !errors.Is(rep.Cause, errAbandoned) {
		t.Fatalf("report %+v, want abandoned after 3 steps", rep)
	}
	if f := result(t, tail); len(f.steps) != 0 || !f.ended || f.total != 3 || !errors.Is(f.cause, errAbandoned) {
		t.Fatalf("follower got %+v", f)
	}
	if _, _, err := r.js.watch(j.id); !errors.Is(err, errUnknownJob) {
		t.Fatalf("watch of an abandoned job: %v, want errUnknownJob", err)
	}
	if n := r.clock.Pending(); n != 0 {
		t.Errorf("%d timers pending", n)
	}
	r.js.mu.Lock()
	defer r.js.mu.Unlock()
	if n := len(r.js.jobs); n != 0 {
		t.Errorf("%d jobs kept", n)
	}
}

// A job that ended is kept for the grace period after its last watcher
// went, so a page reloaded as it ended still sees the end; then it is
// forgotten.
func TestJobEndedKeptForGrace(t *testing.T) {
	r := newRegistry(t)
	j, unwatch, err := r.js.start(2)
	if err != nil {
		t.Fatal(err)
	}
	r.steps(j, 2)
	if rep := r.report(); rep.Steps != 2 || rep.Cause != nil {
		t.Fatalf("report %+v", rep)
	}
	unwatch()
	r.clock.Advance(grace - time.Millisecond)
	_, unwatch, err = r.js.watch(j.id)
	if err != nil {
		t.Fatalf("watch within the grace period: %v", err)
	}
	if f := result(t, follow(context.Background(), j, 0)); !equal(f.steps, from(1, 2)) || !f.ended || f.cause != nil {
		t.Fatalf("follower got %+v", f)
	}
	unwatch()
	r.clock.Advance(grace)
	if _, _, err := r.js.watch(j.id); !errors.Is(err, errUnknownJob) {
		t.Fatalf("watch after the grace period: %v, want errUnknownJob", err)
	}
	if _, _, err := r.js.watch(newJobID()); !errors.Is(err, errUnknownJob) {
		t.Fatalf("watch of a job never started: %v", err)
	}
}

// A follower whose context ends returns at once, mid-replay or waiting.
func TestFollowStops(t *testing.T) {
	r := newRegistry(t)
	j, unwatch, err := r.js.start(5)
	if err != nil {
		t.Fatal(err)
	}
	defer unwatch()
	r.steps(j, 2)
	ctx, cancel := context.WithCancel(context.Background())
	stepped := make(chan struct{})
	errc := make(chan error, 1)
	go func() {
		errc <- j.follow(ctx, 0, func(s stepReport) error {
			if s.Step == 1 {
				cancel() // mid-replay
				close(stepped)
			}
			return nil
		}, func(int, error) error { return errors.New("ended") })
	}()
	<-stepped
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("follow: %v, want context.Canceled", err)
	}
	ctx, cancel = context.WithCancel(context.Background())
	waiting := follow(ctx, j, 2)
	cancel()
	if f := <-waiting; !errors.Is(f.err, context.Canceled) || f.ended {
		t.Fatalf("follower got %+v", f)
	}
}

// Closing the registry cancels every job, watched or not, and returns once
// their goroutines have; it starts and watches none afterwards.
func TestJobsClose(t *testing.T) {
	r := newRegistry(t)
	a, unwatchA, err := r.js.start(10)
	if err != nil {
		t.Fatal(err)
	}
	defer unwatchA()
	b, unwatchB, err := r.js.start(10)
	if err != nil {
		t.Fatal(err)
	}
	unwatchB()            // b's grace period runs
	r.clock.Advance(step) // both jobs' first steps, whose timers start set
	waitSteps(t, a, 1)
	waitSteps(t, b, 1)
	fa := follow(context.Background(), a, 0)
	r.js.close()
	for range 2 {
		select {
		case rep := <-r.ended: // before close returned
			if rep.Steps != 1 || !errors.Is(rep.Cause, errShutdown) {
				t.Fatalf("report %+v", rep)
			}
		default:
			t.Fatal("close returned with a job running")
		}
	}
	if f := result(t, fa); !equal(f.steps, []int{1}) || !errors.Is(f.cause, errShutdown) {
		t.Fatalf("follower got %+v", f)
	}
	if n := r.clock.Pending(); n != 0 {
		t.Errorf("%d timers pending", n)
	}
	if _, _, err := r.js.start(1); !errors.Is(err, errShutdown) {
		t.Fatalf("start after close: %v", err)
	}
	if _, _, err := r.js.watch(a.id); !errors.Is(err, errShutdown) {
		t.Fatalf("watch after close: %v", err)
	}
	if n := r.js.started.Load(); n != 2 {
		t.Errorf("%d jobs started, want 2", n)
	}
}

func TestJobIDs(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		id := newJobID()
		if !validJobID(id) || seen[id] {
			t.Fatalf("job id %q", id)
		}
		seen[id] = true
	}
	for _, bad := range []string{"", "abc", "0123456789ABCDEF0123456789abcdef", "0123456789abcdef0123456789abcdeg", "0123456789abcdef0123456789abcdef0"} {
		if validJobID(bad) {
			t.Errorf("%q passes as a job id", bad)
		}
	}
}
