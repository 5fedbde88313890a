package websocket_test

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gorilla/websocket"
	"github.com/rtkit/rtkit/realtime"
	rtws "github.com/rtkit/rtkit/transports/websocket"
)

func TestSmokeEcho(t *testing.T) {
	closed := make(chan error, 1)
	rt := realtime.NewRoute(realtime.Funcs{
		OnMessage: func(c *realtime.Conn, m realtime.Message) error { return c.Send(m) },
		OnClose:   func(c *realtime.Conn, err error) { closed <- err },
	}, &realtime.Options{Transports: []realtime.Transport{rtws.New(rtws.Options{})}})
	srv := httptest.NewServer(rt)
	defer srv.Close()
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	ws.WriteMessage(websocket.TextMessage, []byte("hi"))
	_, p, err := ws.ReadMessage()
	if err != nil || string(p) != "hi" {
		t.Fatalf("got %q %v", p, err)
	}
	ws.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(1000, "bye"))
	err = <-closed
	if realtime.CloseStatus(err) != 1000 {
		t.Fatalf("close: %v", err)
	}
	t.Log(err)
}
