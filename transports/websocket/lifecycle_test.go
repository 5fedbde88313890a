package websocket_test

// Lifecycle integration tests: real sockets on loopback, gorilla's Dialer
// as the client. Tests synchronise on channels and read deadlines, never on
// sleeps; keepalive is driven by small PingInterval/PongTimeout options.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/gorilla/websocket"
	"github.com/rtkit/rtkit/realtime"
	"github.com/rtkit/rtkit/realtime/rtgin"
	rtws "github.com/rtkit/rtkit/transports/websocket"
)

// lcWait bounds every wait in these tests; reaching it is a failure.
const lcWait = 5 * time.Second

// lcOpts returns o with a logger that discards the handler errors and
// panics these tests provoke on purpose.
func lcOpts(o realtime.Options) *realtime.Options {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Transports == nil {
		o.Transports = []realtime.Transport{rtws.New(rtws.Options{})}
	}
	return &o
}

// lcServe serves rt, wrapped by wrap when it is not nil, on loopback. The
// cleanup shuts the route down, then the server.
func lcServe(t *testing.T, rt *realtime.Route, wrap func(http.Handler) http.Handler) string {
	t.Helper()
	var h http.Handler = rt
	if wrap != nil {
		h = wrap(rt)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), lcWait)
		defer cancel()
		if err := rt.Shutdown(ctx); err != nil {
			t.Errorf("route shutdown: %v", err)
		}
		srv.Close()
	})
	return "ws" + strings.TrimPrefix(srv.URL, "http")
}

// lcDial opens a client connection that the test's cleanup closes.
func lcDial(t *testing.T, url string, hdr http.Header) *websocket.Conn {
	t.Helper()
	ws, resp, err := lcTryDial(url, hdr)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("dial %s: %v (status %d)", url, err, status)
	}
	t.Cleanup(func() { ws.Close() })
	return ws
}

// lcTryDial dials once; a refused handshake returns the response.
func lcTryDial(url string, hdr http.Header) (*websocket.Conn, *http.Response, error) {
	d := websocket.Dialer{HandshakeTimeout: lcWait}
	ws, resp, err := d.Dial(url, hdr)
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	return ws, resp, err
}

// lcRefused asserts that dialing url is refused with status want.
func lcRefused(t *testing.T, url string, hdr http.Header, want int) {
	t.Helper()
	ws, resp, err := lcTryDial(url, hdr)
	if err == nil {
		ws.Close()
		t.Fatalf("dial succeeded, want status %d", want)
	}
	if resp == nil || resp.StatusCode != want {
		t.Fatalf("dial: %v, response %v, want status %d", err, resp, want)
	}
}

// lcTurnedAway asserts that dialing url is upgraded and closed at once
// with 1013 (try again later) and reason, as the route answers a dial
// over its caps so that browsers can read why.
func lcTurnedAway(t *testing.T, url string, hdr http.Header, reason string) {
	t.Helper()
	ws, _, err := lcTryDial(url, hdr)
	if err != nil {
		t.Fatalf("dial: %v, want an upgrade closed with 1013", err)
	}
	defer ws.Close()
	ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, _, err = ws.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != realtime.CloseTryAgainLater || ce.Text != reason {
		t.Fatalf("read: %v, want close 1013 %q", err, reason)
	}
}

// lcAwait receives from ch or, after lcWait, fails the test with every
// goroutine's stack.
func lcAwait[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(lcWait):
		buf := make([]byte, 1<<20) // the stacks say who is stuck
		t.Logf("goroutines:\n%s", buf[:runtime.Stack(buf, true)])
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// lcRead reads one message within lcWait.
func lcRead(t *testing.T, ws *websocket.Conn) string {
	t.Helper()
	ws.SetReadDeadline(time.Now().Add(lcWait))
	_, p, err := ws.ReadMessage()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return string(p)
}

// lcSend writes a text message.
func lcSend(t *testing.T, ws *websocket.Conn, s string) {
	t.Helper()
	ws.SetWriteDeadline(time.Now().Add(lcWait))
	if err := ws.WriteMessage(websocket.TextMessage, []byte(s)); err != nil {
		t.Fatalf("write %q: %v", s, err)
	}
}

// lcReadEnd reads and discards messages until the connection ends, within
// lcWait, and returns the error that ended it.
func lcReadEnd(t *testing.T, ws *websocket.Conn) error {
	t.Helper()
	ws.SetReadDeadline(time.Now().Add(lcWait))
	for {
		if _, _, err := ws.ReadMessage(); err != nil {
			var ne interface{ Timeout() bool }
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("the server did not end the connection: %v", err)
			}
			return err
		}
	}
}

// lcCloseFrame asserts that the client ends on a close frame with code and
// reason.
func lcCloseFrame(t *testing.T, ws *websocket.Conn, code int, reason string) {
	t.Helper()
	err := lcReadEnd(t, ws)
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != code || ce.Text != reason {
		t.Fatalf("client read %v, want close frame %d %q", err, code, reason)
	}
}

// recorder is a handler that records each connection's callbacks as
// "open", "msg:<text>" and "close:<code>", and echoes messages unless
// onMessage says otherwise.
type recorder struct {
	onOpen    func(c *realtime.Conn) error
	onMessage func(c *realtime.Conn, m realtime.Message) error

	opened chan *realtime.Conn // each opened connection
	closed chan error          // each Close's cause

	mu     sync.Mutex
	events map[*realtime.Conn][]string
}

func newRecorder() *recorder {
	return &recorder{
		opened: make(chan *realtime.Conn, 16),
		closed: make(chan error, 16),
		events: make(map[*realtime.Conn][]string),
	}
}

func (r *recorder) add(c *realtime.Conn, ev string) {
	r.mu.Lock()
	r.events[c] = append(r.events[c], ev)
	r.mu.Unlock()
}

// log returns a copy of c's events.
func (r *recorder) log(c *realtime.Conn) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events[c])
}

func (r *recorder) opens() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.events)
}

func (r *recorder) handler() realtime.Handler {
	return realtime.Funcs{
		OnOpen: func(c *realtime.Conn) error {
			r.add(c, "open")
			r.opened <- c
			if r.onOpen != nil {
				return r.onOpen(c)
			}
			return nil
		},
		OnMessage: func(c *realtime.Conn, m realtime.Message) error {
			r.add(c, "msg:"+string(m.Data))
			if r.onMessage != nil {
				return r.onMessage(c, m)
			}
			return c.Send(m)
		},
		OnClose: func(c *realtime.Conn, err error) {
			r.add(c, fmt.Sprintf("close:%d", realtime.CloseStatus(err)))
			r.closed <- err
		},
	}
}

// ended waits for c's Close and for c to be fully over, asserts its events
// are want, with exactly one close, and returns Close's cause.
func (r *recorder) ended(t *testing.T, c *realtime.Conn, want ...string) error {
	t.Helper()
	cause := lcAwait(t, r.closed, "the handler's Close")
	lcAwait(t, c.Done(), "the connection's end")
	got := r.log(c)
	if !slices.Equal(got, want) {
		t.Errorf("events = %q, want %q", got, want)
	}
	closes := 0
	for _, ev := range got {
		if strings.HasPrefix(ev, "close:") {
			closes++
		}
	}
	if closes != 1 {
		t.Errorf("Close called %d times, want once", closes)
	}
	if c.Cause() != cause {
		t.Errorf("Conn.Cause() = %v, want Close's cause %v", c.Cause(), cause)
	}
	return cause
}

var errBoom = errors.New("boom")

// TestLifecycle checks, for every way a connection ends, that the handler
// sees Open, then each message in order, then Close exactly once with the
// documented code and cause, and that the client sees the documented end.
func TestLifecycle(t *testing.T) {
	type test struct {
		name      string
		opts      realtime.Options
		onMessage func(c *realtime.Conn, m realtime.Message) error
		// end makes the connection end after "a", "b", "c" were echoed and
		// checks what the client sees.
		end      func(t *testing.T, rt *realtime.Route, url string, ws *websocket.Conn)
		extra    []string // events between msg:c and close
		code     int
		reason   string // of the cause
		cause    error  // that errors.Is must find in the cause, if any
		notCause error  // that errors.Is must not find
	}
	onBye := func(c *realtime.Conn, m realtime.Message) error {
		switch string(m.Data) {
		case "bye":
			c.SendText("last words") // queued before the close: delivered first
			return c.Close(4002, "server bye")
		case "fail":
			return fmt.Errorf("handling %q: %w", m.Data, errBoom)
		case "panic":
			panic("kaboom")
		}
		return c.Send(m)
	}
	tests := []test{{
		name: "client close frame",
		end: func(t *testing.T, _ *realtime.Route, _ string, ws *websocket.Conn) {
			ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(4001, "client bye"), time.Now().Add(lcWait))
			lcCloseFrame(t, ws, 4001, "") // gorilla's echo carries the code only
		},
		code: 4001, reason: "client bye",
	}, {
		name:      "server close",
		onMessage: onBye,
		end: func(t *testing.T, _ *realtime.Route, _ string, ws *websocket.Conn) {
			lcSend(t, ws, "bye")
			if got := lcRead(t, ws); got != "last words" {
				t.Errorf("before the close frame: %q, want the message queued before Close", got)
			}
			lcCloseFrame(t, ws, 4002, "server bye")
		},
		extra: []string{"msg:bye"},
		code:  4002, reason: "server bye",
	}, {
		name: "tcp drop",
		end: func(t *testing.T, _ *realtime.Route, _ string, ws *websocket.Conn) {
			ws.NetConn().Close()
		},
		code: realtime.CloseAbnormal, notCause: realtime.ErrPingTimeout,
	}, {
		name: "ping timeout",
		// The client pongs while it reads the echoes; the first ping comes
		// after 20ms, and PongTimeout leaves room for a slow -race run.
		opts: realtime.Options{PingInterval: 20 * time.Millisecond, PongTimeout: 150 * time.Millisecond},
		end: func(t *testing.T, _ *realtime.Route, _ string, ws *websocket.Conn) {
			pinged := make(chan struct{}, 1)
			ws.SetPingHandler(func(string) error { // read pings, answer none
				select {
				case pinged <- struct{}{}:
				default:
				}
				return nil
			})
			err := lcReadEnd(t, ws)
			if websocket.IsCloseError(err, websocket.CloseAbnormalClosure) == false {
				t.Errorf("client read %v, want the connection dropped (1006)", err)
			}
			select {
			case <-pinged:
			default:
				t.Error("the server never pinged")
			}
		},
		code: realtime.CloseAbnormal, cause: realtime.ErrPingTimeout,
	}, {
		name: "read limit",
		opts: realtime.Options{ReadLimit: 64},
		end: func(t *testing.T, _ *realtime.Route, _ string, ws *websocket.Conn) {
			lcSend(t, ws, strings.Repeat("x", 500))
			lcCloseFrame(t, ws, websocket.CloseMessageTooBig, "")
		},
		code: realtime.CloseTooBig, cause: realtime.ErrReadLimit,
	}, {
		name:      "handler error",
		onMessage: onBye,
		end: func(t *testing.T, _ *realtime.Route, _ string, ws *websocket.Conn) {
			lcSend(t, ws, "fail")
			lcCloseFrame(t, ws, websocket.CloseInternalServerErr, "internal error")
		},
		extra: []string{"msg:fail"},
		code:  realtime.CloseInternalError, reason: "internal error", cause: errBoom,
	}, {
		name:      "handler panic",
		onMessage: onBye,
		end: func(t *testing.T, _ *realtime.Route, _ string, ws *websocket.Conn) {
			lcSend(t, ws, "panic")
			lcCloseFrame(t, ws, websocket.CloseInternalServerErr, "internal error")
		},
		extra: []string{"msg:panic"},
		code:  realtime.CloseInternalError, reason: "internal error", cause: realtime.ErrHandlerPanic,
	}, {
		name: "shutdown",
		end: func(t *testing.T, rt *realtime.Route, url string, ws *websocket.Conn) {
			done := make(chan error, 1)
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), lcWait)
				defer cancel()
				done <- rt.Shutdown(ctx)
			}()
			lcCloseFrame(t, ws, websocket.CloseGoingAway, "server shutting down")
			if err := lcAwait(t, done, "Shutdown"); err != nil {
				t.Errorf("Shutdown: %v", err)
			}
			lcRefused(t, url, nil, http.StatusServiceUnavailable)
		},
		code: realtime.CloseGoingAway, cause: realtime.ErrServerClosed,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := newRecorder()
			rec.onMessage = tt.onMessage
			rt := realtime.NewRoute(rec.handler(), lcOpts(tt.opts))
			url := lcServe(t, rt, nil)
			ws := lcDial(t, url, nil)
			c := lcAwait(t, rec.opened, "Open")
			for _, s := range []string{"a", "b", "c"} {
				lcSend(t, ws, s)
			}
			for _, s := range []string{"a", "b", "c"} {
				if got := lcRead(t, ws); got != s {
					t.Fatalf("echo = %q, want %q", got, s)
				}
			}
			tt.end(t, rt, url, ws)

			want := append([]string{"open", "msg:a", "msg:b", "msg:c"}, tt.extra...)
			want = append(want, "close:"+strconv.Itoa(tt.code))
			cause := rec.ended(t, c, want...)
			var ce *realtime.CloseError
			if !errors.As(cause, &ce) {
				t.Fatalf("cause %T %v is not a *realtime.CloseError", cause, cause)
			}
			if ce.Code != tt.code {
				t.Errorf("cause code = %d, want %d", ce.Code, tt.code)
			}
			if tt.reason != "" && ce.Reason != tt.reason {
				t.Errorf("cause reason = %q, want %q", ce.Reason, tt.reason)
			}
			if tt.cause != nil && !errors.Is(cause, tt.cause) {
				t.Errorf("cause %v does not wrap %v", cause, tt.cause)
			}
			if tt.notCause != nil && errors.Is(cause, tt.notCause) {
				t.Errorf("cause %v wraps %v", cause, tt.notCause)
			}
			if n := rt.Len(); n != 0 {
				t.Errorf("route still holds %d connections", n)
			}
		})
	}
}

// TestOpenError checks that an error from Open closes the connection with
// the code it chose, and that Close is still called, once.
func TestOpenError(t *testing.T) {
	rec := newRecorder()
	rec.onOpen = func(c *realtime.Conn) error {
		c.SendText("welcome") // queued before the close: still delivered
		return &realtime.CloseError{Code: 4003, Reason: "not today"}
	}
	rt := realtime.NewRoute(rec.handler(), lcOpts(realtime.Options{}))
	ws := lcDial(t, lcServe(t, rt, nil), nil)
	c := lcAwait(t, rec.opened, "Open")
	if got := lcRead(t, ws); got != "welcome" {
		t.Errorf("first message = %q, want the one Open queued", got)
	}
	lcCloseFrame(t, ws, 4003, "not today")
	if code := realtime.CloseStatus(rec.ended(t, c, "open", "close:4003")); code != 4003 {
		t.Errorf("close code = %d", code)
	}
}

// TestPanicClosesOnlyItsConnection checks that a panicking handler closes
// its own connection with 1011 while another one on the route goes on.
func TestPanicClosesOnlyItsConnection(t *testing.T) {
	rec := newRecorder()
	rec.onMessage = func(c *realtime.Conn, m realtime.Message) error {
		if string(m.Data) == "panic" {
			panic("kaboom")
		}
		return c.Send(m)
	}
	rt := realtime.NewRoute(rec.handler(), lcOpts(realtime.Options{}))
	url := lcServe(t, rt, nil)
	good := lcDial(t, url, nil)
	goodConn := lcAwait(t, rec.opened, "Open")
	bad := lcDial(t, url, nil)
	badConn := lcAwait(t, rec.opened, "Open")

	lcSend(t, bad, "panic")
	lcCloseFrame(t, bad, websocket.CloseInternalServerErr, "internal error")
	cause := rec.ended(t, badConn, "open", "msg:panic", "close:1011")
	var pe *realtime.PanicError
	if !errors.As(cause, &pe) || pe.Value != "kaboom" || len(pe.Stack) == 0 {
		t.Errorf("cause %v carries no *PanicError with the value and stack", cause)
	}

	for _, s := range []string{"still", "here"} {
		lcSend(t, good, s)
		if got := lcRead(t, good); got != s {
			t.Fatalf("other connection echoed %q, want %q", got, s)
		}
	}
	if goodConn.Cause() != nil {
		t.Errorf("other connection closed: %v", goodConn.Cause())
	}
	good.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""), time.Now().Add(lcWait))
	lcCloseFrame(t, good, 1000, "")
	rec.ended(t, goodConn, "open", "msg:still", "msg:here", "close:1000")
}

// TestConcurrentSend sends from 20 goroutines at once, 200 messages each,
// through a small queue that makes them wait for the writer: every message
// arrives, and each goroutine's messages arrive in the order it sent them.
func TestConcurrentSend(t *testing.T) {
	const senders, each = 20, 200
	sendErr := make(chan error, senders)
	rec := newRecorder()
	rec.onOpen = func(c *realtime.Conn) error {
		for g := range senders {
			c.Go(func(ctx context.Context) error {
				for i := range each {
					if err := c.SendText(fmt.Sprintf("%d/%d", g, i)); err != nil {
						sendErr <- fmt.Errorf("sender %d, message %d: %w", g, i, err)
						return nil
					}
				}
				return nil
			})
		}
		return nil
	}
	rt := realtime.NewRoute(rec.handler(), lcOpts(realtime.Options{SendQueue: 64, Overflow: realtime.OverflowBlock}))
	ws := lcDial(t, lcServe(t, rt, nil), nil)
	c := lcAwait(t, rec.opened, "Open")

	next := make([]int, senders)
	for n := 0; n < senders*each; n++ {
		var g, i int
		msg := lcRead(t, ws)
		if _, err := fmt.Sscanf(msg, "%d/%d", &g, &i); err != nil || g < 0 || g >= senders {
			t.Fatalf("message %d = %q", n, msg)
		}
		if i != next[g] {
			t.Fatalf("sender %d: got message %d, want %d", g, i, next[g])
		}
		next[g]++
	}
	select {
	case err := <-sendErr:
		t.Fatal(err)
	default:
	}
	if d := c.Dropped(); d != 0 {
		t.Errorf("Dropped() = %d, want 0", d)
	}
	ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""), time.Now().Add(lcWait))
	lcCloseFrame(t, ws, 1000, "")
	rec.ended(t, c, "open", "close:1000")
}

// slowReaderMsg is large enough for a few hundred of them to fill the
// loopback socket buffers of a client that never reads.
var slowReaderMsg = strings.Repeat("z", 32<<10)

// TestSlowReaderClosed checks the default overflow policy: a client that
// never reads fills its queue, Send returns ErrQueueFull and the connection
// closes with 1008 and the cause ErrQueueFull.
func TestSlowReaderClosed(t *testing.T) {
	const queue = 16
	sent := make(chan int, 1)
	rec := newRecorder()
	rec.onOpen = func(c *realtime.Conn) error {
		c.Go(func(ctx context.Context) error {
			for n := 0; n < 100000; n++ {
				if err := c.SendText(slowReaderMsg); err != nil {
					if !errors.Is(err, realtime.ErrQueueFull) {
						t.Errorf("Send after %d messages: %v, want ErrQueueFull", n, err)
					}
					sent <- n
					return nil
				}
			}
			t.Error("the queue never filled")
			sent <- -1
			return nil
		})
		return nil
	}
	rt := realtime.NewRoute(rec.handler(), lcOpts(realtime.Options{SendQueue: queue}))
	ws := lcDial(t, lcServe(t, rt, nil), nil)
	c := lcAwait(t, rec.opened, "Open")
	if n := lcAwait(t, sent, "the sender"); n < queue {
		t.Errorf("Send failed after %d messages, before the queue of %d was full", n, queue)
	}
	if err := c.SendText("late"); !errors.Is(err, realtime.ErrClosed) {
		t.Errorf("Send after the overflow = %v, want ErrClosed", err)
	}
	// Now the client reads: what was written, then the end of the
	// connection: a 1008 close frame, which it answers, or a drop if the
	// frame could not get through the full socket buffers in time. (Until
	// the client answers, the server waits up to WriteTimeout for it.)
	err := lcReadEnd(t, ws)
	if !websocket.IsCloseError(err, websocket.ClosePolicyViolation, websocket.CloseAbnormalClosure) {
		t.Errorf("client read %v, want 1008 or a dropped connection", err)
	}
	cause := rec.ended(t, c, "open", "close:1008")
	if !errors.Is(cause, realtime.ErrQueueFull) {
		t.Errorf("cause = %v, want it to wrap ErrQueueFull", cause)
	}
}

// TestSlowReaderDropOldest checks OverflowDropOldest: the connection stays
// open, the oldest messages are dropped to keep the queue within its
// bound, and every message is either delivered, in order, or counted in
// Dropped.
func TestSlowReaderDropOldest(t *testing.T) {
	const queue = 16
	sent := make(chan int, 1)
	rec := newRecorder()
	rec.onOpen = func(c *realtime.Conn) error {
		c.Go(func(ctx context.Context) error {
			n := 0
			for ; n < 100000 && c.Dropped() < 2*queue; n++ {
				if err := c.SendText(strconv.Itoa(n) + " " + slowReaderMsg); err != nil {
					t.Errorf("Send %d: %v", n, err)
					break
				}
			}
			if err := c.SendText("end"); err != nil {
				t.Errorf("Send end: %v", err)
			}
			sent <- n
			return nil
		})
		return nil
	}
	rt := realtime.NewRoute(rec.handler(), lcOpts(realtime.Options{SendQueue: queue, Overflow: realtime.OverflowDropOldest}))
	ws := lcDial(t, lcServe(t, rt, nil), nil)
	c := lcAwait(t, rec.opened, "Open")
	sentN := lcAwait(t, sent, "the sender")
	if c.Dropped() == 0 {
		t.Fatalf("nothing dropped after %d messages to a client that does not read", sentN)
	}
	if c.Cause() != nil {
		t.Fatalf("connection closed: %v", c.Cause())
	}

	// The client reads at last: the survivors arrive in order, then "end".
	got, last := 0, -1
	for {
		msg := lcRead(t, ws)
		if msg == "end" {
			break
		}
		n, err := strconv.Atoi(msg[:strings.IndexByte(msg, ' ')])
		if err != nil || n <= last || n >= sentN {
			t.Fatalf("message %q after %d", msg[:min(len(msg), 16)], last)
		}
		last = n
		got++
	}
	// Each message was written or dropped; and as the queue holds at most
	// 16, at most 16 of the last messages sent were still waiting.
	if d := c.Dropped(); uint64(got)+d != uint64(sentN) {
		t.Errorf("received %d + dropped %d != sent %d", got, d, sentN)
	}
	ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""), time.Now().Add(lcWait))
	lcCloseFrame(t, ws, 1000, "")
	rec.ended(t, c, "open", "close:1000")
}

// TestSlowReaderDropNewest checks OverflowDropNewest: Send refuses what
// does not fit with ErrQueueFull and the connection stays open.
func TestSlowReaderDropNewest(t *testing.T) {
	const queue = 16
	refused := make(chan int, 1)
	rec := newRecorder()
	rec.onOpen = func(c *realtime.Conn) error {
		// Within a callback nothing is written until it returns: the
		// queue's bound is exactly what Send accepts.
		for n := 0; n < 2*queue; n++ {
			if err := c.SendText(strconv.Itoa(n)); err != nil {
				if !errors.Is(err, realtime.ErrQueueFull) {
					t.Errorf("Send %d: %v", n, err)
				}
				refused <- n
				return nil
			}
		}
		refused <- -1
		return nil
	}
	rt := realtime.NewRoute(rec.handler(), lcOpts(realtime.Options{SendQueue: queue, Overflow: realtime.OverflowDropNewest}))
	ws := lcDial(t, lcServe(t, rt, nil), nil)
	c := lcAwait(t, rec.opened, "Open")
	if n := lcAwait(t, refused, "Open's sends"); n != queue {
		t.Errorf("first refused Send was number %d, want %d", n, queue)
	}
	for n := range queue {
		if got := lcRead(t, ws); got != strconv.Itoa(n) {
			t.Fatalf("message %d = %q", n, got)
		}
	}
	if c.Cause() != nil || c.Dropped() != 1 {
		t.Errorf("cause %v, dropped %d: want open with 1 dropped", c.Cause(), c.Dropped())
	}
	lcSend(t, ws, "still open")
	if got := lcRead(t, ws); got != "still open" {
		t.Errorf("echo = %q", got)
	}
	ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""), time.Now().Add(lcWait))
	lcCloseFrame(t, ws, 1000, "")
	rec.ended(t, c, "open", "msg:still open", "close:1000")
}

// TestOrigin checks that a cross-origin upgrade is refused with 403 before
// the handler runs, unless Options.AllowedOrigins lists the origin.
func TestOrigin(t *testing.T) {
	evil := http.Header{"Origin": {"http://evil.example"}}
	t.Run("refused by default", func(t *testing.T) {
		rec := newRecorder()
		rt := realtime.NewRoute(rec.handler(), lcOpts(realtime.Options{}))
		url := lcServe(t, rt, nil)
		lcRefused(t, url, evil, http.StatusForbidden)
		if n := rec.opens(); n != 0 {
			t.Errorf("handler opened %d connections", n)
		}
		// Same-origin and non-browser clients are accepted.
		same := http.Header{"Origin": {"http" + strings.TrimPrefix(url, "ws")}}
		for _, hdr := range []http.Header{same, nil} {
			ws := lcDial(t, url, hdr)
			c := lcAwait(t, rec.opened, "Open")
			ws.Close()
			lcAwait(t, c.Done(), "the connection's end")
		}
	})
	t.Run("allowed", func(t *testing.T) {
		rec := newRecorder()
		rt := realtime.NewRoute(rec.handler(), lcOpts(realtime.Options{AllowedOrigins: []string{"http://evil.example"}}))
		url := lcServe(t, rt, nil)
		ws := lcDial(t, url, evil)
		c := lcAwait(t, rec.opened, "Open")
		lcSend(t, ws, "hi")
		if got := lcRead(t, ws); got != "hi" {
			t.Errorf("echo = %q", got)
		}
		lcRefused(t, url, http.Header{"Origin": {"http://other.example"}}, http.StatusForbidden)
		ws.Close()
		lcAwait(t, c.Done(), "the connection's end")
	})
}

// TestMiddlewareRejects checks that net/http middleware refusing a request
// stops it before the upgrade: the client gets 401, the handler never runs
// and the refusal holds no place under MaxConns.
func TestMiddlewareRejects(t *testing.T) {
	rec := newRecorder()
	rt := realtime.NewRoute(rec.handler(), lcOpts(realtime.Options{MaxConns: 1}))
	auth := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Query().Get("token") != "secret" {
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
	url := lcServe(t, rt, auth)
	for range 3 {
		lcRefused(t, url, nil, http.StatusUnauthorized)
	}
	if n := rec.opens(); n != 0 || rt.Len() != 0 {
		t.Fatalf("handler opened %d, route holds %d after refusals", n, rt.Len())
	}
	ws := lcDial(t, url+"?token=secret", nil)
	c := lcAwait(t, rec.opened, "Open")
	ws.Close()
	lcAwait(t, c.Done(), "the connection's end")
}

// TestGinMiddlewareRejects adds to rtgin's own tests: behind gin, a request
// that middleware aborts takes no place under MaxConns, and the route's
// own refusals (1013 beyond MaxConns) still reach the client through gin.
func TestGinMiddlewareRejects(t *testing.T) {
	rec := newRecorder()
	rt := realtime.NewRoute(rec.handler(), lcOpts(realtime.Options{MaxConns: 1}))
	r := gin.New()
	r.GET("/ws", func(c *gin.Context) {
		if c.Query("token") != "secret" {
			c.AbortWithStatus(http.StatusUnauthorized)
		}
	}, rtgin.Handler(rt))
	url := lcServe(t, rt, func(http.Handler) http.Handler { return r }) + "/ws"
	for range 3 {
		lcRefused(t, url, nil, http.StatusUnauthorized)
	}
	if n := rec.opens(); n != 0 || rt.Len() != 0 {
		t.Fatalf("handler opened %d, route holds %d after refusals", n, rt.Len())
	}
	ws := lcDial(t, url+"?token=secret", nil)
	c := lcAwait(t, rec.opened, "Open")
	lcTurnedAway(t, url+"?token=secret", nil, "too many connections")
	ws.Close()
	lcAwait(t, c.Done(), "the connection's end")
	if n := rec.opens(); n != 1 {
		t.Errorf("handler opened %d connections, want 1", n)
	}
}

// TestMaxConns checks that the dial beyond MaxConns is turned away with
// 1013 without reaching the handler, and that a closed connection frees
// its place.
func TestMaxConns(t *testing.T) {
	const max = 3
	rec := newRecorder()
	rt := realtime.NewRoute(rec.handler(), lcOpts(realtime.Options{MaxConns: max}))
	url := lcServe(t, rt, nil)
	var clients []*websocket.Conn
	var conns []*realtime.Conn
	for range max {
		clients = append(clients, lcDial(t, url, nil))
		conns = append(conns, lcAwait(t, rec.opened, "Open"))
	}
	lcTurnedAway(t, url, nil, "too many connections")
	if n := rec.opens(); n != max {
		t.Fatalf("handler opened %d connections, want %d", n, max)
	}
	clients[0].Close()
	lcAwait(t, conns[0].Done(), "the connection's end")
	lcDial(t, url, nil)
	lcAwait(t, rec.opened, "Open")
	lcTurnedAway(t, url, nil, "too many connections")
	if n := rec.opens(); n != max+1 {
		t.Errorf("handler opened %d connections, want %d", n, max+1)
	}
}

// TestEveryAndGoStopBeforeClose checks that the connection's Every ticker
// and Go goroutines have stopped before the handler's Close runs, for a
// close by the server (from a tick) and by the client.
func TestEveryAndGoStopBeforeClose(t *testing.T) {
	for _, byServer := range []bool{true, false} {
		t.Run(fmt.Sprintf("server=%v", byServer), func(t *testing.T) {
			var (
				closing   atomic.Bool  // the handler's Close has started
				goDone    atomic.Bool  // the Go goroutine has returned
				ticks     atomic.Int32 // ticks run
				lateTicks atomic.Int32 // ticks run once Close had started
			)
			ticked := make(chan struct{}, 1)
			closed := make(chan [2]bool, 1)
			rt := realtime.NewRoute(realtime.Funcs{
				OnOpen: func(c *realtime.Conn) error {
					c.Every(5*time.Millisecond, func() {
						if closing.Load() {
							lateTicks.Add(1)
						}
						if ticks.Add(1) == 3 {
							if byServer {
								c.Close(1000, "done")
							}
							ticked <- struct{}{}
						}
					})
					c.Go(func(ctx context.Context) error {
						<-ctx.Done()
						// Linger a little after cancellation, so that a Close
						// that does not wait would run before we return.
						for range 1000 {
							runtime.Gosched()
						}
						goDone.Store(true)
						return nil
					})
					return nil
				},
				OnClose: func(c *realtime.Conn, err error) {
					closing.Store(true)
					closed <- [2]bool{goDone.Load(), c.Context().Err() != nil}
				},
			}, lcOpts(realtime.Options{}))
			ws := lcDial(t, lcServe(t, rt, nil), nil)
			lcAwait(t, ticked, "three ticks")
			if byServer {
				lcCloseFrame(t, ws, 1000, "done")
			} else {
				ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""), time.Now().Add(lcWait))
				lcCloseFrame(t, ws, 1000, "")
			}
			got := lcAwait(t, closed, "the handler's Close")
			if !got[0] {
				t.Error("Close ran before the Go goroutine returned")
			}
			if !got[1] {
				t.Error("Close ran with the connection's context not cancelled")
			}
			// A tick that would still come must come within a few periods.
			n := ticks.Load()
			<-time.After(30 * time.Millisecond)
			if late := lateTicks.Load(); late != 0 || ticks.Load() != n {
				t.Errorf("%d ticks after Close started (%d then %d ticks)", late, n, ticks.Load())
			}
		})
	}
}

// gatedHijacker holds the upgrade of a request between its admission by
// the route and the switch to WebSocket, until gate is closed.
type gatedHijacker struct {
	http.ResponseWriter
	entered chan<- struct{}
	gate    <-chan struct{}
}

func (h gatedHijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h.entered <- struct{}{}
	<-h.gate
	return http.NewResponseController(h.ResponseWriter).Hijack()
}

// TestShutdownDuringUpgrade checks a connection that Shutdown closes while
// its upgrade is under way: once it opens it is still closing, so Send in
// its Open returns ErrClosed, and it ends with 1001 and ErrServerClosed.
func TestShutdownDuringUpgrade(t *testing.T) {
	entered := make(chan struct{}, 1)
	gate := make(chan struct{})
	var openSend, openClose error
	rec := newRecorder()
	rec.onOpen = func(c *realtime.Conn) error {
		openSend = c.SendText("too late")
		openClose = c.Close(4000, "from Open")
		return nil
	}
	rt := realtime.NewRoute(rec.handler(), lcOpts(realtime.Options{}))
	url := lcServe(t, rt, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			next.ServeHTTP(gatedHijacker{w, entered, gate}, r)
		})
	})
	dialed := make(chan *websocket.Conn, 1)
	go func() {
		ws, _, err := lcTryDial(url, nil)
		if err != nil {
			t.Errorf("dial: %v", err)
		}
		dialed <- ws
	}()
	lcAwait(t, entered, "the upgrade")
	if n := rt.Len(); n != 1 {
		close(gate)
		t.Fatalf("route counts %d connections during the upgrade, want 1", n)
	}
	// A Shutdown whose context has already ended closes every connection,
	// the one being upgraded included, before it returns: the close is
	// requested before the upgrade can finish. The second Shutdown waits
	// for the handler's Close.
	done, cancel := context.WithCancel(context.Background())
	cancel()
	if err := rt.Shutdown(done); !errors.Is(err, context.Canceled) {
		t.Errorf("Shutdown with an ended context = %v, want context.Canceled", err)
	}
	close(gate)
	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), lcWait)
		defer cancel()
		shut <- rt.Shutdown(ctx)
	}()

	ws := lcAwait(t, dialed, "the dial")
	if ws == nil {
		t.FailNow()
	}
	defer ws.Close()
	lcCloseFrame(t, ws, websocket.CloseGoingAway, "server shutting down")
	if err := lcAwait(t, shut, "Shutdown"); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	c := lcAwait(t, rec.opened, "Open")
	cause := rec.ended(t, c, "open", "close:1001")
	if !errors.Is(cause, realtime.ErrServerClosed) {
		t.Errorf("cause = %v, want it to wrap ErrServerClosed", cause)
	}
	if !errors.Is(openSend, realtime.ErrClosed) || !errors.Is(openClose, realtime.ErrClosed) {
		t.Errorf("in Open, Send = %v and Close = %v on a closing connection, want ErrClosed", openSend, openClose)
	}
}

// TestBlockingSendInCallback checks OverflowBlock from inside a callback:
// a reply larger than the queue waits for the writer, it does not stall
// until WriteTimeout (the callback's own goroutine cannot write while it
// waits in Send).
func TestBlockingSendInCallback(t *testing.T) {
	const queue, reply = 4, 50
	sendErr := make(chan error, 1)
	rec := newRecorder()
	rec.onMessage = func(c *realtime.Conn, m realtime.Message) error {
		for i := range reply {
			if err := c.SendText(strconv.Itoa(i)); err != nil {
				sendErr <- fmt.Errorf("Send %d: %w", i, err)
				return nil
			}
		}
		return nil
	}
	rt := realtime.NewRoute(rec.handler(), lcOpts(realtime.Options{
		SendQueue: queue, Overflow: realtime.OverflowBlock, WriteTimeout: 2 * lcWait,
	}))
	ws := lcDial(t, lcServe(t, rt, nil), nil)
	c := lcAwait(t, rec.opened, "Open")
	lcSend(t, ws, "go")
	for i := range reply {
		ws.SetReadDeadline(time.Now().Add(lcWait))
		_, p, err := ws.ReadMessage()
		if err != nil {
			select {
			case err := <-sendErr:
				t.Fatal(err)
			default:
			}
			t.Fatalf("message %d: %v", i, err)
		}
		if string(p) != strconv.Itoa(i) {
			t.Fatalf("message %d = %q", i, p)
		}
	}
	ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""), time.Now().Add(lcWait))
	lcCloseFrame(t, ws, 1000, "")
	rec.ended(t, c, "open", "msg:go", "close:1000")
}
