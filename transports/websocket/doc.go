// Package websocket is rtkit's WebSocket transport, on
// github.com/gorilla/websocket. Importing it registers realtime.WebSocket:
//
//	import _ "github.com/rtkit/rtkit/transports/websocket"
//
// Each connection has one goroutine, the one that served the upgrade, which
// reads. Writes go through the connection's bounded send queue: the reader
// writes what a callback queued right after the callback returns, and
// messages sent from other goroutines get a writer goroutine only while
// there is something to write. An idle connection therefore costs one
// goroutine, gorilla's 1 KiB read buffer and a timer for pings; write
// buffers come from a shared pool.
//
// The transport applies the route's options: the read limit (a larger
// message closes with 1009), pings every PingInterval with a read deadline
// of PingInterval+PongTimeout that each pong extends, a deadline of
// WriteTimeout on every write, the handshake timeout, subprotocols and,
// when enabled, permessage-deflate ("no context takeover" only). A close
// sends a close frame and waits up to WriteTimeout for the peer's reply
// before dropping the TCP connection.
//
// Headers that middleware set on the ResponseWriter before the upgrade are
// sent with the 101 response (gorilla would drop them otherwise). The
// origin check is the route's (same-origin by default), not gorilla's.
package websocket
