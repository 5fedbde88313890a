package main

import (
	"context"
	"errors"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/rtkit/rtkit/realtime"
	"github.com/rtkit/rtkit/testing/browsertest"
)

// kinds are the transports /jobs lists, each forced in turn.
var kinds = []string{"sse", "longpoll", "websocket"}

// gate holds a job before step at until release is called or the job's
// context ends, so that a test acts mid-job whatever the machine's load.
type gate struct {
	at       int
	once     sync.Once
	held     chan struct{} // closed when the job reaches the step
	free     chan struct{}
	freeOnce sync.Once
}

func newGate(at int) *gate {
	return &gate{at: at, held: make(chan struct{}), free: make(chan struct{})}
}

func (g *gate) hold(ctx context.Context, i int) error {
	if i != g.at {
		return nil
	}
	g.once.Do(func() { close(g.held) })
	select {
	case <-g.free:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

func (g *gate) release() { g.freeOnce.Do(func() { close(g.free) }) }

// server is the example served in-process on a loopback port.
type server struct {
	url   string
	js    *jobs
	route *realtime.Route
	ended chan jobReport
}

// startServer serves the example's routes, with jobs of 5 ms steps held by
// g and the grace period grace, until the test ends. It uses httptest
// rather than run, whose http.Server.Shutdown would wait for the sockets
// Chromium opens ahead of use.
func startServer(t *testing.T, grace time.Duration, g *gate) *server {
	t.Helper()
	js := newJobs(5*time.Millisecond, grace)
	js.hold = g.hold
	s := &server{js: js, ended: make(chan jobReport, 16)}
	js.ended = func(r jobReport) { s.ended <- r }
	var rt realtime.Server
	mux, route := newMux(&rt, js)
	s.route = route
	hs := httptest.NewServer(mux)
	s.url = hs.URL + "/"
	t.Cleanup(func() {
		g.release()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := rt.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		hs.Close()
		js.close()
	})
	return s
}

// report waits for the next job to end.
func (s *server) report(t *testing.T) jobReport {
	t.Helper()
	select {
	case r := <-s.ended:
		return r
	case <-time.After(wait):
		t.Fatal("no job ended")
		return jobReport{}
	}
}

// noReport checks that no job has ended yet.
func (s *server) noReport(t *testing.T) {
	t.Helper()
	select {
	case r := <-s.ended:
		t.Fatalf("a job ended early: %+v", r)
	default:
	}
}

// tab is a browser tab showing the example.
type tab struct {
	t   *testing.T
	tab context.Context
}

func openPage(t *testing.T, s *server, transport string) *tab {
	t.Helper()
	p := &tab{t, browsertest.NewTab(t)}
	if _, err := chromedp.Run(p.tab, chromedp.Navigate(s.url+"?transport="+transport)); err != nil {
		t.Fatal(err)
	}
	p.poll(`window.progress && progress.canStart`)
	if tr := evalJS[string](p, `progress.transport`); tr != transport {
		t.Fatalf("the page is on %s, want %s", tr, transport)
	}
	return p
}

// poll waits until the JS expression is truthy.
func (p *tab) poll(expr string) {
	p.t.Helper()
	if _, err := chromedp.Run(p.tab, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingTimeout(wait), chromedp.WithPollingInterval(20*time.Millisecond))); err != nil {
		state, _ := chromedp.Run(p.tab, chromedp.Evaluate[string](`JSON.stringify({state: progress.state, transport: progress.transport, job: progress.job, following: progress.following, lastStep: progress.lastStep, status: progress.status, seen: progress.seen})`))
		p.t.Fatalf("waiting for %s: %v\npage: %s", expr, err, state)
	}
}

func evalJS[T any](p *tab, expr string) T {
	p.t.Helper()
	v, err := chromedp.Run(p.tab, chromedp.Evaluate[T](expr))
	if err != nil {
		p.t.Fatalf("evaluating %s: %v", expr, err)
	}
	return v
}

// seen is what the page counted.
type seen struct {
	Opens      int      `json:"opens"`
	Steps      []int    `json:"steps"` // in the order shown
	Duplicates int      `json:"duplicates"`
	Errors     []string `json:"errors"`
	Ends       []string `json:"ends"`
}

func (p *tab) seen() seen { return evalJS[seen](p, `progress.seen`) }

// checkSteps checks that the page showed the steps 1 to n once each, in
// order, that the server sent none twice, and that nothing went wrong.
func (p *tab) checkSteps(n int, end string) {
	p.t.Helper()
	s := p.seen()
	if !equal(s.Steps, from(1, n)) {
		p.t.Errorf("the page showed steps %v, want 1 to %d once each", s.Steps, n)
	}
	if s.Duplicates != 0 || len(s.Errors) != 0 {
		p.t.Errorf("the page saw %d duplicates and errors %q", s.Duplicates, s.Errors)
	}
	if len(s.Ends) != 1 || s.Ends[0] != end {
		p.t.Errorf("the page saw the ends %q, want %q", s.Ends, end)
	}
}

const (
	steps  = 20
	holdAt = 5 // the job is held before this step: the page shows 4
)

// A reload mid-job: the new page resumes the job by the id it kept in
// sessionStorage, shows the steps done so far from the job's log, then
// the rest live, every step exactly once; the job ran once, to its end.
func TestReloadInBrowser(t *testing.T) {
	for _, tr := range kinds {
		t.Run(tr, func(t *testing.T) {
			g := newGate(holdAt)
			// A long grace period: the reload must come back within it,
			// however loaded the machine.
			s := startServer(t, wait, g)
			p := openPage(t, s, tr)
			evalVoid(p, `progress.start(20)`)
			p.poll(`progress.lastStep === 4`)
			job := evalJS[string](p, `progress.job`)
			if _, err := chromedp.Run(p.tab, chromedp.Reload()); err != nil {
				t.Fatal(err)
			}
			p.poll(`window.progress && progress.following && progress.lastStep === 4`)
			if got := evalJS[string](p, `progress.job`); got != job {
				t.Fatalf("after the reload the page follows job %q, want %q", got, job)
			}
			if got := p.seen(); !equal(got.Steps, from(1, 4)) {
				t.Fatalf("after the reload the page shows steps %v, want 1 to 4", got.Steps)
			}
			s.noReport(t)
			g.release()
			p.poll(`progress.seen.ends.length === 1`)
			if rep := s.report(t); rep.Steps != steps || rep.Cause != nil {
				t.Fatalf("report %+v", rep)
			}
			p.checkSteps(steps, "done")
			if st := evalJS[string](p, `progress.status`); st != "done: 20 steps" {
				t.Errorf("status %q", st)
			}
			if n := s.js.started.Load(); n != 1 {
				t.Errorf("%d jobs started, want 1", n)
			}
			// The job is over: a reload shows idle and may start another.
			if _, err := chromedp.Run(p.tab, chromedp.Reload()); err != nil {
				t.Fatal(err)
			}
			p.poll(`window.progress && progress.canStart && progress.job === null && progress.status === "idle"`)
		})
	}
}

// A new server connection mid-job (the server closes it with 1013, try
// again later): the page resumes after the last step it showed, so no step
// comes twice, and the job completes.
func TestReconnectInBrowser(t *testing.T) {
	for _, tr := range kinds {
		t.Run(tr, func(t *testing.T) {
			g := newGate(holdAt)
			s := startServer(t, wait, g)
			p := openPage(t, s, tr)
			evalVoid(p, `progress.start(20)`)
			p.poll(`progress.lastStep === 4`)
			for _, c := range s.route.Conns() {
				c.Close(realtime.CloseTryAgainLater, "try again")
			}
			p.poll(`progress.reconnects === 1 && progress.following`)
			g.release()
			p.poll(`progress.seen.ends.length === 1`)
			if rep := s.report(t); rep.Steps != steps || rep.Cause != nil {
				t.Fatalf("report %+v", rep)
			}
			p.checkSteps(steps, "done")
			if n := evalJS[int](p, `progress.seen.opens`); n != 2 {
				t.Errorf("the page opened %d connections, want 2", n)
			}
		})
	}
}

// Closing the tab mid-job leaves the job unwatched at once (the page's
// pagehide DELETE ends an SSE or long-poll session; the browser closes a
// WebSocket): after the grace period, not the 30 s resume window, the job
// is cancelled.
func TestTabClosedInBrowser(t *testing.T) {
	const grace = 300 * time.Millisecond
	if wait >= realtime.DefaultResumeWindow {
		t.Fatal("the report must be awaited for less than the resume window")
	}
	for _, tr := range kinds {
		t.Run(tr, func(t *testing.T) {
			g := newGate(holdAt)
			s := startServer(t, grace, g)
			p := openPage(t, s, tr)
			evalVoid(p, `progress.start(20)`)
			p.poll(`progress.lastStep === 4`)
			s.noReport(t)
			closed := time.Now()
			if err := chromedp.Cancel(p.tab); err != nil { // closes the tab
				t.Fatal(err)
			}
			rep := s.report(t)
			took := time.Since(closed)
			t.Logf("%s: cancelled %v after the tab closed (grace %v)", tr, took.Round(time.Millisecond), grace)
			if rep.Steps != holdAt-1 || !errors.Is(rep.Cause, errAbandoned) {
				t.Fatalf("report %+v: want abandoned after %d steps", rep, holdAt-1)
			}
			if took < grace {
				t.Errorf("cancelled %v after the tab closed, within the grace period", took)
			}
		})
	}
}

func evalVoid(p *tab, js string) {
	p.t.Helper()
	if _, err := chromedp.Run(p.tab, chromedp.Evaluate[chromedp.Void](js)); err != nil {
		p.t.Fatalf("evaluating %s: %v", js, err)
	}
}
