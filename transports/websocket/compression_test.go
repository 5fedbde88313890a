package websocket_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/rtkit/rtkit/realtime"
	"github.com/rtkit/rtkit/realtime/topics"
	rtws "github.com/rtkit/rtkit/transports/websocket"
)

// With Options.Compression, permessage-deflate is negotiated with clients
// that offer it; those that do not still get plain frames, also for a
// shared (broadcast) message, which gorilla prepares per compression mode.
func TestCompression(t *testing.T) {
	ts := topics.New(nil)
	route := realtime.NewRoute(realtime.Funcs{
		OnOpen: func(c *realtime.Conn) error { return ts.Subscribe(c, "news") },
		OnMessage: func(c *realtime.Conn, m realtime.Message) error {
			return c.Send(m)
		},
	}, &realtime.Options{Transports: []realtime.Transport{rtws.New(rtws.Options{Compression: true})}})
	srv := httptest.NewServer(route)
	defer srv.Close()
	defer route.Shutdown(context.Background())
	url := "ws" + strings.TrimPrefix(srv.URL, "http")

	big := strings.Repeat("compress me ", 1000)
	var clients []*websocket.Conn
	for _, deflate := range []bool{true, false} {
		d := websocket.Dialer{EnableCompression: deflate}
		ws, resp, err := d.Dial(url, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer ws.Close()
		got := strings.Contains(resp.Header.Get("Sec-Websocket-Extensions"), "permessage-deflate")
		if got != deflate {
			t.Fatalf("client offering deflate=%v: negotiated %v", deflate, got)
		}
		ws.SetReadDeadline(time.Now().Add(5 * time.Second))
		ws.WriteMessage(websocket.TextMessage, []byte(big))
		if _, p, err := ws.ReadMessage(); err != nil || string(p) != big {
			t.Fatalf("echo with deflate=%v: %d bytes, %v", deflate, len(p), err)
		}
		clients = append(clients, ws)
	}
	if route.Len() != 2 {
		t.Fatal("both connections should be open")
	}
	if _, err := ts.Publish(context.Background(), "news", realtime.Text(big)); err != nil {
		t.Fatal(err)
	}
	for i, ws := range clients {
		var env topics.Envelope
		if err := ws.ReadJSON(&env); err != nil || env.Data == nil || *env.Data != big {
			t.Fatalf("client %d: broadcast %v", i, err)
		}
	}
}
