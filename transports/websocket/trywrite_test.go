package websocket

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/rtkit/rtkit/realtime"
)

// serverConn upgrades one connection on a loopback server and returns
// its server side, as the transport serves it, and its client side.
func serverConn(t *testing.T) (*conn, *websocket.Conn) {
	t.Helper()
	ch := make(chan *conn, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cw := &corkingWriter{ResponseWriter: w, slack: time.Second}
		ws, err := (&websocket.Upgrader{}).Upgrade(cw, r, nil)
		if err != nil {
			return
		}
		c := &conn{ws: ws, opts: &realtime.Options{WriteTimeout: 10 * time.Second}, cork: cw.conn, br: cw.br}
		ws.SetPingHandler(c.pong)
		ch <- c
	}))
	t.Cleanup(srv.Close)
	cl, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	c := <-ch
	t.Cleanup(func() {
		cl.Close()
		c.ws.Close()
	})
	return c, cl
}

func payload(i int) string { return fmt.Sprintf("%06d", i) + strings.Repeat("x", 16<<10) }

// readPayloads reads n messages, payload(0) to payload(n-1), from cl.
func readPayloads(t *testing.T, cl *websocket.Conn, n int) {
	t.Helper()
	cl.SetReadDeadline(time.Now().Add(30 * time.Second))
	for i := range n {
		_, b, err := cl.ReadMessage()
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if string(b) != payload(i) {
			t.Fatalf("message %d is %.10q..., want %.10q...", i, b, payload(i))
		}
	}
}

// TryWrite never waits for a peer that does not read: once the socket is
// full it reports false and keeps the rest, which the next Write sends
// first, whole and in order.
func TestTryWriteDoesNotWait(t *testing.T) {
	c, cl := serverConn(t)
	n := make(chan int, 1)
	go func() {
		for i := range 1 << 14 { // 256 MiB: more than any socket buffer
			done, err := c.TryWrite([]realtime.Message{realtime.Text(payload(i))})
			if err != nil {
				t.Errorf("TryWrite %d: %v", i, err)
				n <- -1
				return
			}
			if !done {
				n <- i + 1
				return
			}
		}
		n <- 0
	}()
	var tried int
	select {
	case tried = <-n:
	case <-time.After(30 * time.Second):
		t.Fatal("TryWrite waited for the peer")
	}
	if tried <= 0 {
		t.Fatalf("TryWrite never reported a full socket (%d)", tried)
	}
	if !c.cork.hasTail() {
		t.Fatal("TryWrite reported false with no tail kept")
	}
	written := make(chan error, 1)
	go func() { written <- c.Write(nil) }()
	readPayloads(t, cl, tried)
	if err := <-written; err != nil {
		t.Fatalf("Write: %v", err)
	}
}

// Behind a write under way TryWrite writes nothing and keeps the
// messages; the next Write sends them before its own.
func TestTryWriteBehindAWrite(t *testing.T) {
	c, cl := serverConn(t)
	c.wmu.Lock() // a write under way
	done, err := c.TryWrite([]realtime.Message{realtime.Text(payload(0))})
	c.wmu.Unlock()
	if done || err != nil {
		t.Fatalf("TryWrite behind a write: %v, %v; want false, nil", done, err)
	}
	if err := c.Write([]realtime.Message{realtime.Text(payload(1))}); err != nil {
		t.Fatal(err)
	}
	readPayloads(t, cl, 2)
}

// Pongs written while messages are tried, kept and sent go out between
// frames, never inside one: the client reads every message whole, in
// order.
func TestTryWriteWithPongs(t *testing.T) {
	c, cl := serverConn(t)
	const n = 300
	go func() {
		for range 100 {
			c.pong("p")
		}
	}()
	errs := make(chan error, 1)
	go func() {
		for i := range n {
			done, err := c.TryWrite([]realtime.Message{realtime.Text(payload(i))})
			if err == nil && !done {
				err = c.Write(nil) // as the core's writer goroutine does
			}
			if err != nil {
				errs <- err
				return
			}
		}
		errs <- nil
	}()
	readPayloads(t, cl, n)
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
}

// A close frame stuck behind a peer that does not read (the peer filled
// the socket, then sent something that ends the connection) never holds
// TryWrite up: it keeps its messages and returns, so a fan-out goes on to
// the other connections.
func TestTryWriteNotBehindACloseFrame(t *testing.T) {
	c, _ := serverConn(t)
	for i := 0; ; i++ { // fill the socket: the client reads nothing
		done, err := c.TryWrite([]realtime.Message{realtime.Text(payload(i))})
		if err != nil {
			t.Fatal(err)
		}
		if !done {
			break
		}
	}
	refused := make(chan struct{})
	go func() {
		defer close(refused)
		c.refuseMessage(realtime.CloseInvalidData, "invalid UTF-8") // waits for the full socket, up to a second
	}()
	for giveUp := time.Now().Add(5 * time.Second); c.wmu.TryLock(); { // until the close frame's writer holds wmu
		c.wmu.Unlock()
		if time.Now().After(giveUp) {
			t.Fatal("the close frame was written without wmu")
		}
		runtime.Gosched()
	}
	done, err := c.TryWrite([]realtime.Message{realtime.Text("next")})
	select {
	case <-refused:
		t.Fatal("the close frame was written first: the test did not hold TryWrite behind it")
	default:
	}
	if done || err != nil {
		t.Fatalf("TryWrite behind a close frame: %v, %v; want false, nil", done, err)
	}
	<-refused
}
