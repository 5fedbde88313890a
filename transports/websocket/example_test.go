package websocket_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"

	gorilla "github.com/gorilla/websocket"

	"github.com/rtkit/rtkit/realtime"
	"github.com/rtkit/rtkit/transports/websocket"
)

// A route served over WebSocket only, with compression and an
// application subprotocol, talked to by a plain gorilla/websocket client:
// the transport needs no rtkit client.
func ExampleNew() {
	echo := realtime.Funcs{OnMessage: func(c *realtime.Conn, m realtime.Message) error {
		return c.SendText("echo: " + m.Text())
	}}
	route := realtime.NewRoute(echo, &realtime.Options{Transports: []realtime.Transport{
		websocket.New(websocket.Options{Compression: true, Subprotocols: []string{"chat.v1"}}),
	}})
	srv := httptest.NewServer(route)
	defer srv.Close()
	defer route.Shutdown(context.Background())

	d := gorilla.Dialer{Subprotocols: []string{"chat.v1"}, EnableCompression: true}
	ws, resp, err := d.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ws.Close()
	fmt.Println("subprotocol:", ws.Subprotocol())
	fmt.Println("extensions:", resp.Header.Get("Sec-WebSocket-Extensions"))

	ws.WriteMessage(gorilla.TextMessage, []byte("hello"))
	_, p, err := ws.ReadMessage()
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(string(p))

	// A close handshake: the server answers with the same code.
	ws.WriteMessage(gorilla.CloseMessage, gorilla.FormatCloseMessage(gorilla.CloseNormalClosure, "bye"))
	_, _, err = ws.ReadMessage()
	fmt.Println(err)
	// Output:
	// subprotocol: chat.v1
	// extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover
	// echo: hello
	// websocket: close 1000 (normal)
}
