package realtimetest_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/goleak"

	"github.com/rtkit/rtkit/realtime"
	"github.com/rtkit/rtkit/testing/realtimetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return c
}

var echo = realtime.Funcs{
	OnMessage: func(c *realtime.Conn, m realtime.Message) error { return c.Send(m) },
}

func TestEcho(t *testing.T) {
	c, err := realtimetest.Dial(echo, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(realtime.CloseNormal, "")
	for _, s := range []string{"a", "b", "c"} {
		if err := c.SendText(s); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range []string{"a", "b", "c"} {
		if got, err := c.ReceiveText(ctx(t)); err != nil || got != want {
			t.Fatalf("got %q, %v; want %q", got, err, want)
		}
	}
	if c.Conn().Transport() != realtime.Memory {
		t.Fatalf("transport %q", c.Conn().Transport())
	}
}

func TestHeartbeatWithFakeClock(t *testing.T) {
	clock := realtimetest.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	h := realtime.Funcs{OnOpen: func(c *realtime.Conn) error {
		c.Every(5*time.Second, func() { c.SendText("beat " + clock.Now().Format("15:04:05")) })
		return nil
	}}
	c, err := realtimetest.Dial(h, &realtime.Options{Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(4 * time.Second)
	wait, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if m, err := c.Receive(wait); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a beat before 5s: %q, %v", m.Data, err)
	}
	clock.Advance(11 * time.Second) // 15s in all: beats at 5, 10 and 15
	for _, want := range []string{"beat 00:00:05", "beat 00:00:10", "beat 00:00:15"} {
		if got, err := c.ReceiveText(ctx(t)); err != nil || got != want {
			t.Fatalf("got %q, %v; want %q", got, err, want)
		}
	}
	c.Close(realtime.CloseNormal, "")
	if n := clock.Pending(); n != 0 {
		t.Fatalf("%d timers left after close: the ticker did not stop", n)
	}
}

func TestServerClose(t *testing.T) {
	h := realtime.Funcs{OnMessage: func(c *realtime.Conn, m realtime.Message) error {
		c.SendText("bye")
		return c.Close(4000, "done")
	}}
	c, _ := realtimetest.Dial(h, nil)
	c.SendText("x")
	if got, _ := c.ReceiveText(ctx(t)); got != "bye" {
		t.Fatalf("got %q", got)
	}
	_, err := c.Receive(ctx(t))
	var ce *realtime.CloseError
	if !errors.As(err, &ce) || ce.Code != 4000 || ce.Reason != "done" {
		t.Fatalf("got %v, want close 4000 done", err)
	}
	<-c.Done()
	if realtime.CloseStatus(c.Conn().Cause()) != 4000 {
		t.Fatalf("cause %v", c.Conn().Cause())
	}
	if err := c.SendText("late"); !errors.Is(err, realtime.ErrClosed) {
		t.Fatalf("send after close: %v", err)
	}
}

func TestFailuresCloseWithCodes(t *testing.T) {
	quiet := &realtime.Options{Logger: discard(), ReadLimit: 8}
	for _, tc := range []struct {
		name string
		h    realtime.Handler
		in   realtime.Message
		code int
		is   error
	}{
		{"panic", realtime.Funcs{OnMessage: func(*realtime.Conn, realtime.Message) error { panic("boom") }}, realtime.Text("x"), realtime.CloseInternalError, realtime.ErrHandlerPanic},
		{"error", realtime.Funcs{OnMessage: func(*realtime.Conn, realtime.Message) error { return errBoom }}, realtime.Text("x"), realtime.CloseInternalError, errBoom},
		{"read limit", echo, realtime.Text("123456789"), realtime.CloseTooBig, realtime.ErrReadLimit},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec, err := realtimetest.Run(tc.h, quiet, tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if rec.Code != tc.code || !errors.Is(rec.Err, tc.is) || len(rec.Sent) != 0 {
				t.Fatalf("got %+v", rec)
			}
		})
	}
}

var errBoom = errors.New("boom")

func TestOpenErrorClosesAndSkipsMessages(t *testing.T) {
	called := false
	h := realtime.Funcs{
		OnOpen:    func(*realtime.Conn) error { return errBoom },
		OnMessage: func(*realtime.Conn, realtime.Message) error { called = true; return nil },
	}
	rec, err := realtimetest.Run(h, &realtime.Options{Logger: discard()}, realtime.Text("x"))
	if err != nil {
		t.Fatal(err)
	}
	if rec.Code != realtime.CloseInternalError || !errors.Is(rec.Err, errBoom) || called {
		t.Fatalf("got %+v, Message called: %v", rec, called)
	}
}

func TestSlowConsumerIsClosed(t *testing.T) {
	h := realtime.Funcs{OnMessage: func(c *realtime.Conn, m realtime.Message) error {
		for i := range 100 {
			if err := c.SendText(fmt.Sprint(i)); err != nil {
				return nil // the core closes the connection itself
			}
		}
		return nil
	}}
	c, err := realtimetest.Dial(h, &realtime.Options{SendQueue: 16})
	if err != nil {
		t.Fatal(err)
	}
	c.SetBuffer(4) // a peer that reads nothing yet: writes block after 4
	if err := c.Send(realtime.Text("go")); err != nil {
		t.Fatal(err)
	}
	<-c.Done() // the server closes it: nobody else does
	if cause := c.Conn().Cause(); realtime.CloseStatus(cause) != realtime.ClosePolicyViolation || !errors.Is(cause, realtime.ErrQueueFull) {
		t.Fatalf("cause %v, want 1008 for the full queue", cause)
	}
	// What got through is what the peer's buffer took before the writer
	// blocked, in order; the queue behind it is dropped.
	for i := 0; ; i++ {
		m, err := c.Receive(ctx(t))
		if realtime.CloseStatus(err) == realtime.ClosePolicyViolation {
			break
		}
		if err != nil || m.Text() != fmt.Sprint(i) || i >= 4 {
			t.Fatalf("message %d: %q, %v; want at most 4 messages, in order, then the close", i, m.Text(), err)
		}
	}
}

func TestDialRouteSharesTheRoute(t *testing.T) {
	rt := realtime.NewRoute(realtime.Funcs{OnOpen: func(c *realtime.Conn) error {
		return c.SendText(c.Request().Header.Get("X-User"))
	}}, &realtime.Options{Transports: inMemory.Transports, MaxConns: 1})
	r := httptest.NewRequest(http.MethodGet, "/chat", nil)
	r.Header.Set("X-User", "ada")
	c, err := realtimetest.DialRoute(rt, r)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := c.ReceiveText(ctx(t)); got != "ada" {
		t.Fatalf("got %q", got)
	}
	if _, err := realtimetest.DialRoute(rt, nil); !errors.Is(err, realtime.ErrTooManyConns) {
		t.Fatalf("second dial: %v", err)
	}
	if err := rt.Shutdown(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Receive(ctx(t)); realtime.CloseStatus(err) != realtime.CloseGoingAway {
		t.Fatalf("after shutdown: %v", err)
	}
}

func TestClientDrop(t *testing.T) {
	closed := make(chan error, 1)
	c, _ := realtimetest.Dial(realtime.Funcs{OnClose: func(_ *realtime.Conn, err error) { closed <- err }}, nil)
	c.Drop()
	select {
	case err := <-closed:
		if realtime.CloseStatus(err) != realtime.CloseAbnormal {
			t.Fatalf("cause %v", err)
		}
	default:
		t.Fatal("Close had not run when Drop returned")
	}
}

func TestNewServerOverWebSocket(t *testing.T) {
	s := realtimetest.NewServer(echo, nil)
	ws, _, err := websocket.DefaultDialer.Dial(s.WSURL(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	ws.WriteMessage(websocket.TextMessage, []byte("hi"))
	ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, p, err := ws.ReadMessage(); err != nil || string(p) != "hi" {
		t.Fatalf("got %q, %v", p, err)
	}
	read := make(chan error, 1)
	go func() {
		_, _, err := ws.ReadMessage()
		read <- err
	}()
	s.Close() // returns once the client has answered the close
	if err := <-read; !websocket.IsCloseError(err, websocket.CloseGoingAway) {
		t.Fatalf("after Close: %v", err)
	}
}
