package rtjs_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/rtkit/rtkit/realtime"
	"github.com/rtkit/rtkit/realtime/rtjs"
	"github.com/rtkit/rtkit/testing/browsertest"
	"github.com/rtkit/rtkit/testing/realtimetest"
	"github.com/rtkit/rtkit/transports/longpoll"
	"github.com/rtkit/rtkit/transports/sse"
	"github.com/rtkit/rtkit/transports/websocket"
)

func TestMain(m *testing.M) {
	code := m.Run()
	browsertest.Shutdown()
	os.Exit(code)
}

// newTab returns a fresh tab, or skips when there is no browser.
func newTab(t *testing.T) context.Context { return browsertest.NewTab(t) }

// recorder is what the server's echo handler saw.
type recorder struct {
	mu      sync.Mutex
	msgs    []string
	bearers []string // realtime.BearerToken of each opening request
	kinds   []realtime.Kind
	urls    []string
	closed  chan error // each connection's Close, in order
}

func (r *recorder) messages() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.msgs...)
}

// echo records and echoes every message. "close:<code>" closes the
// connection with that code instead.
func (r *recorder) handler() realtime.Handler {
	return realtime.Funcs{
		OnOpen: func(c *realtime.Conn) error {
			r.mu.Lock()
			r.bearers = append(r.bearers, realtime.BearerToken(c.Request()))
			r.kinds = append(r.kinds, c.Transport())
			r.urls = append(r.urls, c.Request().URL.String())
			r.mu.Unlock()
			return nil
		},
		OnClose: func(c *realtime.Conn, err error) {
			select {
			case r.closed <- err:
			default:
			}
		},
		OnMessage: func(c *realtime.Conn, m realtime.Message) error {
			if code, ok := strings.CutPrefix(m.Text(), "close:"); ok && m.Type == realtime.TextMessage {
				var n int
				fmt.Sscan(code, &n)
				return &realtime.CloseError{Code: n, Reason: "asked"}
			}
			r.mu.Lock()
			if m.Type == realtime.BinaryMessage {
				r.msgs = append(r.msgs, fmt.Sprintf("bin:%v", m.Data))
			} else {
				r.msgs = append(r.msgs, m.Text())
			}
			r.mu.Unlock()
			return c.Send(m)
		},
	}
}

// fixture serves the test page, the client at rtjs.Path and an echo route
// at /echo behind an optional proxy wrapper; the route can be replaced
// (a server restart) while the listener stays.
type fixture struct {
	srv   *httptest.Server
	conns *realtimetest.Listener
	rec   *recorder
	route atomic.Pointer[realtime.Route]
	down  atomic.Bool  // answer 503 to everything on /echo
	cut   atomic.Int32 // close the connection of this many requests to /echo unanswered
}

const testPage = `<!doctype html><meta charset="utf-8"><title>rtjs test</title>
<script type="module">
import * as rt from "/rtkit/rtkit.js";
window.rt = rt;
window.ready = true;
</script>`

func newFixture(t *testing.T, proxy func(http.Handler) http.Handler) *fixture {
	t.Helper()
	f := &fixture{rec: &recorder{closed: make(chan error, 64)}}
	f.route.Store(f.newRoute())
	var echo http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f.down.Load() {
			realtime.WriteError(w, http.StatusServiceUnavailable, "restarting")
			return
		}
		if f.cut.Load() > 0 && f.cut.Add(-1) >= 0 {
			if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
				conn.Close()
			}
			return
		}
		f.route.Load().ServeHTTP(w, r)
	})
	if proxy != nil {
		echo = proxy(echo)
	}
	mux := http.NewServeMux()
	mux.Handle(rtjs.Path, rtjs.Handler())
	mux.Handle("/echo", echo)
	mux.HandleFunc("/{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write([]byte(testPage))
	})
	f.srv = httptest.NewUnstartedServer(mux)
	f.conns = &realtimetest.Listener{Listener: f.srv.Listener}
	f.srv.Listener = f.conns
	f.srv.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		f.route.Load().Shutdown(ctx)
		f.srv.CloseClientConnections()
		f.srv.Close()
	})
	return f
}

func (f *fixture) newRoute() *realtime.Route {
	return realtime.NewRoute(f.rec.handler(), &realtime.Options{
		Transports: []realtime.Transport{websocket.New(websocket.Options{}), sse.New(sse.Options{}), longpoll.New(longpoll.Options{})},
	})
}

// open loads the test page and runs setup, a JS expression, in it.
func (f *fixture) open(t *testing.T, ctx context.Context, setup string) {
	t.Helper()
	err := chromedp.Do(ctx,
		chromedp.Navigate(f.srv.URL+"/"),
		chromedp.Poll[chromedp.Void]("window.ready === true", chromedp.WithPollingTimeout(20*time.Second)),
		chromedp.Evaluate[chromedp.Void](pageHelpers),
		chromedp.Evaluate[chromedp.Void](setup),
	)
	if err != nil {
		t.Fatalf("loading the page: %v", err)
	}
}

// pageHelpers records a client's events in window.log.
const pageHelpers = `
window.log = {msgs: [], opens: [], closes: [], states: [], errors: [], gaps: [], refused: [], events: [], firstMessageAt: null, sent: []};
window.watch = (c) => {
  const t0 = performance.now();
  c.onmessage = (e) => {
    if (log.firstMessageAt === null) log.firstMessageAt = performance.now();
    log.msgs.push(typeof e.data === "string" ? e.data : "bin:[" + Array.from(new Uint8Array(e.data)).join(" ") + "]");
  };
  c.onopen = (e) => log.opens.push({transport: e.transport, at: performance.now(), since: performance.now() - t0, protocol: e.protocol || "", resumed: !!e.resumed});
  c.onclose = (e) => log.closes.push({code: e.code, reason: e.reason});
  c.onerror = (e) => log.errors.push(e.message);
  c.onstatechange = (e) => log.states.push(e.state + "/" + e.transport);
  c.ongap = (e) => log.gaps.push({after: e.after, reason: e.reason});
  c.onrefused = (e) => log.refused.push({status: e.status, data: typeof e.data === "string" ? e.data : "binary"});
  // Every event's own fields, for the check of rtkit.d.ts (types_test.go).
  for (const type of ["open", "message", "close", "error", "statechange", "gap", "refused"]) {
    c.addEventListener(type, (e) => {
      const own = {};
      for (const k of Object.keys(e)) own[k] = e[k] instanceof ArrayBuffer ? "<ArrayBuffer>" : e[k];
      if (type === "message") own.data = typeof e.data === "string" ? e.data : "<ArrayBuffer>";
      if (type === "close") Object.assign(own, {code: e.code, reason: e.reason, wasClean: e.wasClean});
      log.events.push({type, own});
    });
  }
  return c;
};
true`

// waitFor polls a JS expression until it is truthy.
func waitFor(t *testing.T, ctx context.Context, expr string, d time.Duration) {
	t.Helper()
	if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingTimeout(d), chromedp.WithPollingInterval(20*time.Millisecond))); err != nil {
		state, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.stringify(window.log)`))
		t.Fatalf("waiting for %s: %v\npage log: %s", expr, err, state)
	}
}

func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluating %s: %v", expr, err)
	}
	return v
}

// timing is what the page measured, in milliseconds since navigation.
type timing struct {
	Open         float64 `json:"open"`
	SinceCreate  float64 `json:"since"`
	FirstMessage float64 `json:"first"`
}

func logTiming(t *testing.T, ctx context.Context, what string) {
	t.Helper()
	tm := eval[timing](t, ctx, `({open: log.opens[0].at, since: log.opens[0].since, first: log.firstMessageAt})`)
	t.Logf("%s: open after %.0f ms (%.0f ms after new RealtimeClient), first message %.0f ms after page load", what, tm.Open, tm.SinceCreate, tm.FirstMessage)
}

func TestWebSocketEcho(t *testing.T) {
	ctx := newTab(t)
	f := newFixture(t, nil)
	f.open(t, ctx, `
const c = watch(new rt.RealtimeClient("/echo"));
window.c = c;
c.send("hello"); // queued until open
c.send(new Uint8Array([1, 2, 3]));
true`)
	waitFor(t, ctx, `log.msgs.length >= 2`, 10*time.Second)
	if got := eval[[]string](t, ctx, `log.msgs`); !equal(got, []string{"hello", "bin:[1 2 3]"}) {
		t.Errorf("page got %q", got)
	}
	if tr := eval[string](t, ctx, `c.transport`); tr != "websocket" {
		t.Errorf("transport %q, want websocket", tr)
	}
	if p := eval[string](t, ctx, `log.opens[0].protocol`); p != realtime.Subprotocol {
		t.Errorf("subprotocol %q, want %q", p, realtime.Subprotocol)
	}
	logTiming(t, ctx, "websocket")
	// A close from the page reaches the handler; no reconnect follows.
	run(t, ctx, `c.close(4000, "bye"); true`)
	waitFor(t, ctx, `log.closes.length === 1 && c.readyState === 3`, 5*time.Second)
	if got := eval[string](t, ctx, `JSON.stringify(log.closes[0])`); got != `{"code":4000,"reason":"bye"}` {
		t.Errorf("close event %s", got)
	}
	if got := f.rec.messages(); !equal(got, []string{"hello", "bin:[1 2 3]"}) {
		t.Errorf("server got %q", got)
	}
}

// refuseUpgrade is a proxy that answers WebSocket upgrades with 403.
func refuseUpgrade(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "" {
			http.Error(w, "no websockets here", http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func TestFallbackToSSE(t *testing.T) {
	ctx := newTab(t)
	f := newFixture(t, refuseUpgrade)
	f.open(t, ctx, `
const c = watch(new rt.RealtimeClient("/echo"));
window.c = c;
c.send("one");
c.send("two");
c.send(new Uint8Array([0, 255]));
true`)
	waitFor(t, ctx, `log.msgs.length >= 3`, 15*time.Second)
	if got := eval[[]string](t, ctx, `log.msgs`); !equal(got, []string{"one", "two", "bin:[0 255]"}) {
		t.Errorf("page got %q", got)
	}
	if tr := eval[string](t, ctx, `c.transport`); tr != "sse" {
		t.Errorf("transport %q, want sse", tr)
	}
	logTiming(t, ctx, "websocket refused -> sse")
	// A second message after the fallback goes the same way.
	run(t, ctx, `c.send("three"); true`)
	waitFor(t, ctx, `log.msgs.length >= 4`, 10*time.Second)
	run(t, ctx, `c.close(); true`)
	waitFor(t, ctx, `log.closes.length === 1`, 5*time.Second)
	if got := f.rec.messages(); !equal(got, []string{"one", "two", "bin:[0 255]", "three"}) {
		t.Errorf("server got %q", got)
	}
}

// TestFallbackSilentUpgrade puts a proxy in front that takes the upgrade
// request and never answers: the page waits upgradeTimeout, then uses SSE.
func TestFallbackSilentUpgrade(t *testing.T) {
	ctx := newTab(t)
	var mu sync.Mutex
	var held []net.Conn
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range held {
			c.Close()
		}
	})
	silent := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Upgrade") == "" {
				next.ServeHTTP(w, r)
				return
			}
			c, _, err := http.NewResponseController(w).Hijack()
			if err != nil {
				t.Errorf("hijack: %v", err)
				return
			}
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
		})
	}
	f := newFixture(t, silent)
	f.open(t, ctx, `
const c = watch(new rt.RealtimeClient("/echo"));
window.c = c;
c.send("patience");
true`)
	waitFor(t, ctx, `log.msgs.length >= 1`, 15*time.Second)
	if tr := eval[string](t, ctx, `c.transport`); tr != "sse" {
		t.Errorf("transport %q, want sse", tr)
	}
	if got := eval[[]string](t, ctx, `log.errors`); len(got) != 1 || got[0] != "websocket: upgrade timed out" {
		t.Errorf("errors %q", got)
	}
	logTiming(t, ctx, "websocket silent -> sse")
}

// bufferingWriter holds a whole response until the handler returns, like
// a proxy that buffers: Flush does nothing.
type bufferingWriter struct {
	h    http.Header
	code int
	buf  bytes.Buffer
}

func (b *bufferingWriter) Header() http.Header         { return b.h }
func (b *bufferingWriter) WriteHeader(code int)        { b.code = code }
func (b *bufferingWriter) Write(p []byte) (int, error) { return b.buf.Write(p) }
func (b *bufferingWriter) Flush()                      {}

// buffering is a proxy that neither upgrades nor streams.
func buffering(next http.Handler) http.Handler {
	return refuseUpgrade(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		bw := &bufferingWriter{h: make(http.Header), code: http.StatusOK}
		next.ServeHTTP(bw, r)
		for k, v := range bw.h {
			w.Header()[k] = v
		}
		w.WriteHeader(bw.code)
		w.Write(bw.buf.Bytes())
	}))
}

func TestFallbackToLongPoll(t *testing.T) {
	ctx := newTab(t)
	f := newFixture(t, buffering)
	f.open(t, ctx, `
const c = watch(new rt.RealtimeClient("/echo"));
window.c = c;
c.send("through");
c.send("the proxy");
true`)
	waitFor(t, ctx, `log.msgs.length >= 2`, 20*time.Second)
	if got := eval[[]string](t, ctx, `log.msgs`); !equal(got, []string{"through", "the proxy"}) {
		t.Errorf("page got %q", got)
	}
	if tr := eval[string](t, ctx, `c.transport`); tr != "longpoll" {
		t.Errorf("transport %q, want longpoll", tr)
	}
	logTiming(t, ctx, "websocket refused, sse buffered -> longpoll")
	run(t, ctx, `c.send(new Uint8Array([7])); true`)
	waitFor(t, ctx, `log.msgs.length >= 3`, 10*time.Second)
	if got := eval[string](t, ctx, `log.msgs[2]`); got != "bin:[7]" {
		t.Errorf("binary over long-polling: %q", got)
	}
}

// TestRestart replaces the route (a server restart: every session is
// gone) while the page keeps sending, and checks that every message
// reached a handler exactly once, in order.
func TestRestart(t *testing.T) {
	for _, kind := range []string{"sse", "longpoll", "websocket"} {
		t.Run(kind, func(t *testing.T) {
			ctx := newTab(t)
			f := newFixture(t, nil)
			const total = 60
			f.open(t, ctx, fmt.Sprintf(`
const c = watch(new rt.RealtimeClient("/echo", {transports: [%q]}));
window.c = c;
let i = 0;
window.queued = [];
const timer = setInterval(() => {
  if (++i > %d) { clearInterval(timer); return; }
  if (c.state !== "open") queued.push(String(i));
  c.send(String(i));
  log.sent.push(i);
}, 15);
true`, kind, total))
			waitForServer(t, ctx, f, func(got []string) bool { return len(got) >= 15 })

			// The old server goes: connections close with 1001 and,
			// for a moment, nothing answers but 503.
			f.down.Store(true)
			old := f.route.Load()
			f.route.Store(f.newRoute())
			sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			old.Shutdown(sctx)
			cancel()
			waitFor(t, ctx, `c.state !== "open"`, 10*time.Second)
			f.down.Store(false)

			waitFor(t, ctx, fmt.Sprintf(`log.sent.length === %d && c.state === "open" && c.bufferedAmount === 0`, total), 30*time.Second)
			last := fmt.Sprint(total)
			got := waitForServer(t, ctx, f, func(got []string) bool { return len(got) > 0 && got[len(got)-1] == last })
			queued := eval[[]string](t, ctx, `queued`)
			opens := eval[[]string](t, ctx, `log.opens.map((o) => o.transport)`)
			t.Logf("%s: %d opens %v, %d messages queued while reconnecting, server got %d of %d", kind, len(opens), opens, len(queued), len(got), total)
			if len(opens) < 2 {
				t.Errorf("the page did not reconnect: opens %v", opens)
			}
			checkInOrder(t, got, total, queued, kind != "websocket")
		})
	}
}

// checkInOrder checks that got holds 1..total in order without
// duplicates; it may skip messages only when lossy (WebSocket has no
// delivery acknowledgement, so what was written to a socket the server
// was closing is lost), and never one that was queued while reconnecting.
func checkInOrder(t *testing.T, got []string, total int, queued []string, exact bool) {
	t.Helper()
	prev := 0
	seen := make(map[string]bool)
	for _, s := range got {
		var n int
		fmt.Sscan(s, &n)
		if n <= prev {
			t.Fatalf("out of order or repeated: %s after %d in %q", s, prev, got)
		}
		if exact && n != prev+1 {
			t.Fatalf("lost %d..%d: %q", prev+1, n-1, got)
		}
		prev = n
		seen[s] = true
	}
	if prev != total {
		t.Fatalf("last message %d, want %d", prev, total)
	}
	for _, q := range queued {
		if !seen[q] {
			t.Errorf("message %s, queued while reconnecting, was lost: %q", q, got)
		}
	}
}

// waitForServer polls the recorder, keeping the page's event loop free.
func waitForServer(t *testing.T, ctx context.Context, f *fixture, ok func([]string) bool) []string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		got := f.rec.messages()
		if ok(got) {
			return got
		}
		if time.Now().After(deadline) {
			state, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.stringify(window.log)`))
			t.Fatalf("server got %q\npage log: %s", got, state)
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			t.Fatalf("server got %q: %v", got, ctx.Err())
		}
	}
}

// TestNetworkDrop cuts every TCP connection while an SSE session lives:
// the stream resumes from its Last-Event-ID and retried POSTs keep their
// Realtime-Seq, so nothing is lost or repeated in either direction.
func TestNetworkDrop(t *testing.T) {
	for _, kind := range []string{"sse", "longpoll"} {
		t.Run(kind, func(t *testing.T) {
			ctx := newTab(t)
			f := newFixture(t, nil)
			const total = 60
			f.open(t, ctx, fmt.Sprintf(`
const c = watch(new rt.RealtimeClient("/echo", {transports: [%q]}));
window.c = c;
let i = 0;
const timer = setInterval(() => {
  if (++i > %d) { clearInterval(timer); return; }
  c.send(String(i));
  log.sent.push(i);
}, 15);
true`, kind, total))
			waitForServer(t, ctx, f, func(got []string) bool { return len(got) >= 15 })
			f.conns.Drop()
			got := waitForServer(t, ctx, f, func(got []string) bool { return len(got) >= total })
			checkInOrder(t, got, total, nil, true)
			waitFor(t, ctx, fmt.Sprintf(`log.msgs.length >= %d`, total), 20*time.Second)
			echoes := eval[[]string](t, ctx, `log.msgs`)
			checkInOrder(t, echoes, total, nil, true)
			if n := eval[int](t, ctx, `log.opens.length`); n < 2 {
				t.Logf("%s: the drop did not interrupt the page (opens %d)", kind, n)
			}
			if gaps := eval[int](t, ctx, `log.gaps.length`); gaps != 0 {
				t.Errorf("%d gaps", gaps)
			}
		})
	}
}

// TestNative speaks the protocol with the browser's own WebSocket and
// EventSource, without the client library.
func TestNative(t *testing.T) {
	ctx := newTab(t)
	f := newFixture(t, nil)
	f.open(t, ctx, `
const ws = new WebSocket("ws://" + location.host + "/echo");
ws.onopen = () => ws.send("native ws");
ws.onmessage = (e) => { log.msgs.push("ws:" + e.data); ws.close(1000); };
const es = new EventSource("/echo?transport=sse");
es.addEventListener("session", async (e) => {
  const s = JSON.parse(e.data);
  log.opens.push({transport: s.transport});
  const r = await fetch("/echo", {method: "POST", headers: {"Realtime-Token": s.token, "Realtime-Seq": "1"}, body: "native sse"});
  log.msgs.push("post:" + r.status);
});
es.onmessage = (e) => { log.msgs.push("es:" + e.data + ":" + e.lastEventId.split(".")[1]); es.close(); };
true`)
	waitFor(t, ctx, `log.msgs.length >= 3`, 10*time.Second)
	got := eval[[]string](t, ctx, `log.msgs.slice().sort()`)
	if !equal(got, []string{"es:native sse:1", "post:204", "ws:native ws"}) {
		t.Errorf("page got %q", got)
	}
}

// TestBearer checks that options.token reaches the server on every
// transport, and never in a URL.
func TestBearer(t *testing.T) {
	const token = "tok/en+with?odd=chars&more~" // RFC 6750 b64token and more; ASCII, as headers need
	for _, kind := range []string{"websocket", "sse", "longpoll"} {
		t.Run(kind, func(t *testing.T) {
			ctx := newTab(t)
			f := newFixture(t, nil)
			tok, _ := json.Marshal(token)
			f.open(t, ctx, fmt.Sprintf(`
const c = watch(new rt.RealtimeClient("/echo", {transports: [%q], token: %s}));
window.c = c;
c.send("authorized");
true`, kind, tok))
			waitFor(t, ctx, `log.msgs.length >= 1`, 10*time.Second)
			f.rec.mu.Lock()
			bearers, kinds, urls := f.rec.bearers, f.rec.kinds, f.rec.urls
			f.rec.mu.Unlock()
			if len(bearers) != 1 || bearers[0] != token || string(kinds[0]) != kind {
				t.Errorf("server saw bearers %q on %v, want %q on %s", bearers, kinds, token, kind)
			}
			for _, u := range urls {
				if strings.Contains(u, "tok") {
					t.Errorf("token in URL %s", u)
				}
			}
			if kind == "websocket" {
				if p := eval[string](t, ctx, `log.opens[0].protocol`); p != realtime.Subprotocol {
					t.Errorf("selected subprotocol %q", p)
				}
			}
		})
	}
}

// TestCloseCodes checks the reconnect policy: a server close with an
// application code is final, a restart code (1012) is not.
func TestCloseCodes(t *testing.T) {
	for _, kind := range []string{"websocket", "sse", "longpoll"} {
		t.Run(kind, func(t *testing.T) {
			ctx := newTab(t)
			f := newFixture(t, nil)
			f.open(t, ctx, fmt.Sprintf(`
const c = watch(new rt.RealtimeClient("/echo", {transports: [%q]}));
window.c = c;
c.send("close:1012");
true`, kind))
			waitFor(t, ctx, `log.opens.length >= 2 && c.state === "open"`, 15*time.Second)
			run(t, ctx, `c.send("close:4001"); true`)
			waitFor(t, ctx, `log.closes.length === 1`, 10*time.Second)
			if got := eval[int](t, ctx, `log.closes[0].code`); got != 4001 {
				t.Errorf("close code %d, want 4001", got)
			}
			if got := eval[string](t, ctx, `c.state + " " + log.opens.length`); got != "closed 2" {
				t.Errorf("after a 4001 close: %s, want closed after 2 opens\npage log: %s", got, eval[string](t, ctx, `JSON.stringify(window.log)`))
			}
			if _, err := chromedp.Run(ctx, chromedp.Evaluate[chromedp.Void](`c.send("x")`)); err == nil {
				t.Errorf("send after close did not throw")
			}
		})
	}
}

// TestEventStreamParser feeds the SSE parser the HTML Standard's corner
// cases, split at every possible point.
func TestEventStreamParser(t *testing.T) {
	ctx := newTab(t)
	f := newFixture(t, nil)
	f.open(t, ctx, `true`)
	got := eval[[]string](t, ctx, `(() => {
const stream = "\ufeffdata: a\r\ndata:b\r\n\r\n: comment\nid: 1.5\nevent: gap\ndata: {\"after\":1}\n\nid: x\0y\rdata\r\rretry: 99x\nretry: 250\ndata:  two spaces\n\nunknown: f\nevent: e\n\ndata: last\n\n";
const runs = [];
for (let cut = 0; cut <= stream.length; cut++) {
  const out = [];
  const p = new rt.EventStreamParser((e) => out.push(e.type + "|" + e.data + "|" + e.id), (c) => out.push("#" + c), (r) => out.push("retry " + r));
  p.push(stream.slice(0, cut));
  p.push(stream.slice(cut));
  runs.push(JSON.stringify(out));
}
return [...new Set(runs)];
})()`)
	want := `["message|a\nb|","#comment","gap|{\"after\":1}|1.5","message||1.5","retry 250","message| two spaces|1.5","message|last|1.5"]`
	if len(got) != 1 || got[0] != want {
		t.Errorf("parser:\n got %q\nwant %q", got, want)
	}
}

func equal(a, b []string) bool {
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

// run evaluates a JS statement in the page.
func run(t *testing.T, ctx context.Context, js string) {
	t.Helper()
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[chromedp.Void](js)); err != nil {
		t.Fatalf("evaluating %s: %v", js, err)
	}
}
