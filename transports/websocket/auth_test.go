package websocket_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/rtkit/rtkit/realtime"
	rtws "github.com/rtkit/rtkit/transports/websocket"
)

type userKey struct{}

// A browser cannot set headers on a WebSocket handshake: the token rides in
// a subprotocol entry, middleware reads it before the upgrade, and the
// server answers with the plain "rtkit" subprotocol, never the token.
func TestBearerTokenInSubprotocol(t *testing.T) {
	route := realtime.NewRoute(realtime.Funcs{OnOpen: func(c *realtime.Conn) error {
		return c.SendText("hello " + c.Value(userKey{}).(string))
	}}, &realtime.Options{Transports: []realtime.Transport{rtws.New(rtws.Options{})}})
	auth := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if realtime.BearerToken(r) != "s3cret" {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		route.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), userKey{}, "ada")))
	})
	srv := httptest.NewServer(auth)
	defer srv.Close()
	url := "ws" + strings.TrimPrefix(srv.URL, "http")

	d := websocket.Dialer{Subprotocols: []string{realtime.Subprotocol, realtime.BearerSubprotocol("s3cret")}}
	ws, resp, err := d.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	if got := resp.Header.Get("Sec-Websocket-Protocol"); got != realtime.Subprotocol {
		t.Fatalf("server chose subprotocol %q", got)
	}
	ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, p, err := ws.ReadMessage(); err != nil || len(p) != 0 {
		t.Fatalf("got %q, %v; want the heartbeat (heartbeat.go)", p, err)
	}
	if _, p, err := ws.ReadMessage(); err != nil || string(p) != "hello ada" {
		t.Fatalf("got %q, %v", p, err)
	}

	d.Subprotocols = []string{realtime.Subprotocol, realtime.BearerSubprotocol("wrong")}
	if _, resp, err := d.Dial(url, nil); err == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("wrong token: %v", err)
	}
}
