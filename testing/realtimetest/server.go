package realtimetest

import (
	"context"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/rtkit/rtkit/realtime"
	"github.com/rtkit/rtkit/transports/longpoll"
	"github.com/rtkit/rtkit/transports/sse"
	"github.com/rtkit/rtkit/transports/websocket"
)

// Server runs a route over the real transports on a loopback port, like
// httptest.Server.
type Server struct {
	// URL is the route's base URL, http://127.0.0.1:port/.
	URL string
	// Route is the route being served.
	Route *realtime.Route
	// HTTP is the underlying test server.
	HTTP *httptest.Server
}

// NewServer starts a server for h with options o at the root path. When
// o lists no transports, the server offers every network transport:
// WebSocket, SSE, long-polling and request/response. Close it when done.
func NewServer(h realtime.Handler, o *realtime.Options) *Server {
	var oo realtime.Options
	if o != nil {
		oo = *o
	}
	if len(oo.Transports) == 0 {
		oo.Transports = []realtime.Transport{
			websocket.New(websocket.Options{}),
			sse.New(sse.Options{}),
			longpoll.New(longpoll.Options{}),
			longpoll.NewRequestResponse(),
		}
	}
	rt := realtime.NewRoute(h, &oo)
	ts := httptest.NewServer(rt)
	return &Server{URL: ts.URL + "/", Route: rt, HTTP: ts}
}

// WSURL returns the route's URL with the ws scheme, for WebSocket dialers.
func (s *Server) WSURL() string { return "ws" + strings.TrimPrefix(s.URL, "http") }

// Close shuts the route down (every connection closes with
// realtime.CloseGoingAway; handlers get five seconds to finish) and then
// the listener.
func (s *Server) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s.Route.Shutdown(ctx)
	s.HTTP.Close()
}
