package main

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"go.uber.org/goleak"

	"github.com/rtkit/rtkit/realtime"
	"github.com/rtkit/rtkit/testing/browsertest"
	"github.com/rtkit/rtkit/transports"
)

func TestMain(m *testing.M) {
	code := m.Run()
	browsertest.Shutdown()
	if code == 0 {
		// Every run, timer and server of the tests has stopped.
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

var kinds = []string{"websocket", "sse", "longpoll"}

// gate holds an answer before token at until free is closed or the run's
// context ends, so that a test acts mid-answer whatever the machine's load.
type gate struct {
	at       int
	once     sync.Once
	held     chan struct{} // closed when the model reaches the token
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
	app   *app
	ended chan runReport
}

// quick are the route options of the tests: pings every 200 ms, and a peer
// silent for 600 ms more is dead (slack for a loaded machine), so that a
// model thinking for 2 s outlasts several keepalive periods.
func quick() realtime.Options {
	o := transports.Messaging
	o.PingInterval = 200 * time.Millisecond
	o.PongTimeout = 600 * time.Millisecond
	return o
}

// startServer serves the example's routes with s and the model held by g
// (nil: not held) until the test ends. It uses httptest rather than run,
// whose http.Server.Shutdown would wait for the sockets Chromium opens ahead
// of use (main_test.go tests run).
func startServer(t *testing.T, s settings, g *gate) *server {
	t.Helper()
	a := newApp(s)
	if g != nil {
		a.model.hold = g.hold
	}
	srv := &server{app: a, ended: make(chan runReport, 16)}
	a.convs.ended = func(r runReport) { srv.ended <- r }
	var rt realtime.Server
	hs := httptest.NewServer(a.mux(&rt, quick()))
	srv.url = hs.URL + "/"
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := rt.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		hs.Close()
		a.close() // stops the answers still running
	})
	return srv
}

// report waits for the next answer to end.
func (s *server) report(t *testing.T) runReport {
	t.Helper()
	select {
	case r := <-s.ended:
		return r
	case <-time.After(wait):
		t.Fatal("no answer ended")
		return runReport{}
	}
}

// noReport checks that no answer has ended yet.
func (s *server) noReport(t *testing.T) {
	t.Helper()
	select {
	case r := <-s.ended:
		t.Fatalf("an answer ended early: %+v", r)
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
	p.poll(`window.agent && agent.joined`)
	return p
}

// poll waits until the JS expression is truthy.
func (p *tab) poll(expr string) {
	p.t.Helper()
	if _, err := chromedp.Run(p.tab, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingTimeout(wait), chromedp.WithPollingInterval(20*time.Millisecond))); err != nil {
		state, _ := chromedp.Run(p.tab, chromedp.Evaluate[string](`JSON.stringify({state: agent.state, transport: agent.transport, seen: agent.seen, turns: agent.turns()})`))
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

// turn is one prompt and answer as the page shows it.
type turn struct {
	Prompt string `json:"prompt"`
	Text   string `json:"text"`
	Tokens int    `json:"tokens"`
	Reason string `json:"reason"`
}

// seen is what the page counted.
type seen struct {
	Opens   int      `json:"opens"`
	Orphans int      `json:"orphans"` // tokens with no answer running: after an end
	Gaps    int      `json:"gaps"`
	Errors  []string `json:"errors"`
}

func (p *tab) turns() []turn { return evalJS[[]turn](p, `agent.turns()`) }
func (p *tab) seen() seen    { return evalJS[seen](p, `agent.seen`) }

// checkClean checks that the page saw no token outside an answer, no gap
// and no error.
func (p *tab) checkClean() {
	p.t.Helper()
	if s := p.seen(); s.Orphans != 0 || s.Gaps != 0 || len(s.Errors) != 0 {
		p.t.Errorf("page saw %+v", s)
	}
}

func text(prompt string, tokens int) string {
	return strings.Join(answer(prompt)[:tokens], "")
}

// A model that thinks for longer than the keepalive's dead time: the
// connection lives on its pings, nothing reconnects, and the whole answer
// arrives.
func TestSlowFirstTokenInBrowser(t *testing.T) {
	o := quick()
	first := 2 * time.Second
	if first <= 2*(o.PingInterval+o.PongTimeout) {
		t.Fatal("the first token must come after PingInterval+PongTimeout")
	}
	for _, tr := range kinds {
		t.Run(tr, func(t *testing.T) {
			s := startServer(t, settings{firstToken: first, tokenDelay: 5 * time.Millisecond, grace: grace}, nil)
			p := openPage(t, s, tr)
			const prompt = "take your time"
			start := time.Now()
			if _, err := chromedp.Run(p.tab, chromedp.Evaluate[chromedp.Void](`agent.ask("`+prompt+`")`)); err != nil {
				t.Fatal(err)
			}
			p.poll(`agent.turns().length === 1 && agent.turns()[0].reason === "done"`)
			rep := s.report(t)
			t.Logf("%s: answer of %d tokens after %v, first token after %v thinking", tr, rep.Tokens, time.Since(start).Round(time.Millisecond), first)
			want := turn{Prompt: prompt, Text: text(prompt, len(answer(prompt))), Tokens: len(answer(prompt)), Reason: reasonDone}
			if got := p.turns(); len(got) != 1 || got[0] != want {
				t.Fatalf("page shows %+v, want %+v", got, want)
			}
			if got := evalJS[string](p, `agent.transport + " " + agent.reconnects + " " + agent.seen.opens`); got != tr+" 0 1" {
				t.Errorf("transport, reconnects, opens: %s, want %s 0 1", got, tr)
			}
			if n := s.app.agent.opened.Load(); n != 1 {
				t.Errorf("the server opened %d connections, want 1", n)
			}
			p.checkClean()
		})
	}
}

// Stop mid-answer: the server cancels the run's context at once, the model
// returns, the end event says stopped, and no token follows it.
func TestStopInBrowser(t *testing.T) {
	for _, tr := range kinds {
		t.Run(tr, func(t *testing.T) {
			g := newGate(5)
			s := startServer(t, settings{firstToken: 10 * time.Millisecond, tokenDelay: 5 * time.Millisecond, grace: grace}, g)
			p := openPage(t, s, tr)
			const prompt = "stop me"
			if _, err := chromedp.Run(p.tab, chromedp.Evaluate[chromedp.Void](`agent.ask("`+prompt+`")`)); err != nil {
				t.Fatal(err)
			}
			p.poll(`agent.turns().length === 1 && agent.turns()[0].tokens === 5 && !document.getElementById("stop").disabled`)
			s.noReport(t)
			if _, err := chromedp.Run(p.tab, chromedp.Evaluate[chromedp.Void](`agent.stop()`)); err != nil {
				t.Fatal(err)
			}
			rep := s.report(t)
			t.Logf("%s: stop latency (server received Stop to model returned): %v", tr, rep.StopLatency)
			if rep.Reason != reasonStopped || !errors.Is(rep.Cause, errStopped) || rep.Tokens != 5 || rep.StopLatency <= 0 {
				t.Fatalf("report %+v: want stopped by Stop after 5 tokens", rep)
			}
			p.poll(`agent.turns()[0].reason === "stopped"`)

			// Another answer: whatever the stopped one might still have
			// sent would come before this one's start.
			g.release()
			p.poll(`!document.getElementById("send").disabled`)
			if _, err := chromedp.Run(p.tab, chromedp.Evaluate[chromedp.Void](`agent.ask("and now")`)); err != nil {
				t.Fatal(err)
			}
			p.poll(`agent.turns().length === 2 && agent.turns()[1].reason === "done"`)
			s.report(t)
			want := []turn{
				{Prompt: prompt, Text: text(prompt, 5), Tokens: 5, Reason: reasonStopped},
				{Prompt: "and now", Text: text("and now", len(answer("and now"))), Tokens: len(answer("and now")), Reason: reasonDone},
			}
			if got := p.turns(); len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
				t.Fatalf("page shows %+v, want %+v", got, want)
			}
			p.checkClean()
		})
	}
}

// A reload mid-answer re-attaches: the new page replays the conversation
// from its topic's history and follows the answer live; it shows the whole
// answer exactly once, and the model ran once.
func TestReloadInBrowser(t *testing.T) {
	for _, tr := range kinds {
		t.Run(tr, func(t *testing.T) {
			g := newGate(5)
			// A long grace: the reload must come back within it, however
			// loaded the machine.
			s := startServer(t, settings{firstToken: 10 * time.Millisecond, tokenDelay: 5 * time.Millisecond, grace: 10 * time.Second}, g)
			p := openPage(t, s, tr)
			const prompt = "survive a reload"
			if _, err := chromedp.Run(p.tab, chromedp.Evaluate[chromedp.Void](`agent.ask("`+prompt+`")`)); err != nil {
				t.Fatal(err)
			}
			p.poll(`agent.turns().length === 1 && agent.turns()[0].tokens === 5`)
			conv := evalJS[string](p, `agent.conv`)
			if _, err := chromedp.Run(p.tab, chromedp.Reload()); err != nil {
				t.Fatal(err)
			}
			p.poll(`window.agent && agent.joined && agent.turns().length === 1 && agent.turns()[0].tokens === 5`)
			if got := evalJS[string](p, `agent.conv`); got != conv {
				t.Fatalf("after the reload the page is in conversation %q, want %q", got, conv)
			}
			g.release()
			p.poll(`agent.turns()[0].reason === "done"`)
			if rep := s.report(t); rep.Reason != reasonDone {
				t.Fatalf("report %+v", rep)
			}
			n := len(answer(prompt))
			want := turn{Prompt: prompt, Text: text(prompt, n), Tokens: n, Reason: reasonDone}
			if got := p.turns(); len(got) != 1 || got[0] != want {
				t.Fatalf("page shows %+v, want %+v", got, want)
			}
			if n := s.app.model.started.Load(); n != 1 {
				t.Errorf("the model started %d times, want 1", n)
			}
			if n := s.app.agent.opened.Load(); n != 2 {
				t.Errorf("the server opened %d connections, want 2 (one per page load)", n)
			}
			p.checkClean()
		})
	}
}

// A reconnect mid-answer (the server closes the connection with 1013, try
// again later): the page joins again after the last seq it saw, so nothing
// is replayed twice and the answer completes exactly once.
func TestReconnectInBrowser(t *testing.T) {
	for _, tr := range kinds {
		t.Run(tr, func(t *testing.T) {
			g := newGate(5)
			s := startServer(t, settings{firstToken: 10 * time.Millisecond, tokenDelay: 5 * time.Millisecond, grace: 10 * time.Second}, g)
			p := openPage(t, s, tr)
			const prompt = "keep going"
			if _, err := chromedp.Run(p.tab, chromedp.Evaluate[chromedp.Void](`agent.ask("`+prompt+`")`)); err != nil {
				t.Fatal(err)
			}
			p.poll(`agent.turns().length === 1 && agent.turns()[0].tokens === 5`)
			for _, c := range s.app.route.Conns() {
				c.Close(realtime.CloseTryAgainLater, "try again")
			}
			p.poll(`agent.reconnects === 1 && agent.joined`)
			g.release()
			p.poll(`agent.turns()[0].reason === "done"`)
			s.report(t)
			n := len(answer(prompt))
			want := turn{Prompt: prompt, Text: text(prompt, n), Tokens: n, Reason: reasonDone}
			if got := p.turns(); len(got) != 1 || got[0] != want {
				t.Fatalf("page shows %+v, want %+v", got, want)
			}
			if d := evalJS[int](p, `agent.seen.duplicates`); d != 0 {
				t.Errorf("%d events came twice: the page did not resume after its last seq", d)
			}
			if n := s.app.model.started.Load(); n != 1 {
				t.Errorf("the model started %d times, want 1", n)
			}
			if n := s.app.agent.opened.Load(); n != 2 {
				t.Errorf("the server opened %d connections, want 2", n)
			}
			p.checkClean()
		})
	}
}

// Closing the tab mid-answer leaves the conversation unwatched: after the
// grace period the run is abandoned and the model's context cancelled.
func TestTabClosedInBrowser(t *testing.T) {
	const grace = 300 * time.Millisecond
	for _, tr := range kinds {
		t.Run(tr, func(t *testing.T) {
			g := newGate(5)
			s := startServer(t, settings{firstToken: 10 * time.Millisecond, tokenDelay: 5 * time.Millisecond, grace: grace}, g)
			p := openPage(t, s, tr)
			if _, err := chromedp.Run(p.tab, chromedp.Evaluate[chromedp.Void](`agent.ask("nobody will read this")`)); err != nil {
				t.Fatal(err)
			}
			p.poll(`agent.turns().length === 1 && agent.turns()[0].tokens === 5`)
			s.noReport(t)
			closed := time.Now()
			if err := chromedp.Cancel(p.tab); err != nil { // closes the tab
				t.Fatal(err)
			}
			rep := s.report(t)
			t.Logf("%s: abandoned %v after the tab closed (grace %v)", tr, time.Since(closed).Round(time.Millisecond), grace)
			if rep.Reason != reasonAbandoned || !errors.Is(rep.Cause, errAbandoned) || rep.Tokens != 5 {
				t.Fatalf("report %+v: want abandoned after 5 tokens", rep)
			}
		})
	}
}
