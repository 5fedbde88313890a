package realtime

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
	"sync/atomic"
	"testing"
	"time"
)

// These tests drive the connection's scheduler directly through a reader
// wire made of channels, so they can see what the core does with its
// reader, handler and writer roles.

// chanWire is a reader: the test plays the peer by sending on in,
// receiving from out and calling hangUp.
type chanWire struct {
	in   chan Message  // the peer's messages; unbuffered, so a send completes only when the core reads
	out  chan Message  // what the core wrote
	gone chan struct{} // closed by hangUp or Close
	once sync.Once
	why  error

	reading  atomic.Int32 // Read calls in progress
	overlap  atomic.Bool  // two Read calls ever overlapped
	closeMu  sync.Mutex
	closes   []int
	failNext atomic.Bool // the next Write fails
}

func newChanWire() *chanWire {
	return &chanWire{in: make(chan Message), out: make(chan Message, 1024), gone: make(chan struct{})}
}

func (w *chanWire) Read() (Message, error) {
	if w.reading.Add(1) > 1 {
		w.overlap.Store(true)
	}
	defer w.reading.Add(-1)
	select {
	case m := <-w.in:
		return m, nil
	case <-w.gone:
		return Message{}, w.why
	}
}

func (w *chanWire) Write(msgs []Message) error {
	if w.failNext.Load() {
		return errors.New("broken pipe")
	}
	for _, m := range msgs {
		select {
		case w.out <- m:
		case <-w.gone:
			return w.why
		}
	}
	return nil
}

func (w *chanWire) Close(code int, reason string) error {
	w.closeMu.Lock()
	w.closes = append(w.closes, code)
	w.closeMu.Unlock()
	w.hangUp(&CloseError{Code: code, Reason: reason})
	return nil
}

// hangUp ends the wire: the next (or current) Read returns err.
func (w *chanWire) hangUp(err error) {
	w.once.Do(func() {
		w.why = err
		close(w.gone)
	})
}

// testHandler is a handler that records what it saw and lets a test hold a
// callback for as long as it likes.
type testHandler struct {
	mu      sync.Mutex
	seen    []string
	in      atomic.Int32 // callbacks running
	overlap atomic.Bool
	started chan string   // each callback's name, as it starts
	release chan struct{} // closed to let "slow" callbacks return
	closed  chan error
	message func(c *Conn, m Message) error
}

func newTestHandler() *testHandler {
	return &testHandler{started: make(chan string, 1024), release: make(chan struct{}), closed: make(chan error, 1)}
}

func (h *testHandler) enter(name string) {
	if h.in.Add(1) > 1 {
		h.overlap.Store(true)
	}
	h.mu.Lock()
	h.seen = append(h.seen, name)
	h.mu.Unlock()
	h.started <- name
}

func (h *testHandler) Open(c *Conn) error {
	h.enter("open")
	h.in.Add(-1)
	return nil
}

func (h *testHandler) Message(c *Conn, m Message) error {
	h.enter(m.Text())
	defer h.in.Add(-1)
	if m.Text() == "slow" {
		select {
		case <-h.release:
		case <-c.Context().Done():
			h.mu.Lock()
			h.seen = append(h.seen, "cancelled")
			h.mu.Unlock()
		}
	}
	if h.message != nil {
		return h.message(c, m)
	}
	return nil
}

func (h *testHandler) Close(c *Conn, err error) {
	h.enter("close")
	h.in.Add(-1)
	h.closed <- err
}

func (h *testHandler) calls() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.seen...)
}

// testTransport serves no HTTP: the tests admit connections themselves.
type testTransport struct{}

func (testTransport) Kind() Kind                                   { return "test" }
func (testTransport) Bind(*Route) (TransportHandler, error)        { return testTransport{}, nil }
func (testTransport) Match(*http.Request) bool                     { return false }
func (testTransport) ServeHTTP(http.ResponseWriter, *http.Request) {}

// startConn serves h over a new chanWire.
func startConn(t *testing.T, h Handler, o Options) (*Conn, *chanWire) {
	t.Helper()
	w := newChanWire()
	return startConnOn(t, h, o, w), w
}

// startConnOn serves h over w.
func startConnOn(t *testing.T, h Handler, o Options, w *chanWire) *Conn {
	t.Helper()
	return startConnAs(t, h, o, w, w)
}

// startConnAs serves h over r, a wire built on w.
func startConnAs(t *testing.T, h Handler, o Options, r reader, w *chanWire) *Conn {
	t.Helper()
	o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	o.Transports = []Transport{testTransport{}}
	rt := NewRoute(h, &o)
	c, err := rt.admit(httptest.NewRequest("GET", "/", nil), "test")
	if err != nil {
		t.Fatal(err)
	}
	c.start(r)
	t.Cleanup(func() {
		w.hangUp(io.EOF)
		<-c.Done()
		if w.overlap.Load() {
			t.Error("two goroutines read the wire at once")
		}
	})
	return c
}

func within[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(5 * time.Second):
		t.Fatalf("%s: not within 5s", what)
	}
	var zero T
	return zero
}

// send plays the peer sending m: it completes once the core has read it.
func send(t *testing.T, w *chanWire, m string) {
	t.Helper()
	select {
	case w.in <- Text(m):
	case <-time.After(5 * time.Second):
		t.Fatalf("the core did not read %q within 5s", m)
	}
}

// A callback that holds its goroutine hands reading to another one:
// messages are still read (into the inbox), and handled in order once it
// returns; reads never overlap and callbacks never overlap.
func TestSlowCallbackHandsOffReading(t *testing.T) {
	h := newTestHandler()
	c, w := startConn(t, h, Options{})
	within(t, h.started, "open")
	send(t, w, "slow")
	within(t, h.started, "slow")
	send(t, w, "a") // read while "slow" runs
	send(t, w, "b")
	close(h.release)
	within(t, h.started, "a")
	within(t, h.started, "b")
	send(t, w, "c")
	within(t, h.started, "c")
	w.hangUp(&CloseError{Code: CloseNormal})
	within(t, h.closed, "close")
	<-c.Done()
	if got, want := h.calls(), []string{"open", "slow", "a", "b", "c", "close"}; !equal(got, want) {
		t.Fatalf("calls %v, want %v", got, want)
	}
	if h.overlap.Load() {
		t.Fatal("callbacks overlapped")
	}
}

// Once the handler has caught up, the goroutine that lost the reader role
// leaves: an idle connection is back to one goroutine.
func TestIdleConnectionKeepsOneGoroutine(t *testing.T) {
	h := newTestHandler()
	c, w := startConn(t, h, Options{})
	within(t, h.started, "open")
	waitFor(t, "one goroutine when idle", func() bool { return connGoroutines(c) == 1 && w.reading.Load() == 1 })
	send(t, w, "slow")
	within(t, h.started, "slow")
	send(t, w, "a")
	if n := connGoroutines(c); n != 2 {
		t.Fatalf("%d goroutines during the slow callback, want 2 (the callback's and the reader)", n)
	}
	close(h.release)
	within(t, h.started, "a")
	waitFor(t, "one goroutine after the slow callback", func() bool { return connGoroutines(c) == 1 && w.reading.Load() == 1 })
}

// connGoroutines counts the goroutines running c's methods.
func connGoroutines(c *Conn) int {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	mark := fmt.Sprintf("realtime.(*Conn).readLoop(%p", c)
	markCb := fmt.Sprintf("realtime.(*Conn).run(%p", c)
	n := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, mark) || strings.Contains(g, markCb) {
			n++
		}
	}
	return n
}

// A full inbox stops the reader until the handler makes room; the message
// in its hands is not lost.
func TestFullInboxPausesReading(t *testing.T) {
	h := newTestHandler()
	c, w := startConn(t, h, Options{Inbox: 2})
	within(t, h.started, "open")
	send(t, w, "slow")
	within(t, h.started, "slow")
	send(t, w, "a")
	send(t, w, "b")
	send(t, w, "c") // read, but the inbox is full: the reader waits with it
	waitFor(t, "the reader pauses", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.in.msgs == 2 && c.in.room != nil && w.reading.Load() == 0
	})
	close(h.release)
	for _, m := range []string{"a", "b", "c"} {
		within(t, h.started, m)
	}
	send(t, w, "d")
	within(t, h.started, "d")
}

// The peer leaving cancels the context of the callback that runs, at
// once, and Close follows it.
func TestPeerLeavingCancelsTheCallback(t *testing.T) {
	h := newTestHandler()
	c, w := startConn(t, h, Options{})
	within(t, h.started, "open")
	send(t, w, "slow")
	within(t, h.started, "slow")
	send(t, w, "queued") // waits in the inbox, discarded on close
	w.hangUp(&CloseError{Code: 4000, Reason: "bye"})
	err := within(t, h.closed, "close")
	if CloseStatus(err) != 4000 {
		t.Fatalf("close %v", err)
	}
	<-c.Done()
	if got, want := h.calls(), []string{"open", "slow", "cancelled", "close"}; !equal(got, want) {
		t.Fatalf("calls %v, want %v", got, want)
	}
}

// A server shutdown still hands the handler what its inbox holds (for a
// session, messages whose POST was answered), after the running callback
// and before Close.
func TestShutdownRunsQueuedMessages(t *testing.T) {
	h := newTestHandler()
	c, w := startConn(t, h, Options{})
	within(t, h.started, "open")
	send(t, w, "slow")
	within(t, h.started, "slow")
	send(t, w, "queued") // read: in the inbox once received has queued it
	waitFor(t, "the message queued", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.in.msgs == 1
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.route.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	err := within(t, h.closed, "close")
	if !errors.Is(err, ErrServerClosed) {
		t.Fatalf("close %v", err)
	}
	if got, want := h.calls(), []string{"open", "slow", "cancelled", "queued", "close"}; !equal(got, want) {
		t.Fatalf("calls %v, want %v", got, want)
	}
}

// What a callback sends is written while it runs, not when it returns:
// each message here is sent only once the previous one reached the peer.
func TestCallbackStreamsWhileItRuns(t *testing.T) {
	h := newTestHandler()
	var w *chanWire
	h.message = func(c *Conn, m Message) error {
		if m.Text() != "stream" {
			return nil
		}
		for i := range 300 {
			if err := c.SendText("token"); err != nil {
				return err
			}
			select {
			case got := <-w.out:
				if got.Text() != "token" {
					t.Errorf("token %d: got %q", i, got.Text())
				}
			case <-time.After(5 * time.Second):
				t.Errorf("token %d not written while the callback runs", i)
				return nil
			}
		}
		return nil
	}
	c, w0 := startConn(t, h, Options{})
	w = w0
	within(t, h.started, "open")
	send(t, w, "stream")
	within(t, h.started, "stream")
	send(t, w, "after")
	within(t, h.started, "after")
	_ = c
}

// Sends from other goroutines are written while a callback runs.
func TestBackgroundSendsDuringSlowCallback(t *testing.T) {
	h := newTestHandler()
	c, w := startConn(t, h, Options{})
	within(t, h.started, "open")
	send(t, w, "slow")
	within(t, h.started, "slow")
	errs := make(chan error, 1)
	c.Go(func(ctx context.Context) error {
		for range 500 { // more than the send queue holds
			if err := c.SendText("bg"); err != nil {
				errs <- err
				return nil
			}
			select {
			case <-w.out:
			case <-time.After(5 * time.Second):
				errs <- errors.New("not written while the callback runs")
				return nil
			}
		}
		errs <- nil
		return nil
	})
	if err := within(t, errs, "background sends"); err != nil {
		t.Fatal(err)
	}
	close(h.release)
}

// A write that fails after the handler asked for a graceful close ends
// the connection (it used to stay half-closed for ever).
func TestFailedWriteAfterCloseEndsTheConnection(t *testing.T) {
	h := newTestHandler()
	h.message = func(c *Conn, m Message) error {
		w := c.wire.(*chanWire)
		w.failNext.Store(true)
		c.SendText("lost")
		return c.Close(CloseNormal, "done")
	}
	c, w := startConn(t, h, Options{})
	within(t, h.started, "open")
	send(t, w, "go")
	err := within(t, h.closed, "close")
	<-c.Done()
	if CloseStatus(err) != CloseAbnormal || err.(*CloseError).Reason != "write failed" {
		t.Fatalf("cause %v, want the write failure", err)
	}
}

// A handler error while the peer is leaving still runs Close once.
func TestCloseRunsOnceWhenEverythingEndsAtOnce(t *testing.T) {
	for range 50 {
		h := newTestHandler()
		h.message = func(c *Conn, m Message) error { return errors.New("boom") }
		c, w := startConn(t, h, Options{})
		within(t, h.started, "open")
		go w.hangUp(&CloseError{Code: CloseGoingAway})
		go c.Close(CloseNormal, "")
		select {
		case w.in <- Text("x"):
		case <-w.gone:
		}
		within(t, h.closed, "close")
		<-c.Done()
		select {
		case err := <-h.closed:
			t.Fatalf("a second Close: %v", err)
		default:
		}
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

// waitFor polls cond for state another goroutine reaches with no event to
// wait on.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%s: not within 5s\n%s", what, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(time.Millisecond)
	}
}

// TestSlowWatchesAreReused: a callback that ends in time gives its watch
// back for the next one; a watch whose timer fired is not reused.
func TestSlowWatchesAreReused(t *testing.T) {
	c := &Conn{}
	w := watchSlow(c)
	if got := w.c.Load(); got != c {
		t.Fatalf("the watch times %p, want %p", got, c)
	}
	w.done()
	if w.c.Load() != nil {
		t.Fatal("a watch given back still points at its connection")
	}
	// A fired watch: Stop reports false, so done must not pool it.
	fired := &slowWatch{t: time.NewTimer(0)}
	fired.c.Store(c)
	<-fired.t.C
	fired.done()
	if fired.c.Load() != c {
		t.Fatal("a watch that fired was given back to the pool")
	}
}
