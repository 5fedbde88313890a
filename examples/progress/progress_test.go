package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rtkit/rtkit/realtime"
	"github.com/rtkit/rtkit/realtime/rtclient"
	"github.com/rtkit/rtkit/testing/realtimetest"
)

// report is any message of the jobs route. (Embedding the reply types
// would lose the fields they share, "of" and "steps".)
type report struct {
	Job     string `json:"job"`
	Of      int    `json:"of"`
	Step    int    `json:"step"`
	Percent int    `json:"percent"`
	Done    bool   `json:"done"`
	Steps   int    `json:"steps"`
	Stopped string `json:"stopped"`
	Gone    string `json:"gone"`
	Error   string `json:"error"`
}

// isStep reports whether r is step i of a job of n steps.
func (r report) isStep(i, n int) bool {
	return r == report{Step: i, Of: n, Percent: i * 100 / n}
}

// job returns the job of the registry with id.
func (r *registry) job(id string) *job {
	r.t.Helper()
	r.js.mu.Lock()
	defer r.js.mu.Unlock()
	j := r.js.jobs[id]
	if j == nil {
		r.t.Fatalf("no job %q", id)
	}
	return j
}

// memRoute is the jobs route of r's registry in memory, on r's clock.
func memRoute(r *registry) *realtime.Route {
	o := routeOptions()
	o.Transports = []realtime.Transport{realtimetest.Memory}
	o.Clock = r.clock
	o.Logger = slog.New(slog.DiscardHandler)
	return realtime.NewRoute(r.js.handler(), &o)
}

func dial(t *testing.T, rt *realtime.Route) *realtimetest.Client {
	t.Helper()
	c, err := realtimetest.DialRoute(rt, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(realtime.CloseNormal, "") })
	return c
}

func receive(t *testing.T, c *realtimetest.Client) report {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	var r report
	if err := c.ReceiveJSON(ctx, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

// receiveSteps checks that the next messages are the steps a to b of a
// job of n steps.
func receiveSteps(t *testing.T, c *realtimetest.Client, a, b, n int) {
	t.Helper()
	for i := a; i <= b; i++ {
		if r := receive(t, c); !r.isStep(i, n) {
			t.Fatalf("want step %d, got %+v", i, r)
		}
	}
}

// In memory on a fake clock: one report per step, then done; bad requests
// get an error reply and the connection stays open.
func TestJobInMemory(t *testing.T) {
	r := newRegistry(t)
	c := dial(t, memRoute(r))
	for _, bad := range []string{`{"start":`, `{}`, `{"start":0}`, `{"start":1001}`, `{"start":-1}`,
		`{"start":1,"resume":"0123456789abcdef0123456789abcdef"}`, `{"resume":"nope"}`} {
		c.SendText(bad)
		if r := receive(t, c); r.Error == "" {
			t.Fatalf("%s: %+v", bad, r)
		}
	}

	c.SendJSON(request{Start: 4})
	c.SendJSON(request{Start: 4})
	f := receive(t, c)
	if !validJobID(f.Job) || f != (report{Job: f.Job, Of: 4}) {
		t.Fatalf("want the job's id, got %+v", f)
	}
	if rep := receive(t, c); rep.Error != "a job is already running" {
		t.Fatalf("second start: %+v", rep)
	}
	j := r.job(f.Job)
	for i := 1; i <= 4; i++ {
		r.steps(j, 1)
		receiveSteps(t, c, i, i, 4)
	}
	if rep := receive(t, c); rep != (report{Done: true, Steps: 4}) {
		t.Fatalf("done: %+v", rep)
	}
	if rep := r.report(); rep.Steps != 4 || rep.Cause != nil {
		t.Fatalf("ended %+v", rep)
	}
	// The job is over: another may start on the same connection.
	c.SendJSON(request{Start: 1})
	if rep := receive(t, c); !validJobID(rep.Job) || rep.Job == f.Job {
		t.Fatalf("want a new job, got %+v", rep)
	}
}

// A reload, in memory: the first page's connection goes mid-job, a new one
// resumes the job within the grace period and gets every step once, the
// ones it missed first; the job ran once.
func TestResumeInMemory(t *testing.T) {
	r := newRegistry(t)
	rt := memRoute(r)
	first := dial(t, rt)
	first.SendJSON(request{Start: 6})
	id := receive(t, first).Job
	j := r.job(id)
	for i := 1; i <= 3; i++ {
		r.steps(j, 1)
		receiveSteps(t, first, i, i, 6)
	}
	first.Close(realtime.CloseGoingAway, "page closed")
	<-first.Done()

	second := dial(t, rt)
	second.SendJSON(request{Resume: newJobID()})
	if rep := receive(t, second); rep.Gone == "" {
		t.Fatalf("resume of an unknown job: %+v", rep)
	}
	second.SendJSON(request{Resume: id, After: 7})
	if rep := receive(t, second); rep.Error == "" {
		t.Fatalf("resume after 7 of 6 steps: %+v", rep)
	}
	second.SendJSON(request{Resume: id})
	if rep := receive(t, second); rep != (report{Job: id, Of: 6}) {
		t.Fatalf("resume: %+v", rep)
	}
	receiveSteps(t, second, 1, 3, 6) // replayed
	r.steps(j, 3)
	receiveSteps(t, second, 4, 6, 6) // live
	if rep := receive(t, second); rep != (report{Done: true, Steps: 6}) {
		t.Fatalf("want done, got %+v", rep)
	}
	if n := r.js.started.Load(); n != 1 {
		t.Errorf("%d jobs started, want 1", n)
	}

	// A resume of the job it follows starts the connection over from
	// after: what comes is the reply, then the steps after 4, then done.
	second.SendJSON(request{Resume: id, After: 4})
	if rep := receive(t, second); rep.Job != id {
		t.Fatalf("resume: %+v", rep)
	}
	receiveSteps(t, second, 5, 6, 6)
	if rep := receive(t, second); !rep.Done {
		t.Fatalf("want done, got %+v", rep)
	}
}

// A closed page, in memory: the job's last connection goes; within the
// grace period the job runs on, then it is cancelled, leaving no timer.
func TestCloseCancelsJob(t *testing.T) {
	r := newRegistry(t)
	c := dial(t, memRoute(r))
	c.SendJSON(request{Start: 10})
	j := r.job(receive(t, c).Job)
	r.steps(j, 1)
	receiveSteps(t, c, 1, 1, 10)
	c.Close(realtime.CloseGoingAway, "page closed")
	<-c.Done() // the handler's Close has run: nobody watches the job
	r.clock.Advance(grace - time.Millisecond)
	waitSteps(t, j, 2) // a step's timer fired meanwhile
	r.noReport()
	r.clock.Advance(time.Millisecond)
	if rep := r.report(); rep.Steps != 2 || !errors.Is(rep.Cause, errAbandoned) {
		t.Fatalf("ended %+v", rep)
	}
	if n := r.clock.Pending(); n != 0 {
		t.Fatalf("%d timers pending", n)
	}
}

// A replay longer than the send queue is sent at the pace the client
// reads: with a queue of 8 and a client that has not read, a resume of a
// 100-step job closes nothing, and every step arrives in order.
func TestReplayPaced(t *testing.T) {
	r := newRegistry(t)
	o := routeOptions()
	o.Transports = []realtime.Transport{realtimetest.Memory}
	o.Clock = r.clock
	o.Logger = slog.New(slog.DiscardHandler)
	o.SendQueue = 8
	rt := realtime.NewRoute(r.js.handler(), &o)
	j, unwatch, err := r.js.start(100)
	if err != nil {
		t.Fatal(err)
	}
	defer unwatch()
	r.steps(j, 100)
	c := dial(t, rt)
	c.SetBuffer(1)
	// The pipe's Send returns once the replies are written, which needs
	// this goroutine to read them.
	sent := make(chan error, 1)
	go func() { sent <- c.SendJSON(request{Resume: j.id}) }()
	if rep := receive(t, c); rep.Job != j.id {
		t.Fatalf("resume: %+v", rep)
	}
	receiveSteps(t, c, 1, 100, 100)
	if rep := receive(t, c); !rep.Done {
		t.Fatalf("want done, got %+v", rep)
	}
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	if n := c.Conn().Dropped(); n != 0 {
		t.Errorf("%d messages dropped", n)
	}
}

// The same over a real SSE stream on the real clock: the client closes
// mid-job and the job is cancelled after the grace period.
func TestCloseCancelsJobOverSSE(t *testing.T) {
	js := newJobs(10*time.Millisecond, 50*time.Millisecond)
	ended := make(chan jobReport, 1)
	js.ended = func(r jobReport) { ended <- r }
	defer js.close()
	o := routeOptions()
	srv := realtimetest.NewServer(js.handler(), &o)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	c, err := rtclient.Dial(ctx, srv.URL, &rtclient.Options{Transports: []realtime.Kind{realtime.SSE}})
	if err != nil {
		t.Fatal(err)
	}
	c.SendJSON(ctx, request{Start: maxSteps})
	receiveReport(t, ctx, c) // the job's id
	receiveReport(t, ctx, c) // its first step
	closed := time.Now()
	c.Close(realtime.CloseNormal, "bye")
	select {
	case e := <-ended:
		t.Logf("cancelled %v after the close (grace %v)", time.Since(closed).Round(time.Millisecond), js.grace)
		if e.Steps >= maxSteps || !errors.Is(e.Cause, errAbandoned) {
			t.Fatalf("ended %+v", e)
		}
		if d := time.Since(closed); d < js.grace {
			t.Errorf("cancelled %v after the close, before the grace period of %v", d, js.grace)
		}
	case <-ctx.Done():
		t.Fatal("the job was not cancelled")
	}
}

func receiveReport(t *testing.T, ctx context.Context, c *rtclient.Conn) report {
	t.Helper()
	m, err := c.Receive(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var r report
	if err := json.Unmarshal(m.Data, &r); err != nil || r.Error != "" {
		t.Fatalf("%s (%v)", m.Data, err)
	}
	return r
}

// tracker remembers the client's TCP connections, so that a test can cut
// them as a network failure would.
type tracker struct {
	mu    sync.Mutex
	conns []net.Conn
}

func (tr *tracker) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
	if err == nil {
		tr.mu.Lock()
		tr.conns = append(tr.conns, c)
		tr.mu.Unlock()
	}
	return c, err
}

func (tr *tracker) cut() {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	for _, c := range tr.conns {
		c.Close()
	}
	tr.conns = nil
}

// The program over SSE: a job runs to done, and a stream cut mid-job
// resumes without losing or repeating a step. Shutting down cancels the
// job still running before run returns.
func TestRun(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	js := newJobs(10*time.Millisecond, time.Hour)
	ended := make(chan jobReport, 4)
	js.ended = func(r jobReport) { ended <- r }
	urls := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- run(ctx, "127.0.0.1:0", js, func(u string) { urls <- u }) }()
	base := <-urls

	resp, err := http.Get(base)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "/rtkit/rtkit.js") {
		t.Fatalf("page: %s", resp.Status)
	}

	rctx, rcancel := context.WithTimeout(ctx, wait)
	defer rcancel()
	tr := &tracker{}
	hc := &http.Client{Transport: &http.Transport{DialContext: tr.dial}}
	defer hc.CloseIdleConnections()
	states := make(chan rtclient.State, 16)
	c, err := rtclient.Dial(rctx, base+"jobs", &rtclient.Options{
		Transports: []realtime.Kind{realtime.SSE},
		HTTPClient: hc,
		MinBackoff: 5 * time.Millisecond,
		MaxBackoff: 50 * time.Millisecond,
		OnState: func(s rtclient.State, _ realtime.Kind, _ error) {
			select {
			case states <- s:
			default:
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(realtime.CloseNormal, "")
	if c.Transport() != realtime.SSE {
		t.Fatalf("on %s", c.Transport())
	}

	for _, cutAt := range []int{0, 5} { // a job untouched, then one cut at step 5
		const n = 20
		if err := c.SendJSON(rctx, request{Start: n}); err != nil {
			t.Fatal(err)
		}
		if r := receiveReport(t, rctx, c); !validJobID(r.Job) || r.Of != n {
			t.Fatalf("want the job's id, got %+v", r)
		}
		for i := 1; i <= n; i++ {
			if r := receiveReport(t, rctx, c); !r.isStep(i, n) {
				t.Fatalf("want step %d, got %+v", i, r)
			}
			if i == cutAt {
				tr.cut()
			}
		}
		if r := receiveReport(t, rctx, c); r != (report{Done: true, Steps: n}) {
			t.Fatalf("want done, got %+v", r)
		}
		if r := <-ended; r.Cause != nil {
			t.Fatalf("ended %+v", r)
		}
	}
	// The cut made the client reconnect; it resumed the same session.
	reconnected := false
	for len(states) > 0 {
		if <-states == rtclient.Reconnecting {
			reconnected = true
		}
	}
	if !reconnected {
		t.Fatal("the stream was never cut")
	}

	// A job still running at shutdown is cancelled before run returns.
	if err := c.SendJSON(rctx, request{Start: maxSteps}); err != nil {
		t.Fatal(err)
	}
	receiveReport(t, rctx, c)
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
	select {
	case r := <-ended:
		if !errors.Is(r.Cause, errShutdown) {
			t.Fatalf("ended %+v", r)
		}
	default:
		t.Fatal("run returned with a job running")
	}
}
