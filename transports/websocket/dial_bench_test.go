package websocket_test

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/rtkit/rtkit/realtime"
	rtws "github.com/rtkit/rtkit/transports/websocket"
)

// BenchmarkConnect measures opening a connection (handshake to a first
// echo) and closing it cleanly, one at a time: rtkit against the raw
// gorilla baseline in the same run.
func BenchmarkConnect(b *testing.B) {
	b.Run("gorilla", func(b *testing.B) {
		srv, wait := newGorillaEcho()
		benchConnect(b, srv)
		srv.Close()
		wait()
	})
	b.Run("rtkit", func(b *testing.B) {
		rt := realtime.NewRoute(realtime.Funcs{
			OnMessage: func(c *realtime.Conn, m realtime.Message) error { return c.Send(m) },
		}, &realtime.Options{
			Transports: []realtime.Transport{rtws.New(rtws.Options{})},
			Logger:     slog.New(slog.NewTextHandler(io.Discard, nil)),
		})
		srv := httptest.NewServer(rt)
		benchConnect(b, srv)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		rt.Shutdown(ctx)
		srv.Close()
	})
}

func benchConnect(b *testing.B, srv *httptest.Server) {
	url := "ws" + strings.TrimPrefix(srv.URL, "http")
	msg := []byte("hello")
	var dials time.Duration
	for b.Loop() {
		t0 := time.Now()
		ws, _, err := websocket.DefaultDialer.Dial(url, nil)
		dials += time.Since(t0)
		if err != nil {
			b.Fatal(err)
		}
		ws.WriteMessage(websocket.TextMessage, msg)
		if _, _, err := ws.ReadMessage(); err != nil {
			b.Fatal(err)
		}
		closeClient(ws)
	}
	b.ReportMetric(float64(dials.Microseconds())/float64(b.N), "dial-µs")
}
