package conformance_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/rtkit/rtkit/realtime"
	"github.com/rtkit/rtkit/testing/realtimetest"
	"github.com/rtkit/rtkit/transports/longpoll"
	"github.com/rtkit/rtkit/transports/sse"
	rtws "github.com/rtkit/rtkit/transports/websocket"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// transport is one way to reach a route.
type transport struct {
	kind   realtime.Kind
	server realtime.Transport
	dial   func(t *testing.T, f *fixture, h http.Header) (peer, error)
}

var transports = []transport{
	{realtime.Memory, realtimetest.Memory, dialMemory},
	{realtime.WebSocket, rtws.New(rtws.Options{}), dialWS},
	{realtime.SSE, sse.New(sse.Options{}), dialSSE},
	{realtime.LongPoll, longpoll.New(longpoll.Options{}), dialLongPoll},
}

// fixture is one route serving a recording handler over one transport.
type fixture struct {
	t     *testing.T
	tr    transport
	route *realtime.Route
	url   string
	clock *realtimetest.Clock

	mu     sync.Mutex
	logs   map[*realtime.Conn]*[]string
	opened chan *realtime.Conn
	closed chan closed
}

type closed struct {
	c   *realtime.Conn
	err error
}

// newFixture serves h (wrapped to record its calls) over tr with o.
func newFixture(t *testing.T, tr transport, h realtime.Funcs, o realtime.Options) *fixture {
	t.Helper()
	f := &fixture{t: t, tr: tr, logs: map[*realtime.Conn]*[]string{}, opened: make(chan *realtime.Conn, 16), closed: make(chan closed, 16)}
	f.clock = realtimetest.NewClock(time.Now())
	if o.Clock == nil {
		o.Clock = f.clock
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if len(o.Transports) == 0 {
		o.Transports = []realtime.Transport{tr.server}
	}
	rec := realtime.Funcs{
		OnOpen: func(c *realtime.Conn) error {
			f.log(c, "open")
			f.opened <- c
			if h.OnOpen != nil {
				return h.OnOpen(c)
			}
			return nil
		},
		OnMessage: func(c *realtime.Conn, m realtime.Message) error {
			f.log(c, "msg:"+m.Text())
			if h.OnMessage != nil {
				return h.OnMessage(c, m)
			}
			return nil
		},
		OnClose: func(c *realtime.Conn, err error) {
			f.log(c, fmt.Sprint("close:", realtime.CloseStatus(err)))
			if h.OnClose != nil {
				h.OnClose(c, err)
			}
			f.closed <- closed{c, err}
		},
	}
	f.route = realtime.NewRoute(rec, &o)
	if tr.kind != realtime.Memory {
		srv := httptest.NewServer(f.route)
		f.url = srv.URL + "/"
		t.Cleanup(srv.Close)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		f.route.Shutdown(ctx)
	})
	return f
}

// expire advances the clock by the resume window d until the session of
// a vanished client closes, and returns that close: the server notices
// the vanished client (its request's end) in its own time, and only then
// starts the window.
func (f *fixture) expire(d time.Duration) closed {
	f.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		select {
		case cl := <-f.closed:
			return cl
		default:
		}
		if time.Now().After(deadline) {
			f.t.Fatal("the session did not expire within 5s")
		}
		f.clock.Advance(d)
		runtime.Gosched()
		time.Sleep(time.Millisecond)
	}
}

func (f *fixture) log(c *realtime.Conn, e string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	l := f.logs[c]
	if l == nil {
		l = new([]string)
		f.logs[c] = l
	}
	*l = append(*l, e)
}

// calls returns what the handler saw of c.
func (f *fixture) calls(c *realtime.Conn) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return strings.Join(*f.logs[c], " ")
}

func (f *fixture) dial(h http.Header) peer {
	f.t.Helper()
	p, err := f.tr.dial(f.t, f, h)
	if err != nil {
		f.t.Fatalf("dial: %v", err)
	}
	return p
}

func (f *fixture) nextOpen() *realtime.Conn {
	f.t.Helper()
	select {
	case c := <-f.opened:
		return c
	case <-time.After(5 * time.Second):
		f.t.Fatal("no Open within 5s")
	}
	return nil
}

func (f *fixture) nextClose() closed {
	f.t.Helper()
	select {
	case cl := <-f.closed:
		return cl
	case <-time.After(5 * time.Second):
		f.t.Fatal("no Close within 5s")
	}
	return closed{}
}

// noMoreCloses asserts that Close ran once: nothing else arrives once the
// connection is done.
func (f *fixture) noMoreCloses(c *realtime.Conn) {
	f.t.Helper()
	<-c.Done()
	select {
	case cl := <-f.closed:
		f.t.Fatalf("a second Close: %v", cl.err)
	default:
	}
	if n := strings.Count(f.calls(c), "close:"); n != 1 {
		f.t.Fatalf("Close ran %d times: %s", n, f.calls(c))
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return c
}

func recv(t *testing.T, p peer) string {
	t.Helper()
	m, err := p.Receive(ctx(t))
	if err != nil {
		t.Fatalf("receive: %v", err)
	}
	return m
}

func closeOf(t *testing.T, p peer) *realtime.CloseError {
	t.Helper()
	for {
		m, err := p.Receive(ctx(t))
		if err == nil {
			t.Fatalf("a message %q where the close was expected", m)
		}
		var ce *realtime.CloseError
		if !errors.As(err, &ce) {
			t.Fatalf("receive: %v", err)
		}
		return ce
	}
}

// eventually waits, within a deadline, for cond: for state that another
// goroutine reaches with no event to wait on (a request's end noticed).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 5s", what)
		}
		runtime.Gosched()
		time.Sleep(time.Millisecond)
	}
}

var echo = realtime.Funcs{OnMessage: func(c *realtime.Conn, m realtime.Message) error { return c.Send(m) }}

var errBoom = errors.New("boom")

func each(t *testing.T, test func(t *testing.T, tr transport)) {
	for _, tr := range transports {
		t.Run(string(tr.kind), func(t *testing.T) { test(t, tr) })
	}
}

func TestOrderAndClientClose(t *testing.T) {
	each(t, func(t *testing.T, tr transport) {
		f := newFixture(t, tr, echo, realtime.Options{})
		p := f.dial(nil)
		c := f.nextOpen()
		for _, s := range []string{"one", "two", "three"} {
			if err := p.SendText(s); err != nil {
				t.Fatal(err)
			}
		}
		for _, want := range []string{"one", "two", "three"} {
			if got := recv(t, p); got != want {
				t.Fatalf("got %q, want %q", got, want)
			}
		}
		p.Close(4000, "bye")
		cl := f.nextClose()
		if ce, ok := cl.err.(*realtime.CloseError); !ok || ce.Code != 4000 || ce.Reason != "bye" {
			t.Fatalf("cause %#v, want 4000 bye", cl.err)
		}
		f.noMoreCloses(c)
		if got := f.calls(c); got != "open msg:one msg:two msg:three close:4000" {
			t.Fatalf("calls: %s", got)
		}
	})
}

func TestServerClose(t *testing.T) {
	each(t, func(t *testing.T, tr transport) {
		f := newFixture(t, tr, realtime.Funcs{OnMessage: func(c *realtime.Conn, m realtime.Message) error {
			c.SendText("last words")
			return c.Close(4001, "done")
		}}, realtime.Options{})
		p := f.dial(nil)
		c := f.nextOpen()
		p.SendText("x")
		if got := recv(t, p); got != "last words" {
			t.Fatalf("got %q: messages sent before Close must arrive", got)
		}
		if ce := closeOf(t, p); ce.Code != 4001 || ce.Reason != "done" {
			t.Fatalf("peer saw %v", ce)
		}
		if cl := f.nextClose(); realtime.CloseStatus(cl.err) != 4001 {
			t.Fatalf("cause %v", cl.err)
		}
		f.noMoreCloses(c)
	})
}

func TestHandlerErrorAndPanic(t *testing.T) {
	for _, tc := range []struct {
		name string
		fail func() error
		is   error
	}{
		{"error", func() error { return errBoom }, errBoom},
		{"panic", func() error { panic("boom") }, realtime.ErrHandlerPanic},
	} {
		t.Run(tc.name, func(t *testing.T) {
			each(t, func(t *testing.T, tr transport) {
				f := newFixture(t, tr, realtime.Funcs{OnMessage: func(c *realtime.Conn, m realtime.Message) error {
					if m.Text() == "fail" {
						return tc.fail()
					}
					return c.Send(m)
				}}, realtime.Options{})
				bad, good := f.dial(nil), f.dial(nil)
				f.nextOpen() // the two may open in either order
				f.nextOpen()
				bad.SendText("fail")
				if ce := closeOf(t, bad); ce.Code != realtime.CloseInternalError || ce.Reason != "internal error" {
					t.Fatalf("peer saw %v, want 1011 internal error", ce)
				}
				cl := f.nextClose()
				if !errors.Is(cl.err, tc.is) {
					t.Fatalf("cause %v, want %v", cl.err, tc.is)
				}
				f.noMoreCloses(cl.c)
				// Everyone else is still served.
				good.SendText("still here")
				if got := recv(t, good); got != "still here" {
					t.Fatalf("other connection got %q", got)
				}
			})
		})
	}
}

func TestReadLimit(t *testing.T) {
	each(t, func(t *testing.T, tr transport) {
		f := newFixture(t, tr, echo, realtime.Options{ReadLimit: 16})
		p := f.dial(nil)
		c := f.nextOpen()
		p.SendText("small")
		if got := recv(t, p); got != "small" {
			t.Fatalf("got %q", got)
		}
		err := p.SendText(strings.Repeat("x", 17))
		if s := statusOf(err); err != nil && s != http.StatusRequestEntityTooLarge {
			t.Fatalf("oversized send: %v", err)
		}
		if ce := closeOf(t, p); ce.Code != realtime.CloseTooBig {
			t.Fatalf("peer saw %v, want 1009", ce)
		}
		if cl := f.nextClose(); !errors.Is(cl.err, realtime.ErrReadLimit) {
			t.Fatalf("cause %v", cl.err)
		}
		f.noMoreCloses(c)
		if got := f.calls(c); got != "open msg:small close:1009" {
			t.Fatalf("calls: %s", got)
		}
	})
}

func TestForeignOriginRefused(t *testing.T) {
	each(t, func(t *testing.T, tr transport) {
		f := newFixture(t, tr, echo, realtime.Options{})
		_, err := tr.dial(t, f, http.Header{"Origin": {"http://evil.example"}})
		if statusOf(err) != http.StatusForbidden {
			t.Fatalf("dial from a foreign origin: %v, want 403", err)
		}
		select {
		case <-f.opened:
			t.Fatal("Open ran for a refused origin")
		default:
		}
		// Allowed when configured.
		f = newFixture(t, tr, echo, realtime.Options{AllowedOrigins: []string{"http://app.example"}})
		p, err := tr.dial(t, f, http.Header{"Origin": {"http://app.example"}})
		if err != nil {
			t.Fatal(err)
		}
		p.SendText("hi")
		if got := recv(t, p); got != "hi" {
			t.Fatalf("got %q", got)
		}
	})
}

func TestDroppedPeer(t *testing.T) {
	each(t, func(t *testing.T, tr transport) {
		f := newFixture(t, tr, echo, realtime.Options{ResumeWindow: 30 * time.Second})
		p := f.dial(nil)
		c := f.nextOpen()
		p.Drop()
		var cl closed
		if tr.kind == realtime.SSE || tr.kind == realtime.LongPoll {
			// The session waits ResumeWindow for the client to come back.
			select {
			case cl := <-f.closed:
				t.Fatalf("closed before ResumeWindow: %v", cl.err)
			default:
			}
			cl = f.expire(30 * time.Second)
		} else {
			cl = f.nextClose()
		}
		if realtime.CloseStatus(cl.err) != realtime.CloseAbnormal {
			t.Fatalf("cause %v, want 1006", cl.err)
		}
		f.noMoreCloses(c)
	})
}

func TestShutdownGoingAway(t *testing.T) {
	each(t, func(t *testing.T, tr transport) {
		f := newFixture(t, tr, echo, realtime.Options{})
		p := f.dial(nil)
		c := f.nextOpen()
		done := make(chan error, 1)
		go func() { done <- f.route.Shutdown(ctx(t)) }()
		if ce := closeOf(t, p); ce.Code != realtime.CloseGoingAway {
			t.Fatalf("peer saw %v, want 1001", ce)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if cl := f.nextClose(); !errors.Is(cl.err, realtime.ErrServerClosed) {
			t.Fatalf("cause %v", cl.err)
		}
		f.noMoreCloses(c)
	})
}

func TestConcurrentSends(t *testing.T) {
	each(t, func(t *testing.T, tr transport) {
		const senders, each = 8, 50
		f := newFixture(t, tr, realtime.Funcs{}, realtime.Options{Overflow: realtime.OverflowBlock, ResumeBuffer: senders * each})
		p := f.dial(nil)
		c := f.nextOpen()
		var wg sync.WaitGroup
		for g := range senders {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range each {
					if err := c.SendText(fmt.Sprintf("%d/%d", g, i)); err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
		next := make([]int, senders)
		for range senders * each {
			var g, i int
			if _, err := fmt.Sscanf(recv(t, p), "%d/%d", &g, &i); err != nil || next[g] != i {
				t.Fatalf("sender %d: got %d, want %d (%v)", g, i, next[g], err)
			}
			next[g]++
		}
		wg.Wait()
	})
}

// sessions are the transports whose connection outlives a dropped request.
func eachSession(t *testing.T, test func(t *testing.T, tr transport)) {
	for _, tr := range transports {
		if tr.kind == realtime.SSE || tr.kind == realtime.LongPoll {
			t.Run(string(tr.kind), func(t *testing.T) { test(t, tr) })
		}
	}
}

func TestResumeWithoutLoss(t *testing.T) {
	eachSession(t, func(t *testing.T, tr transport) {
		f := newFixture(t, tr, echo, realtime.Options{})
		p := f.dial(nil).(resumer)
		c := f.nextOpen()
		p.SendText("before")
		if got := recv(t, p); got != "before" {
			t.Fatalf("got %q", got)
		}
		p.Drop()
		for i := range 5 {
			if err := c.SendText(fmt.Sprint("while away ", i)); err != nil {
				t.Fatal(err)
			}
		}
		p.Resume(t)
		for i := range 5 {
			if got, want := recv(t, p), fmt.Sprint("while away ", i); got != want {
				t.Fatalf("got %q, want %q", got, want)
			}
		}
		p.SendText("after")
		if got := recv(t, p); got != "after" {
			t.Fatalf("got %q, want after (each message exactly once)", got)
		}
		if c.Cause() != nil {
			t.Fatalf("the handler saw the blip: %v", c.Cause())
		}
	})
}

func TestResumeBeyondBacklogIsAGap(t *testing.T) {
	eachSession(t, func(t *testing.T, tr transport) {
		f := newFixture(t, tr, echo, realtime.Options{ResumeBuffer: 3, Overflow: realtime.OverflowDropOldest})
		p := f.dial(nil).(resumer)
		c := f.nextOpen()
		p.Drop()
		for i := range 6 {
			c.SendText(fmt.Sprint(i))
		}
		p.Resume(t)
		if got := recv(t, p); got != `gap:{"after":0}` {
			t.Fatalf("got %q, want the gap first", got)
		}
		for _, want := range []string{"3", "4", "5"} {
			if got := recv(t, p); got != want {
				t.Fatalf("got %q, want %q", got, want)
			}
		}
	})
}

// Session tokens: a wrong one, another identity's, and an expired one all
// get 404 with a JSON error, and reach no handler.
func TestTokenMisuse(t *testing.T) {
	eachSession(t, func(t *testing.T, tr transport) {
		f := newFixture(t, tr, echo, realtime.Options{
			Identity:     func(r *http.Request) string { return r.Header.Get("X-User") },
			ResumeWindow: 10 * time.Second,
		})
		ada := f.dial(http.Header{"X-User": {"ada"}})
		c := f.nextOpen()
		token := ada.(resumer).Token()
		post := func(token, user string) (int, string) {
			req, _ := http.NewRequest(http.MethodPost, f.url, strings.NewReader("x"))
			req.Header.Set(realtime.HeaderToken, token)
			req.Header.Set("X-User", user)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, string(b)
		}
		for _, tc := range []struct{ name, token, user string }{
			{"wrong", "AAAAAAAAAAAAAAAAAAAAAAAAAA", "ada"},
			{"another identity's", token, "bob"},
		} {
			if code, body := post(tc.token, tc.user); code != http.StatusNotFound || !strings.Contains(body, `"error"`) {
				t.Fatalf("%s token: %d %s", tc.name, code, body)
			}
		}
		if got := f.calls(c); got != "open" {
			t.Fatalf("a misused token reached the handler: %s", got)
		}
		// Expired: closed, then forgotten after ResumeWindow.
		ada.Close(realtime.CloseNormal, "")
		f.nextClose()
		f.clock.Advance(10 * time.Second)
		if code, body := post(token, "ada"); code != http.StatusNotFound {
			t.Fatalf("expired token: %d %s", code, body)
		}
	})
}

// SSE and long-polling share the session: a client that falls back from
// one to the other mid-conversation loses nothing.
func TestSwitchFromSSEToLongPoll(t *testing.T) {
	f := newFixture(t, transports[2], echo, realtime.Options{
		Transports: []realtime.Transport{sse.New(sse.Options{}), longpoll.New(longpoll.Options{})},
	})
	p, err := dialSSE(t, f, nil)
	if err != nil {
		t.Fatal(err)
	}
	sp := p.(*ssePeer)
	sp.SendText("on sse")
	if got := recv(t, sp); got != "on sse" {
		t.Fatalf("got %q", got)
	}
	sp.Drop()
	sp.SendText("sent meanwhile")

	lp := &lpPeer{session: sp.session}
	lp.poll()
	defer lp.stop()
	if got := recv(t, lp); got != "sent meanwhile" {
		t.Fatalf("got %q on long-poll", got)
	}
	lp.SendText("on longpoll")
	if got := recv(t, lp); got != "on longpoll" {
		t.Fatalf("got %q", got)
	}
}

func TestBinaryMessages(t *testing.T) {
	each(t, func(t *testing.T, tr transport) {
		f := newFixture(t, tr, realtime.Funcs{OnOpen: func(c *realtime.Conn) error {
			return c.SendBinary([]byte{0, 1, 2, 0xff})
		}}, realtime.Options{})
		p := f.dial(nil)
		want := "bin:AAEC/w==" // base64 over SSE and long-polling, a binary frame over WebSocket
		if tr.kind == realtime.Memory {
			want = "\x00\x01\x02\xff"
		}
		if got := recv(t, p); got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	})
}

// A session is bound to the origin that opened it. Browsers send no Origin
// on same-origin GETs, so the route's own origin and no Origin are one.
func TestSessionOriginBinding(t *testing.T) {
	eachSession(t, func(t *testing.T, tr transport) {
		f := newFixture(t, tr, echo, realtime.Options{AllowedOrigins: []string{"http://app.example"}})
		self := "http://" + strings.TrimPrefix(strings.TrimSuffix(f.url, "/"), "http://")
		p := f.dial(http.Header{"Origin": {self}}).(resumer)
		s := sessionOf(p)
		if tr.kind == realtime.LongPoll {
			p.Drop() // polls read the header: change it between polls
		}
		s.header = nil // later requests carry no Origin, as a browser's same-origin GET
		if err := p.SendText("no origin"); err != nil {
			t.Fatal(err)
		}
		if tr.kind == realtime.LongPoll {
			p.Resume(t)
		}
		if got := recv(t, p); got != "no origin" {
			t.Fatalf("got %q", got)
		}
		if tr.kind == realtime.LongPoll {
			p.Drop()
		}
		s.header = http.Header{"Origin": {"http://app.example"}} // allowed, but not this session's
		if err := p.SendText("x"); statusOf(err) != http.StatusNotFound {
			t.Fatalf("another allowed origin: %v, want 404", err)
		}
	})
}

// The session token is a credential: no log line carries it, at any level.
// (No exported method of Conn or Route returns it either.)
func TestTokenNeverLogged(t *testing.T) {
	eachSession(t, func(t *testing.T, tr transport) {
		var buf syncBuffer
		logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
		f := newFixture(t, tr, realtime.Funcs{OnMessage: func(c *realtime.Conn, m realtime.Message) error {
			c.Logger().Info("got", "text", m.Text())
			if m.Text() == "fail" {
				panic("boom")
			}
			return c.Send(m)
		}}, realtime.Options{Logger: logger})
		p := f.dial(nil).(resumer)
		c := f.nextOpen()
		p.SendText("hi")
		recv(t, p)
		p.SendText("fail")
		closeOf(t, p)
		<-c.Done()
		if !strings.Contains(buf.String(), c.ID()) {
			t.Fatalf("the log does not name the connection: %s", buf.String())
		}
		if strings.Contains(buf.String(), p.Token()) {
			t.Fatalf("the token is in the log:\n%s", buf.String())
		}
	})
}

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
