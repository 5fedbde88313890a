package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rtkit/rtkit/realtime"
	"github.com/rtkit/rtkit/realtime/rtclient"
	"github.com/rtkit/rtkit/testing/realtimetest"
	"github.com/rtkit/rtkit/transports"
)

// report is any message of the jobs route.
type report struct {
	stepReport
	doneReport
	errorReply
}

// endings records how jobs ended.
type ending struct {
	steps int
	err   error
}

func newJobs(clock realtime.Clock, step time.Duration) (*jobs, chan ending) {
	ch := make(chan ending, 1)
	return &jobs{clock: clock, step: step, ended: func(steps int, err error) { ch <- ending{steps, err} }}, ch
}

// In memory with a fake clock: one report per step, then done; bad
// requests get an error reply and the connection stays open.
func TestJobInMemory(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	clock := realtimetest.NewClock(time.Now())
	j, ended := newJobs(clock, time.Second)
	c, err := realtimetest.Dial(j.handler(), &realtime.Options{Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(realtime.CloseNormal, "")

	for _, bad := range []string{`{"start":`, `{"start":0}`, `{"start":1001}`} {
		c.SendText(bad)
		var r report
		if err := c.ReceiveJSON(ctx, &r); err != nil || r.Error == "" {
			t.Fatalf("%s: %+v, %v", bad, r, err)
		}
	}

	c.SendJSON(startRequest{Start: 4})
	c.SendJSON(startRequest{Start: 4})
	var r report
	if err := c.ReceiveJSON(ctx, &r); err != nil || r.Error != "a job is already running" {
		t.Fatalf("second start: %+v, %v", r, err)
	}
	for i := 1; i <= 4; i++ {
		clock.Advance(time.Second)
		var r report
		if err := c.ReceiveJSON(ctx, &r); err != nil || r.stepReport != (stepReport{i, 4, i * 25}) {
			t.Fatalf("step %d: %+v, %v", i, r, err)
		}
	}
	if err := c.ReceiveJSON(ctx, &r); err != nil || r.doneReport != (doneReport{true, 4}) {
		t.Fatalf("done: %+v, %v", r, err)
	}
	if e := <-ended; e.steps != 4 || e.err != nil {
		t.Fatalf("ended %+v", e)
	}
}

// Closing the connection cancels the job: its goroutine sees ctx.Done,
// reports how far it got, and leaves no timer behind.
func TestCloseCancelsJob(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	clock := realtimetest.NewClock(time.Now())
	j, ended := newJobs(clock, time.Second)
	c, err := realtimetest.Dial(j.handler(), &realtime.Options{Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	c.SendJSON(startRequest{Start: 10})
	clock.Advance(time.Second)
	var r report
	if err := c.ReceiveJSON(ctx, &r); err != nil || r.Step != 1 {
		t.Fatalf("step 1: %+v, %v", r, err)
	}
	c.Close(realtime.CloseGoingAway, "")
	<-c.Done() // the job's goroutine has returned
	if e := <-ended; e.steps != 1 || !errors.Is(e.err, context.Canceled) {
		t.Fatalf("ended %+v", e)
	}
	if n := clock.Pending(); n != 0 {
		t.Fatalf("%d timers pending", n)
	}
}

// The same over a real SSE stream: the client closes mid-job.
func TestCloseCancelsJobOverSSE(t *testing.T) {
	j, ended := newJobs(wallClock{}, 10*time.Millisecond)
	o := transports.Progress
	srv := realtimetest.NewServer(j.handler(), &o)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := rtclient.Dial(ctx, srv.URL, &rtclient.Options{Transports: []realtime.Kind{realtime.SSE}})
	if err != nil {
		t.Fatal(err)
	}
	c.SendJSON(ctx, startRequest{Start: maxSteps})
	receiveReport(t, ctx, c)
	c.Close(realtime.CloseNormal, "bye")
	if e := <-ended; e.steps >= maxSteps || !errors.Is(e.err, context.Canceled) {
		t.Fatalf("ended %+v", e)
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
// resumes without losing or repeating a step.
func TestRun(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	urls := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- run(ctx, "127.0.0.1:0", 10*time.Millisecond, func(u string) { urls <- u }) }()
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

	rctx, rcancel := context.WithTimeout(ctx, 15*time.Second)
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
		if err := c.SendJSON(rctx, startRequest{Start: n}); err != nil {
			t.Fatal(err)
		}
		for i := 1; i <= n; i++ {
			if r := receiveReport(t, rctx, c); r.stepReport != (stepReport{i, n, i * 100 / n}) {
				t.Fatalf("want step %d, got %+v", i, r)
			}
			if i == cutAt {
				tr.cut()
			}
		}
		if r := receiveReport(t, rctx, c); !r.Done || r.Steps != n {
			t.Fatalf("want done, got %+v", r)
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

	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
}
