package websocket

import (
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/rtkit/rtkit/realtime"
)

// parkingRoute serves an echo route whose connections park after 10 ms,
// and reports each connection's close on closed; open, if not nil, is its
// OnOpen.
func parkingRoute(t *testing.T, open func(*realtime.Conn) error) (tr *Transport, url string, closed chan error) {
	t.Helper()
	tr = New(Options{})
	tr.park.after = 10 * time.Millisecond
	closed = make(chan error, 8)
	rt := realtime.NewRoute(realtime.Funcs{
		OnOpen:    open,
		OnMessage: func(c *realtime.Conn, m realtime.Message) error { return c.Send(m) },
		OnClose:   func(c *realtime.Conn, err error) { closed <- err },
	}, &realtime.Options{Transports: []realtime.Transport{tr}})
	srv := httptest.NewServer(rt)
	t.Cleanup(srv.Close)
	return tr, "ws" + strings.TrimPrefix(srv.URL, "http"), closed
}

// waitParked waits until n connections of tr are parked.
func waitParked(t *testing.T, tr *Transport, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for tr.park.parkedLen() != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections parked, want %d", tr.park.parkedLen(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

func echo(t *testing.T, ws *websocket.Conn, msg string) {
	t.Helper()
	if err := ws.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
		t.Fatal(err)
	}
	_, p, err := ws.ReadMessage()
	if err != nil || string(p) != msg {
		t.Fatalf("echo of %q: got %q, %v", msg, p, err)
	}
}

// TestParkedConnectionWakesForMessages: a quiet connection gives its
// goroutine back, and the next message wakes it, again and again.
func TestParkedConnectionWakesForMessages(t *testing.T) {
	tr, url, closed := parkingRoute(t, nil)
	ws, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	for i := range 5 {
		echo(t, ws, strings.Repeat("x", i*1000+1))
		waitParked(t, tr, 1)
	}
	ws.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(1000, "bye"))
	if err := <-closed; realtime.CloseStatus(err) != 1000 {
		t.Fatalf("close: %v", err)
	}
	waitParked(t, tr, 0)
}

// TestParkedPeerVanishes: a parked connection whose peer drops its TCP
// connection ends, and its handler's Close runs.
func TestParkedPeerVanishes(t *testing.T) {
	tr, url, closed := parkingRoute(t, nil)
	ws, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	echo(t, ws, "hi")
	waitParked(t, tr, 1)
	ws.NetConn().Close()
	if err := <-closed; realtime.CloseStatus(err) != realtime.CloseAbnormal {
		t.Fatalf("close: %v, want 1006", err)
	}
	waitParked(t, tr, 0)
}

// TestParkedConnectionClosedByServer: closing a parked connection from
// the server sends the close frame and ends it when the peer answers.
func TestParkedConnectionClosedByServer(t *testing.T) {
	conns := make(chan *realtime.Conn, 1)
	tr, url, closed := parkingRoute(t, func(c *realtime.Conn) error { conns <- c; return nil })
	ws, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	c := <-conns
	waitParked(t, tr, 1)
	c.Close(4000, "done")
	_, _, err = ws.ReadMessage() // gorilla answers the close frame
	if !websocket.IsCloseError(err, 4000) {
		t.Fatalf("client read: %v, want close 4000", err)
	}
	if err := <-closed; realtime.CloseStatus(err) != 4000 {
		t.Fatalf("close: %v", err)
	}
	<-c.Done()
	waitParked(t, tr, 0)
}

// TestParkingDeadlineInsideAFrame: the deadline that parks a quiet
// connection never fails one whose frame arrives in pieces.
func TestParkingDeadlineInsideAFrame(t *testing.T) {
	tr, url, _ := parkingRoute(t, nil)
	ws, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	echo(t, ws, "warm")
	// A masked text frame "hello", its header first and its payload
	// after several parking delays.
	key := []byte{1, 2, 3, 4}
	payload := []byte("hello")
	frame := append([]byte{0x81, 0x80 | byte(len(payload))}, key...)
	for i, b := range payload {
		frame = append(frame, b^key[i%4])
	}
	nc := ws.NetConn()
	if _, err := nc.Write(frame[:3]); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * tr.park.after) // the stimulus: a pause inside a frame
	if _, err := nc.Write(frame[3:]); err != nil {
		t.Fatal(err)
	}
	_, p, err := ws.ReadMessage()
	if err != nil || string(p) != "hello" {
		t.Fatalf("got %q, %v", p, err)
	}
}

// TestParkedPeerStopsAnswering: a parked connection whose peer no
// longer answers pings (a half-open socket) still fails its keepalive.
func TestParkedPeerStopsAnswering(t *testing.T) {
	tr := New(Options{})
	tr.park.after = 10 * time.Millisecond
	closed := make(chan error, 1)
	rt := realtime.NewRoute(realtime.Funcs{
		OnClose: func(c *realtime.Conn, err error) { closed <- err },
	}, &realtime.Options{Transports: []realtime.Transport{tr}, PingInterval: 100 * time.Millisecond, PongTimeout: 50 * time.Millisecond})
	srv := httptest.NewServer(rt)
	defer srv.Close()
	// The client never reads, so gorilla never answers the pings.
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	waitParked(t, tr, 1)
	if err := <-closed; !errors.Is(err, realtime.ErrPingTimeout) {
		t.Fatalf("close: %v, want the ping timeout", err)
	}
	waitParked(t, tr, 0)
}
