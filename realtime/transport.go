package realtime

import "net/http"

// Kind names a transport: what Conn.Transport reports and what clients
// and the negotiation call it.
type Kind string

// The transports of this module. Each is made by a package under
// transports/ (testing/realtimetest for Memory).
const (
	WebSocket Kind = "websocket" // transports/websocket
	SSE       Kind = "sse"       // transports/sse: server-sent events, messages up by POST
	LongPoll  Kind = "longpoll"  // transports/longpoll: held GETs, messages up by POST
	HTTP      Kind = "http"      // transports/longpoll: one POST, one response
	Memory    Kind = "memory"    // testing/realtimetest: no network
)

// Transport is one way of reaching a route. Values come from the packages
// under transports/, each with its own options (websocket.New,
// sse.New, longpoll.New, longpoll.NewRequestResponse), or ready-made in
// package transports's presets; list them in Options.Transports. A
// transport value may serve many routes. Package wire is the API for
// writing one.
type Transport interface {
	// Kind names the transport.
	Kind() Kind
	// Bind returns the transport's server for rt. NewRoute calls it once
	// per route and panics with the error if there is one.
	Bind(rt *Route) (TransportHandler, error)
}

// TransportHandler is a transport's server for one route.
type TransportHandler interface {
	// Match reports whether r is meant for this transport. The route asks
	// its transports in the order of Options.Transports and serves r with
	// the first that matches.
	Match(r *http.Request) bool
	http.Handler
}

// describer is implemented by transport handlers that tell negotiating
// clients where they are (wire.Describer).
type describer interface {
	Describe(r *http.Request) string
}

// wireConn is the transport's side of one connection (wire.Conn).
type wireConn interface {
	Write(msgs []Message) error
	Close(code int, reason string) error
}

// reader is a wireConn that the core reads (wire.Reader).
type reader interface {
	wireConn
	Read() (Message, error)
}

// parker is a reader that can give its goroutine back while the peer is
// quiet (wire.Parker): readLoop ends, and resume starts it again.
type parker interface {
	ReadOrPark(resume func()) (m Message, parked bool, err error)
}
