// Package websocket is rtkit's WebSocket transport, on
// github.com/gorilla/websocket. List it in a route's transports, with its
// own options:
//
//	o := realtime.Options{Transports: []realtime.Transport{
//		websocket.New(websocket.Options{Compression: true}),
//	}}
//
// An idle connection costs a timer for pings and, on Linux, no goroutine:
// one quiet for a second parks (its socket waits in an epoll set of the
// transport's, itself in the runtime's poller) and the next frame, or the
// end of the connection, starts a goroutine that reads it (wire.Parker).
// Read and write buffers come from pools shared by every connection and
// are held only while there are bytes to read or write (see idle.go; over
// TLS a connection keeps its goroutine and a 512-byte read buffer). The core reads
// the connection itself (see wire.Reader): a quick callback runs on the
// reading goroutine, which then writes what it queued; while a slow one
// runs, reading goes on on another goroutine, so pongs and close frames
// are never left unread, and messages sent meanwhile are written at once.
//
// The transport applies the route's options: the read limit, counted on
// the message as the handler receives it, inflated when compressed and
// all its fragments together (a larger message closes with 1009, and a
// deflate bomb is stopped at the limit, not inflated whole); text
// messages must be UTF-8 (RFC 6455 section 8.1: otherwise the connection
// closes with 1007); pings every PingInterval, each of which the
// peer has PongTimeout to answer (any message counts; the time the core
// does not read, its inbox being full, does not), a deadline of
// WriteTimeout on every write (a tenth of it may be spent by the writes
// before it: the socket's deadline moves only when it would move by
// more, which saves re-arming a timer per message), and its own: the handshake timeout,
// subprotocols and, when enabled, permessage-deflate ("no context
// takeover" only). A close sends a close frame and waits up to
// WriteTimeout for the peer's reply before dropping the TCP connection.
//
// Headers that middleware set on the ResponseWriter before the upgrade are
// sent with the 101 response (gorilla would drop them otherwise). The
// origin check is the route's (same-origin by default), not gorilla's.
package websocket
