package websocket_test

import (
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/rtkit/rtkit/realtime"
	"github.com/rtkit/rtkit/testing/realtimetest"
	rtws "github.com/rtkit/rtkit/transports/websocket"
)

// heartbeatServer serves an echo route on a fake clock and records every
// message its handler received.
func heartbeatServer(t *testing.T) (url string, clock *realtimetest.Clock, seen func() []string) {
	t.Helper()
	clock = realtimetest.NewClock(time.Now())
	var mu sync.Mutex
	var got []string
	route := realtime.NewRoute(realtime.Funcs{OnMessage: func(c *realtime.Conn, m realtime.Message) error {
		mu.Lock()
		got = append(got, m.Text())
		mu.Unlock()
		return c.Send(m)
	}}, &realtime.Options{Clock: clock, Transports: []realtime.Transport{rtws.New(rtws.Options{})}})
	srv := httptest.NewServer(route)
	t.Cleanup(func() {
		route.Shutdown(t.Context())
		srv.Close()
	})
	return "ws" + strings.TrimPrefix(srv.URL, "http"), clock, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), got...)
	}
}

// next reads the next frame as "heartbeat" (an empty binary frame) or its
// text.
func next(t *testing.T, ws *websocket.Conn) string {
	t.Helper()
	ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	mt, p, err := ws.ReadMessage()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if mt == websocket.BinaryMessage && len(p) == 0 {
		return "heartbeat"
	}
	return string(p)
}

// On the rtkit subprotocol the server sends an empty binary frame at once
// and then after each PingInterval in which it wrote nothing; a write
// postpones it. The handler never sees one.
func TestHeartbeat(t *testing.T) {
	url, clock, seen := heartbeatServer(t)
	ws, _, err := (&websocket.Dialer{Subprotocols: []string{realtime.Subprotocol}}).Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	if got := next(t, ws); got != "heartbeat" {
		t.Fatalf("first frame %q, want the heartbeat", got)
	}
	half := realtime.DefaultPingInterval / 2

	clock.Advance(half)
	ws.WriteMessage(websocket.TextMessage, []byte("a")) // written back at half
	if got := next(t, ws); got != "a" {
		t.Fatalf("got %q, want the echo", got)
	}
	clock.Advance(half) // PingInterval after the first heartbeat, half after the echo: none due
	ws.WriteMessage(websocket.TextMessage, []byte("b"))
	if got := next(t, ws); got != "b" {
		t.Fatalf("got %q, want the echo: a heartbeat came although the server wrote within PingInterval", got)
	}
	// Nothing written for a whole interval, twice. After each heartbeat an
	// echo makes the client read (and answer) the ping due at the same
	// instant, which the fake clock would otherwise time out.
	for i, m := range []string{"c", "d"} {
		clock.Advance(realtime.DefaultPingInterval)
		if got := next(t, ws); got != "heartbeat" {
			t.Fatalf("interval %d: got %q, want a heartbeat after an idle PingInterval", i, got)
		}
		ws.WriteMessage(websocket.TextMessage, []byte(m))
		if got := next(t, ws); got != m {
			t.Fatalf("got %q, want the echo %q", got, m)
		}
	}
	if got := strings.Join(seen(), ","); got != "a,b,c,d" {
		t.Fatalf("handler saw %q, want only the four messages", got)
	}
}

// Without the rtkit subprotocol nothing changes: the first frame is the
// handler's.
func TestNoHeartbeatWithoutSubprotocol(t *testing.T) {
	url, clock, _ := heartbeatServer(t)
	ws, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	clock.Advance(realtime.DefaultPingInterval) // a heartbeat would be due now
	ws.WriteMessage(websocket.TextMessage, []byte("first"))
	if got := next(t, ws); got != "first" {
		t.Fatalf("first frame %q, want the echo", got)
	}
}
